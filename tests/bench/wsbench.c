/* wsbench: a small load generator for an OpenClaw protocol 4 gateway.
 *
 * One thread, epoll, non-blocking loopback sockets and a hand-written
 * WebSocket client (masked client frames, unmasked server frames). Modes:
 *
 *   rpc        N connections, each a closed loop of `health` requests
 *   handshake  C workers looping connect, upgrade, challenge, connect,
 *              hello-ok, close
 *   idle       open N authenticated connections, print "READY n", hold
 *   ready      exec the daemon (or take a start time from the environment)
 *              and poll until GET /readyz is 200 and a hello-ok arrives
 *
 * Every mode prints one "RESULT key=value ..." line for scripts. Every loop
 * is bounded by count and by time, and only loopback targets are accepted.
 * See tests/bench/README.md. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"
#include "core/util.h"

#define WSB_MAX_MSG (8u * 1024 * 1024)	/* largest server message */
#define WSB_MAX_HDR (16u * 1024)	/* largest upgrade response */
#define WSB_MAX_DEPTH 64		/* pipeline depth cap */
#define WSB_MAX_CONNS 60000
#define WSB_OP_TIMEOUT_NS (10ull * 1000000000ull)
#define WSB_CLOSE_TIMEOUT_NS (2ull * 1000000000ull)
#define WSB_HS_ID "c"

enum wsb_mode { MODE_RPC, MODE_HANDSHAKE, MODE_IDLE, MODE_READY };

enum wsb_state {
	ST_FREE, ST_CONNECTING, ST_UPGRADE, ST_CHALLENGE, ST_HELLO, ST_OPEN,
	ST_CLOSING
};

static const char *const wsb_state_names[] = {
	"free", "connecting", "upgrade", "challenge", "hello", "open", "closing"
};

struct wsb_pend {
	uint64_t id;
	uint64_t t;
	bool used;
	/* -W: which of its res and its run's terminal event arrived (the
	 * events can beat the res) */
	bool res, end;
};

struct wsb_conn {
	int fd;
	enum wsb_state st;
	uint64_t t_start;	/* connect() called */
	uint64_t t_deadline;	/* current step times out here */
	bool pollout;
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_off, out_len, out_cap;
	char *msg;		/* fragmented message being assembled */
	size_t msg_len, msg_cap;
	bool in_frag;
	uint64_t next_id;
	int outstanding;
	struct wsb_pend pend[WSB_MAX_DEPTH];
	/* -W: the prefix of this connection's run ids ("runId":"<pid>-<conn>-),
	 * its requests' ids follow it */
	char wait_pat[64];
	size_t wait_pat_len;
};

/* Latency samples in milliseconds. */
struct wsb_lat {
	double *v;
	size_t n, cap, max;
};

struct wsb_opts {
	enum wsb_mode mode;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char host[80];		/* Host header */
	char path[256];
	int conns;
	int depth;
	double duration;
	double warmup;
	double hold;
	double timeout;
	long max_requests;
	long max_handshakes;
	long max_failures;
	int inflight;
	const char *token;
	const char *method;
	const char *params;
	const char *scopes;
	const char *log_path;
	char **exec_argv;
	bool quiet;
	bool wait_run;		/* -W: a request ends with its run's end */
};

static struct wsb_opts opt;
static int wsb_epfd = -1;
static struct wsb_conn *conns;
static int nconns;
static char *connect_frame;
static size_t connect_frame_len;
static uint64_t rng_state;
static volatile sig_atomic_t got_signal;
static char first_error[256];

/* Per-mode counters. */
static struct {
	struct wsb_lat lat;
	uint64_t t_begin, t_end;
	long started, ok, failed, closed_ok, lost, requests, errors, sent;
	long opened, events;
	bool running;
	uint64_t t_first_open;	/* ready: first hello-ok */
	int next_start;		/* idle/rpc: next slot to connect */
} run;

static uint64_t
wsb_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double
wsb_ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static uint64_t
wsb_rand(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	rng_state = x;
	return x;
}

static void
wsb_note_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Keep the first error text for the report. */
static void
wsb_note_error(const char *fmt, ...)
{
	va_list ap;

	if (first_error[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(first_error, sizeof(first_error), fmt, ap);
	va_end(ap);
}

static void
wsb_lat_add(struct wsb_lat *l, double ms)
{
	if (l->n == l->max)
		return;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 4096;
		if (l->cap > l->max)
			l->cap = l->max;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = ms;
}

static int
wsb_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples. */
static double
wsb_pct(const struct wsb_lat *l, double p)
{
	size_t i;

	if (l->n == 0)
		return 0;
	i = (size_t)(p / 100.0 * (double)l->n + 0.999999);
	if (i < 1)
		i = 1;
	if (i > l->n)
		i = l->n;
	return l->v[i - 1];
}

static void
wsb_lat_print(struct wsb_lat *l)
{
	qsort(l->v, l->n, sizeof(*l->v), wsb_cmp_double);
	printf(" samples=%zu p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f",
	    l->n, wsb_pct(l, 50), wsb_pct(l, 90), wsb_pct(l, 99),
	    l->n ? l->v[l->n - 1] : 0.0);
}

/* ---- minimal JSON scanning: top-level keys of one object ---------------- */

struct wsb_span {
	const char *p;
	size_t n;
};

struct wsb_top {
	struct wsb_span type, id, event, error;
	int ok;			/* -1 absent, 0 false, 1 true */
};

static const char *
wsb_json_ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* p at the opening quote; returns just past the closing one or NULL. */
static const char *
wsb_json_string(const char *p, const char *e)
{
	for (p++; p < e; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

static const char *
wsb_json_value(const char *p, const char *e)
{
	int depth = 0;

	if (p >= e)
		return NULL;
	if (*p == '"')
		return wsb_json_string(p, e);
	if (*p != '{' && *p != '[') {
		while (p < e && *p != ',' && *p != '}' && *p != ']' &&
		    *p != ' ' && *p != '\n' && *p != '\t' && *p != '\r')
			p++;
		return p;
	}
	while (p < e) {
		if (*p == '"') {
			p = wsb_json_string(p, e);
			if (p == NULL)
				return NULL;
			continue;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']') {
			if (--depth == 0)
				return p + 1;
		}
		p++;
	}
	return NULL;
}

static bool
wsb_span_is(const struct wsb_span *s, const char *lit)
{
	size_t n = strlen(lit);

	return s->p != NULL && s->n == n && memcmp(s->p, lit, n) == 0;
}

/* Find type, id, event, ok and error at the top level of a JSON object. */
static bool
wsb_json_top(const char *p, size_t len, struct wsb_top *t)
{
	const char *e = p + len, *k, *ke, *v, *ve;
	struct wsb_span *dst;

	memset(t, 0, sizeof(*t));
	t->ok = -1;
	p = wsb_json_ws(p, e);
	if (p >= e || *p != '{')
		return false;
	p++;
	for (;;) {
		p = wsb_json_ws(p, e);
		if (p < e && *p == '}')
			return true;
		if (p >= e || *p != '"')
			return false;
		k = p + 1;
		if ((p = wsb_json_string(p, e)) == NULL)
			return false;
		ke = p - 1;
		p = wsb_json_ws(p, e);
		if (p >= e || *p != ':')
			return false;
		v = wsb_json_ws(p + 1, e);
		if ((ve = wsb_json_value(v, e)) == NULL)
			return false;
		dst = NULL;
		if (ke - k == 4 && memcmp(k, "type", 4) == 0)
			dst = &t->type;
		else if (ke - k == 2 && memcmp(k, "id", 2) == 0)
			dst = &t->id;
		else if (ke - k == 5 && memcmp(k, "event", 5) == 0)
			dst = &t->event;
		else if (ke - k == 5 && memcmp(k, "error", 5) == 0) {
			t->error.p = v;
			t->error.n = (size_t)(ve - v);
		} else if (ke - k == 2 && memcmp(k, "ok", 2) == 0)
			t->ok = *v == 't';
		if (dst != NULL && *v == '"' && ve - v >= 2) {
			dst->p = v + 1;
			dst->n = (size_t)(ve - v - 2);
		}
		p = wsb_json_ws(ve, e);
		if (p < e && *p == ',') {
			p++;
			continue;
		}
		return p < e && *p == '}';
	}
}

/* ---- connection plumbing ------------------------------------------------ */

static void wsb_conn_fail(struct wsb_conn *c, const char *why);
static void wsb_conn_finish(struct wsb_conn *c, bool ok);
static void wsb_on_open(struct wsb_conn *c, uint64_t now);
static void wsb_run_done(struct wsb_conn *c, struct wsb_pend *pd,
			 uint64_t now);
static void wsb_on_run_end(struct wsb_conn *c, const char *p, size_t n,
			   uint64_t now);
static void wsb_on_res(struct wsb_conn *c, const struct wsb_top *t,
    uint64_t now);

static void
wsb_buf_reserve(char **buf, size_t *cap, size_t need)
{
	size_t n;

	if (need <= *cap)
		return;
	n = *cap ? *cap : 4096;
	while (n < need)
		n *= 2;
	*buf = xrealloc(*buf, n);
	*cap = n;
}

static void
wsb_conn_events(struct wsb_conn *c, bool out)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

	if (out == c->pollout)
		return;
	c->pollout = out;
	if (out)
		ev.events |= EPOLLOUT;
	epoll_ctl(wsb_epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Write what is queued; returns false if the connection failed. */
static bool
wsb_conn_flush(struct wsb_conn *c)
{
	ssize_t w;

	while (c->out_off < c->out_len) {
		w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		    MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			wsb_conn_fail(c, strerror(errno));
			return false;
		}
		c->out_off += (size_t)w;
	}
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->st != ST_CONNECTING)
		wsb_conn_events(c, c->out_len > 0);
	return true;
}

static void
wsb_conn_queue(struct wsb_conn *c, const void *p, size_t n)
{
	wsb_buf_reserve(&c->out, &c->out_cap, c->out_len + n);
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
}

/* Queue one masked client frame. */
static void
wsb_conn_frame(struct wsb_conn *c, int opcode, const char *p, size_t n)
{
	uint8_t hdr[14], *dst;
	size_t h = 0, i;
	uint32_t m = (uint32_t)wsb_rand();
	uint8_t mask[4];

	hdr[h++] = (uint8_t)(0x80 | opcode);
	if (n < 126) {
		hdr[h++] = (uint8_t)(0x80 | n);
	} else if (n <= 0xffff) {
		hdr[h++] = 0x80 | 126;
		hdr[h++] = (uint8_t)(n >> 8);
		hdr[h++] = (uint8_t)n;
	} else {
		hdr[h++] = 0x80 | 127;
		for (i = 0; i < 8; i++)
			hdr[h++] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
	}
	memcpy(mask, &m, 4);
	memcpy(hdr + h, mask, 4);
	h += 4;
	wsb_conn_queue(c, hdr, h);
	wsb_buf_reserve(&c->out, &c->out_cap, c->out_len + n);
	dst = (uint8_t *)c->out + c->out_len;
	for (i = 0; i < n; i++)
		dst[i] = (uint8_t)p[i] ^ mask[i & 3];
	c->out_len += n;
}

static bool
wsb_conn_send_text(struct wsb_conn *c, const char *p, size_t n)
{
	wsb_conn_frame(c, 0x1, p, n);
	return wsb_conn_flush(c);
}

static void
wsb_conn_close_begin(struct wsb_conn *c)
{
	static const char body[2] = { 0x03, (char)0xe8 };	/* 1000 */

	if (c->st == ST_CLOSING || c->st == ST_FREE)
		return;
	c->st = ST_CLOSING;
	c->t_deadline = wsb_now() + WSB_CLOSE_TIMEOUT_NS;
	wsb_conn_frame(c, 0x8, body, sizeof(body));
	wsb_conn_flush(c);
}

static bool
wsb_conn_start(struct wsb_conn *c)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
	int one = 1, fd;

	fd = socket(opt.addr.ss_family,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		wsb_note_error("socket: %s", strerror(errno));
		run.failed++;
		return false;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	c->in_len = c->out_len = c->out_off = c->msg_len = 0;
	c->in_frag = false;
	c->outstanding = 0;
	c->next_id = 1;
	memset(c->pend, 0, sizeof(c->pend));
	c->t_start = wsb_now();
	c->t_deadline = c->t_start + WSB_OP_TIMEOUT_NS;
	c->st = ST_CONNECTING;
	c->pollout = true;
	run.started++;
	if (connect(fd, (struct sockaddr *)&opt.addr, opt.addrlen) < 0 &&
	    errno != EINPROGRESS) {
		c->st = ST_UPGRADE;	/* so fail() does not skip it */
		epoll_ctl(wsb_epfd, EPOLL_CTL_ADD, fd, &ev);
		wsb_conn_fail(c, strerror(errno));
		return false;
	}
	epoll_ctl(wsb_epfd, EPOLL_CTL_ADD, fd, &ev);
	return true;
}

static void
wsb_conn_connected(struct wsb_conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);
	char req[512];
	int n;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		wsb_conn_fail(c, strerror(err));
		return;
	}
	n = snprintf(req, sizeof(req),
	    "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n\r\n", opt.path, opt.host);
	c->st = ST_UPGRADE;
	wsb_conn_queue(c, req, (size_t)n);
	wsb_conn_flush(c);
}

#define WSB_HAS(p, n, lit) (memmem(p, n, lit, sizeof(lit) - 1) != NULL)

static void
wsb_conn_message(struct wsb_conn *c, const char *p, size_t n)
{
	struct wsb_top t;
	uint64_t now;

	if (!wsb_json_top(p, n, &t)) {
		wsb_conn_fail(c, "server sent a frame that is not a JSON object");
		return;
	}
	switch (c->st) {
	case ST_CHALLENGE:
		if (wsb_span_is(&t.type, "event") &&
		    wsb_span_is(&t.event, "connect.challenge")) {
			c->st = ST_HELLO;
			wsb_conn_send_text(c, connect_frame, connect_frame_len);
		}
		return;
	case ST_HELLO:
		if (!wsb_span_is(&t.type, "res") || !wsb_span_is(&t.id, WSB_HS_ID))
			return;
		if (t.ok != 1) {
			wsb_note_error("connect rejected: %.*s",
			    (int)(t.error.n > 200 ? 200 : t.error.n),
			    t.error.p ? t.error.p : "");
			wsb_conn_fail(c, "connect rejected");
			return;
		}
		now = wsb_now();
		c->st = ST_OPEN;
		c->t_deadline = UINT64_MAX;
		wsb_on_open(c, now);
		return;
	case ST_OPEN:
		if (wsb_span_is(&t.type, "res")) {
			wsb_on_res(c, &t, wsb_now());
			return;
		}
		now = wsb_now();
		/* rpc: the events of the measured window only (the figure is
		 * events per request) */
		if (opt.mode != MODE_RPC ||
		    (now >= run.t_begin && now <= run.t_end))
			run.events++;
		if (opt.wait_run && c->outstanding > 0 &&
		    wsb_span_is(&t.event, "chat") &&
		    (WSB_HAS(p, n, "\"state\":\"final\"") ||
		     WSB_HAS(p, n, "\"state\":\"error\"") ||
		     WSB_HAS(p, n, "\"state\":\"aborted\"")))
			wsb_on_run_end(c, p, n, now);
		return;
	default:
		return;
	}
}

/* Parse complete frames in c->in; returns false if the conn went away. */
static bool
wsb_conn_frames(struct wsb_conn *c)
{
	size_t off = 0;
	uint8_t *b;
	uint64_t plen;
	size_t h, avail, i;
	int op;
	bool fin, masked;
	enum wsb_state st;

	while (c->st != ST_FREE) {
		b = (uint8_t *)c->in + off;
		avail = c->in_len - off;
		if (avail < 2)
			break;
		fin = b[0] & 0x80;
		op = b[0] & 0x0f;
		masked = b[1] & 0x80;
		plen = b[1] & 0x7f;
		h = 2;
		if (plen == 126) {
			if (avail < 4)
				break;
			plen = (uint64_t)b[2] << 8 | b[3];
			h = 4;
		} else if (plen == 127) {
			if (avail < 10)
				break;
			plen = 0;
			for (i = 0; i < 8; i++)
				plen = plen << 8 | b[2 + i];
			h = 10;
		}
		if (masked)
			h += 4;
		if (plen > WSB_MAX_MSG) {
			wsb_conn_fail(c, "server frame too large");
			return false;
		}
		if (avail < h + plen)
			break;
		if (masked)
			for (i = 0; i < plen; i++)
				b[h + i] ^= b[h - 4 + (i & 3)];
		off += h + (size_t)plen;
		st = c->st;
		if (op == 0x8) {
			if (st == ST_CLOSING) {
				wsb_conn_finish(c, true);
			} else {
				char why[64];

				snprintf(why, sizeof(why), "server closed (%d)",
				    plen >= 2 ? b[h] << 8 | b[h + 1] : 1005);
				wsb_conn_fail(c, why);
			}
			return false;
		} else if (op == 0x9) {
			wsb_conn_frame(c, 0xA, (char *)b + h, (size_t)plen);
			if (!wsb_conn_flush(c))
				return false;
		} else if (op == 0xA) {
			continue;
		} else if (op == 0x1 || op == 0x2 || op == 0x0) {
			if (!fin || c->in_frag || op == 0x0) {
				if (c->msg_len + plen > WSB_MAX_MSG) {
					wsb_conn_fail(c, "message too large");
					return false;
				}
				wsb_buf_reserve(&c->msg, &c->msg_cap,
				    c->msg_len + (size_t)plen);
				memcpy(c->msg + c->msg_len, b + h, (size_t)plen);
				c->msg_len += (size_t)plen;
				c->in_frag = !fin;
				if (fin) {
					wsb_conn_message(c, c->msg, c->msg_len);
					c->msg_len = 0;
				}
			} else {
				wsb_conn_message(c, (char *)b + h, (size_t)plen);
			}
		}
	}
	if (c->st == ST_FREE)
		return false;
	if (off > 0) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	return true;
}

static void
wsb_conn_upgrade(struct wsb_conn *c)
{
	char *end;
	size_t hl;

	end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
	if (end == NULL) {
		if (c->in_len > WSB_MAX_HDR)
			wsb_conn_fail(c, "upgrade response too large");
		return;
	}
	if (c->in_len < 12 || memcmp(c->in, "HTTP/1.1 101", 12) != 0) {
		wsb_note_error("upgrade refused: %.*s", 40, c->in);
		wsb_conn_fail(c, "upgrade refused");
		return;
	}
	hl = (size_t)(end - c->in) + 4;
	memmove(c->in, c->in + hl, c->in_len - hl);
	c->in_len -= hl;
	c->st = ST_CHALLENGE;
	wsb_conn_frames(c);
}

static void
wsb_conn_readable(struct wsb_conn *c)
{
	ssize_t r;

	for (;;) {
		wsb_buf_reserve(&c->in, &c->in_cap, c->in_len + 65536);
		r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			wsb_conn_fail(c, strerror(errno));
			return;
		}
		if (r == 0) {
			if (c->st == ST_CLOSING)
				wsb_conn_finish(c, true);
			else
				wsb_conn_fail(c, "connection closed by server");
			return;
		}
		c->in_len += (size_t)r;
		if (c->st == ST_UPGRADE)
			wsb_conn_upgrade(c);
		else if (!wsb_conn_frames(c))
			return;
		if (c->st == ST_FREE)
			return;
		if ((size_t)r < 65536)
			return;
	}
}

static void
wsb_conn_io(struct wsb_conn *c, uint32_t events)
{
	if (c->st == ST_CONNECTING) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
			wsb_conn_connected(c);
			if (c->st == ST_FREE)
				return;
		} else {
			return;
		}
	}
	if ((events & EPOLLOUT) && !wsb_conn_flush(c))
		return;
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		wsb_conn_readable(c);
}

/* Tear the socket down; the mode decides what happens next. */
static void wsb_on_done(struct wsb_conn *c, bool ok, enum wsb_state was);

static void
wsb_conn_finish(struct wsb_conn *c, bool ok)
{
	enum wsb_state was = c->st;

	if (c->st == ST_FREE)
		return;
	epoll_ctl(wsb_epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->st = ST_FREE;
	c->pollout = false;
	wsb_on_done(c, ok, was);
}

static void
wsb_conn_fail(struct wsb_conn *c, const char *why)
{
	if (c->st == ST_FREE)
		return;
	wsb_note_error("%s (state %s)", why, wsb_state_names[c->st]);
	wsb_conn_finish(c, false);
}

/* Fail connections whose current step timed out. */
static void
wsb_check_timeouts(uint64_t now)
{
	int i;

	for (i = 0; i < nconns; i++) {
		struct wsb_conn *c = &conns[i];

		if (c->st == ST_FREE || c->st == ST_OPEN || now < c->t_deadline)
			continue;
		if (c->st == ST_CLOSING)
			wsb_conn_finish(c, true);
		else
			wsb_conn_fail(c, "timeout");
	}
}

static void
wsb_poll(int timeout_ms)
{
	struct epoll_event evs[256];
	int n, i;

	n = epoll_wait(wsb_epfd, evs, ARRAY_SIZE(evs), timeout_ms);
	for (i = 0; i < n; i++)
		wsb_conn_io(evs[i].data.ptr, evs[i].events);
}

static int
wsb_active(void)
{
	int i, a = 0;

	for (i = 0; i < nconns; i++)
		a += conns[i].st != ST_FREE;
	return a;
}

/* ---- requests ----------------------------------------------------------- */

/* params with every "%ID%" replaced by a token unique to this request
 * (pid, connection, request id): chat.send needs a new idempotency key. */
static void
wsb_params_subst(char *out, size_t size, const char *in, int conn,
    uint64_t id)
{
	char tok[64];
	size_t o = 0, tl;
	const char *p;

	tl = (size_t)snprintf(tok, sizeof(tok), "%d-%d-%llu", (int)getpid(),
	    conn, (unsigned long long)id);
	while (*in != '\0' && o + 1 < size) {
		p = strncmp(in, "%ID%", 4) == 0 ? tok : NULL;
		if (p != NULL) {
			if (o + tl + 1 >= size)
				break;
			memcpy(out + o, tok, tl);
			o += tl;
			in += 4;
		} else {
			out[o++] = *in++;
		}
	}
	out[o] = '\0';
}

static bool
wsb_send_request(struct wsb_conn *c, uint64_t now)
{
	char buf[1024];
	int n, i;
	uint64_t id = c->next_id++;

	if (opt.params != NULL) {
		char params[1024];

		wsb_params_subst(params, sizeof(params), opt.params,
		    (int)(c - conns), id);
		n = snprintf(buf, sizeof(buf),
		    "{\"type\":\"req\",\"id\":\"%llu\",\"method\":\"%s\","
		    "\"params\":%s}", (unsigned long long)id, opt.method,
		    params);
	}
	else
		n = snprintf(buf, sizeof(buf),
		    "{\"type\":\"req\",\"id\":\"%llu\",\"method\":\"%s\"}",
		    (unsigned long long)id, opt.method);
	for (i = 0; i < WSB_MAX_DEPTH; i++)
		if (!c->pend[i].used)
			break;
	if (i == WSB_MAX_DEPTH)
		return false;
	c->pend[i].used = true;
	c->pend[i].id = id;
	c->pend[i].t = now;
	c->pend[i].res = c->pend[i].end = false;
	if (opt.wait_run && c->wait_pat_len == 0)
		/* the run id is the idempotency key: the request's token */
		c->wait_pat_len = (size_t)snprintf(c->wait_pat,
		    sizeof(c->wait_pat), "\"runId\":\"%d-%d-",
		    (int)getpid(), (int)(c - conns));
	c->outstanding++;
	run.sent++;
	return wsb_conn_send_text(c, buf, (size_t)n);
}

static void
wsb_on_res(struct wsb_conn *c, const struct wsb_top *t, uint64_t now)
{
	uint64_t id = 0, ts;
	size_t i;

	if (opt.mode != MODE_RPC)
		return;
	for (i = 0; i < t->id.n; i++) {
		if (t->id.p[i] < '0' || t->id.p[i] > '9')
			return;
		id = id * 10 + (uint64_t)(t->id.p[i] - '0');
	}
	for (i = 0; i < WSB_MAX_DEPTH; i++)
		if (c->pend[i].used && c->pend[i].id == id)
			break;
	if (i == WSB_MAX_DEPTH)
		return;
	ts = c->pend[i].t;
	if (opt.wait_run && t->ok == 1) {
		/* -W: done when the run's terminal chat event arrived too */
		c->pend[i].res = true;
		if (c->pend[i].end)
			wsb_run_done(c, &c->pend[i], now);
		return;
	}
	c->pend[i].used = false;
	c->outstanding--;
	if (ts >= run.t_begin && now <= run.t_end) {
		run.requests++;
		wsb_lat_add(&run.lat, wsb_ms(now - ts));
		if (t->ok != 1) {
			run.errors++;
			wsb_note_error("%.*s error: %.*s", (int)t->id.n, t->id.p,
			    (int)(t->error.n > 200 ? 200 : t->error.n),
			    t->error.p ? t->error.p : "");
		}
	}
	if (run.running && now < run.t_end && run.sent < opt.max_requests)
		wsb_send_request(c, now);
}

/* -W: a terminal `chat` event (final, error or aborted) in p: when it
 * is the run of one of c's requests, that request is done once its res
 * came too. */
static void
wsb_on_run_end(struct wsb_conn *c, const char *p, size_t n, uint64_t now)
{
	const char *q = memmem(p, n, c->wait_pat, c->wait_pat_len);
	uint64_t id = 0;
	size_t i;

	if (q == NULL)
		return;
	for (q += c->wait_pat_len; q < p + n && *q >= '0' && *q <= '9'; q++)
		id = id * 10 + (uint64_t)(*q - '0');
	if (q >= p + n || *q != '"')
		return;
	for (i = 0; i < WSB_MAX_DEPTH; i++)
		if (c->pend[i].used && c->pend[i].id == id && !c->pend[i].end)
			break;
	if (i == WSB_MAX_DEPTH)
		return;
	c->pend[i].end = true;
	if (c->pend[i].res)
		wsb_run_done(c, &c->pend[i], now);
}

/* -W: a request whose res and run end both arrived. */
static void
wsb_run_done(struct wsb_conn *c, struct wsb_pend *pd, uint64_t now)
{
	uint64_t ts = pd->t;

	pd->used = false;
	c->outstanding--;
	if (ts >= run.t_begin && now <= run.t_end) {
		run.requests++;
		wsb_lat_add(&run.lat, wsb_ms(now - ts));
	}
	if (run.running && now < run.t_end && run.sent < opt.max_requests)
		wsb_send_request(c, now);
}

/* ---- mode callbacks ----------------------------------------------------- */

static void
wsb_start_next(void)
{
	while (run.next_start < nconns &&
	    run.started - run.opened - run.failed < opt.inflight &&
	    !got_signal) {
		wsb_conn_start(&conns[run.next_start++]);
	}
}

static void
wsb_on_open(struct wsb_conn *c, uint64_t now)
{
	run.opened++;
	switch (opt.mode) {
	case MODE_HANDSHAKE:
		if (now <= run.t_end) {
			run.ok++;
			wsb_lat_add(&run.lat, wsb_ms(now - c->t_start));
		}
		wsb_conn_close_begin(c);
		break;
	case MODE_READY:
		if (run.ok++ == 0)
			run.t_first_open = now;
		wsb_conn_close_begin(c);
		break;
	case MODE_RPC:
	case MODE_IDLE:
		break;
	}
}

static void
wsb_on_done(struct wsb_conn *c, bool ok, enum wsb_state was)
{
	(void)c;
	if (!ok && was != ST_CLOSING && was != ST_OPEN)
		run.failed++;
	if (ok && was == ST_CLOSING)
		run.closed_ok++;
	if (!ok && was == ST_OPEN)
		run.lost++;
}

/* ---- modes -------------------------------------------------------------- */

static void
wsb_conns_alloc(int n)
{
	int i;

	nconns = n;
	conns = xcalloc((size_t)n, sizeof(*conns));
	for (i = 0; i < n; i++)
		conns[i].fd = -1;
}

/* Close every open connection gracefully, bounded. */
static void
wsb_close_all(void)
{
	uint64_t end;
	int i;

	for (i = 0; i < nconns; i++)
		if (conns[i].st == ST_OPEN)
			wsb_conn_close_begin(&conns[i]);
		else if (conns[i].st != ST_FREE && conns[i].st != ST_CLOSING)
			wsb_conn_finish(&conns[i], false);
	end = wsb_now() + WSB_CLOSE_TIMEOUT_NS + 500000000ull;
	while (wsb_active() > 0 && wsb_now() < end) {
		wsb_poll(20);
		wsb_check_timeouts(wsb_now());
	}
}

/* Connect all slots with bounded concurrency; returns false on timeout. */
static bool
wsb_open_all(double timeout_s)
{
	uint64_t end = wsb_now() + (uint64_t)(timeout_s * 1e9);

	run.next_start = 0;
	wsb_start_next();
	while (run.opened + run.failed < nconns && !got_signal) {
		if (wsb_now() >= end)
			return false;
		wsb_poll(20);
		wsb_check_timeouts(wsb_now());
		wsb_start_next();
	}
	return run.failed == 0;
}

static int
wsb_mode_rpc(void)
{
	uint64_t now, hard_end;
	double secs;
	int i, d;

	wsb_conns_alloc(opt.conns);
	run.lat.max = (size_t)opt.max_requests;
	if (!wsb_open_all(opt.timeout)) {
		fprintf(stderr, "wsbench: rpc: %ld of %d connections failed: %s\n",
		    run.failed, nconns, first_error);
		wsb_close_all();
		return 1;
	}
	now = wsb_now();
	run.t_begin = now + (uint64_t)(opt.warmup * 1e9);
	run.t_end = run.t_begin + (uint64_t)(opt.duration * 1e9);
	hard_end = run.t_end + 5000000000ull;
	run.running = true;
	for (i = 0; i < nconns; i++)
		for (d = 0; d < opt.depth; d++)
			wsb_send_request(&conns[i], now);
	for (;;) {
		int out = 0;

		now = wsb_now();
		for (i = 0; i < nconns; i++)
			out += conns[i].outstanding *
			    (conns[i].st == ST_OPEN);
		if ((now >= run.t_end && out == 0) || now >= hard_end ||
		    got_signal || wsb_active() == 0)
			break;
		wsb_poll(10);
	}
	run.running = false;
	secs = opt.duration;
	if (now < run.t_end)
		secs = wsb_ms(now - run.t_begin) / 1000.0;
	wsb_close_all();
	printf("RESULT mode=rpc conns=%d depth=%d duration_s=%.3f "
	    "requests=%ld errors=%ld lost=%ld events=%ld req_per_s=%.1f",
	    opt.conns, opt.depth, secs, run.requests, run.errors, run.lost,
	    run.events, secs > 0 ? (double)run.requests / secs : 0.0);
	wsb_lat_print(&run.lat);
	printf("\n");
	if (first_error[0] != '\0')
		printf("FIRST_ERROR %s\n", first_error);
	return run.requests > 0 && run.lost == 0 ? 0 : 1;
}

static int
wsb_mode_handshake(void)
{
	uint64_t now, hard_end;
	double secs;
	int i;

	wsb_conns_alloc(opt.conns);
	run.lat.max = (size_t)opt.max_handshakes;
	run.t_begin = wsb_now();
	run.t_end = run.t_begin + (uint64_t)(opt.duration * 1e9);
	hard_end = run.t_end + 15000000000ull;
	/* Slots are restarted here, never from inside a callback. */
	for (;;) {
		bool more;

		now = wsb_now();
		more = !got_signal && now < run.t_end &&
		    run.started < opt.max_handshakes &&
		    run.failed < opt.max_failures;
		if (more)
			for (i = 0; i < nconns; i++)
				if (conns[i].st == ST_FREE)
					wsb_conn_start(&conns[i]);
		if ((!more && wsb_active() == 0) || now >= hard_end)
			break;
		wsb_poll(1);
		wsb_check_timeouts(wsb_now());
	}
	wsb_close_all();
	secs = opt.duration;
	now = wsb_now();
	if (now < run.t_end)
		secs = wsb_ms(now - run.t_begin) / 1000.0;
	printf("RESULT mode=handshake concurrency=%d duration_s=%.3f ok=%ld "
	    "failed=%ld handshakes_per_s=%.1f", opt.conns, secs, run.ok,
	    run.failed, secs > 0 ? (double)run.ok / secs : 0.0);
	wsb_lat_print(&run.lat);
	printf("\n");
	if (first_error[0] != '\0')
		printf("FIRST_ERROR %s\n", first_error);
	return run.ok > 0 && run.failed == 0 ? 0 : 1;
}

static int
wsb_mode_idle(void)
{
	uint64_t t0, end, now;
	bool all;

	wsb_conns_alloc(opt.conns);
	t0 = wsb_now();
	all = wsb_open_all(opt.timeout);
	now = wsb_now();
	printf("READY %ld failed=%ld open_ms=%.1f events=%ld\n", run.opened,
	    run.failed, wsb_ms(now - t0), run.events);
	if (first_error[0] != '\0')
		printf("FIRST_ERROR %s\n", first_error);
	fflush(stdout);
	end = now + (uint64_t)(opt.hold * 1e9);
	while (!got_signal && wsb_now() < end)
		wsb_poll(100);
	wsb_close_all();
	printf("RESULT mode=idle conns=%d opened=%ld failed=%ld lost=%ld "
	    "events=%ld closed_ok=%ld\n", opt.conns, run.opened, run.failed,
	    run.lost, run.events, run.closed_ok);
	return all && run.lost == 0 ? 0 : 1;
}

/* One blocking GET on the target; returns the HTTP status or -1. */
static int
wsb_http_status(const char *path, int timeout_ms)
{
	char req[512], resp[64];
	struct pollfd pfd;
	int fd, n, status = -1;
	size_t got = 0;
	ssize_t r;

	fd = socket(opt.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&opt.addr, opt.addrlen) < 0)
		goto out;
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n"
	    "Connection: close\r\n\r\n", path, opt.host);
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
		goto out;
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (got < 12) {
		if (poll(&pfd, 1, timeout_ms) <= 0)
			goto out;
		r = recv(fd, resp + got, sizeof(resp) - 1 - got, 0);
		if (r <= 0)
			goto out;
		got += (size_t)r;
	}
	resp[got] = '\0';
	if (strncmp(resp, "HTTP/1.", 7) == 0)
		status = atoi(resp + 9);
out:
	close(fd);
	return status;
}

static int
wsb_mode_ready(void)
{
	uint64_t t0 = 0, now, end, t_readyz = 0, t_hello = 0;
	pid_t pid = -1;
	const char *env;
	int status;
	struct timespec rt, pause = { 0, 200000 };

	wsb_conns_alloc(1);
	run.t_end = UINT64_MAX;
	env = getenv("WSBENCH_T0_NS");
	if (opt.exec_argv != NULL) {
		t0 = wsb_now();
		pid = fork();
		if (pid < 0) {
			perror("wsbench: fork");
			return 1;
		}
		if (pid == 0) {
			int fd = open(opt.log_path ? opt.log_path : "/dev/null",
			    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
			}
			setpgid(0, 0);
			execvp(opt.exec_argv[0], opt.exec_argv);
			_exit(127);
		}
		printf("PID %d\n", (int)pid);
		fflush(stdout);
	} else if (env != NULL) {
		/* Realtime ns (date +%s%N) to monotonic. */
		uint64_t rt0 = strtoull(env, NULL, 10), rnow;

		clock_gettime(CLOCK_REALTIME, &rt);
		rnow = (uint64_t)rt.tv_sec * 1000000000ull +
		    (uint64_t)rt.tv_nsec;
		t0 = wsb_now() - (rnow > rt0 ? rnow - rt0 : 0);
	} else {
		t0 = wsb_now();
	}
	end = t0 + (uint64_t)(opt.timeout * 1e9);
	while ((t_readyz == 0 || t_hello == 0) && !got_signal) {
		now = wsb_now();
		if (now >= end)
			break;
		if (pid > 0 && waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr, "wsbench: daemon exited (status %d) "
			    "before it was ready\n", status);
			return 1;
		}
		if (t_hello == 0 && conns[0].st == ST_FREE)
			wsb_conn_start(&conns[0]);
		wsb_poll(0);
		wsb_check_timeouts(wsb_now());
		if (t_hello == 0 && run.ok > 0)
			t_hello = run.t_first_open;
		if (t_readyz == 0 && wsb_http_status("/readyz", 5) == 200)
			t_readyz = wsb_now();
		if (t_readyz == 0 || t_hello == 0)
			nanosleep(&pause, NULL);
	}
	wsb_close_all();
	if (t_readyz == 0 || t_hello == 0) {
		fprintf(stderr, "wsbench: not ready after %.1f s: %s\n",
		    opt.timeout, first_error);
		return 1;
	}
	printf("RESULT mode=ready pid=%d readyz_ms=%.3f hello_ms=%.3f\n",
	    (int)pid, wsb_ms(t_readyz - t0), wsb_ms(t_hello - t0));
	return 0;
}

/* ---- setup -------------------------------------------------------------- */

/* Accept only ws://LOOPBACK:PORT[/path] (127.0.0.0/8, localhost, [::1]). */
static bool
wsb_parse_url(const char *url)
{
	char host[64];
	const char *p, *hs, *he, *ps;
	long port;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&opt.addr;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&opt.addr;
	char *end;

	if (strncmp(url, "ws://", 5) == 0)
		p = url + 5;
	else if (strncmp(url, "http://", 7) == 0)
		p = url + 7;
	else
		return false;
	hs = p;
	if (*p == '[') {
		he = strchr(p, ']');
		if (he == NULL)
			return false;
		hs = p + 1;
		ps = he + 1;
	} else {
		he = p + strcspn(p, ":/");
		ps = he;
	}
	if (he - hs <= 0 || (size_t)(he - hs) >= sizeof(host))
		return false;
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	if (*ps != ':')
		return false;
	port = strtol(ps + 1, &end, 10);
	if (port < 1 || port > 65535)
		return false;
	snprintf(opt.path, sizeof(opt.path), "%s", *end == '/' ? end : "/");
	memset(&opt.addr, 0, sizeof(opt.addr));
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		if ((ntohl(a4->sin_addr.s_addr) >> 24) != 127)
			return false;
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		opt.addrlen = sizeof(*a4);
		snprintf(opt.host, sizeof(opt.host), "%s:%ld", host, port);
	} else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		if (!IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr))
			return false;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		opt.addrlen = sizeof(*a6);
		snprintf(opt.host, sizeof(opt.host), "[%s]:%ld", host, port);
	} else {
		return false;
	}
	return true;
}

/* JSON string body (no quotes) of s, escaped. */
static char *
wsb_json_escape(const char *s)
{
	char *o = xmalloc(strlen(s) * 6 + 1), *q = o;

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			*q++ = '\\';
			*q++ = (char)ch;
		} else if (ch < 0x20) {
			q += sprintf(q, "\\u%04x", ch);
		} else {
			*q++ = (char)ch;
		}
	}
	*q = '\0';
	return o;
}

static void
wsb_build_connect(void)
{
	char *tok = wsb_json_escape(opt.token), *scopes = NULL, *sc, *tk,
	    *save = NULL, *list = xstrdup("");

	sc = xstrdup(opt.scopes);
	for (tk = strtok_r(sc, ",", &save); tk; tk = strtok_r(NULL, ",", &save)) {
		char *e = wsb_json_escape(tk), *n;

		n = xasprintf("%s%s\"%s\"", list, *list ? "," : "", e);
		free(list);
		free(e);
		list = n;
	}
	scopes = list;
	connect_frame = xasprintf("{\"type\":\"req\",\"id\":\"" WSB_HS_ID "\","
	    "\"method\":\"connect\",\"params\":{\"minProtocol\":4,"
	    "\"maxProtocol\":4,\"client\":{\"id\":\"cli\",\"version\":\"bench\","
	    "\"platform\":\"linux\",\"mode\":\"cli\"},\"role\":\"operator\","
	    "\"scopes\":[%s],\"auth\":{\"token\":\"%s\"}}}", scopes, tok);
	connect_frame_len = strlen(connect_frame);
	free(sc);
	free(scopes);
	xfree_secret(tok);
}

static void
wsb_raise_nofile(long need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if ((long)rl.rlim_cur >= need)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ||
	    (long)rl.rlim_max > need ? (rlim_t)need : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || (long)rl.rlim_cur < need)
		fprintf(stderr, "wsbench: warning: RLIMIT_NOFILE %ld < %ld\n",
		    (long)rl.rlim_cur, need);
}

static void
wsb_on_signal(int sig)
{
	got_signal = sig;
}

static void
wsb_usage(FILE *f)
{
	fputs("Usage: wsbench MODE --url ws://127.0.0.1:PORT --token T "
	    "[options]\n"
	    "Modes:\n"
	    "  rpc        closed-loop RPCs on -c connections\n"
	    "  handshake  -c workers looping connect..hello-ok..close\n"
	    "  idle       open -c connections, print READY n, hold\n"
	    "  ready      [-- CMD ARGS...] poll until /readyz 200 and hello-ok;"
	    "\n             start time: exec of CMD, else $WSBENCH_T0_NS "
	    "(date +%s%N)\n"
	    "Options:\n"
	    "  -c, --conns N        connections / workers (default 1)\n"
	    "  -p, --depth N        rpc: requests in flight per conn (1)\n"
	    "  -d, --duration S     rpc/handshake window (10)\n"
	    "  -w, --warmup S       rpc: unmeasured warm-up (1)\n"
	    "  -H, --hold S         idle: hold time unless signalled (60)\n"
	    "  -T, --timeout S      connect-all / ready timeout (30)\n"
	    "  -m, --method NAME    rpc method (health)\n"
	    "  -P, --params JSON    rpc params (omitted); %ID% becomes a "
	    "token unique to the request\n"
	    "  -s, --scopes LIST    connect scopes (operator.read)\n"
	    "  -i, --inflight N     idle/rpc: handshakes in flight (16)\n"
	    "  -n, --max N          cap on requests/handshakes (5000000)\n"
	    "  -l, --log FILE       ready: daemon stdout/stderr\n"
	    "  -W, --wait-run       rpc (chat.send, any depth): a request ends "
	    "when the\n"
	    "                       `chat` final/error/aborted event of its run"
	    " (runId =\n"
	    "                       the %ID% token) arrives, not at its res\n"
	    "  -q, --quiet\n", f);
}

int
main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "token", required_argument, NULL, 't' },
		{ "conns", required_argument, NULL, 'c' },
		{ "depth", required_argument, NULL, 'p' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "hold", required_argument, NULL, 'H' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "method", required_argument, NULL, 'm' },
		{ "params", required_argument, NULL, 'P' },
		{ "scopes", required_argument, NULL, 's' },
		{ "inflight", required_argument, NULL, 'i' },
		{ "max", required_argument, NULL, 'n' },
		{ "log", required_argument, NULL, 'l' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "wait-run", no_argument, NULL, 'W' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *url = "ws://127.0.0.1:18789", *mode;
	struct sigaction sa;
	uint64_t seed;
	double budget;
	int ch, rc;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		wsb_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	mode = argv[1];
	if (strcmp(mode, "rpc") == 0)
		opt.mode = MODE_RPC;
	else if (strcmp(mode, "handshake") == 0)
		opt.mode = MODE_HANDSHAKE;
	else if (strcmp(mode, "idle") == 0)
		opt.mode = MODE_IDLE;
	else if (strcmp(mode, "ready") == 0)
		opt.mode = MODE_READY;
	else {
		fprintf(stderr, "wsbench: unknown mode '%s'\n", mode);
		return 2;
	}
	opt.conns = 1;
	opt.depth = 1;
	opt.duration = 10;
	opt.warmup = 1;
	opt.hold = 60;
	opt.timeout = 30;
	opt.method = "health";
	opt.scopes = "operator.read";
	opt.inflight = 16;
	opt.max_requests = 5000000;
	opt.max_handshakes = 5000000;
	opt.token = getenv("OPENCLAW_GATEWAY_TOKEN");
	optind = 2;
	while ((ch = getopt_long(argc, argv, "+u:t:c:p:d:w:H:T:m:P:s:i:n:l:qWh",
	    lopts, NULL)) != -1) {
		switch (ch) {
		case 'u': url = optarg; break;
		case 't': opt.token = optarg; break;
		case 'c': opt.conns = atoi(optarg); break;
		case 'p': opt.depth = atoi(optarg); break;
		case 'd': opt.duration = atof(optarg); break;
		case 'w': opt.warmup = atof(optarg); break;
		case 'H': opt.hold = atof(optarg); break;
		case 'T': opt.timeout = atof(optarg); break;
		case 'm': opt.method = optarg; break;
		case 'P': opt.params = optarg; break;
		case 's': opt.scopes = optarg; break;
		case 'i': opt.inflight = atoi(optarg); break;
		case 'n':
			opt.max_requests = opt.max_handshakes = atol(optarg);
			break;
		case 'l': opt.log_path = optarg; break;
		case 'q': opt.quiet = true; break;
		case 'W': opt.wait_run = true; break;
		case 'h': wsb_usage(stdout); return 0;
		default: wsb_usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		if (opt.mode != MODE_READY) {
			fprintf(stderr, "wsbench: unexpected argument '%s'\n",
			    argv[optind]);
			return 2;
		}
		opt.exec_argv = argv + optind;
	}
	if (!wsb_parse_url(url)) {
		fprintf(stderr, "wsbench: refusing '%s': only ws://LOOPBACK:PORT"
		    " targets\n", url);
		return 2;
	}
	if (opt.token == NULL) {
		fprintf(stderr, "wsbench: --token (or OPENCLAW_GATEWAY_TOKEN) "
		    "is required\n");
		return 2;
	}
	if (opt.conns < 1 || opt.conns > WSB_MAX_CONNS || opt.depth < 1 ||
	    opt.depth > WSB_MAX_DEPTH || opt.duration <= 0 ||
	    opt.duration > 3600 || opt.hold < 0 || opt.hold > 3600 ||
	    opt.warmup < 0 || opt.warmup > 60 || opt.timeout <= 0 ||
	    opt.timeout > 600 || opt.inflight < 1 || opt.max_requests < 1 ||
	    strlen(opt.method) > 200 ||
	    (opt.params != NULL && strlen(opt.params) > 700)) {
		fprintf(stderr, "wsbench: option out of range\n");
		return 2;
	}
	opt.max_failures = 1000;
	/* Hard backstop: whatever happens, stop by ourselves. */
	budget = opt.timeout + opt.warmup + opt.duration + 60;
	if (opt.mode == MODE_IDLE)
		budget = opt.timeout + opt.hold + 60;
	alarm((unsigned)budget);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = wsb_on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	util_random(&seed, sizeof(seed));
	rng_state = seed | 1;
	wsb_raise_nofile(opt.conns + 64);
	wsb_build_connect();
	wsb_epfd = epoll_create1(EPOLL_CLOEXEC);
	if (wsb_epfd < 0) {
		perror("wsbench: epoll_create1");
		return 1;
	}
	switch (opt.mode) {
	case MODE_RPC: rc = wsb_mode_rpc(); break;
	case MODE_HANDSHAKE: rc = wsb_mode_handshake(); break;
	case MODE_IDLE: rc = wsb_mode_idle(); break;
	default: rc = wsb_mode_ready(); break;
	}
	fflush(stdout);
	xfree_secret(connect_frame);
	free(run.lat.v);
	for (ch = 0; ch < nconns; ch++) {
		free(conns[ch].in);
		free(conns[ch].out);
		free(conns[ch].msg);
	}
	free(conns);
	close(wsb_epfd);
	return rc;
}
