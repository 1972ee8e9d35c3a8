/* The agent thread: every upstream request, either on h1 (h1.h: plain
 * http to an IP literal, its sockets polled here) or on one libcurl multi
 * handle (loaded by the first request that needs it; then h1's sockets
 * are polled by curl_multi_poll), a posted-job queue (woken with an
 * eventfd or curl_multi_wakeup, whichever the thread waits on), timers,
 * and the incremental SSE parser the streams go through. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/agent-int.h"
#include "agent/curl-dl.h"
#include "agent/h1.h"
#include "agent/h2.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "core/wake.h"

#define PROVIDER_BODY_MAX (4u * 1024 * 1024)	/* non-SSE bodies */
#define PROVIDER_POLL_MS 1000
/* Upstream connection pool defaults (models.connectionPool.*): idle
 * connections kept by the multi handle's cache, connections per host
 * (0 = no limit) and how long an idle one may be reused. */
#define PROVIDER_POOL_MAX_IDLE 64
#define PROVIDER_POOL_MAX_HOST 0
#define PROVIDER_POOL_IDLE_S 60
#define PROVIDER_EASY_SPARE 16	/* easy handles kept for reuse */
/* Streams libcurl may open on one HTTP/2 upstream connection (its default
 * is 100); the server's SETTINGS_MAX_CONCURRENT_STREAMS caps it too
 * (nginx: 128, http2_max_concurrent_streams), then a new connection
 * opens (up to models.connectionPool.maxPerHost). */
#define PROVIDER_H2_STREAMS 1000L
#define PROVIDER_UPLOAD_BUF 16384L	/* libcurl's minimum */

/* ---- SSE ------------------------------------------------------------------ */

void provider_sse_init(struct provider_sse *s, size_t max_event)
{
	memset(s, 0, sizeof(*s));
	s->max = max_event;
}

void provider_sse_free(struct provider_sse *s)
{
	free(s->buf);
	memset(s, 0, sizeof(*s));
}

/* Dispatch one complete event block (lines without the blank line). */
static void provider_sse_block(const char *p, size_t n, provider_sse_fn fn,
			       void *arg)
{
	char *data = NULL;
	size_t dlen = 0, ll;
	const char *end = p + n, *nl, *v;
	int have = 0;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (ll && p[ll - 1] == '\r')
			ll--;
		if (ll >= 5 && memcmp(p, "data", 4) == 0 &&
		    (p[4] == ':')) {
			v = p + 5;
			if (v < p + ll && *v == ' ')
				v++;
			data = xrealloc(data, dlen + (size_t)(p + ll - v) + 2);
			if (have)
				data[dlen++] = '\n';
			memcpy(data + dlen, v, (size_t)(p + ll - v));
			dlen += (size_t)(p + ll - v);
			have = 1;
		} else if (ll == 4 && memcmp(p, "data", 4) == 0) {
			data = xrealloc(data, dlen + 2);
			if (have)
				data[dlen++] = '\n';
			have = 1;
		}
		p = nl ? nl + 1 : end;
	}
	if (have) {
		data[dlen] = 0;
		fn(arg, data, dlen);
	}
	free(data);
}

/* Length of the event terminator at buf[i] ("\n\n", "\r\n\r\n", "\r\r"),
 * or 0. */
static size_t provider_sse_term(const char *b, size_t i, size_t n)
{
	if (b[i] == '\n' && i + 1 < n && b[i + 1] == '\n')
		return 2;
	if (b[i] == '\n' && i + 2 < n && b[i + 1] == '\r' && b[i + 2] == '\n')
		return 3;
	if (b[i] == '\r' && i + 1 < n && b[i + 1] == '\r')
		return 2;
	return 0;
}

/* Dispatch the complete events of b[0..n) scanning from scan_from;
 * returns the offset of the first byte after the last event. */
static size_t provider_sse_events(const char *b, size_t n, size_t scan_from,
				  provider_sse_fn fn, void *arg)
{
	size_t i, start = 0, t;

	for (i = scan_from; i < n; i++) {
		t = provider_sse_term(b, i, n);
		if (!t)
			continue;
		/* A "\r\n" pair splits across the check above: handle it. */
		provider_sse_block(b + start, i - start, fn, arg);
		i += t - 1;
		start = i + 1;
	}
	return start;
}

int provider_sse_feed(struct provider_sse *s, const char *p, size_t n,
		      provider_sse_fn fn, void *arg)
{
	size_t start, scan_from;

	if (s->overflow)
		return -1;
	if (!s->len) {
		/* Nothing pending: events straight from p, only an
		 * unfinished tail is kept (no copy of whole events). */
		start = provider_sse_events(p, n, 0, fn, arg);
		p += start;
		n -= start;
		scan_from = 0;
	} else {
		scan_from = s->len - (s->len > 2 ? 2 : s->len);
	}
	if (n) {
		if (s->len + n + 1 > s->cap) {
			s->cap = (s->len + n + 1) * 2;
			s->buf = xrealloc(s->buf, s->cap);
		}
		memcpy(s->buf + s->len, p, n);
		s->len += n;
		if (scan_from || s->len > n) {
			start = provider_sse_events(s->buf, s->len, scan_from,
						    fn, arg);
			if (start) {
				memmove(s->buf, s->buf + start,
					s->len - start);
				s->len -= start;
			}
		}
	}
	if (!s->len && s->buf) {
		/* Nothing pending: a held stream keeps no buffer. */
		free(s->buf);
		s->buf = NULL;
		s->cap = 0;
	}
	if (s->max && s->len > s->max) {
		s->overflow = 1;
		return -1;
	}
	return 0;
}

/* ---- the engine ----------------------------------------------------------- */

struct provider_job {
	void (*fn)(void *arg);
	void *arg;
	struct provider_job *next;
};

struct provider_timer {
	int64_t due;		/* monotonic ms */
	void (*fn)(void *arg);
	void *arg;
	struct provider_timer *next;
};

struct provider {
	int wake_reg;			/* wake_target_add took it */
	/* libcurl is loaded by the first request that needs it
	 * (curl-dl.h): until then the thread sleeps in poll() on its own
	 * sockets and the wake eventfd; multi and cu are set once, under
	 * mu. */
	CURLM *multi;
	const struct curl_dl *cu;
	struct provider_timer *timers;	/* agent thread, sorted by due */
	pthread_t thread;
	pthread_mutex_t mu;
	struct provider_job *head, *tail;
	int stopping;
	/* The agent thread is (about to be) blocked in multi_poll or poll
	 * with an empty queue: only then does a post need a wake-up
	 * (curl_multi_wakeup or the eventfd), not while it is busy. */
	int sleeping;
	atomic_uint wakeups;		/* posts that woke it (tests) */
	struct provider_http *live;	/* agent thread only */
	/* Agent thread only: the pool limits applied to multi, and easy
	 * handles kept for reuse (curl_easy_reset keeps nothing of the last
	 * request but its caches). */
	long max_idle, max_host;
	CURL *spare[PROVIDER_EASY_SPARE];
	int nspare;
	/* Agent thread only: plain-http transfers (h1.h) instead of libcurl
	 * (off with CLAWGATE_UPSTREAM_CURL=1 or a proxy in the
	 * environment), their idle keep-alive connections (newest first)
	 * and the poll set handed to curl_multi_poll. */
	int h1_off;
	/* Wakes the agent thread out of poll() (libcurl not loaded), with
	 * or without h1 sockets to wait on. */
	int wakefd;
	struct pollfd *pfds;
	size_t pcap;
	struct provider_idle *idle;
	int nidle;
	struct curl_waitfd *wfds;
	size_t wcap, nw;
	/* Agent thread only: the HTTP/2 client of https upstreams (h2.h),
	 * created by its first request; off like h1 (and with an https
	 * proxy in the environment). */
	struct h2 *h2;
	int h2_off;
};

/* An idle keep-alive upstream connection of the plain-http client. */
struct provider_idle {
	int fd;
	struct sockaddr_storage sa;
	socklen_t salen;
	int64_t since;			/* mono ms */
	struct provider_idle *next;
};

enum { H1_CONNECTING = 1, H1_SENDING, H1_READING };

struct provider_http {
	struct provider *p;
	CURL *easy;
	struct curl_slist *hdrs;
	char *body;
	struct provider_http_cbs cbs;
	struct provider_sse sse;
	int mode;		/* 0 unknown, 1 SSE, 2 buffered body */
	char *rbuf;
	size_t rlen;
	int truncated;
	char errbuf[CURL_ERROR_SIZE];	/* libcurl's message, or h1's */
	int64_t idle_ms, last_ms;	/* read timeout; last byte (mono) */
	struct provider_http *next, *prev;
	size_t body_len;
	int sending;			/* libcurl: the request may not be
					 * all sent (provider_sent) */
	int h1;				/* a plain-http transfer (easy NULL) */
	struct h2_stream *h2s;		/* an https one on h2 (easy NULL) */
	/* A plain-http transfer's own state, from fd to the end: a libcurl
	 * transfer is allocated without it (PROVIDER_HTTP_CURL_SIZE, -0.5 KB
	 * per held stream); nothing outside the h1 code may touch it. */
	int fd;				/* -1 when none */
	int st;				/* H1_CONNECTING... */
	int reused, retried;		/* a pooled connection; resent once */
	struct sockaddr_storage sa;
	socklen_t salen;
	char hostport[64];
	char *head;			/* request head (holds the key) */
	size_t head_len, sent;
	struct h1_resp resp;
	short events, revents;
	int ready;			/* step it without waiting */
	int widx;			/* its slot in p->wfds, or -1 */
	int64_t t0, connect_at, deadline;	/* mono ms (0: none) */
	long pool_max_idle, pool_idle_s;
	int cerr;			/* CURLE_* of a failure (message in
					 * errbuf) */
};

#define PROVIDER_HTTP_CURL_SIZE offsetof(struct provider_http, fd)

static __thread struct provider *provider_self;

int provider_on_thread(struct provider *p)
{
	return provider_self == p;
}

static void provider_wake_fd(struct provider *p)
{
	uint64_t one = 1;

	if (p->wakefd >= 0 && write(p->wakefd, &one, sizeof(one)) < 0) {
		/* EAGAIN: already signalled. */
	}
}

/* Wake the sleeping thread: it polls libcurl's sockets once libcurl is
 * loaded (multi, read under mu; only this thread sets it), else its own
 * with the eventfd. */
static void provider_wake_now(struct provider *p, CURLM *multi)
{
	atomic_fetch_add(&p->wakeups, 1);
	if (multi)
		p->cu->multi_wakeup(multi);
	else
		provider_wake_fd(p);
}

/* A held wake-up (wake.h): multi as it is when it runs. */
static void provider_wake_held(void *arg)
{
	struct provider *p = arg;
	CURLM *multi;

	pthread_mutex_lock(&p->mu);
	multi = p->multi;
	pthread_mutex_unlock(&p->mu);
	provider_wake_now(p, multi);
}

int provider_asleep(struct provider *p, unsigned int *wakeups)
{
	int asleep;

	pthread_mutex_lock(&p->mu);
	asleep = p->sleeping;
	pthread_mutex_unlock(&p->mu);
	*wakeups = atomic_load(&p->wakeups);
	return asleep;
}

int provider_post(struct provider *p, void (*fn)(void *arg), void *arg)
{
	struct provider_job *j;
	CURLM *multi;
	int wake;

	pthread_mutex_lock(&p->mu);
	if (p->stopping) {
		pthread_mutex_unlock(&p->mu);
		return -1;
	}
	j = xcalloc(1, sizeof(*j));
	j->fn = fn;
	j->arg = arg;
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	multi = p->multi;
	wake = p->sleeping;
	p->sleeping = 0;
	pthread_mutex_unlock(&p->mu);
	/* Asleep (wake): in poll on the eventfd (multi NULL) or in
	 * libcurl's; woken when this thread's loop is done if it holds its
	 * wake-ups. Busy: it takes the queue before it sleeps again. */
	if (wake && !(p->wake_reg && wake_later(provider_wake_held, p)))
		provider_wake_now(p, multi);
	return 0;
}

static void provider_http_free(struct provider_http *h)
{
	struct provider *p = h->p;

	if (h->prev)
		h->prev->next = h->next;
	else if (p->live == h)
		p->live = h->next;
	if (h->next)
		h->next->prev = h->prev;
	if (h->h1) {
		if (h->fd >= 0)
			close(h->fd);
		xfree_secret(h->head);
		h1_resp_free(&h->resp);
	} else if (!h->easy) {
		h2_stream_free(h->h2s);
	} else if (p->cu->multi_remove_handle(p->multi, h->easy),
		   p->nspare < PROVIDER_EASY_SPARE) {
		/* Kept configured (provider_easy_new): no pointer into this
		 * request may outlive it; the next request sets every
		 * per-request option again (provider_easy_request). */
		p->cu->easy_setopt(h->easy, CURLOPT_ERRORBUFFER, NULL);
		p->cu->easy_setopt(h->easy, CURLOPT_HTTPHEADER, NULL);
		p->cu->easy_setopt(h->easy, CURLOPT_POSTFIELDS, NULL);
		p->cu->easy_setopt(h->easy, CURLOPT_WRITEDATA, NULL);
		p->cu->easy_setopt(h->easy, CURLOPT_PRIVATE, NULL);
		p->spare[p->nspare++] = h->easy;
	} else {
		p->cu->easy_cleanup(h->easy);
	}
	if (h->hdrs)
		p->cu->slist_free_all(h->hdrs);
	free(h->body);
	free(h->rbuf);
	provider_sse_free(&h->sse);
	free(h);
}

void provider_http_cancel(struct provider_http *h)
{
	if (h)
		provider_http_free(h);
}

static void provider_sse_cb(void *arg, const char *data, size_t len)
{
	struct provider_http *h = arg;

	h->cbs.on_event(h->cbs.arg, data, len);
}

/* Response body bytes of either client: SSE events of a 2xx
 * event-stream, else the buffered body. 0 stops the transfer. */
static int provider_body(struct provider_http *h, long status,
			 const char *ct, const char *ptr, size_t n)
{
	if (!h->mode)
		h->mode = (status >= 200 && status < 300 && ct &&
			   strstr(ct, "text/event-stream")) ? 1 : 2;
	if (h->mode == 1) {
		/* An overflow stops the transfer; on_done reports it. */
		return provider_sse_feed(&h->sse, ptr, n, provider_sse_cb,
					 h) == 0;
	}
	if (h->rlen + n > PROVIDER_BODY_MAX) {
		h->truncated = 1;
		return 0;
	}
	h->rbuf = xrealloc(h->rbuf, h->rlen + n + 1);
	memcpy(h->rbuf + h->rlen, ptr, n);
	h->rlen += n;
	h->rbuf[h->rlen] = 0;
	return 1;
}

/* Answer bytes came in: once the whole request is sent, drop what only
 * sending it needed, which a held stream would otherwise keep for its
 * whole life (issue 11, tests/bench/streams.sh STREAMS_TLS=1):
 * - libcurl's upload buffer (CURLOPT_UPLOAD_BUFFERSIZE, 16 KiB at least,
 *   all of it written: an HTTP/2 request body goes through it), kept
 *   until the handle is cleaned up; setting the option again frees it
 *   (libcurl setopt.c: "force a realloc next opportunity"; allocated
 *   again only if more were to be sent);
 * - the request body and header list (the key's line among them).
 * libcurl counts bytes as uploaded once they left its buffer (HTTP/2:
 * once nghttp2 copied them), and retries a request on a fresh
 * connection only before any answer byte, so nothing refers to them. */
static void provider_sent(struct provider_http *h)
{
	const struct curl_dl *cu = h->p->cu;
	curl_off_t up = 0;

	if (cu->easy_getinfo(h->easy, CURLINFO_SIZE_UPLOAD_T, &up) !=
	    CURLE_OK || up < (curl_off_t)h->body_len)
		return;
	cu->easy_setopt(h->easy, CURLOPT_UPLOAD_BUFFERSIZE,
			PROVIDER_UPLOAD_BUF);
	cu->easy_setopt(h->easy, CURLOPT_HTTPHEADER, NULL);
	cu->easy_setopt(h->easy, CURLOPT_POSTFIELDS, NULL);
	cu->slist_free_all(h->hdrs);
	h->hdrs = NULL;
	free(h->body);
	h->body = NULL;
	h->sending = 0;
}

static size_t provider_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct provider_http *h = ud;
	size_t n = size * nmemb;
	long status = 0;
	char *ct = NULL;

	h->last_ms = util_mono_ms();
	if (h->sending)
		provider_sent(h);
	if (!h->mode) {
		h->p->cu->easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE,
				       &status);
		h->p->cu->easy_getinfo(h->easy, CURLINFO_CONTENT_TYPE, &ct);
	}
	return provider_body(h, status, ct, ptr, n) ? n : 0;
}

/* Agent thread: load libcurl and create the multi handle on first use. */
static int provider_multi(struct provider *p, char **err)
{
	const struct curl_dl *cu;
	const char *why = "";
	CURLM *m;

	if (p->multi)
		return 0;
	cu = curl_dl_get(&why);
	if (!cu) {
		*err = xasprintf("HTTP client unavailable (%s)", why);
		return -1;
	}
	m = cu->multi_init();
	if (!m) {
		*err = xstrdup("cannot create the HTTP client");
		return -1;
	}
	/* https upstreams multiplexed over HTTP/2 (libcurl's defaults since
	 * 7.62, set anyway): many streams share a connection, so held
	 * streams cost the daemon one socket each instead of two. */
	cu->multi_setopt(m, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	cu->multi_setopt(m, CURLMOPT_MAX_CONCURRENT_STREAMS,
			 PROVIDER_H2_STREAMS);
	pthread_mutex_lock(&p->mu);
	p->cu = cu;
	p->multi = m;
	pthread_mutex_unlock(&p->mu);
	/* Jobs posted before multi was visible only signalled wake. */
	cu->multi_wakeup(m);
	return 0;
}

/* Agent thread: the connection cache limits of rq, when they changed. */
static void provider_pool_apply(struct provider *p,
				const struct provider_http_req *rq)
{
	long idle = rq->pool_max_idle > 0 ? rq->pool_max_idle
					  : PROVIDER_POOL_MAX_IDLE;
	long host = rq->pool_max_host > 0 ? rq->pool_max_host
					  : PROVIDER_POOL_MAX_HOST;

	if (idle != p->max_idle) {
		p->cu->multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, idle);
		p->max_idle = idle;
	}
	if (host != p->max_host) {
		p->cu->multi_setopt(p->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
				    host);
		p->max_host = host;
	}
}

/* A new easy handle with the options every request shares, set once:
 * a handle goes back to the spare list configured (no curl_easy_reset)
 * and provider_easy_request sets everything that differs per request. */
static CURL *provider_easy_new(const struct curl_dl *cu)
{
	CURL *e = cu->easy_init();

	if (!e)
		return NULL;
	cu->easy_setopt(e, CURLOPT_POST, 1L);
	cu->easy_setopt(e, CURLOPT_WRITEFUNCTION, provider_write);
	cu->easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	cu->easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	cu->easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	cu->easy_setopt(e, CURLOPT_USERAGENT, "clawgate");
	cu->easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	cu->easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	/* A 1 KiB receive buffer (default 16 KiB): an SSE event is smaller,
	 * and below a page the buffer shares its page with other small
	 * allocations; -3 KB resident per held stream (issue 11,
	 * tests/bench/streams.sh). */
	cu->easy_setopt(e, CURLOPT_BUFFERSIZE, 1024L);
	/* The smallest upload buffer (default 64 KiB): it holds at most a
	 * part of the request body being sent, and is freed once the body
	 * is sent (provider_sent). */
	cu->easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, PROVIDER_UPLOAD_BUF);
	/* https: HTTP/2 when ALPN agrees, else HTTP/1.1; http: HTTP/1.1
	 * (no h2c). */
	cu->easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	/* The system roots + NODE_EXTRA_CA_CERTS's, like OpenClaw. */
	curl_dl_ca_apply(cu, e);
	return e;
}

/* Every option that may differ between two requests, each set on every
 * request (a value a request leaves out is set to its default, so
 * nothing of the handle's previous request carries over). */
static void provider_easy_request(const struct curl_dl *cu,
				  struct provider_http *h,
				  const struct provider_http_req *rq)
{
	cu->easy_setopt(h->easy, CURLOPT_URL, rq->url);
	/* https: a request that finds no connection yet waits for the one
	 * being set up to say (ALPN) whether it multiplexes instead of
	 * opening its own, so a burst of streams shares one connection.
	 * Not for http://: libcurl would learn it is HTTP/1.1 only from the
	 * first answer's head, and a burst would wait for it. */
	cu->easy_setopt(h->easy, CURLOPT_PIPEWAIT,
			strncasecmp(rq->url, "https://", 8) ? 0L : 1L);
	cu->easy_setopt(h->easy, CURLOPT_POSTFIELDS, h->body);
	cu->easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE, (long)h->body_len);
	cu->easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->hdrs);
	cu->easy_setopt(h->easy, CURLOPT_WRITEDATA, h);
	cu->easy_setopt(h->easy, CURLOPT_PRIVATE, h);
	cu->easy_setopt(h->easy, CURLOPT_ERRORBUFFER, h->errbuf);
	cu->easy_setopt(h->easy, CURLOPT_MAXAGE_CONN, rq->pool_idle_s > 0
			? rq->pool_idle_s : (long)PROVIDER_POOL_IDLE_S);
	cu->easy_setopt(h->easy, CURLOPT_TIMEOUT_MS, rq->timeout_ms > 0
			? (long)rq->timeout_ms : 0L);
	cu->easy_setopt(h->easy, CURLOPT_CONNECTTIMEOUT_MS,
			rq->connect_timeout_ms > 0
			? (long)rq->connect_timeout_ms : 0L);
}

/* ---- the plain-http client (h1.h) ---------------------------------------- */

#define PROVIDER_H1_READS 8		/* recv calls per wake and transfer */

static void provider_idle_close(struct provider_idle *c)
{
	close(c->fd);
	free(c);
}

/* An idle connection to sa that is still usable (the peer neither
 * closed it nor sent anything), or -1. Stale or expired ones are closed
 * on the way. */
static int provider_idle_take(struct provider *p, const struct sockaddr *sa,
			      socklen_t salen, long idle_s)
{
	struct provider_idle **pp = &p->idle, *c;
	int64_t now = util_mono_ms(), max_ms = (idle_s > 0 ? idle_s
				: PROVIDER_POOL_IDLE_S) * 1000LL;
	char b;
	ssize_t n;
	int fd;

	while ((c = *pp)) {
		if (now - c->since > max_ms) {
			*pp = c->next;
			p->nidle--;
			provider_idle_close(c);
			continue;
		}
		if (c->salen != salen || memcmp(&c->sa, sa, salen) != 0) {
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		p->nidle--;
		n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			fd = c->fd;
			free(c);
			return fd;
		}
		provider_idle_close(c);
	}
	return -1;
}

/* Keep a connection whose response ended cleanly (the oldest goes when
 * the pool is full). */
static void provider_idle_put(struct provider *p, struct provider_http *h)
{
	struct provider_idle *c = xcalloc(1, sizeof(*c)), **pp;
	long max = h->pool_max_idle > 0 ? h->pool_max_idle
					: PROVIDER_POOL_MAX_IDLE;

	c->fd = h->fd;
	h->fd = -1;
	memcpy(&c->sa, &h->sa, h->salen);
	c->salen = h->salen;
	c->since = util_mono_ms();
	c->next = p->idle;
	p->idle = c;
	p->nidle++;
	while (p->nidle > max) {
		for (pp = &p->idle; (*pp)->next; pp = &(*pp)->next)
			;
		provider_idle_close(*pp);
		*pp = NULL;
		p->nidle--;
	}
}

/* The failure of h: a CURLE_* code and the message what + detail. */
static int provider_h1_fail(struct provider_http *h, int code,
			    const char *what, const char *detail)
{
	h->cerr = code;
	snprintf(h->errbuf, sizeof(h->errbuf), "%s%s", what,
		 detail ? detail : "");
	return -1;
}

/* Open (or reuse) the connection; the request goes out from the step. */
static int provider_h1_connect(struct provider *p, struct provider_http *h,
			       int pooled)
{
	int fd, one = 1;

	h->reused = 0;
	h->st = H1_SENDING;
	h->ready = 1;
	h->events = POLLOUT;
	h->sent = 0;
	h1_resp_free(&h->resp);
	h1_resp_init(&h->resp);
	if (pooled && (fd = provider_idle_take(p, (struct sockaddr *)&h->sa,
					       h->salen, h->pool_idle_s)) >= 0) {
		h->fd = fd;
		h->reused = 1;
		return 0;
	}
	fd = socket(h->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
	if (fd < 0)
		return provider_h1_fail(h, CURLE_COULDNT_CONNECT,
					"socket: ", strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	h->fd = fd;
	if (connect(fd, (struct sockaddr *)&h->sa, h->salen) == 0)
		return 0;
	if (errno != EINPROGRESS) {
		snprintf(h->errbuf, sizeof(h->errbuf), "Failed to connect to %s: "
			 "%s", h->hostport, strerror(errno));
		h->cerr = CURLE_COULDNT_CONNECT;
		return -1;
	}
	h->st = H1_CONNECTING;
	h->ready = 0;
	return 0;
}

/* A reused connection failed before any response byte: the server
 * closed it while it was idle; send once more on a new one. 1 when
 * retried. */
static int provider_h1_retry(struct provider *p, struct provider_http *h)
{
	if (!h->reused || h->retried || h1_resp_started(&h->resp))
		return 0;
	h->retried = 1;
	close(h->fd);
	h->fd = -1;
	return provider_h1_connect(p, h, 0) == 0 ? 1 : -1;
}

static int provider_h1_body(void *arg, const char *ptr, size_t n)
{
	struct provider_http *h = arg;

	return provider_body(h, h->resp.status, h->resp.ctype, ptr, n);
}

/* Drive one transfer: 0 to wait, 1 complete, -1 failed (cerr/errbuf). */
static int provider_h1_step(struct provider *p, struct provider_http *h)
{
	char buf[16384];
	struct iovec iov[2];
	struct msghdr mh;
	ssize_t n;
	size_t used, total = h->head_len + h->body_len;
	int err, rc, i, rt;
	socklen_t el = sizeof(err);
	short rev = h->revents;

	h->revents = 0;
	h->ready = 0;
	if (!h->st)		/* the connect failed at the start */
		return -1;
again:
	if (h->st == H1_CONNECTING) {
		if (!(rev & (POLLOUT | POLLERR | POLLHUP)))
			return 0;
		if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err) {
			snprintf(h->errbuf, sizeof(h->errbuf), "Failed to "
				 "connect to %s: %s", h->hostport,
				 strerror(err));
			h->cerr = CURLE_COULDNT_CONNECT;
			return -1;
		}
		h->st = H1_SENDING;
	}
	if (h->st == H1_SENDING) {
		while (h->sent < total) {
			memset(&mh, 0, sizeof(mh));
			i = 0;
			if (h->sent < h->head_len) {
				iov[i].iov_base = h->head + h->sent;
				iov[i++].iov_len = h->head_len - h->sent;
				iov[i].iov_base = h->body;
				iov[i++].iov_len = h->body_len;
			} else {
				iov[i].iov_base = h->body + (h->sent -
							     h->head_len);
				iov[i++].iov_len = total - h->sent;
			}
			mh.msg_iov = iov;
			mh.msg_iovlen = (size_t)i;
			n = sendmsg(h->fd, &mh, MSG_NOSIGNAL);
			if (n < 0 && (errno == EAGAIN ||
				      errno == EWOULDBLOCK)) {
				h->events = POLLOUT;
				return 0;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				err = errno;
				if ((rt = provider_h1_retry(p, h)) > 0) {
					rev = 0;
					goto again;
				}
				if (rt < 0)
					return -1;
				return provider_h1_fail(h, CURLE_SEND_ERROR,
					"Failed sending data to the peer: ",
					strerror(err));
			}
			h->sent += (size_t)n;
		}
		h->st = H1_READING;
		h->events = POLLIN;
	}
	for (i = 0; i < PROVIDER_H1_READS; i++) {
		n = recv(h->fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0) {
			err = n < 0 ? errno : 0;
			if ((rt = provider_h1_retry(p, h)) > 0) {
				rev = 0;
				goto again;
			}
			if (rt < 0)
				return -1;
			if (n < 0)
				return provider_h1_fail(h, CURLE_RECV_ERROR,
					"Failure when receiving data from "
					"the peer: ", strerror(err));
			if (h1_resp_eof(&h->resp) == 1)
				return 1;
			return provider_h1_fail(h, h1_resp_started(&h->resp)
				? CURLE_PARTIAL_FILE : CURLE_GOT_NOTHING,
				"", h->resp.err);
		}
		h->last_ms = util_mono_ms();
		if (h->head) {
			/* The answer started: no resend, so the request
			 * is not kept (a held stream keeps neither). */
			xfree_secret(h->head);
			h->head = NULL;
			free(h->body);
			h->body = NULL;
		}
		rc = h1_resp_feed(&h->resp, buf, (size_t)n, &used,
				  provider_h1_body, h);
		if (rc == 1) {
			if (used < (size_t)n)	/* more than one answer */
				h->resp.keepalive = 0;
			return 1;
		}
		if (rc == -2)
			return provider_h1_fail(h, CURLE_WRITE_ERROR,
				"Failure writing output to destination",
				NULL);
		if (rc < 0)
			return provider_h1_fail(h, CURLE_WEIRD_SERVER_REPLY,
				"Weird server reply: ", h->resp.err);
	}
	h->ready = 1;	/* more may be buffered: again before waiting */
	return 0;
}

/* h2's or h1's transfer is over: the caller's on_done (a stop we asked
 * for, overflow or the body cap, is no transport error), then h goes. */
static void provider_finish(struct provider_http *h, int status, int cerr,
			    const char *msg)
{
	if (cerr == CURLE_WRITE_ERROR && (h->sse.overflow || h->truncated))
		cerr = 0;
	h->cbs.on_done(h->cbs.arg, status, cerr, cerr ? msg : NULL,
		       h->rbuf ? h->rbuf : "", h->rlen,
		       h->sse.overflow || h->truncated);
	provider_http_free(h);
}

/* The transfer is over (rc from the step, or a deadline): the caller's
 * on_done, then the handle goes (its connection to the pool when the
 * response ended cleanly on a keep-alive connection). */
static void provider_h1_finish(struct provider *p, struct provider_http *h,
			       int rc)
{
	if (rc == 1 && h->resp.keepalive && h->fd >= 0)
		provider_idle_put(p, h);
	provider_finish(h, h->resp.status, rc < 0 ? h->cerr : 0, h->errbuf);
}

/* Check the deadlines of h: -1 (cerr set) when one passed. */
static int provider_h1_late(struct provider_http *h, int64_t now)
{
	char t[96];

	if (h->st == H1_CONNECTING && h->connect_at && now >= h->connect_at) {
		snprintf(t, sizeof(t), "%lld milliseconds",
			 (long long)(now - h->t0));
		return provider_h1_fail(h, CURLE_OPERATION_TIMEDOUT,
					"Connection timed out after ", t);
	}
	if (h->deadline && now >= h->deadline) {
		snprintf(t, sizeof(t), "%lld milliseconds with %llu bytes "
			 "received", (long long)(now - h->t0),
			 (unsigned long long)h->resp.body_bytes);
		return provider_h1_fail(h, CURLE_OPERATION_TIMEDOUT,
					"Operation timed out after ", t);
	}
	return 0;
}

/* Step every plain-http transfer that is ready or was polled ready;
 * callbacks may start or end others, so the walk restarts after one. */
static void provider_h1_run(struct provider *p)
{
	struct provider_http *h, *next;
	int64_t now = util_mono_ms();
	int rc;

	for (h = p->live; h; h = next) {
		next = h->next;
		if (!h->h1)
			continue;
		rc = provider_h1_late(h, now);
		if (rc == 0 && (h->ready || h->revents))
			rc = provider_h1_step(p, h);
		if (rc == 0)
			continue;
		provider_h1_finish(p, h, rc);
		next = p->live;
		now = util_mono_ms();
	}
}

/* One more socket in the poll set (p->wfds); its slot. */
static int provider_wfd_add(void *arg, int fd, short events)
{
	struct provider *p = arg;

	if (p->nw == p->wcap) {
		p->wcap = p->wcap ? p->wcap * 2 : 64;
		p->wfds = xrealloc(p->wfds, p->wcap * sizeof(*p->wfds));
	}
	p->wfds[p->nw].fd = fd;
	p->wfds[p->nw].events = events;
	p->wfds[p->nw].revents = 0;
	return (int)p->nw++;
}

static short provider_wfd_get(void *arg, int slot)
{
	struct provider *p = arg;

	return (short)p->wfds[slot].revents;
}

/* The poll set of the plain-http transfers (p->wfds, emptied first);
 * returns its size and caps *wait_ms by their deadlines (0 when one is
 * ready now). */
static unsigned int provider_h1_pollset(struct provider *p, int *wait_ms)
{
	struct provider_http *h;
	unsigned int n = 0;
	int64_t now = util_mono_ms(), d;

	p->nw = 0;
	for (h = p->live; h; h = h->next) {
		if (!h->h1)
			continue;
		h->widx = -1;
		if (h->ready)
			*wait_ms = 0;
		if (h->fd < 0)
			continue;
		d = h->st == H1_CONNECTING && h->connect_at ? h->connect_at : 0;
		if (h->deadline && (!d || h->deadline < d))
			d = h->deadline;
		if (d && d - now < *wait_ms)
			*wait_ms = d - now > 0 ? (int)(d - now) : 0;
		h->widx = provider_wfd_add(p, h->fd, h->events);
		n++;
	}
	return n;
}

static void provider_h1_polled(struct provider *p)
{
	struct provider_http *h;

	for (h = p->live; h; h = h->next)
		if (h->h1 && h->widx >= 0)
			h->revents = p->wfds[h->widx].revents;
}

/* Start rq on the plain-http client when it qualifies (h1.h): 1 started,
 * 0 not for h1 (libcurl then), -1 failed (*err). */
static int provider_h1_start(struct provider *p, struct provider_http *h,
			     const struct provider_http_req *rq)
{
	struct h1_target t;

	if (p->h1_off || rq->pool_max_host > 0 || !h1_url_parse(rq->url, &t) ||
	    !h1_headers_ok(rq->headers))
		return 0;
	h->h1 = 1;
	h->fd = -1;
	h->widx = -1;
	memcpy(&h->sa, &t.sa, t.salen);
	h->salen = t.salen;
	snprintf(h->hostport, sizeof(h->hostport), "%s", t.hostport);
	h->body_len = strlen(h->body);
	h->head = h1_request_head(&t, rq->api_key, rq->headers, h->body_len,
				  &h->head_len);
	h->pool_max_idle = rq->pool_max_idle;
	h->pool_idle_s = rq->pool_idle_s;
	h->t0 = util_mono_ms();
	h->connect_at = h->t0 + (rq->connect_timeout_ms > 0
				 ? rq->connect_timeout_ms : 300000);
	h->deadline = rq->timeout_ms > 0 ? h->t0 + rq->timeout_ms : 0;
	h1_resp_init(&h->resp);
	/* A failed connect is reported from the loop, like libcurl's. */
	if (provider_h1_connect(p, h, 1) < 0)
		h->ready = 1, h->st = 0;
	return 1;
}

/* The header lines of rq (h1_header_lines) in a new string. */
static char *provider_hlines(const struct provider_http_req *rq)
{
	struct util_buf b = {0};

	h1_header_lines(&b, rq->api_key, rq->headers);
	return b.p ? b.p : xstrdup("");
}

/* Start h (its body set) on libcurl with the header lines hl (freed):
 * 0, or -1 with *err (h's libcurl parts released, h itself not). */
static int provider_curl_add(struct provider *p, struct provider_http *h,
			     const struct provider_http_req *rq, char *hl,
			     char **err)
{
	const struct curl_dl *cu;
	char *line, *e;

	/* libcurl is loaded by the first request that needs it. */
	if (provider_multi(p, err) < 0)
		goto fail;
	cu = p->cu;
	provider_pool_apply(p, rq);
	h->easy = p->nspare ? p->spare[--p->nspare] : provider_easy_new(cu);
	if (!h->easy) {
		*err = xstrdup("cannot create an HTTP client handle");
		goto fail;
	}
	for (line = hl; (e = strstr(line, "\r\n")); line = e + 2) {
		*e = 0;
		h->hdrs = cu->slist_append(h->hdrs, line);
		*e = '\r';
	}
	/* No "Expect: 100-continue" round trip before a body > 1 KiB. */
	h->hdrs = cu->slist_append(h->hdrs, "Expect:");
	xfree_secret(hl);
	hl = NULL;
	h->body_len = strlen(h->body);
	h->sending = 1;
	provider_easy_request(cu, h, rq);
	if (cu->multi_add_handle(p->multi, h->easy) != CURLM_OK) {
		*err = xstrdup("cannot start the upstream request");
		cu->easy_cleanup(h->easy);
		h->easy = NULL;
		cu->slist_free_all(h->hdrs);
		h->hdrs = NULL;
		goto fail;
	}
	return 0;
fail:
	xfree_secret(hl);
	return -1;
}

/* ---- the HTTP/2 client (h2.h) --------------------------------------------- */

static int provider_h2_body(void *arg, int status, int sse, const char *ptr,
			    size_t n)
{
	struct provider_http *h = arg;

	h->last_ms = util_mono_ms();
	return provider_body(h, status, sse ? "text/event-stream" : NULL, ptr,
			     n);
}

static void provider_h2_done(void *arg, int status, int cerr, const char *msg)
{
	provider_finish(arg, status, cerr, msg);
}

/* The origin speaks HTTP/1.1 only: the request goes on libcurl. */
static void provider_h2_fallback(void *arg, struct h2_req *rq)
{
	struct provider_http *h = arg;
	struct provider_http_req r = {
		.url = rq->url, .timeout_ms = rq->timeout_ms,
		.connect_timeout_ms = rq->connect_timeout_ms,
		.pool_max_idle = rq->pool_max_idle,
		.pool_max_host = rq->pool_max_host,
		.pool_idle_s = rq->pool_idle_s,
	};
	char *err = NULL;

	h2_stream_free(h->h2s);
	h->h2s = NULL;
	h->body = rq->body;
	rq->body = NULL;
	if (provider_curl_add(h->p, h, &r, rq->hlines, &err) < 0) {
		snprintf(h->errbuf, sizeof(h->errbuf), "%s", err);
		free(err);
		provider_finish(h, 0, CURLE_FAILED_INIT, h->errbuf);
	}
	rq->hlines = NULL;
	free(rq->url);
	rq->url = NULL;
}

static int provider_h2_post(void *ctx, void (*fn)(void *arg), void *arg)
{
	return provider_post(ctx, fn, arg);
}

/* Start rq on the HTTP/2 client when it qualifies: 1 started, 0 not
 * for h2 (libcurl then). */
static int provider_h2_start(struct provider *p, struct provider_http *h,
			     const struct provider_http_req *rq)
{
	static const struct h2_cbs cbs = {
		provider_h2_body, provider_h2_done, provider_h2_fallback,
		provider_h2_post, NULL,
	};
	struct h2_cbs c = cbs;
	struct h2_req r;

	if (p->h2_off || !h2_url_ok(rq->url) || !h1_headers_ok(rq->headers))
		return 0;
	if (!p->h2) {
		c.post_ctx = p;
		p->h2 = h2_new(&c, (uint32_t)PROVIDER_H2_STREAMS);
	}
	if (h2_origin_no_h2(p->h2, rq->url))
		return 0;
	memset(&r, 0, sizeof(r));
	r.url = xstrdup(rq->url);
	r.hlines = provider_hlines(rq);
	r.body = h->body;
	r.body_len = strlen(h->body);
	r.timeout_ms = rq->timeout_ms;
	r.connect_timeout_ms = rq->connect_timeout_ms;
	r.pool_max_idle = rq->pool_max_idle;
	r.pool_max_host = rq->pool_max_host;
	r.pool_idle_s = rq->pool_idle_s;
	h->body = NULL;
	h->h2s = h2_start(p->h2, &r, h);
	return 1;
}

struct provider_http *provider_http_start(struct provider *p,
					  const struct provider_http_req *rq,
					  const struct provider_http_cbs *cbs,
					  char **err)
{
	struct provider_http *h;

	h = xcalloc(1, sizeof(*h));
	h->p = p;
	h->cbs = *cbs;
	provider_sse_init(&h->sse, 8u * 1024 * 1024);
	h->body = rq->body_take ? rq->body_take : xstrdup(rq->body);
	h->idle_ms = rq->idle_timeout_ms;
	h->last_ms = util_mono_ms();
	if (provider_h1_start(p, h, rq))
		goto live;
	/* Not h1: without the h1 state (nothing points to h yet). */
	h = xrealloc(h, PROVIDER_HTTP_CURL_SIZE);
	if (provider_h2_start(p, h, rq))
		goto live;
	if (provider_curl_add(p, h, rq, provider_hlines(rq), err) < 0) {
		free(h->body);
		provider_sse_free(&h->sse);
		free(h);
		return NULL;
	}
live:
	h->next = p->live;
	if (p->live)
		p->live->prev = h;
	p->live = h;
	return h;
}

static void provider_done(struct provider *p, CURLMsg *m)
{
	struct provider_http *h = NULL;
	long status = 0;
	int cerr = m->data.result != CURLE_OK;
	const char *cmsg;

	p->cu->easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&h);
	p->cu->easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
	if (!h)
		return;
	/* A stop we asked for (overflow, body cap) is not a transport error
	 * for the caller: it sees sse_overflow or the cut body. */
	if (m->data.result == CURLE_WRITE_ERROR &&
	    (h->sse.overflow || h->truncated))
		cerr = 0;
	cmsg = h->errbuf[0] ? h->errbuf
			    : p->cu->easy_strerror(m->data.result);
	h->cbs.on_done(h->cbs.arg, (int)status,
		       cerr ? (int)m->data.result : 0, cerr ? cmsg : NULL,
		       h->rbuf ? h->rbuf : "", h->rlen,
		       h->sse.overflow || h->truncated);
	provider_http_free(h);
}

/* End the requests silent for longer than their read timeout; returns
 * the ms until the next one could expire (capped). */
static int provider_idle_check(struct provider *p, int cap)
{
	struct provider_http *h, *next;
	int64_t now = util_mono_ms(), left;
	char msg[96];

	for (h = p->live; h; h = next) {
		next = h->next;
		if (h->idle_ms <= 0)
			continue;
		left = h->last_ms + h->idle_ms - now;
		if (left > 0) {
			if (left < cap)
				cap = (int)left;
			continue;
		}
		snprintf(msg, sizeof(msg), "no data from the upstream for "
			 "%llds (read timeout)",
			 (long long)((h->idle_ms + 999) / 1000));
		h->cbs.on_done(h->cbs.arg, 0, CURLE_OPERATION_TIMEDOUT, msg,
			       "", 0, 0);
		/* on_done may have freed other handles; restart. */
		provider_http_free(h);
		next = p->live;
		now = util_mono_ms();
	}
	return cap;
}

static void provider_run_jobs(struct provider *p)
{
	struct provider_job *j, *next;

	pthread_mutex_lock(&p->mu);
	j = p->head;
	p->head = p->tail = NULL;
	pthread_mutex_unlock(&p->mu);
	for (; j; j = next) {
		next = j->next;
		j->fn(j->arg);
		free(j);
	}
}

struct provider_timer *provider_timer_add(struct provider *p,
					  int64_t delay_ms,
					  void (*fn)(void *arg), void *arg)
{
	struct provider_timer *t = xcalloc(1, sizeof(*t)), **pp;

	t->due = util_mono_ms() + (delay_ms > 0 ? delay_ms : 0);
	t->fn = fn;
	t->arg = arg;
	for (pp = &p->timers; *pp && (*pp)->due <= t->due; pp = &(*pp)->next)
		;
	t->next = *pp;
	*pp = t;
	return t;
}

void provider_timer_cancel(struct provider *p, struct provider_timer *t)
{
	struct provider_timer **pp;

	for (pp = &p->timers; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			free(t);
			return;
		}
	}
}

/* Fire due timers; returns the ms until the next one (capped). */
static int provider_run_timers(struct provider *p)
{
	struct provider_timer *t;
	int64_t now = util_mono_ms();

	while ((t = p->timers) && t->due <= now) {
		p->timers = t->next;
		t->fn(t->arg);
		free(t);
		now = util_mono_ms();
	}
	if (!p->timers)
		return PROVIDER_POLL_MS;
	return p->timers->due - now < PROVIDER_POLL_MS
	       ? (int)(p->timers->due - now) : PROVIDER_POLL_MS;
}

/* Without libcurl: poll the first nw entries of p->wfds and the wake
 * eventfd; their revents go back into p->wfds. */
static void provider_poll(struct provider *p, unsigned int nw, int wait_ms)
{
	uint64_t v;
	unsigned int i;

	if (nw + 1 > p->pcap) {
		p->pcap = (nw + 1) * 2;
		p->pfds = xrealloc(p->pfds, p->pcap * sizeof(*p->pfds));
	}
	for (i = 0; i < nw; i++) {
		p->pfds[i].fd = p->wfds[i].fd;
		p->pfds[i].events = p->wfds[i].events;
		p->pfds[i].revents = 0;
	}
	p->pfds[nw].fd = p->wakefd;
	p->pfds[nw].events = POLLIN;
	p->pfds[nw].revents = 0;
	if (poll(p->pfds, nw + 1, wait_ms) <= 0)
		return;
	for (i = 0; i < nw; i++)
		p->wfds[i].revents = p->pfds[i].revents;
	if (p->pfds[nw].revents && read(p->wakefd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing to drain. */
	}
}

static void *provider_main(void *arg)
{
	struct provider *p = arg;
	CURLMsg *m;
	int running, left, stop, wait_ms;
	unsigned int nw;

	provider_self = p;
	wake_hold();
	for (;;) {
		provider_run_jobs(p);
		pthread_mutex_lock(&p->mu);
		stop = p->stopping && !p->head;
		pthread_mutex_unlock(&p->mu);
		if (stop)
			break;
		if (p->multi) {
			p->cu->multi_perform(p->multi, &running);
			while ((m = p->cu->multi_info_read(p->multi, &left)))
				if (m->msg == CURLMSG_DONE)
					provider_done(p, m);
		}
		provider_h1_run(p);
		if (p->h2)
			h2_run(p->h2);
		wait_ms = provider_idle_check(p, provider_run_timers(p));
		nw = provider_h1_pollset(p, &wait_ms);
		if (p->h2) {
			h2_pollset(p->h2, provider_wfd_add, p, &wait_ms);
			nw = (unsigned int)p->nw;
		}
		agent_loop_flush();	/* the observer's, before waiting */
		wake_flush();		/* the iteration's posts' receivers */
		/* libcurl's sockets and h1's, or (libcurl not loaded) h1's
		 * and h2's, none when no request is live, with the wake
		 * eventfd. One way to sleep, so a post wakes it one way: a
		 * held eventfd write, never a condition variable signalled
		 * under mu that woke it at once into that mutex. */
		pthread_mutex_lock(&p->mu);
		if (p->head || p->stopping)
			wait_ms = 0;
		else if (wait_ms > 0)
			p->sleeping = 1;
		pthread_mutex_unlock(&p->mu);
		if (p->multi)
			p->cu->multi_poll(p->multi, nw ? p->wfds : NULL, nw,
					  wait_ms, NULL);
		else
			provider_poll(p, nw, wait_ms);
		provider_h1_polled(p);
		if (p->h2)
			h2_polled(p->h2, provider_wfd_get, p);
		pthread_mutex_lock(&p->mu);
		p->sleeping = 0;
		pthread_mutex_unlock(&p->mu);
	}
	while (p->live)
		provider_http_free(p->live);
	h2_free(p->h2);
	p->h2 = NULL;
	while (p->nspare)
		p->cu->easy_cleanup(p->spare[--p->nspare]);
	while (p->idle) {
		struct provider_idle *c = p->idle;

		p->idle = c->next;
		provider_idle_close(c);
	}
	p->nidle = 0;
	free(p->wfds);
	p->wfds = NULL;
	free(p->pfds);
	p->pfds = NULL;
	while (p->timers) {
		struct provider_timer *t = p->timers;

		p->timers = t->next;
		free(t);
	}
	wake_flush();	/* what the last iteration and the frees posted */
	return NULL;
}

/* libcurl for every request: asked for (CLAWGATE_UPSTREAM_CURL=1, for
 * A/B measurements and as a way out), or a proxy in the environment
 * (libcurl honours it; h1 knows no proxies). */
static int provider_h1_disabled(void)
{
	static const char *const vars[] = {
		"CLAWGATE_UPSTREAM_CURL", "http_proxy", "HTTP_PROXY",
		"all_proxy", "ALL_PROXY",
	};
	const char *v;
	size_t i;

	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if ((v = getenv(vars[i])) && *v && strcmp(v, "0") != 0)
			return 1;
	return 0;
}

/* An https proxy in the environment: libcurl for https (h2 knows no
 * proxies). */
static int provider_h2_proxy(void)
{
	const char *v;

	return ((v = getenv("https_proxy")) && *v) ||
	       ((v = getenv("HTTPS_PROXY")) && *v);
}

int provider_new(struct provider **out)
{
	struct provider *p = xcalloc(1, sizeof(*p));

	pthread_mutex_init(&p->mu, NULL);
	p->h1_off = provider_h1_disabled();
	p->h2_off = p->h1_off || provider_h2_proxy();
	p->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	p->wake_reg = p->wakefd >= 0 && wake_target_add(p);
	if (p->wakefd < 0 ||
	    pthread_create(&p->thread, NULL, provider_main, p) != 0) {
		if (p->wake_reg)
			wake_target_del(p);
		if (p->wakefd >= 0)
			close(p->wakefd);
		pthread_mutex_destroy(&p->mu);
		free(p);
		return GW_EINTERNAL;
	}
	pthread_setname_np(p->thread, "agent");	/* per-thread CPU in top/bench */
	*out = p;
	return GW_OK;
}

void provider_free(struct provider *p)
{
	CURLM *multi;

	if (!p)
		return;
	/* Held wake-ups of p are dropped from here; it is woken below. */
	if (p->wake_reg)
		wake_target_del(p);
	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	multi = p->multi;
	pthread_mutex_unlock(&p->mu);
	provider_wake_fd(p);
	if (multi)
		p->cu->multi_wakeup(multi);
	pthread_join(p->thread, NULL);
	provider_run_jobs(p);
	while (p->nspare)
		p->cu->easy_cleanup(p->spare[--p->nspare]);
	if (p->multi)
		p->cu->multi_cleanup(p->multi);
	close(p->wakefd);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/* ---- chat.completion.chunk fast path --------------------------------------- */

/* A strict scanner for the common chunk (see agent-int.h): valid JSON
 * only, and anything it does not model (escapes other than the short
 * ones, \u, big numbers, "error", tool calls, repeated keys of interest,
 * deep nesting) makes it give up, so that jansson decides. */
struct chunk_scan {
	const unsigned char *p, *end;
	int depth;
};

static void chunk_ws(struct chunk_scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' ||
				 *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int chunk_lit(struct chunk_scan *s, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
		return -1;
	s->p += n;
	return 0;
}

/* One UTF-8 sequence at s->p (first byte >= 0x80), as jansson accepts:
 * no overlong forms, no surrogates, at most U+10FFFF. */
static int chunk_utf8(struct chunk_scan *s)
{
	const unsigned char *p = s->p;
	unsigned c = *p, need, cp, min, i;

	if (c >= 0xc2 && c <= 0xdf) {
		need = 1; cp = c & 0x1f; min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2; cp = c & 0x0f; min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3; cp = c & 0x07; min = 0x10000;
	} else {
		return -1;
	}
	if ((size_t)(s->end - p) <= need)
		return -1;
	for (i = 1; i <= need; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	s->p += need + 1;
	return 0;
}

/* A string at s->p (on its quote): *raw and *rlen its bytes between the
 * quotes, *esc whether it holds a (short) escape. \u gives up. */
static int chunk_str(struct chunk_scan *s, const char **raw, size_t *rlen,
		     int *esc)
{
	const unsigned char *start;

	if (s->p >= s->end || *s->p != '"')
		return -1;
	start = ++s->p;
	*esc = 0;
	while (s->p < s->end && *s->p != '"') {
		unsigned char c = *s->p;

		if (c < 0x20)
			return -1;
		if (c == '\\') {
			if (s->p + 1 >= s->end ||
			    !strchr("\"\\/bfnrt", s->p[1]) || !s->p[1])
				return -1;
			*esc = 1;
			s->p += 2;
		} else if (c >= 0x80) {
			if (chunk_utf8(s) < 0)
				return -1;
		} else {
			s->p++;
		}
	}
	if (s->p >= s->end)
		return -1;
	*raw = (const char *)start;
	*rlen = (size_t)(s->p - start);
	s->p++;
	return 0;
}

/* A number; *is_int when it has no fraction or exponent. Long ones give
 * up (jansson refuses integers beyond int64). */
static int chunk_num(struct chunk_scan *s, int *is_int, long long *v)
{
	int digits = 0, neg = 0;
	long long n = 0;

	if (s->p < s->end && *s->p == '-') {
		neg = 1;
		s->p++;
	}
	if (s->p >= s->end || !(*s->p >= '0' && *s->p <= '9'))
		return -1;
	if (*s->p == '0') {
		s->p++;
		digits = 1;
	} else {
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
			if (digits < 16)	/* longer ones give up below */
				n = n * 10 + (*s->p - '0');
			s->p++;
			digits++;
		}
	}
	if (digits > 15)
		return -1;
	*is_int = 1;
	if (s->p < s->end && (*s->p == '.' || *s->p == 'e' || *s->p == 'E'))
		return -1;	/* a real: rare in a chunk, jansson decides */
	*v = neg ? -n : n;
	return 0;
}

static int chunk_skip(struct chunk_scan *s);

/* A '{'/'[' ... '}'/']' list: each(s, arg, index) consumes an element. */
static int chunk_seq(struct chunk_scan *s, char open, char close,
		     int (*each)(struct chunk_scan *s, void *arg, size_t i),
		     void *arg)
{
	size_t i;

	if (++s->depth > 16 || s->p >= s->end || *s->p != open)
		return -1;
	s->p++;
	chunk_ws(s);
	for (i = 0; !(i == 0 && s->p < s->end && *s->p == close); i++) {
		chunk_ws(s);
		if (each(s, arg, i) < 0)
			return -1;
		chunk_ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		break;
	}
	if (s->p >= s->end || *s->p != close)
		return -1;
	s->p++;
	s->depth--;
	return 0;
}

typedef int (*chunk_key_fn)(struct chunk_scan *s, void *arg, const char *k,
			    size_t kn);
struct chunk_members {
	chunk_key_fn fn;
	void *arg;
};

static int chunk_member(struct chunk_scan *s, void *arg, size_t i)
{
	struct chunk_members *m = arg;
	const char *k;
	size_t kn;
	int esc;

	(void)i;
	if (chunk_str(s, &k, &kn, &esc) < 0 || esc)
		return -1;
	chunk_ws(s);
	if (s->p >= s->end || *s->p != ':')
		return -1;
	s->p++;
	chunk_ws(s);
	return m->fn ? m->fn(s, m->arg, k, kn) : chunk_skip(s);
}

/* An object; for each key, fn(arg, key, klen) is called with s->p on the
 * value and must consume it (0) or give up (-1); NULL skips them. */
static int chunk_obj(struct chunk_scan *s, chunk_key_fn fn, void *arg)
{
	struct chunk_members m = { fn, arg };

	return chunk_seq(s, '{', '}', chunk_member, &m);
}

static int chunk_skip_elem(struct chunk_scan *s, void *arg, size_t i)
{
	(void)arg;
	(void)i;
	return chunk_skip(s);
}

/* An array; fn(arg, index) consumes each element (NULL: skipped). */
static int chunk_arr(struct chunk_scan *s,
		     int (*fn)(struct chunk_scan *s, void *arg, size_t i),
		     void *arg)
{
	return chunk_seq(s, '[', ']', fn ? fn : chunk_skip_elem, arg);
}

static int chunk_skip(struct chunk_scan *s)
{
	const char *raw;
	size_t n;
	int esc, is_int;
	long long v;

	if (s->p >= s->end)
		return -1;
	switch (*s->p) {
	case '{': return chunk_obj(s, NULL, NULL);
	case '[': return chunk_arr(s, NULL, NULL);
	case '"': return chunk_str(s, &raw, &n, &esc);
	case 't': return chunk_lit(s, "true");
	case 'f': return chunk_lit(s, "false");
	case 'n': return chunk_lit(s, "null");
	default: return chunk_num(s, &is_int, &v);
	}
}

#define CHUNK_KEY(k, kn, lit) \
	((kn) == sizeof(lit) - 1 && memcmp((k), (lit), (kn)) == 0)

/* A member the run reads, once: -1 when repeated (jansson keeps the
 * last), 1 when its value opens with open (the caller scans it), 0 when it
 * was something else (skipped). */
static int chunk_once(struct chunk_scan *s, int *seen, char open)
{
	if ((*seen)++)
		return -1;
	if (s->p < s->end && *s->p == open)
		return 1;
	return chunk_skip(s) < 0 ? -1 : 0;
}

/* A string value or null (anything else: *set stays, *is_str 0). */
static int chunk_str_val(struct chunk_scan *s, struct provider_chunk_str *o)
{
	if (o->seen++)
		return -1;	/* a repeated key: jansson keeps the last */
	if (s->p >= s->end || *s->p != '"')
		return chunk_skip(s);
	if (chunk_str(s, &o->raw, &o->len, &o->esc) < 0)
		return -1;
	o->is_str = 1;
	return 0;
}

static int chunk_delta(struct chunk_scan *s, void *arg, const char *k,
		       size_t kn)
{
	struct provider_chunk *c = arg;

	if (CHUNK_KEY(k, kn, "content"))
		return chunk_str_val(s, &c->content);
	if (CHUNK_KEY(k, kn, "tool_calls"))
		return -1;
	return chunk_skip(s);
}

static int chunk_choice(struct chunk_scan *s, void *arg, const char *k,
			size_t kn)
{
	struct provider_chunk *c = arg;
	int rc;

	if (CHUNK_KEY(k, kn, "delta"))
		return (rc = chunk_once(s, &c->delta_seen, '{')) <= 0
		       ? rc : chunk_obj(s, chunk_delta, c);
	if (CHUNK_KEY(k, kn, "finish_reason"))
		return chunk_str_val(s, &c->finish);
	return chunk_skip(s);
}

static int chunk_choices(struct chunk_scan *s, void *arg, size_t i)
{
	struct provider_chunk *c = arg;

	if (i > 0)
		return chunk_skip(s);
	c->has_choice = 1;
	if (s->p < s->end && *s->p == '{') {
		c->choice_obj = 1;
		return chunk_obj(s, chunk_choice, c);
	}
	return chunk_skip(s);
}

static int chunk_int_val(struct chunk_scan *s, int *seen, int *set,
			 long long *v)
{
	int is_int = 0;

	if ((*seen)++)
		return -1;
	if (s->p < s->end && (*s->p == '-' || (*s->p >= '0' &&
						 *s->p <= '9'))) {
		if (chunk_num(s, &is_int, v) < 0)
			return -1;
		*set = is_int;
		return 0;
	}
	return chunk_skip(s);
}

static int chunk_usage(struct chunk_scan *s, void *arg, const char *k,
		       size_t kn)
{
	struct provider_chunk *c = arg;

	if (CHUNK_KEY(k, kn, "prompt_tokens"))
		return chunk_int_val(s, &c->in_seen, &c->in_set, &c->in_tok);
	if (CHUNK_KEY(k, kn, "completion_tokens"))
		return chunk_int_val(s, &c->out_seen, &c->out_set,
				     &c->out_tok);
	return chunk_skip(s);
}

static int chunk_top(struct chunk_scan *s, void *arg, const char *k,
		     size_t kn)
{
	struct provider_chunk *c = arg;
	int rc;

	if (CHUNK_KEY(k, kn, "error"))
		return -1;
	if (CHUNK_KEY(k, kn, "choices"))
		return (rc = chunk_once(s, &c->choices_seen, '[')) <= 0
		       ? rc : chunk_arr(s, chunk_choices, c);
	if (CHUNK_KEY(k, kn, "usage"))
		return (rc = chunk_once(s, &c->usage_seen, '{')) <= 0
		       ? rc : chunk_obj(s, chunk_usage, c);
	return chunk_skip(s);
}

int provider_chunk_scan(const char *data, size_t len,
			struct provider_chunk *c)
{
	struct chunk_scan s = {
		(const unsigned char *)data,
		(const unsigned char *)data + len, 0
	};

	memset(c, 0, sizeof(*c));
	chunk_ws(&s);
	if (chunk_obj(&s, chunk_top, c) < 0)
		return 0;
	chunk_ws(&s);
	return s.p == s.end;
}

size_t provider_chunk_text(const struct provider_chunk_str *v, char *out)
{
	size_t i, n = 0;

	for (i = 0; i < v->len; i++) {
		char ch = v->raw[i];

		if (ch == '\\' && v->esc) {
			switch (v->raw[++i]) {
			case 'b': ch = '\b'; break;
			case 'f': ch = '\f'; break;
			case 'n': ch = '\n'; break;
			case 'r': ch = '\r'; break;
			case 't': ch = '\t'; break;
			default: ch = v->raw[i]; break;	/* quote, \, slash */
			}
		}
		out[n++] = ch;
	}
	out[n] = 0;
	return n;
}
