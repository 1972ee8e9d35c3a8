/* ttft: the time to the first token of streamed chat completions, one
 * keep-alive connection, one request at a time (issue 11: "added time to
 * first token p50 <= 0.2 ms, p99 <= 1 ms").
 *
 *   ttft -u http://127.0.0.1:PORT/PATH -b BODY [-H HEADER] [-d S] [-w S]
 *
 * wrk times a response to its last byte; through clawgate a stream's last
 * bytes wait for the run's end to commit (the answer is acknowledged only
 * then), so that is not the time to the first token. Here a request's
 * first token is the first byte after `"content":"` that is not `"` (an
 * empty role delta is no token); the time to the last byte is measured
 * too, from the same requests. Prints one line:
 *
 *   RESULT requests=N errors=E ttft_p50_ms= ttft_p99_ms= last_p50_ms=
 *          last_p99_ms=
 *
 * Loopback only (127.0.0.0/8); every wait is bounded (5 s per read, an
 * alarm() backstop for the whole run). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TTFT_BUF (256 * 1024)		/* a whole response, at most */
#define TTFT_WAIT_MS 5000		/* per read */
#define TTFT_MAX_SAMPLES 2000000
#define TTFT_MAX_HEADERS 8

static const char marker[] = "\"content\":\"";

struct ttft_opts {
	struct sockaddr_in addr;
	char hostport[64];
	const char *path;
	const char *body;
	const char *headers[TTFT_MAX_HEADERS];
	int nheaders;
	double duration, warmup;
};

static uint64_t ttft_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int ttft_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double ttft_pct(double *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

/* http://127.x.y.z:PORT/PATH */
static int ttft_url(struct ttft_opts *o, const char *url)
{
	const char *h, *c, *s;
	char host[32];
	long port;

	if (strncmp(url, "http://", 7) != 0)
		return -1;
	h = url + 7;
	c = strchr(h, ':');
	s = strchr(h, '/');
	if (!c || !s || c > s || (size_t)(c - h) >= sizeof(host))
		return -1;
	memcpy(host, h, (size_t)(c - h));
	host[c - h] = '\0';
	port = strtol(c + 1, NULL, 10);
	if (port < 1 || port > 65535 || strncmp(host, "127.", 4) != 0)
		return -1;
	memset(&o->addr, 0, sizeof(o->addr));
	o->addr.sin_family = AF_INET;
	o->addr.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &o->addr.sin_addr) != 1)
		return -1;
	snprintf(o->hostport, sizeof(o->hostport), "%s:%ld", host, port);
	o->path = s;
	return 0;
}

static int ttft_connect(const struct ttft_opts *o)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&o->addr,
		    sizeof(o->addr)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Whether buf[0..n) holds a whole response (head + body); *done. */
static int ttft_complete(const char *buf, size_t n)
{
	const char *e = memmem(buf, n, "\r\n\r\n", 4), *cl;
	size_t head;

	if (!e)
		return 0;
	head = (size_t)(e - buf) + 4;
	cl = memmem(buf, head, "\r\nContent-Length:", 17);
	if (!cl)
		cl = memmem(buf, head, "\r\ncontent-length:", 17);
	if (cl)
		return n >= head + (size_t)strtoul(cl + 17, NULL, 10);
	return n >= head + 5 && memcmp(buf + n - 5, "0\r\n\r\n", 5) == 0;
}

/* One request on *fd (reconnected when the server closed it): the times
 * to its first token and to its last byte, in ns. */
static int ttft_one(const struct ttft_opts *o, int *fd, char *buf,
		    uint64_t *first, uint64_t *last)
{
	char req[8192];
	size_t n = 0, scan = 0;
	uint64_t t0;
	int len, i, off = 0;

	len = snprintf(req, sizeof(req), "POST %s HTTP/1.1\r\nHost: %s\r\n"
		       "Content-Type: application/json\r\n"
		       "Content-Length: %zu\r\n", o->path, o->hostport,
		       strlen(o->body));
	for (i = 0; i < o->nheaders && len > 0 && len < (int)sizeof(req); i++)
		len += snprintf(req + len, sizeof(req) - (size_t)len,
				"%s\r\n", o->headers[i]);
	if (len <= 0 || len + 2 + strlen(o->body) >= sizeof(req))
		return -1;
	len += snprintf(req + len, sizeof(req) - (size_t)len, "\r\n%s",
			o->body);
	if (*fd < 0 && (*fd = ttft_connect(o)) < 0)
		return -1;
	*first = 0;
	t0 = ttft_now();
	while (off < len) {
		ssize_t w = send(*fd, req + off, (size_t)(len - off),
				 MSG_NOSIGNAL);

		if (w <= 0)
			return -1;
		off += (int)w;
	}
	for (;;) {
		struct pollfd p = {.fd = *fd, .events = POLLIN};
		ssize_t r;
		char *m;

		if (poll(&p, 1, TTFT_WAIT_MS) != 1)
			return -1;
		r = recv(*fd, buf + n, TTFT_BUF - 1 - n, 0);
		if (r <= 0)
			return -1;
		n += (size_t)r;
		if (!*first) {
			while ((m = memmem(buf + scan, n - scan, marker,
					   sizeof(marker) - 1)) != NULL) {
				size_t at = (size_t)(m - buf) +
					    sizeof(marker) - 1;

				if (at >= n)
					break;	/* the token's byte next read */
				if (buf[at] != '"') {
					*first = ttft_now() - t0;
					break;
				}
				scan = at;
			}
		}
		if (ttft_complete(buf, n))
			break;
		if (n >= TTFT_BUF - 1)
			return -1;
	}
	*last = ttft_now() - t0;
	if (strncmp(buf, "HTTP/1.1 200", 12) != 0 || !*first)
		return -1;
	if (memmem(buf, n, "\r\nConnection: close", 19)) {
		close(*fd);
		*fd = -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct ttft_opts o = {.duration = 5, .warmup = 1};
	double *tf = NULL, *tl = NULL;
	uint64_t first, last, start, end, wend;
	size_t n = 0;
	long errors = 0;
	char *buf = NULL;
	int c, fd = -1, rc = 1;
	const char *url = NULL;

	while ((c = getopt(argc, argv, "u:b:H:d:w:")) != -1) {
		switch (c) {
		case 'u': url = optarg; break;
		case 'b': o.body = optarg; break;
		case 'H':
			if (o.nheaders == TTFT_MAX_HEADERS)
				goto usage;
			o.headers[o.nheaders++] = optarg;
			break;
		case 'd': o.duration = atof(optarg); break;
		case 'w': o.warmup = atof(optarg); break;
		default: goto usage;
		}
	}
	if (!url || !o.body || ttft_url(&o, url) != 0 || o.duration <= 0 ||
	    o.duration > 600 || o.warmup < 0 || o.warmup > 60)
		goto usage;
	alarm((unsigned int)(o.duration + o.warmup) + 30);
	buf = malloc(TTFT_BUF);
	tf = malloc(TTFT_MAX_SAMPLES * sizeof(*tf));
	tl = malloc(TTFT_MAX_SAMPLES * sizeof(*tl));
	if (!buf || !tf || !tl)
		goto out;
	start = ttft_now();
	wend = start + (uint64_t)(o.warmup * 1e9);
	end = wend + (uint64_t)(o.duration * 1e9);
	while (ttft_now() < end && n < TTFT_MAX_SAMPLES && errors < 1000) {
		int warm = ttft_now() < wend;

		if (ttft_one(&o, &fd, buf, &first, &last) != 0) {
			if (!warm)
				errors++;
			if (fd >= 0)
				close(fd);
			fd = -1;
			continue;
		}
		if (warm)
			continue;
		tf[n] = (double)first / 1e6;
		tl[n] = (double)last / 1e6;
		n++;
	}
	qsort(tf, n, sizeof(*tf), ttft_cmp);
	qsort(tl, n, sizeof(*tl), ttft_cmp);
	printf("RESULT requests=%zu errors=%ld ttft_p50_ms=%.3f "
	       "ttft_p99_ms=%.3f last_p50_ms=%.3f last_p99_ms=%.3f\n", n,
	       errors, ttft_pct(tf, n, 0.50), ttft_pct(tf, n, 0.99),
	       ttft_pct(tl, n, 0.50), ttft_pct(tl, n, 0.99));
	rc = n > 0 && errors == 0 ? 0 : 1;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(tf);
	free(tl);
	return rc;
usage:
	fprintf(stderr, "usage: ttft -u http://127.0.0.1:PORT/PATH -b BODY "
		"[-H 'Name: value']... [-d S] [-w S]\n");
	return 2;
}
