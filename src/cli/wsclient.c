/* A small blocking RFC 6455 client: URL parsing, the HTTP upgrade, masked
 * client frames, message assembly with ping/pong and close handling. All
 * I/O goes through poll() with a deadline; messages are size-bounded. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cli/wsclient.h"
#include "core/common.h"
#include "core/util.h"

#define WSCLIENT_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WSCLIENT_MAX_HTTP_HEAD (16 * 1024)
#define WSCLIENT_CLOSE_DRAIN_MS 250

struct wsclient {
	int fd;
	uint8_t *rbuf;		/* received, not yet consumed bytes */
	size_t rlen;
	size_t rcap;
	struct wsclient_reader rd;	/* frames and message assembly */
	int close_code;		/* from the peer's close frame */
	char *close_reason;
	int closed;		/* peer closed (frame or EOF) */
	int close_sent;
	char err[256];
};

int wsclient_url_parse(const char *url, struct wsclient_url *u, char *err,
		       size_t errlen)
{
	const char *p, *host_end, *port_s = NULL, *path;
	char *host = NULL;
	char port_buf[8];
	size_t port_len = 0;
	int port = 80, ipv6 = 0;

	memset(u, 0, sizeof(*u));
	if (!url || strncasecmp(url, "ws://", 5) != 0) {
		snprintf(err, errlen, "invalid gateway URL (expected ws://"
			 "host:port): %s", url ? url : "");
		return -1;
	}
	p = url + 5;
	if (*p == '[') {
		host_end = strchr(p, ']');
		if (!host_end || host_end == p + 1)
			goto bad;
		host = xstrndup(p + 1, (size_t)(host_end - p - 1));
		ipv6 = 1;
		p = host_end + 1;
	} else {
		host_end = p + strcspn(p, ":/?#");
		if (host_end == p)
			goto bad;
		host = xstrndup(p, (size_t)(host_end - p));
		p = host_end;
	}
	if (*p == ':') {
		port_s = ++p;
		port_len = strcspn(p, "/?#");
		if (port_len == 0 || port_len >= sizeof(port_buf))
			goto bad;
		memcpy(port_buf, port_s, port_len);
		port_buf[port_len] = '\0';
		port = util_parse_port(port_buf);
		if (port < 0)
			goto bad;
		p += port_len;
	}
	if (*p && *p != '/' && *p != '?')
		goto bad;
	path = *p ? p : "/";
	u->host = host;
	u->port = port;
	u->path = *path == '?' ? xasprintf("/%s", path) : xstrdup(path);
	u->ipv6 = ipv6;
	return 0;
bad:
	free(host);
	snprintf(err, errlen, "invalid gateway URL: %s", url);
	return -1;
}

void wsclient_url_free(struct wsclient_url *u)
{
	if (!u)
		return;
	free(u->host);
	free(u->path);
	memset(u, 0, sizeof(*u));
}

void wsclient_accept_key(const char *key, char out[29])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char *cat = xasprintf("%s%s", key, WSCLIENT_GUID);

	EVP_Digest(cat, strlen(cat), md, &mdlen, EVP_sha1(), NULL);
	EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
	free(cat);
}

void wsclient_mask(uint8_t *data, size_t n, const uint8_t mask[4],
		   size_t off)
{
	size_t i;

	for (i = 0; i < n; i++)
		data[i] ^= mask[(off + i) & 3];
}

uint8_t *wsclient_frame_encode(int opcode, int fin, const void *payload,
			       size_t len, const uint8_t *mask,
			       size_t *outlen)
{
	uint8_t *b = xmalloc(len + 14);
	size_t h = 0;
	int i;

	b[h++] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
	if (len < 126) {
		b[h++] = (uint8_t)((mask ? 0x80 : 0) | len);
	} else if (len <= 0xffff) {
		b[h++] = (uint8_t)((mask ? 0x80 : 0) | 126);
		b[h++] = (uint8_t)(len >> 8);
		b[h++] = (uint8_t)len;
	} else {
		b[h++] = (uint8_t)((mask ? 0x80 : 0) | 127);
		for (i = 7; i >= 0; i--)
			b[h++] = (uint8_t)((uint64_t)len >> (8 * i));
	}
	if (mask) {
		memcpy(b + h, mask, 4);
		h += 4;
	}
	if (len)
		memcpy(b + h, payload, len);
	if (mask)
		wsclient_mask(b + h, len, mask, 0);
	*outlen = h + len;
	return b;
}

int wsclient_frame_parse(const uint8_t *buf, size_t n,
			 struct wsclient_frame *f)
{
	size_t h = 2;
	uint64_t len;
	int i;

	if (n < 2)
		return 0;
	memset(f, 0, sizeof(*f));
	if (buf[0] & 0x70)
		return -1;	/* RSV bits: no extension was negotiated */
	f->fin = !!(buf[0] & 0x80);
	f->opcode = buf[0] & 0x0f;
	f->masked = !!(buf[1] & 0x80);
	len = buf[1] & 0x7f;
	if (len == 126) {
		if (n < 4)
			return 0;
		len = ((uint64_t)buf[2] << 8) | buf[3];
		h = 4;
	} else if (len == 127) {
		if (n < 10)
			return 0;
		len = 0;
		for (i = 0; i < 8; i++)
			len = (len << 8) | buf[2 + i];
		if (len >> 63)
			return -1;
		h = 10;
	}
	if (f->masked) {
		if (n < h + 4)
			return 0;
		memcpy(f->mask, buf + h, 4);
		h += 4;
	}
	if (f->opcode >= 0x8 && (!f->fin || len > 125))
		return -1;	/* control frames: short, unfragmented */
	f->len = len;
	f->hdr_len = h;
	return 1;
}

void wsclient_reader_init(struct wsclient_reader *r, size_t max)
{
	memset(r, 0, sizeof(*r));
	r->max = max;
	r->mop = -1;
}

void wsclient_reader_reset(struct wsclient_reader *r)
{
	free(r->msg);
	wsclient_reader_init(r, r->max);
}

/* Bytes the frame header at buf needs, when frame_parse wants more. */
static size_t wsclient_header_need(const uint8_t *buf, size_t n)
{
	size_t h = 2;

	if (n < 2)
		return 2;
	if ((buf[1] & 0x7f) == 126)
		h += 2;
	else if ((buf[1] & 0x7f) == 127)
		h += 8;
	return (buf[1] & 0x80) ? h + 4 : h;
}

static enum wsclient_ev wsclient_reader_fail(struct wsclient_reader *r,
					     struct wsclient_event *ev,
					     int error, const char *what)
{
	wsclient_reader_reset(r);
	ev->used = 0;
	ev->error = error;
	ev->what = what;
	return ev->kind = WSCLIENT_EV_ERROR;
}

enum wsclient_ev wsclient_reader_step(struct wsclient_reader *r,
				      const uint8_t *buf, size_t n,
				      struct wsclient_event *ev)
{
	struct wsclient_frame f;
	const uint8_t *p;
	int data, parsed;

	memset(ev, 0, sizeof(*ev));
	parsed = wsclient_frame_parse(buf, n, &f);
	if (parsed == 0) {
		ev->need = wsclient_header_need(buf, n);
		return ev->kind = WSCLIENT_EV_NEED;
	}
	if (parsed < 0 || f.masked)
		return wsclient_reader_fail(r, ev, GW_EINVAL,
					    "invalid frame from server");
	ev->opcode = f.opcode;
	data = f.opcode == WS_OP_TEXT || f.opcode == WS_OP_BINARY ||
	       f.opcode == WS_OP_CONT;
	if (!data && f.opcode != WS_OP_CLOSE && f.opcode != WS_OP_PING &&
	    f.opcode != WS_OP_PONG)
		return wsclient_reader_fail(r, ev, GW_EINVAL,
					    "unknown opcode");
	if (data && (f.opcode == WS_OP_CONT) != (r->mop >= 0))
		return wsclient_reader_fail(r, ev, GW_EINVAL,
					    "bad fragmentation");
	/* before waiting for the payload: a huge length is refused at once */
	if (f.len > r->max || (data && f.len > r->max - r->mlen))
		return wsclient_reader_fail(r, ev, GW_ETOOBIG,
					    "message too large");
	if (n - f.hdr_len < f.len) {
		ev->need = f.hdr_len + (size_t)f.len;
		return ev->kind = WSCLIENT_EV_NEED;
	}
	p = buf + f.hdr_len;
	ev->used = f.hdr_len + (size_t)f.len;
	if (!data) {
		ev->payload = p;
		ev->len = (size_t)f.len;
		if (f.opcode == WS_OP_PING)
			return ev->kind = WSCLIENT_EV_PING;
		if (f.opcode == WS_OP_PONG)
			return ev->kind = WSCLIENT_EV_PONG;
		ev->close_code = f.len >= 2 ? (p[0] << 8) | p[1] : 1005;
		return ev->kind = WSCLIENT_EV_CLOSE;
	}
	if (r->mop < 0)
		r->mop = f.opcode;
	if (r->mlen + (size_t)f.len + 1 > r->mcap) {
		/* doubling: a message of many small fragments was a realloc
		 * (a copy) per fragment; never more than max + 1 */
		size_t need = r->mlen + (size_t)f.len + 1;
		size_t cap = r->mcap ? r->mcap : 256;

		while (cap < need)
			cap = cap > SIZE_MAX / 2 ? need : cap * 2;
		if (cap > r->max + 1)
			cap = r->max + 1 > need ? r->max + 1 : need;
		r->msg = xrealloc(r->msg, cap);
		r->mcap = cap;
	}
	if (f.len)
		memcpy(r->msg + r->mlen, p, (size_t)f.len);
	r->mlen += (size_t)f.len;
	if (!f.fin)
		return ev->kind = WSCLIENT_EV_FRAGMENT;
	r->msg[r->mlen] = '\0';
	ev->msg = (char *)r->msg;
	ev->mlen = r->mlen;
	ev->opcode = r->mop;
	r->msg = NULL;
	wsclient_reader_reset(r);
	return ev->kind = WSCLIENT_EV_MESSAGE;
}

static void wsclient_set_err(struct wsclient *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void wsclient_set_err(struct wsclient *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

static int wsclient_remaining(int64_t deadline)
{
	int64_t left = deadline - util_mono_ms();

	if (left <= 0)
		return 0;
	return left > 60 * 60 * 1000 ? 60 * 60 * 1000 : (int)left;
}

/* Wait for events on fd until deadline: 1 ready, 0 timeout, -1 error. */
static int wsclient_wait(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int r;

	for (;;) {
		r = poll(&pfd, 1, wsclient_remaining(deadline));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		return r > 0 ? 1 : 0;
	}
}

static int wsclient_write_all(struct wsclient *c, const uint8_t *b,
			      size_t n, int64_t deadline)
{
	ssize_t w;
	int r;

	while (n > 0) {
		w = send(c->fd, b, n, MSG_NOSIGNAL);
		if (w > 0) {
			b += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			r = wsclient_wait(c->fd, POLLOUT, deadline);
			if (r == 0) {
				wsclient_set_err(c, "send timed out");
				return GW_ETIMEOUT;
			}
			if (r > 0)
				continue;
		}
		wsclient_set_err(c, "send failed: %s", strerror(errno));
		c->closed = 1;
		return GW_EIO;
	}
	return 0;
}

/* Make sure rbuf holds at least need bytes. */
static int wsclient_fill(struct wsclient *c, size_t need, int64_t deadline)
{
	ssize_t n;
	int r;

	if (need > c->rcap) {
		size_t cap = c->rcap ? c->rcap : 4096;

		while (cap < need)
			cap *= 2;
		c->rbuf = xrealloc(c->rbuf, cap);
		c->rcap = cap;
	}
	while (c->rlen < need) {
		if (c->closed) {
			wsclient_set_err(c, "connection closed");
			return GW_EIO;
		}
		n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
		if (n > 0) {
			c->rlen += (size_t)n;
			continue;
		}
		if (n == 0) {
			c->closed = 1;
			wsclient_set_err(c, "connection closed");
			return GW_EIO;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			r = wsclient_wait(c->fd, POLLIN, deadline);
			if (r == 0) {
				wsclient_set_err(c, "receive timed out");
				return GW_ETIMEOUT;
			}
			if (r > 0)
				continue;
		}
		c->closed = 1;
		wsclient_set_err(c, "receive failed: %s", strerror(errno));
		return GW_EIO;
	}
	return 0;
}

static void wsclient_consume(struct wsclient *c, size_t n)
{
	memmove(c->rbuf, c->rbuf + n, c->rlen - n);
	c->rlen -= n;
}

static int wsclient_send_frame(struct wsclient *c, int opcode,
			       const void *p, size_t len, int64_t deadline)
{
	uint8_t mask[4];
	uint8_t *f;
	size_t flen;
	int r;

	util_random(mask, sizeof(mask));
	f = wsclient_frame_encode(opcode, 1, p, len, mask, &flen);
	r = wsclient_write_all(c, f, flen, deadline);
	free(f);
	return r;
}

struct wsclient *wsclient_new_fd(int fd)
{
	struct wsclient *c = xcalloc(1, sizeof(*c));
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	c->fd = fd;
	wsclient_reader_init(&c->rd, WSCLIENT_MAX_MESSAGE);
	return c;
}

int wsclient_send_text(struct wsclient *c, const char *s, size_t len)
{
	if (c->closed) {
		wsclient_set_err(c, "connection closed");
		return GW_EIO;
	}
	return wsclient_send_frame(c, WS_OP_TEXT, s, len,
				   util_mono_ms() + 30000);
}

static void wsclient_on_close(struct wsclient *c, int code,
			      const uint8_t *p, size_t len)
{
	c->close_code = code;
	free(c->close_reason);
	c->close_reason = len > 2 ? xstrndup((const char *)p + 2, len - 2)
				  : xstrdup("");
	if (!c->close_sent) {
		/* Echo the code, as RFC 6455 5.5.1 asks. */
		wsclient_send_frame(c, WS_OP_CLOSE, p, len >= 2 ? 2 : 0,
				    util_mono_ms() + 1000);
		c->close_sent = 1;
	}
	c->closed = 1;
	wsclient_set_err(c, "gateway closed (%d): %s", c->close_code,
			 c->close_reason);
}

int wsclient_recv(struct wsclient *c, int64_t deadline, char **out,
		  size_t *len, int *opcode)
{
	struct wsclient_event ev;
	int r;

	*out = NULL;
	for (;;) {
		switch (wsclient_reader_step(&c->rd, c->rbuf, c->rlen, &ev)) {
		case WSCLIENT_EV_NEED:
			/* a partial message stays in c->rd for the next call */
			r = wsclient_fill(c, ev.need, deadline);
			if (r)
				return r;
			continue;
		case WSCLIENT_EV_ERROR:
			if (ev.error == GW_ETOOBIG)
				wsclient_set_err(c, "%s (limit %zu)", ev.what,
						 c->rd.max);
			else if (strcmp(ev.what, "unknown opcode") == 0)
				wsclient_set_err(c, "%s %d", ev.what,
						 ev.opcode);
			else
				wsclient_set_err(c, "%s", ev.what);
			return ev.error;
		case WSCLIENT_EV_PING:
			r = wsclient_send_frame(c, WS_OP_PONG, ev.payload,
						ev.len, deadline);
			if (r)
				return r;
			break;
		case WSCLIENT_EV_CLOSE:
			wsclient_on_close(c, ev.close_code, ev.payload,
					  ev.len);
			wsclient_consume(c, ev.used);
			return GW_EIO;
		case WSCLIENT_EV_MESSAGE:
			wsclient_consume(c, ev.used);
			*out = ev.msg;
			if (len)
				*len = ev.mlen;
			if (opcode)
				*opcode = ev.opcode;
			return 0;
		case WSCLIENT_EV_PONG:
		case WSCLIENT_EV_FRAGMENT:
			break;
		}
		wsclient_consume(c, ev.used);
	}
}

int wsclient_close_code(const struct wsclient *c)
{
	return c->close_code;
}

const char *wsclient_close_reason(const struct wsclient *c)
{
	return c->close_reason;
}

const char *wsclient_error(const struct wsclient *c)
{
	return c->err;
}

void wsclient_close(struct wsclient *c, int code)
{
	uint8_t p[2];
	int64_t deadline;
	char *m = NULL;

	if (!c)
		return;
	if (c->fd >= 0 && !c->closed && !c->close_sent) {
		deadline = util_mono_ms() + WSCLIENT_CLOSE_DRAIN_MS;
		p[0] = (uint8_t)(code >> 8);
		p[1] = (uint8_t)code;
		if (wsclient_send_frame(c, WS_OP_CLOSE, p, code ? 2 : 0,
					deadline) == 0) {
			c->close_sent = 1;
			/* Let the server answer its close: no RST. */
			while (wsclient_recv(c, deadline, &m, NULL, NULL) == 0)
				free(m);
		}
	}
	if (c->fd >= 0)
		close(c->fd);
	wsclient_reader_reset(&c->rd);
	free(c->rbuf);
	free(c->close_reason);
	free(c);
}

/* Connect a non-blocking TCP socket to one address within the deadline. */
static int wsclient_tcp(const struct addrinfo *ai, int64_t deadline,
			int *err)
{
	socklen_t sl = sizeof(*err);
	int fd, one = 1, r;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0) {
		*err = errno;
		return -1;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS) {
			*err = errno;
			goto bad;
		}
		r = wsclient_wait(fd, POLLOUT, deadline);
		if (r <= 0) {
			*err = r == 0 ? ETIMEDOUT : errno;
			goto bad;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, err, &sl) < 0)
			*err = errno;
		if (*err)
			goto bad;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
bad:
	close(fd);
	return -1;
}

static const char *wsclient_header_find(const char *head, const char *name)
{
	size_t n = strlen(name);
	const char *p = strstr(head, "\r\n");

	while (p && p[2] != '\r' && p[2] != '\0') {
		p += 2;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			p += n + 1;
			while (*p == ' ' || *p == '\t')
				p++;
			return p;
		}
		p = strstr(p, "\r\n");
	}
	return NULL;
}

/* Does the header value (up to CRLF) contain token, case-insensitively? */
static int wsclient_header_has(const char *v, const char *token)
{
	size_t n = strlen(token);
	const char *end;

	if (!v)
		return 0;
	end = strstr(v, "\r\n");
	for (; v && v + n <= end; v++)
		if (strncasecmp(v, token, n) == 0)
			return 1;
	return 0;
}

static int wsclient_upgrade(struct wsclient *c, const struct wsclient_url *u,
			    int64_t deadline)
{
	uint8_t raw[16];
	char key[32], want[29];
	char *req = NULL, *end, *head = NULL;
	const char *v;
	size_t hlen;
	int r, status;

	util_random(raw, sizeof(raw));
	EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw));
	wsclient_accept_key(key, want);
	req = xasprintf("GET %s HTTP/1.1\r\n"
			"Host: %s%s%s:%d\r\n"
			"Upgrade: websocket\r\n"
			"Connection: Upgrade\r\n"
			"Sec-WebSocket-Key: %s\r\n"
			"Sec-WebSocket-Version: 13\r\n"
			"User-Agent: clawgate-cli\r\n\r\n",
			u->path, u->ipv6 ? "[" : "", u->host,
			u->ipv6 ? "]" : "", u->port, key);
	r = wsclient_write_all(c, (const uint8_t *)req, strlen(req),
			       deadline);
	if (r)
		goto out;
	for (;;) {
		end = c->rlen ? memmem(c->rbuf, c->rlen, "\r\n\r\n", 4) : NULL;
		if (end)
			break;
		if (c->rlen >= WSCLIENT_MAX_HTTP_HEAD) {
			wsclient_set_err(c, "upgrade response too large");
			r = GW_ETOOBIG;
			goto out;
		}
		r = wsclient_fill(c, c->rlen + 1, deadline);
		if (r == GW_ETIMEOUT)
			wsclient_set_err(c, "timeout waiting for the "
					 "WebSocket upgrade response");
		if (r)
			goto out;
	}
	hlen = (size_t)(end - (char *)c->rbuf) + 4;
	head = xstrndup((const char *)c->rbuf, hlen);
	wsclient_consume(c, hlen);
	if (sscanf(head, "HTTP/1.%*d %d", &status) != 1) {
		wsclient_set_err(c, "invalid upgrade response");
		r = GW_EINVAL;
		goto out;
	}
	if (status != 101) {
		wsclient_set_err(c, "unexpected server response: %d", status);
		r = GW_EINVAL;
		goto out;
	}
	v = wsclient_header_find(head, "Sec-WebSocket-Accept");
	if (!v || strncmp(v, want, 28) != 0 ||
	    !wsclient_header_has(wsclient_header_find(head, "Upgrade"),
				 "websocket") ||
	    !wsclient_header_has(wsclient_header_find(head, "Connection"),
				 "upgrade")) {
		wsclient_set_err(c, "invalid upgrade response headers");
		r = GW_EINVAL;
		goto out;
	}
	r = 0;
out:
	free(req);
	free(head);
	return r;
}

int wsclient_connect(const struct wsclient_url *u, int timeout_ms,
		     struct wsclient **out, char *err, size_t errlen,
		     char *sys)
{
	struct addrinfo hints = {0}, *res = NULL, *ai;
	struct wsclient *c = NULL;
	int64_t deadline = util_mono_ms() + timeout_ms;
	char port[8];
	const char *ename;
	int fd = -1, e = 0, r;

	if (sys)
		sys[0] = '\0';
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", u->port);
	r = getaddrinfo(u->host, port, &hints, &res);
	if (r) {
		snprintf(err, errlen, "getaddrinfo %s: %s", u->host,
			 gai_strerror(r));
		if (sys)
			snprintf(sys, 32, "ENOTFOUND");
		return GW_EIO;
	}
	for (ai = res; ai && fd < 0; ai = ai->ai_next)
		fd = wsclient_tcp(ai, deadline, &e);
	freeaddrinfo(res);
	if (fd < 0) {
		ename = strerrorname_np(e);
		snprintf(err, errlen, "connect %s %s%s%s:%d",
			 ename ? ename : strerror(e), u->ipv6 ? "[" : "",
			 u->host, u->ipv6 ? "]" : "", u->port);
		if (sys)
			snprintf(sys, 32, "%s", ename ? ename : "EIO");
		return e == ETIMEDOUT ? GW_ETIMEOUT : GW_EIO;
	}
	c = wsclient_new_fd(fd);
	r = wsclient_upgrade(c, u, deadline);
	if (r) {
		snprintf(err, errlen, "%s", c->err);
		c->closed = 1;
		wsclient_close(c, 0);
		return r;
	}
	*out = c;
	return 0;
}
