/* Unit tests for src/net: the pure classifier, plus a live listener with
 * the MHD and lws servers behind it, driven by raw-socket HTTP and WS
 * clients written here. Every wait is bounded (socket timeouts, timed
 * condition waits). */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"
#include "core/log.h"
#include "net/http.h"
#include "net/head.h"
#include "net/listener.h"
#include "net/ws.h"

#define IO_TIMEOUT_S 5
#define MAX_PAYLOAD (256 * 1024)
#define MAX_BUFFERED (1024 * 1024)

/* ---- classifier ------------------------------------------------------ */

static enum listener_class
classify(const char *s)
{
	return listener_classify(s, strlen(s), 16384, NULL);
}

START_TEST(test_classify_table)
{
	static const struct {
		const char *head;
		enum listener_class want;
	} cases[] = {
		{ "GET / HTTP/1.1\r\nHost: x\r\n\r\n", LISTENER_HTTP },
		{ "GET /rpc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
		  "Connection: Upgrade\r\n\r\n", LISTENER_WS },
		{ "GET / HTTP/1.1\r\nconnection: upgrade\r\nsec-websocket-"
		  "key: abc\r\nupgrade: WebSocket\r\nhost: x\r\n\r\n",
		  LISTENER_WS },
		{ "GET / HTTP/1.1\r\nHost: x\r\nUPGRADE:   WEBSOCKET  \r\n"
		  "CONNECTION: UPGRADE\r\n\r\n", LISTENER_WS },
		{ "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, "
		  "Upgrade\r\nUpgrade: foo, websocket\r\n\r\n", LISTENER_WS },
		{ "GET / HTTP/1.1\r\nHost: x\r\nUpgrade:websocket\r\n"
		  "Connection:upgrade\r\n\r\n", LISTENER_WS },
		{ "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
		  LISTENER_HTTP },	/* no Connection: upgrade */
		{ "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
		  "Connection: close\r\n\r\n", LISTENER_HTTP },
		{ "POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
		  "Connection: Upgrade\r\n\r\n", LISTENER_HTTP },
		/* every head waits until complete (the head deadline) */
		{ "POST", LISTENER_PENDING },
		{ "P", LISTENER_PENDING },
		{ "PUT /x", LISTENER_PENDING },
		{ "POST /v1/chat/completions HTTP/1.1\r\nX-a: ",
		  LISTENER_PENDING },
		{ "G", LISTENER_PENDING },
		{ "GET", LISTENER_PENDING },
		{ "GET ", LISTENER_PENDING },
		{ "GET / HTTP/1.1\r\nUpgrade: websocket\r\n",
		  LISTENER_PENDING },
		{ "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n"
		  "Connection: Upgrade, HTTP2-Settings\r\n\r\n",
		  LISTENER_HTTP },
		{ "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websockets\r\n"
		  "Connection: Upgrade\r\n\r\n", LISTENER_HTTP },
		{ "GET / HTTP/1.1\r\nHost: x\r\nX-Note: upgrade: websocket\r\n"
		  "Connection: Upgrade\r\n\r\n", LISTENER_HTTP },
		{ "GET / HTTP/1.1\r\nHost: x\r\nX-Upgrade: websocket\r\n"
		  "Connection: Upgrade\r\n\r\n", LISTENER_HTTP },
		{ "GET /?Upgrade: websocket HTTP/1.1\r\nHost: x\r\n"
		  "Connection: Upgrade\r\n\r\n", LISTENER_REFUSE },
		{ "get / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
		  "Connection: Upgrade\r\n\r\n", LISTENER_HTTP },
		/* RFC 9112 framing: refused before anyone sees them */
		{ "GET /healthz HTTP/1.1\nHost: x\n\n", LISTENER_REFUSE },
		{ "GET / HTTP/1.1\r\nHost: x\n", LISTENER_REFUSE },
		{ "GET / HTTP/1.1\r\n\r\n", LISTENER_REFUSE },
		{ "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		  LISTENER_REFUSE },
		{ "GET / HTTP/1.0\r\n\r\n", LISTENER_HTTP },
		{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n", LISTENER_REFUSE },
		{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
		  "Content-Length: 6\r\n\r\n", LISTENER_REFUSE },
		{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
		  "Content-Length: 5\r\n\r\n", LISTENER_REFUSE },
		{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n",
		  LISTENER_REFUSE },
		{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
		  LISTENER_REFUSE },
		{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n",
		  LISTENER_HTTP },
		{ "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
		  "chunked\r\n\r\n", LISTENER_HTTP },
		{ "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, "
		  "chunked\r\n\r\n", LISTENER_REFUSE },
		{ "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
		  LISTENER_REFUSE },
		{ "GET / HTTP/1.1\r\nHost: x\r\nX-a: 1\r\n  folded\r\n\r\n",
		  LISTENER_REFUSE },
		{ "GET / HTTP/1.1\r\nHost : x\r\n\r\n", LISTENER_REFUSE },
		{ "GET / HTTP/1.1\r\nHost: x\r\nNo-colon\r\n\r\n",
		  LISTENER_REFUSE },
		{ "GET / HTTP/9.9\r\nHost: x\r\n\r\n", LISTENER_REFUSE },
		{ "GET / HTTP/1.1 \r\nHost: x\r\n\r\n", LISTENER_REFUSE },
		{ "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", LISTENER_REFUSE },
		{ "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", LISTENER_REFUSE },
		{ "GET / HTTP/1.1\r\nHost: x\rX\r\n\r\n", LISTENER_REFUSE },
		{ "GET / HTTP/1.1\r\nHost: x\r", LISTENER_PENDING },
		{ "garbage\r\n", LISTENER_REFUSE },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++)
		ck_assert_msg(classify(cases[i].head) == cases[i].want,
			      "case %zu: %s", i, cases[i].head);
}
END_TEST

START_TEST(test_classify_window)
{
	static char buf[16384];
	const char *status = NULL;

	/* A head that fills the window without ending: 431. */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "GET / HTTP/1.1\r\nX-Big: ", 23);
	ck_assert_int_eq(listener_classify(buf, sizeof(buf), sizeof(buf),
					   &status), LISTENER_REFUSE);
	ck_assert_str_eq(status, "431 Request Header Fields Too Large");
	ck_assert_int_eq(listener_classify(buf, 100, sizeof(buf), NULL),
			 LISTENER_PENDING);
	ck_assert_int_eq(listener_classify(buf, 0, sizeof(buf), NULL),
			 LISTENER_PENDING);
}
END_TEST

/* A 12 KiB WS upgrade (large cookies) is a WS upgrade, not a 404. */
START_TEST(test_classify_big_upgrade)
{
	static char buf[16384];
	size_t n;

	n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: x\r\n"
			     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
			     "Cookie: ");
	memset(buf + n, 'c', 12 * 1024);
	n += 12 * 1024;
	memcpy(buf + n, "\r\n\r\n", 4);
	n += 4;
	ck_assert_int_eq(listener_classify(buf, n, sizeof(buf), NULL),
			 LISTENER_WS);
}
END_TEST

START_TEST(test_head_fields_bound)
{
	char *buf = xstrdup("GET / HTTP/1.1\r\nHost: x\r\n"), *next;
	struct head_info hi;
	int i;

	for (i = 0; i < HEAD_MAX_FIELDS; i++) {
		next = xasprintf("%sX-%d: y\r\n", buf, i);
		free(buf);
		buf = next;
	}
	next = xasprintf("%s\r\n", buf);
	ck_assert_int_eq(head_check(next, strlen(next), 65536, &hi),
			 HEAD_TOO_BIG);
	free(next);
	free(buf);
	/* the limits of each verdict */
	ck_assert_int_eq(head_check("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27,
				    65536, &hi), HEAD_OK);
	ck_assert_uint_eq(hi.head_len, 27);
	ck_assert_int_eq(hi.has_body, 0);
	ck_assert_int_eq(head_check("GET / HTTP/2.0\r\n", 16, 65536, &hi),
			 HEAD_BAD_VERSION);
	ck_assert_str_eq(head_status_line(HEAD_BAD_VERSION),
			 "505 HTTP Version Not Supported");
	ck_assert_int_eq(head_check("GET / HTTP/1.1\r\nX: a\0b\r\n", 24,
				    65536, &hi), HEAD_BAD);
	ck_assert_int_eq(head_check("GET / HTTP/1.1\r\nX: a\0", 21, 65536,
				    &hi), HEAD_BAD);
}
END_TEST

START_TEST(test_addr_format)
{
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;
	char buf[64];
	int lo = -1;

	memset(&s4, 0, sizeof(s4));
	s4.sin_family = AF_INET;
	inet_pton(AF_INET, "127.1.2.3", &s4.sin_addr);
	listener_addr_format((struct sockaddr *)&s4, sizeof(s4), buf,
			     sizeof(buf), &lo);
	ck_assert_str_eq(buf, "127.1.2.3");
	ck_assert_int_eq(lo, 1);
	inet_pton(AF_INET, "10.0.0.1", &s4.sin_addr);
	listener_addr_format((struct sockaddr *)&s4, sizeof(s4), buf,
			     sizeof(buf), &lo);
	ck_assert_int_eq(lo, 0);
	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::1", &s6.sin6_addr);
	listener_addr_format((struct sockaddr *)&s6, sizeof(s6), buf,
			     sizeof(buf), &lo);
	ck_assert_str_eq(buf, "::1");
	ck_assert_int_eq(lo, 1);
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &s6.sin6_addr);
	listener_addr_format((struct sockaddr *)&s6, sizeof(s6), buf,
			     sizeof(buf), &lo);
	ck_assert_str_eq(buf, "127.0.0.1");
	ck_assert_int_eq(lo, 1);
	inet_pton(AF_INET6, "2001:db8::1", &s6.sin6_addr);
	listener_addr_format((struct sockaddr *)&s6, sizeof(s6), buf,
			     sizeof(buf), &lo);
	ck_assert_int_eq(lo, 0);
}
END_TEST

/* ---- live fixture ---------------------------------------------------- */

struct tconn {
	struct ws_conn *c;
	struct ws_timer *flood;
};

static struct {
	struct listener *l;
	struct http_server *h;
	struct ws_server *w;
	int port;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t lws_tid;
	int have_lws_tid;
	int opened, closed, too_big;
	pthread_t post_tid;
	int posted;
	int gone, write_failed, producers;
	struct http_async *hung;
	/* "slowdrop": the droppable frames queued before the first skip,
	 * whether the connection was closing then, what the non-droppable
	 * frame after it returned and whether it was closing then. */
	int sd_queued, sd_closing_after_drop, sd_last_rc, sd_closing;
	int slowdrop_done;
} fx = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static void
fx_to_ws(void *arg, int fd, const struct sockaddr *sa, socklen_t salen)
{
	(void)arg;
	(void)sa;
	(void)salen;
	ws_server_adopt(fx.w, fd);
}

static void
fx_to_http(void *arg, int fd, const struct sockaddr *sa, socklen_t salen)
{
	(void)arg;
	http_server_adopt(fx.h, fd, sa, salen);
}

static size_t
fx_body_limit(struct http_req *r, void *arg)
{
	(void)arg;
	if (strcmp(http_req_path(r), "/hooks") == 0) {
		http_req_set_too_big_body(r, "{\"ok\":false}");
		return 16;
	}
	return strncmp(http_req_path(r), "/small", 6) == 0 ? 1024 : 1 << 20;
}

static void fx_signal(int *counter);

/* Async producers: a thread answers /later, streams /stream and /endless. */
struct fx_job {
	struct http_async *a;
	int kind;	/* 0 later, 1 stream, 2 endless, 3 stream-begin */
};

static void *
fx_producer(void *arg)
{
	struct fx_job *j = arg;
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	char line[64];
	int i;

	nanosleep(&ts, NULL);
	if (j->kind == 0) {
		http_async_header(j->a, "X-Later", "1");
		http_async_reply_json(j->a, 201, "{\"later\":true}");
		goto out;
	}
	if (j->kind == 3)
		http_async_stream_begin(j->a, 200, "text/event-stream");
	for (i = 0; j->kind == 2 || i < 3; i++) {
		snprintf(line, sizeof(line), "data: %d\n\n", i);
		if (http_async_write(j->a, line, strlen(line)) != 0) {
			fx_signal(&fx.write_failed);
			break;
		}
		nanosleep(&ts, NULL);
	}
	http_async_end(j->a);
out:
	free(j);
	fx_signal(&fx.producers);
	return NULL;
}

static void
fx_gone(void *arg, int early)
{
	(void)arg;
	if (early)
		fx_signal(&fx.gone);
}

static void
fx_async(struct http_req *r, int kind)
{
	struct fx_job *j = xcalloc(1, sizeof(*j));
	pthread_t t;

	j->kind = kind;
	if (kind == 1 || kind == 2) {
		http_reply_header(r, "Cache-Control", "no-cache");
		j->a = http_reply_stream(r, 200, "text/event-stream");
	} else {
		j->a = http_reply_later(r);
	}
	http_async_on_done(j->a, fx_gone, NULL);
	ck_assert_int_eq(pthread_create(&t, NULL, fx_producer, j), 0);
	pthread_detach(t);
}

static void
fx_http(struct http_req *r, void *arg)
{
	const char *q = http_req_query(r, "a");
	const char *ua = http_req_header(r, "user-agent");
	const char *path = http_req_path(r);
	size_t len;
	char *json;

	(void)arg;
	if (strcmp(path, "/noreply") == 0)
		return;
	if (strcmp(path, "/later") == 0 || strcmp(path, "/stream") == 0 ||
	    strcmp(path, "/endless") == 0 || strcmp(path, "/begin") == 0) {
		fx_async(r, path[1] == 'l' ? 0 : path[1] == 's' ? 1 :
			 path[1] == 'e' ? 2 : 3);
		return;
	}
	if (strcmp(path, "/hang") == 0) {
		struct http_async *a = http_reply_later(r);

		http_async_on_done(a, fx_gone, NULL);
		__atomic_store_n(&fx.hung, a, __ATOMIC_RELEASE);
		return;
	}
	http_req_body(r, &len);
	json = xasprintf("{\"method\":\"%s\",\"path\":\"%s\",\"len\":%zu,"
			 "\"ip\":\"%s\",\"lo\":%d,\"a\":\"%s\","
			 "\"ua\":\"%s\"}",
			 http_req_method(r), http_req_path(r), len,
			 http_req_peer_ip(r), http_req_peer_is_loopback(r),
			 q ? q : "", ua ? ua : "");
	http_reply_header(r, "X-Test", "yes");
	http_reply_json(r, 200, json);
	free(json);
}

static void
fx_signal(int *counter)
{
	pthread_mutex_lock(&fx.mu);
	(*counter)++;
	pthread_cond_broadcast(&fx.cv);
	pthread_mutex_unlock(&fx.mu);
}

/* Wait until *counter >= want, at most ms. Returns the counter. */
static int
fx_wait(int *counter, int want, int ms)
{
	struct timespec ts;
	int v;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&fx.mu);
	while (*counter < want)
		if (pthread_cond_timedwait(&fx.cv, &fx.mu, &ts) == ETIMEDOUT)
			break;
	v = *counter;
	pthread_mutex_unlock(&fx.mu);
	return v;
}

static void
fx_ws_open(struct ws_conn *c, void *arg)
{
	struct tconn *t = xcalloc(1, sizeof(*t));

	(void)arg;
	t->c = c;
	ws_conn_set_user(c, t);
	pthread_mutex_lock(&fx.mu);
	fx.lws_tid = pthread_self();
	fx.have_lws_tid = 1;
	pthread_mutex_unlock(&fx.mu);
	ws_conn_send(c, "hello", 5);
	fx_signal(&fx.opened);
}

static void
fx_flood(void *arg)
{
	struct tconn *t = arg;
	static char chunk[64 * 1024];
	int i;

	t->flood = NULL;
	memset(chunk, 'x', sizeof(chunk));
	for (i = 0; i < 4; i++)
		if (ws_conn_send(t->c, chunk, sizeof(chunk)) < 0)
			return;
	t->flood = ws_timer_add(fx.w, 1, fx_flood, t);
}

/* 20 frames sharing one text, each with its own number spliced in (the
 * last the largest there is), queued in one callback: they leave in one
 * write. */
static void
fx_burst(struct ws_conn *c)
{
	struct ws_shared *sh = ws_shared_new(xstrdup("burst:#"), 7, 6);
	int i;

	for (i = 0; i < 20; i++)
		ck_assert_int_eq(ws_conn_send_shared(c, sh, i < 19 ?
			(uint64_t)i : UINT64_MAX, 0), 0);
	ws_shared_unref(sh);
}

/* A job that posts another while it runs (the lws thread's queue was
 * emptied when it was taken): the second runs in the same drain, and
 * both frames leave in one write. */
static void
fx_chain2(void *arg)
{
	ws_conn_send(arg, "chain:2", 7);
}

static void
fx_chain1(void *arg)
{
	ws_conn_send(arg, "chain:1", 7);
	ck_assert_int_eq(ws_post(fx.w, fx_chain2, arg), 0);
}

/* Droppable 64 KiB frames until one is skipped (the queue is at
 * MAX_BUFFERED: nothing drains during one callback), then one that is
 * not droppable. */
static void
fx_slowdrop(struct ws_conn *c)
{
	size_t n = 64 * 1024;
	char *text = xmalloc(n);
	struct ws_shared *sh;
	int i, rc = 0;

	memset(text, 'd', n);
	/* 64 KiB frames: the text and one digit */
	sh = ws_shared_new(text, n - 1, 0);
	for (i = 0; i < 2 * MAX_BUFFERED / (64 * 1024) && rc == 0; i++)
		rc = ws_conn_send_shared(c, sh, 7, WS_SEND_DROP_IF_SLOW);
	pthread_mutex_lock(&fx.mu);
	fx.sd_queued = rc == 1 ? i - 1 : -1;
	fx.sd_closing_after_drop = ws_conn_is_closing(c);
	pthread_mutex_unlock(&fx.mu);
	rc = ws_conn_send_shared(c, sh, 7, 0);
	pthread_mutex_lock(&fx.mu);
	fx.sd_last_rc = rc;
	fx.sd_closing = ws_conn_is_closing(c);
	pthread_mutex_unlock(&fx.mu);
	ws_shared_unref(sh);
	fx_signal(&fx.slowdrop_done);
}

static void
fx_ws_message(struct ws_conn *c, const char *data, size_t len, int binary,
	      void *arg)
{
	struct tconn *t = ws_conn_user(c);
	char *out;

	(void)arg;
	if (binary) {
		out = xasprintf("binary:%zu", len);
		ws_conn_send(c, out, strlen(out));
		free(out);
		return;
	}
	if (len == 8 && memcmp(data, "close1008", 8) == 0) {
		ws_conn_send(c, "bye", 3);
		ws_conn_close(c, 1008, "policy says no");
		return;
	}
	if (len == 7 && memcmp(data, "longclo", 7) == 0) {
		char reason[300];

		memset(reason, 'r', sizeof(reason));
		reason[sizeof(reason) - 1] = '\0';
		ws_conn_close(c, 4001, reason);
		return;
	}
	if (len == 4 && memcmp(data, "drop", 4) == 0) {
		ws_conn_close(c, 0, NULL);
		return;
	}
	if (len == 5 && memcmp(data, "flood", 5) == 0) {
		fx_flood(t);
		return;
	}
	if (len == 5 && memcmp(data, "burst", 5) == 0) {
		fx_burst(c);
		return;
	}
	if (len == 5 && memcmp(data, "chain", 5) == 0) {
		ck_assert_int_eq(ws_post(fx.w, fx_chain1, c), 0);
		return;
	}
	if (len == 8 && memcmp(data, "slowdrop", 8) == 0) {
		fx_slowdrop(c);
		return;
	}
	if (len == 4 && memcmp(data, "hdrs", 4) == 0) {
		const char *o = ws_conn_header(c, "origin");
		const char *p = ws_conn_header(c, "x-forwarded-proto");
		const char *ri = ws_conn_header(c, "X-Real-IP");
		const char *ua = ws_conn_header(c, "user-agent");
		const char *path = ws_conn_header(c, ":path");

		out = xasprintf("%s|%d|%s|%s|%s|%s|%s|%d",
				ws_conn_peer_ip(c),
				ws_conn_peer_is_loopback(c), o ? o : "-",
				p ? p : "-", ri ? ri : "-", ua ? ua : "-",
				path ? path : "-", ws_conn_id(c) > 0);
		ws_conn_send(c, out, strlen(out));
		free(out);
		return;
	}
	ws_conn_send(c, data, len);
}

static void
fx_ws_too_big(struct ws_conn *c, size_t len, void *arg)
{
	const char *path = ws_conn_header(c, ":path");

	(void)arg;
	(void)len;
	fx_signal(&fx.too_big);
	if (path != NULL && strcmp(path, "/preauth") == 0)
		ws_conn_close(c, 1009, "preauth payload too large");
}

static void
fx_ws_close(struct ws_conn *c, void *arg)
{
	struct tconn *t = ws_conn_user(c);

	(void)arg;
	if (t != NULL) {
		ws_timer_cancel(t->flood);
		free(t);
	}
	fx_signal(&fx.closed);
}

static void
fx_setup(void)
{
	static const char *const hosts[] = { "127.0.0.1" };
	struct http_server_cbs hc = { fx_body_limit, fx_http, NULL, NULL };
	struct ws_server_cbs wc = { fx_ws_open, fx_ws_message, fx_ws_too_big,
				    fx_ws_close, NULL };
	struct ws_server_opts wo = { MAX_PAYLOAD, MAX_BUFFERED };
	struct listener_cbs lc = { fx_to_ws, fx_to_http, NULL };
	const char *failed = NULL;

	signal(SIGPIPE, SIG_IGN);
	log_set_console(0);
	fx.opened = fx.closed = fx.too_big = fx.posted = 0;
	fx.gone = fx.write_failed = fx.producers = 0;
	fx.slowdrop_done = 0;
	fx.hung = NULL;
	fx.h = http_server_new(&hc);
	ck_assert_int_eq(http_server_start(fx.h), 0);
	fx.w = ws_server_new(&wo, &wc);
	ck_assert_int_eq(ws_server_start(fx.w), 0);
	ck_assert_int_eq(listener_bind(&fx.l, hosts, 1, 0, 0, 0, &failed),
			 0);
	listener_set_pending_timeout(fx.l, 300);
	fx.port = listener_port(fx.l);
	ck_assert_int_gt(fx.port, 0);
	ck_assert_int_eq(listener_start(fx.l, &lc), 0);
}

static void
fx_teardown(void)
{
	listener_free(fx.l);
	ws_server_stop(fx.w, 1001, "test over", 2000);
	ws_server_free(fx.w);
	http_server_free(fx.h);
	fx.l = NULL;
	fx.w = NULL;
	fx.h = NULL;
}

/* ---- raw-socket clients ---------------------------------------------- */

struct rd {
	int fd;
	unsigned char buf[1 << 16];
	size_t len;
};

static int
tcp_connect(int port, int rcvbuf)
{
	struct sockaddr_in sa;
	struct timeval tv = { IO_TIMEOUT_S, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
			   sizeof(rcvbuf));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void
send_all(int fd, const void *p, size_t n)
{
	const char *b = p;

	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);

		ck_assert_msg(w > 0, "send: %s", strerror(errno));
		b += w;
		n -= (size_t)w;
	}
}

/* Make sure at least n bytes are buffered; 0 on EOF/error. */
static int
rd_fill(struct rd *r, size_t n)
{
	while (r->len < n) {
		ssize_t got;

		ck_assert(n <= sizeof(r->buf));
		got = recv(r->fd, r->buf + r->len, sizeof(r->buf) - r->len, 0);
		if (got <= 0)
			return 0;
		r->len += (size_t)got;
	}
	return 1;
}

static void
rd_consume(struct rd *r, size_t n)
{
	memmove(r->buf, r->buf + n, r->len - n);
	r->len -= n;
}

/* Read an HTTP head into head (NUL-terminated); returns its length. */
static size_t
rd_head(struct rd *r, char *head, size_t cap)
{
	for (;;) {
		unsigned char *e = memmem(r->buf, r->len, "\r\n\r\n", 4);

		if (e != NULL) {
			size_t n = (size_t)(e - r->buf) + 4;

			ck_assert(n < cap);
			memcpy(head, r->buf, n);
			head[n] = '\0';
			rd_consume(r, n);
			return n;
		}
		ck_assert_msg(rd_fill(r, r->len + 1), "EOF in HTTP head");
	}
}

/* Read one HTTP response with a Content-Length body. Returns status. */
static int
http_response(struct rd *r, char *head, size_t cap, char *body,
	      size_t bcap)
{
	const char *cl;
	size_t n = 0;
	int status = 0;

	rd_head(r, head, cap);
	ck_assert(sscanf(head, "HTTP/1.1 %d", &status) == 1);
	cl = strcasestr(head, "\r\ncontent-length:");
	if (cl != NULL)
		n = strtoul(cl + 17, NULL, 10);
	ck_assert(n < bcap);
	ck_assert(rd_fill(r, n));
	memcpy(body, r->buf, n);
	body[n] = '\0';
	rd_consume(r, n);
	return status;
}

START_TEST(test_http_get_keepalive)
{
	struct rd *r = xcalloc(1, sizeof(*r));
	char head[8192], body[8192];
	const char *req = "GET /hello?a=b%20c HTTP/1.1\r\nHost: x\r\n"
			  "User-Agent: t/1\r\n\r\n";

	r->fd = tcp_connect(fx.port, 0);
	send_all(r->fd, req, strlen(req));
	ck_assert_int_eq(http_response(r, head, sizeof(head), body,
				       sizeof(body)), 200);
	ck_assert_ptr_nonnull(strcasestr(head,
		"\r\nX-Content-Type-Options: nosniff\r\n"));
	ck_assert_ptr_nonnull(strcasestr(head,
		"\r\nReferrer-Policy: no-referrer\r\n"));
	ck_assert_ptr_nonnull(strcasestr(head, "\r\nX-Test: yes\r\n"));
	ck_assert_ptr_nonnull(strcasestr(head,
		"\r\nContent-Type: application/json"));
	ck_assert_ptr_null(strcasestr(head, "Connection: close"));
	ck_assert_str_eq(body, "{\"method\":\"GET\",\"path\":\"/hello\","
			 "\"len\":0,\"ip\":\"127.0.0.1\",\"lo\":1,"
			 "\"a\":\"b c\",\"ua\":\"t/1\"}");
	/* Second request, same connection; this time split mid-head. */
	req = "POST /echo HTTP/1.1\r\nHost: x\r\n";
	send_all(r->fd, req, strlen(req));
	{
		struct pollfd p = { r->fd, POLLIN, 0 };

		ck_assert_int_eq(poll(&p, 1, 50), 0);
	}
	req = "Content-Length: 5\r\n\r\nabcde";
	send_all(r->fd, req, strlen(req));
	ck_assert_int_eq(http_response(r, head, sizeof(head), body,
				       sizeof(body)), 200);
	ck_assert_ptr_nonnull(strstr(body, "\"method\":\"POST\""));
	ck_assert_msg(strstr(body, "\"len\":5") != NULL, "%s", body);
	ck_assert_ptr_nonnull(strcasestr(head, "nosniff"));
	close(r->fd);
	free(r);
}
END_TEST

START_TEST(test_http_pipelined_and_noreply)
{
	struct rd *r = xcalloc(1, sizeof(*r));
	char head[8192], body[8192];
	const char *req = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
			  "GET /noreply HTTP/1.1\r\nHost: x\r\n\r\n";

	r->fd = tcp_connect(fx.port, 0);
	send_all(r->fd, req, strlen(req));
	ck_assert_int_eq(http_response(r, head, sizeof(head), body,
				       sizeof(body)), 200);
	ck_assert_ptr_nonnull(strstr(body, "\"path\":\"/a\""));
	ck_assert_int_eq(http_response(r, head, sizeof(head), body,
				       sizeof(body)), 500);
	ck_assert_ptr_nonnull(strcasestr(head, "nosniff"));
	ck_assert_ptr_nonnull(strcasestr(head, "no-referrer"));
	close(r->fd);
	free(r);
}
END_TEST

START_TEST(test_http_too_big)
{
	struct rd *r = xcalloc(1, sizeof(*r));
	char head[8192], body[8192];
	const char *req = "POST /small HTTP/1.1\r\nHost: x\r\n"
			  "Content-Length: 2000\r\n\r\n";
	const char *want = "{\"error\":{\"message\":\"Payload too large\","
			   "\"type\":\"invalid_request_error\"}}";

	r->fd = tcp_connect(fx.port, 0);
	send_all(r->fd, req, strlen(req));
	ck_assert_int_eq(http_response(r, head, sizeof(head), body,
				       sizeof(body)), 413);
	ck_assert_str_eq(body, want);
	ck_assert_ptr_nonnull(strcasestr(head, "nosniff"));
	ck_assert_ptr_nonnull(strcasestr(head, "no-referrer"));
	close(r->fd);

	/* Chunked: the limit is only found while reading the body. */
	memset(r, 0, sizeof(*r));
	r->fd = tcp_connect(fx.port, 0);
	req = "POST /small HTTP/1.1\r\nHost: x\r\n"
	      "Transfer-Encoding: chunked\r\n\r\n";
	send_all(r->fd, req, strlen(req));
	{
		char chunk[1100];
		char line[16];

		memset(chunk, 'z', sizeof(chunk));
		snprintf(line, sizeof(line), "%zx\r\n", sizeof(chunk));
		send_all(r->fd, line, strlen(line));
		send_all(r->fd, chunk, sizeof(chunk));
		send_all(r->fd, "\r\n0\r\n\r\n", 7);
	}
	ck_assert_int_eq(http_response(r, head, sizeof(head), body,
				       sizeof(body)), 413);
	ck_assert_str_eq(body, want);
	close(r->fd);

	/* Within the limit is fine. */
	memset(r, 0, sizeof(*r));
	r->fd = tcp_connect(fx.port, 0);
	req = "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\n\r\n";
	send_all(r->fd, req, strlen(req));
	memset(body, 'y', 1024);
	send_all(r->fd, body, 1024);
	ck_assert_int_eq(http_response(r, head, sizeof(head), body,
				       sizeof(body)), 200);
	ck_assert_ptr_nonnull(strstr(body, "\"len\":1024"));
	close(r->fd);
	free(r);
}
END_TEST

/* Read a chunked body to its end into out; returns its length. */
static size_t
rd_chunked(struct rd *r, char *out, size_t cap)
{
	size_t n = 0;

	for (;;) {
		unsigned char *e;
		size_t k;

		while ((e = memmem(r->buf, r->len, "\r\n", 2)) == NULL)
			ck_assert_msg(rd_fill(r, r->len + 1), "EOF in chunk");
		k = strtoul((char *)r->buf, NULL, 16);
		rd_consume(r, (size_t)(e - r->buf) + 2);
		ck_assert(rd_fill(r, k + 2));
		ck_assert(n + k < cap);
		memcpy(out + n, r->buf, k);
		n += k;
		rd_consume(r, k + 2);
		if (k == 0)
			break;
	}
	out[n] = '\0';
	return n;
}

START_TEST(test_http_async_later)
{
	struct rd *r = xcalloc(1, sizeof(*r));
	char head[8192], body[8192];
	const char *req = "GET /later HTTP/1.1\r\nHost: x\r\n\r\n"
			  "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";

	r->fd = tcp_connect(fx.port, 0);
	send_all(r->fd, req, strlen(req));
	ck_assert_int_eq(http_response(r, head, sizeof(head), body,
				       sizeof(body)), 201);
	ck_assert_str_eq(body, "{\"later\":true}");
	ck_assert_ptr_nonnull(strcasestr(head, "\r\nX-Later: 1\r\n"));
	ck_assert_ptr_nonnull(strcasestr(head, "nosniff"));
	/* keep-alive: the next request on the same connection works */
	ck_assert_int_eq(http_response(r, head, sizeof(head), body,
				       sizeof(body)), 200);
	ck_assert_ptr_nonnull(strstr(body, "\"path\":\"/a\""));
	ck_assert(fx_wait(&fx.producers, 1, IO_TIMEOUT_S * 1000) >= 1);
	ck_assert_int_eq(fx.gone, 0);
	close(r->fd);
	free(r);
}
END_TEST

START_TEST(test_http_async_stream)
{
	struct rd *r = xcalloc(1, sizeof(*r));
	char head[8192], body[8192];
	const char *req = "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n";
	int round;

	r->fd = tcp_connect(fx.port, 0);
	for (round = 0; round < 2; round++) {
		send_all(r->fd, req, strlen(req));
		rd_head(r, head, sizeof(head));
		ck_assert_ptr_nonnull(strstr(head, "HTTP/1.1 200"));
		ck_assert_ptr_nonnull(strcasestr(head,
			"Transfer-Encoding: chunked"));
		ck_assert_ptr_nonnull(strcasestr(head,
			"Content-Type: text/event-stream"));
		ck_assert(round == 1 || strcasestr(head, "no-cache"));
		ck_assert_ptr_nonnull(strcasestr(head, "nosniff"));
		rd_chunked(r, body, sizeof(body));
		ck_assert_str_eq(body, "data: 0\n\ndata: 1\n\ndata: 2\n\n");
		/* a deferred handle that begins a stream */
		req = "GET /begin HTTP/1.1\r\nHost: x\r\n\r\n";
	}
	ck_assert(fx_wait(&fx.producers, 2, IO_TIMEOUT_S * 1000) >= 2);
	ck_assert_int_eq(fx.gone, 0);
	close(r->fd);
	free(r);
}
END_TEST

START_TEST(test_http_async_client_gone)
{
	struct rd *r = xcalloc(1, sizeof(*r));
	char head[8192];
	const char *req = "GET /endless HTTP/1.1\r\nHost: x\r\n\r\n";

	r->fd = tcp_connect(fx.port, 0);
	send_all(r->fd, req, strlen(req));
	rd_head(r, head, sizeof(head));
	ck_assert(rd_fill(r, 1));
	close(r->fd);
	/* The next write after the close fails; MHD reports completion. */
	ck_assert(fx_wait(&fx.gone, 1, IO_TIMEOUT_S * 1000) >= 1);
	ck_assert(fx_wait(&fx.write_failed, 1, IO_TIMEOUT_S * 1000) >= 1);
	ck_assert(fx_wait(&fx.producers, 1, IO_TIMEOUT_S * 1000) >= 1);
	free(r);
}
END_TEST

START_TEST(test_http_async_stop_and_413_body)
{
	struct rd *r = xcalloc(1, sizeof(*r));
	char head[8192], body[8192];
	const char *req = "POST /hooks HTTP/1.1\r\nHost: x\r\n"
			  "Content-Length: 100\r\n\r\n";
	int i;

	r->fd = tcp_connect(fx.port, 0);
	send_all(r->fd, req, strlen(req));
	ck_assert_int_eq(http_response(r, head, sizeof(head), body,
				       sizeof(body)), 413);
	ck_assert_str_eq(body, "{\"ok\":false}");
	close(r->fd);

	/* A deferred reply never answered: stop resumes it with a 503. */
	memset(r, 0, sizeof(*r));
	r->fd = tcp_connect(fx.port, 0);
	req = "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n";
	send_all(r->fd, req, strlen(req));
	for (i = 0; i < 500 && __atomic_load_n(&fx.hung,
						 __ATOMIC_ACQUIRE) == NULL;
	     i++) {
		struct timespec ts = { 0, 2 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	ck_assert_ptr_nonnull(fx.hung);
	listener_free(fx.l);
	fx.l = NULL;
	http_server_stop(fx.h);
	ck_assert_int_eq(http_response(r, head, sizeof(head), body,
				       sizeof(body)), 503);
	ck_assert(fx_wait(&fx.gone, 1, IO_TIMEOUT_S * 1000) >= 1);
	/* the producer's late reply is a no-op */
	http_async_reply_json(fx.hung, 200, "{}");
	fx.hung = NULL;
	close(r->fd);
	free(r);
}
END_TEST

START_TEST(test_listener_idle_and_describe)
{
	static const char *const hosts[] = { "127.0.0.1" };
	struct listener *l2 = NULL;
	const char *failed = NULL;
	char buf[16], *d, *want;
	int fd, fds[4];
	ssize_t n;
	struct timespec t0, t1;
	long ms;

	d = listener_describe(fx.l);
	want = xasprintf("127.0.0.1:%d", fx.port);
	ck_assert_str_eq(d, want);
	free(d);
	free(want);
	ck_assert_int_eq(listener_fds(fx.l, fds, 4), 1);

	/* An idle unclassified socket is closed after the pending timeout
	 * (300 ms in the fixture). */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	fd = tcp_connect(fx.port, 0);
	send_all(fd, "GE", 2);
	/* EOF, or a reset since "GE" was never read. */
	n = recv(fd, buf, sizeof(buf), 0);
	ck_assert_msg(n == 0 || (n < 0 && errno == ECONNRESET),
		      "recv %zd: %s", n, strerror(errno));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 +
	     (t1.tv_nsec - t0.tv_nsec) / 1000000;
	ck_assert_int_ge(ms, 250);
	ck_assert_int_lt(ms, 3000);
	close(fd);

	/* The port is taken: bounded retries, then the failing host. */
	ck_assert_int_eq(listener_bind(&l2, hosts, 1, fx.port, 2, 10,
				       &failed), -EADDRINUSE);
	ck_assert_ptr_null(l2);
	ck_assert_str_eq(failed, "127.0.0.1");
}
END_TEST

START_TEST(test_listener_ipv6)
{
	static const char *const hosts[] = { "127.0.0.1", "::1" };
	struct listener *l = NULL;
	const char *failed = NULL;
	char *d, *want;
	int r, port;

	/* Port 0 on two hosts gives two ports; bind v4 first, then both. */
	r = listener_bind(&l, hosts + 1, 1, 0, 0, 0, &failed);
	if (r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT)
		return;	/* no IPv6 loopback here */
	ck_assert_int_eq(r, 0);
	port = listener_port(l);
	listener_free(l);
	l = NULL;
	r = listener_bind(&l, hosts, 2, port, 0, 0, &failed);
	if (r == -EADDRINUSE)
		return;	/* lost a race for the port */
	ck_assert_int_eq(r, 0);
	d = listener_describe(l);
	want = xasprintf("127.0.0.1:%d, [::1]:%d", port, port);
	ck_assert_str_eq(d, want);
	free(d);
	free(want);
	listener_free(l);
}
END_TEST

START_TEST(test_listener_adopt)
{
	static const char *const hosts[] = { "127.0.0.1" };
	struct listener_cbs lc = { fx_to_ws, fx_to_http, NULL };
	struct listener *l1 = NULL, *l2;
	struct rd *r = xcalloc(1, sizeof(*r));
	char head[4096], body[4096];
	const char *failed = NULL;
	const char *req = "GET /adopted HTTP/1.1\r\nHost: x\r\n"
			  "Connection: close\r\n\r\n";
	int fds[4], n, port;

	ck_assert_int_eq(listener_bind(&l1, hosts, 1, 0, 0, 0, &failed), 0);
	port = listener_port(l1);
	ck_assert_int_eq(listener_start(l1, &lc), 0);
	n = listener_fds(l1, fds, 4);
	ck_assert_int_eq(n, 1);
	/* Stop keeping the fds: they survive listener_free. */
	listener_stop(l1, 1);
	listener_free(l1);
	l2 = listener_adopt(fds, n);
	ck_assert_ptr_nonnull(l2);
	ck_assert_int_eq(listener_port(l2), port);
	ck_assert_int_eq(listener_start(l2, &lc), 0);
	r->fd = tcp_connect(port, 0);
	send_all(r->fd, req, strlen(req));
	ck_assert_int_eq(http_response(r, head, sizeof(head), body,
				       sizeof(body)), 200);
	ck_assert_ptr_nonnull(strstr(body, "\"path\":\"/adopted\""));
	close(r->fd);
	free(r);
	listener_free(l2);
}
END_TEST

/* ---- WebSocket client ------------------------------------------------ */

static struct rd *
ws_connect(const char *path, const char *extra, int rcvbuf)
{
	struct rd *r = xcalloc(1, sizeof(*r));
	char head[8192], *req;

	r->fd = tcp_connect(fx.port, rcvbuf);
	req = xasprintf("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			"upgrade: WebSocket\r\nConnection: Upgrade\r\n"
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			"Sec-WebSocket-Version: 13\r\n%s\r\n", path,
			extra ? extra : "");
	send_all(r->fd, req, strlen(req));
	free(req);
	rd_head(r, head, sizeof(head));
	ck_assert_msg(strncmp(head, "HTTP/1.1 101", 12) == 0, "%s", head);
	ck_assert_ptr_nonnull(strstr(head, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
	ck_assert_ptr_null(strcasestr(head, "permessage-deflate"));
	return r;
}

static void
ws_send(int fd, int opcode, int fin, const void *data, size_t len)
{
	static const unsigned char mask[4] = { 0x12, 0x34, 0x56, 0x78 };
	unsigned char *f = xmalloc(len + 14);
	const unsigned char *d = data;
	size_t n = 0, i;

	f[n++] = (unsigned char)((fin ? 0x80 : 0) | opcode);
	if (len < 126) {
		f[n++] = (unsigned char)(0x80 | len);
	} else if (len < 65536) {
		f[n++] = 0x80 | 126;
		f[n++] = (unsigned char)(len >> 8);
		f[n++] = (unsigned char)len;
	} else {
		f[n++] = 0x80 | 127;
		for (i = 0; i < 8; i++)
			f[n++] = (unsigned char)((uint64_t)len >>
						 (56 - 8 * i));
	}
	memcpy(f + n, mask, 4);
	n += 4;
	for (i = 0; i < len; i++)
		f[n + i] = d[i] ^ mask[i & 3];
	send_all(fd, f, n + len);
	free(f);
}

/* Read one frame (payload malloc'd, NUL-terminated). Returns the opcode,
 * or -1 on EOF/timeout. */
static int
ws_recv(struct rd *r, char **payload, size_t *plen)
{
	size_t hl = 2, len, got = 0;
	int op;
	char *p;

	*payload = NULL;
	*plen = 0;
	if (!rd_fill(r, 2))
		return -1;
	op = r->buf[0] & 0x0f;
	len = r->buf[1] & 0x7f;
	ck_assert((r->buf[1] & 0x80) == 0);	/* server frames unmasked */
	if (len == 126) {
		if (!rd_fill(r, 4))
			return -1;
		len = (size_t)r->buf[2] << 8 | r->buf[3];
		hl = 4;
	} else if (len == 127) {
		size_t i;

		if (!rd_fill(r, 10))
			return -1;
		for (len = 0, i = 0; i < 8; i++)
			len = len << 8 | r->buf[2 + i];
		hl = 10;
	}
	rd_consume(r, hl);
	p = xmalloc(len + 1);
	while (got < len) {
		size_t n;

		if (r->len == 0 && !rd_fill(r, 1)) {
			free(p);
			return -1;
		}
		n = r->len < len - got ? r->len : len - got;
		memcpy(p + got, r->buf, n);
		rd_consume(r, n);
		got += n;
	}
	p[len] = '\0';
	*payload = p;
	*plen = len;
	return op;
}

/* Expect a text frame equal to want. */
static void
ws_expect_text(struct rd *r, const char *want)
{
	char *p;
	size_t n;

	ck_assert_int_eq(ws_recv(r, &p, &n), 1);
	ck_assert_str_eq(p, want);
	free(p);
}

/* Expect a close frame with code and reason. */
static void
ws_expect_close(struct rd *r, int code, const char *reason)
{
	char *p;
	size_t n;

	ck_assert_int_eq(ws_recv(r, &p, &n), 8);
	ck_assert_uint_ge(n, 2);
	ck_assert_int_eq(((unsigned char)p[0] << 8) | (unsigned char)p[1],
			 code);
	ck_assert_str_eq(p + 2, reason);
	free(p);
}

static void
ws_done(struct rd *r)
{
	close(r->fd);
	free(r);
}

START_TEST(test_ws_echo)
{
	struct rd *r = ws_connect("/", "Origin: http://localhost:1\r\n"
				  "X-Forwarded-Proto: https\r\n"
				  "X-Real-IP: 10.1.2.3\r\nUser-Agent: ua/2\r\n",
				  0);
	char *big;
	char *p;
	size_t n, i;

	ws_expect_text(r, "hello");
	ws_send(r->fd, 1, 1, "ping me", 7);
	ws_expect_text(r, "ping me");
	ws_send(r->fd, 1, 1, "hdrs", 4);
	ws_expect_text(r, "127.0.0.1|1|http://localhost:1|https|10.1.2.3|"
		       "ua/2|/|1");
	ws_send(r->fd, 2, 1, "\x01\x02\x03", 3);
	ws_expect_text(r, "binary:3");
	/* Fragmented, with a ping in the middle. */
	ws_send(r->fd, 1, 0, "hello ", 6);
	ws_send(r->fd, 0, 0, "big ", 4);
	ws_send(r->fd, 9, 1, "pp", 2);
	ck_assert_int_eq(ws_recv(r, &p, &n), 10);
	ck_assert_str_eq(p, "pp");
	free(p);
	ws_send(r->fd, 0, 1, "world", 5);
	ws_expect_text(r, "hello big world");
	/* Bigger than lws's rx buffer: delivered once, whole. */
	big = xmalloc(200001);
	for (i = 0; i < 200000; i++)
		big[i] = (char)('a' + i % 26);
	big[200000] = '\0';
	ws_send(r->fd, 1, 1, big, 200000);
	ck_assert_int_eq(ws_recv(r, &p, &n), 1);
	ck_assert_uint_eq(n, 200000);
	ck_assert(memcmp(p, big, n) == 0);
	free(p);
	free(big);
	/* Client-initiated close is echoed. */
	ws_send(r->fd, 8, 1, "\x03\xe8" "done", 6);
	ws_expect_close(r, 1000, "done");
	ck_assert_int_eq(fx_wait(&fx.closed, 1, 5000), 1);
	ck_assert_uint_eq(ws_server_count(fx.w), 0);
	ws_done(r);
}
END_TEST

START_TEST(test_ws_too_big)
{
	struct rd *r;
	char *big = xcalloc(1, MAX_PAYLOAD + 100);

	memset(big, 'q', MAX_PAYLOAD + 99);
	/* Default: the transport closes 1009 itself. */
	r = ws_connect("/rpc", NULL, 0);
	ws_expect_text(r, "hello");
	ws_send(r->fd, 1, 1, big, MAX_PAYLOAD + 1);
	ws_expect_close(r, 1009, "Max payload size exceeded");
	ws_done(r);
	/* The owner closes with its own reason from on_too_big; the limit
	 * is hit across fragments. */
	r = ws_connect("/preauth", NULL, 0);
	ws_expect_text(r, "hello");
	ws_send(r->fd, 1, 0, big, MAX_PAYLOAD / 2);
	ws_send(r->fd, 0, 1, big, MAX_PAYLOAD / 2 + 1);
	ws_expect_close(r, 1009, "preauth payload too large");
	ck_assert_int_eq(fx_wait(&fx.too_big, 2, 5000), 2);
	ws_done(r);
	free(big);
}
END_TEST

START_TEST(test_ws_server_close)
{
	struct rd *r = ws_connect("/x/y", NULL, 0);
	char *p, want[121];
	size_t n;

	ws_expect_text(r, "hello");
	ws_send(r->fd, 1, 1, "close1008", 8);
	/* Queued output is flushed before the close frame. */
	ws_expect_text(r, "bye");
	ws_expect_close(r, 1008, "policy says no");
	ws_done(r);

	r = ws_connect("/", NULL, 0);
	ws_expect_text(r, "hello");
	ws_send(r->fd, 1, 1, "longclo", 7);
	memset(want, 'r', 120);
	want[120] = '\0';
	ws_expect_close(r, 4001, want);
	ws_done(r);

	r = ws_connect("/", NULL, 0);
	ws_expect_text(r, "hello");
	ws_send(r->fd, 1, 1, "drop", 4);
	ck_assert_int_eq(ws_recv(r, &p, &n), -1);
	ws_done(r);

	/* Invalid UTF-8 in a text frame: 1007, as RFC 6455 asks. */
	r = ws_connect("/", NULL, 0);
	ws_expect_text(r, "hello");
	ws_send(r->fd, 1, 1, "\xff\xfe", 2);
	ck_assert_int_eq(ws_recv(r, &p, &n), 8);
	ck_assert_int_eq(((unsigned char)p[0] << 8) | (unsigned char)p[1],
			 1007);
	free(p);
	ws_done(r);
	ck_assert_int_eq(fx_wait(&fx.closed, 4, 5000), 4);
}
END_TEST

static void
fx_post_send(struct ws_conn *c, void *arg)
{
	ws_conn_send(c, arg, strlen(arg));
}

static void
fx_post_fn2(void *arg)
{
	ws_server_foreach(fx.w, fx_post_send, arg);
	pthread_mutex_lock(&fx.mu);
	fx.post_tid = pthread_self();
	pthread_mutex_unlock(&fx.mu);
	fx_signal(&fx.posted);
}

START_TEST(test_ws_post)
{
	struct rd *r1 = ws_connect("/", NULL, 0);
	struct rd *r2 = ws_connect("/", NULL, 0);

	ws_expect_text(r1, "hello");
	ws_expect_text(r2, "hello");
	ck_assert_uint_eq(ws_server_count(fx.w), 2);
	ws_post(fx.w, fx_post_fn2, (void *)"posted");
	ck_assert_int_eq(fx_wait(&fx.posted, 1, 5000), 1);
	pthread_mutex_lock(&fx.mu);
	ck_assert(fx.have_lws_tid);
	ck_assert(pthread_equal(fx.post_tid, fx.lws_tid));
	ck_assert(!pthread_equal(fx.post_tid, pthread_self()));
	pthread_mutex_unlock(&fx.mu);
	ws_expect_text(r1, "posted");
	ws_expect_text(r2, "posted");
	/* Stop closes every connection with the given code and reason. */
	ws_server_stop(fx.w, 1012, "service restart", 3000);
	ws_expect_close(r1, 1012, "service restart");
	ws_expect_close(r2, 1012, "service restart");
	ck_assert_int_eq(fx_wait(&fx.closed, 2, 100), 2);
	ck_assert_uint_eq(ws_server_count(fx.w), 0);
	ws_done(r1);
	ws_done(r2);
}
END_TEST

static int fx_held_calls;	/* the test's thread only */

static void
fx_post_one(void *arg)
{
	ws_server_foreach(fx.w, fx_post_send, arg);
}

static void
fx_held(void *arg)
{
	fx_held_calls++;
	ws_post(fx.w, fx_post_one, arg);
}

/* What a thread holds back (ws_post_defer) is posted by its next
 * ws_post first, once: the client reads the thread's frames in the order
 * the thread made them. */
START_TEST(test_ws_post_defer)
{
	struct rd *r = ws_connect("/", NULL, 0);

	ws_expect_text(r, "hello");
	ws_post_defer(fx_held, (void *)"held");
	ck_assert_int_eq(ws_post(fx.w, fx_post_one, (void *)"after"), 0);
	ck_assert_int_eq(ws_post(fx.w, fx_post_one, (void *)"again"), 0);
	ck_assert_int_eq(fx_held_calls, 1);
	ws_expect_text(r, "held");
	ws_expect_text(r, "after");
	ws_expect_text(r, "again");
	ws_done(r);
}
END_TEST

/* The loop is epoll and its work per connect does not grow with the
 * connections already open (counted, not timed: lws's poll(2) loop scans
 * every open fd per wake-up). */
START_TEST(test_ws_loop_work_per_connect)
{
	enum { N = 40, SLACK = 8 };
	struct rd *r[2 * N];
	unsigned long long it, w0, w1, w2;
	double per1, per2;
	int i;

	ck_assert_str_eq(ws_server_loop_backend(fx.w), "epoll");
	ws_server_loop_work(fx.w, &it, &w0);
	for (i = 0; i < N; i++) {
		r[i] = ws_connect("/", NULL, 0);
		ws_expect_text(r[i], "hello");
	}
	ws_server_loop_work(fx.w, &it, &w1);
	for (i = N; i < 2 * N; i++) {
		r[i] = ws_connect("/", NULL, 0);
		ws_expect_text(r[i], "hello");
	}
	ws_server_loop_work(fx.w, &it, &w2);
	ck_assert_uint_eq(ws_server_count(fx.w), 2 * N);
	per1 = (double)(w1 - w0) / N;
	per2 = (double)(w2 - w1) / N;
	ck_assert_msg(per1 > 0 && per2 < per1 + SLACK,
		      "events per connect %.1f then %.1f", per1, per2);
	for (i = 0; i < 2 * N; i++)
		ws_done(r[i]);
}
END_TEST

static struct ws_timer *fx_long_timer;

static void
fx_timer_fired(void *arg)
{
	(void)arg;
	fx_signal(&fx.posted);
}

static void
fx_timers_add(void *arg)
{
	(void)arg;
	/* A long timer first, a short one after: on lws 4.1's libev glue
	 * the short one waited for the long one (doc/hardening.md). */
	fx_long_timer = ws_timer_add(fx.w, 600000, fx_timer_fired, NULL);
	ws_timer_add(fx.w, 20, fx_timer_fired, NULL);
}

static void
fx_timers_cancel(void *arg)
{
	(void)arg;
	ws_timer_cancel(fx_long_timer);
	fx_long_timer = NULL;
	fx_signal(&fx.closed);
}

START_TEST(test_ws_timer_order)
{
	size_t base = ws_server_timers(fx.w);

	ws_post(fx.w, fx_timers_add, NULL);
	/* The short timer fires (the long one is 10 minutes away). */
	ck_assert_int_eq(fx_wait(&fx.posted, 1, 20000), 1);
	ck_assert_uint_eq(ws_server_timers(fx.w), base + 1);
	ws_post(fx.w, fx_timers_cancel, NULL);
	ck_assert_int_eq(fx_wait(&fx.closed, 1, 20000), 1);
	ck_assert_uint_eq(ws_server_timers(fx.w), base);
	ck_assert_int_eq(fx.posted, 1);
}
END_TEST

/* Read what a closed slow consumer still gets: data frames, then a 1008
 * "slow consumer" close or EOF. Returns the data bytes. */
static size_t
ws_drain_slow_close(struct rd *r)
{
	char *p;
	size_t n, total = 0;
	int op;

	while ((op = ws_recv(r, &p, &n)) == 1) {
		total += n;
		free(p);
	}
	if (op == 8) {
		ck_assert_int_eq(((unsigned char)p[0] << 8) |
				 (unsigned char)p[1], 1008);
		ck_assert_str_eq(p + 2, "slow consumer");
		free(p);
	} else {
		ck_assert_int_eq(op, -1);
	}
	return total;
}

START_TEST(test_ws_slow_consumer)
{
	struct rd *r = ws_connect("/", NULL, 4096);

	ws_expect_text(r, "hello");
	ws_send(r->fd, 1, 1, "flood", 5);
	/* Do not read: the server must give up on its own. */
	ck_assert_int_eq(fx_wait(&fx.closed, 1, 20000), 1);
	/* Now drain: data, then a 1008 close or EOF. */
	ck_assert_uint_gt(ws_drain_slow_close(r), 0);
	ws_done(r);
}
END_TEST

START_TEST(test_ws_frame_header)
{
	static const struct {
		size_t len;
		size_t n;
		unsigned char h[WS_FRAME_HDR_MAX];
	} v[] = {
		{ 0, 2, { 0x81, 0 } },
		{ 125, 2, { 0x81, 125 } },
		{ 126, 4, { 0x81, 126, 0, 126 } },
		{ 65535, 4, { 0x81, 126, 0xff, 0xff } },
		{ 65536, 10, { 0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0 } },
		{ 0x123456789aULL, 10,
		  { 0x81, 127, 0, 0, 0, 0x12, 0x34, 0x56, 0x78, 0x9a } },
	};
	unsigned char h[WS_FRAME_HDR_MAX];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(v); i++) {
		memset(h, 0xee, sizeof(h));
		ck_assert_uint_eq(ws_frame_header(h, v[i].len), v[i].n);
		ck_assert_mem_eq(h, v[i].h, v[i].n);
	}
}
END_TEST

/* Frames queued together leave in one write, framed as lws would, in
 * order; the connection offered permessage-deflate and got none (the
 * batched raw path is only valid without it). */
START_TEST(test_ws_batched_writes)
{
	struct rd *r = ws_connect("/", "Sec-WebSocket-Extensions: "
				  "permessage-deflate; "
				  "client_max_window_bits\r\n", 0);
	struct ws_out_stats a, b;
	char want[40];
	int i;

	ws_expect_text(r, "hello");
	ws_server_out_stats(fx.w, &a);
	ws_send(r->fd, 1, 1, "burst", 5);
	for (i = 0; i < 20; i++) {
		if (i < 19)
			snprintf(want, sizeof(want), "burst:%d#", i);
		else
			snprintf(want, sizeof(want), "burst:%llu#",
				 (unsigned long long)UINT64_MAX);
		ws_expect_text(r, want);
	}
	ws_server_out_stats(fx.w, &b);
	ck_assert_uint_eq(b.frames - a.frames, 20);
	ck_assert_uint_eq(b.writes - a.writes, 1);
	ck_assert_uint_eq(b.batched - a.batched, 20);
	/* A lone frame still goes as one write. */
	ws_send(r->fd, 1, 1, "echo", 4);
	ws_expect_text(r, "echo");
	ws_server_out_stats(fx.w, &a);
	ck_assert_uint_eq(a.frames - b.frames, 1);
	ck_assert_uint_eq(a.writes - b.writes, 1);
	/* A job posted by a job runs in the same drain: one write. */
	ws_send(r->fd, 1, 1, "chain", 5);
	ws_expect_text(r, "chain:1");
	ws_expect_text(r, "chain:2");
	ws_server_out_stats(fx.w, &b);
	ck_assert_uint_eq(b.frames - a.frames, 2);
	ck_assert_uint_eq(b.writes - a.writes, 1);
	ws_done(r);
}
END_TEST

/* dropIfSlow: over max_buffered a droppable frame is skipped and the
 * connection stays open; the next frame that is not droppable closes it
 * 1008 "slow consumer" (counted, not timed: all within one callback). */
START_TEST(test_ws_drop_if_slow)
{
	struct rd *r = ws_connect("/", NULL, 4096);
	struct ws_out_stats a, b;

	ws_expect_text(r, "hello");
	ws_server_out_stats(fx.w, &a);
	ws_send(r->fd, 1, 1, "slowdrop", 8);
	ck_assert_int_eq(fx_wait(&fx.slowdrop_done, 1, 20000), 1);
	pthread_mutex_lock(&fx.mu);
	ck_assert_int_eq(fx.sd_queued, MAX_BUFFERED / (64 * 1024));
	ck_assert_int_eq(fx.sd_closing_after_drop, 0);
	ck_assert_int_eq(fx.sd_last_rc, -1);
	ck_assert_int_eq(fx.sd_closing, 1);
	pthread_mutex_unlock(&fx.mu);
	ws_server_out_stats(fx.w, &b);
	ck_assert_uint_eq(b.dropped - a.dropped, 1);
	/* The queue was dropped with the close: a 1008 close or EOF. */
	ws_drain_slow_close(r);
	ws_done(r);
}
END_TEST

static Suite *
net_suite(void)
{
	Suite *s = suite_create("net");
	TCase *tc = tcase_create("classify");
	TCase *live = tcase_create("live");

	tcase_add_test(tc, test_classify_table);
	tcase_add_test(tc, test_classify_window);
	tcase_add_test(tc, test_classify_big_upgrade);
	tcase_add_test(tc, test_head_fields_bound);
	tcase_add_test(tc, test_addr_format);
	tcase_add_test(tc, test_listener_ipv6);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(live, fx_setup, fx_teardown);
	tcase_set_timeout(live, 60);
	tcase_add_test(live, test_http_get_keepalive);
	tcase_add_test(live, test_http_pipelined_and_noreply);
	tcase_add_test(live, test_http_too_big);
	tcase_add_test(live, test_http_async_later);
	tcase_add_test(live, test_http_async_stream);
	tcase_add_test(live, test_http_async_client_gone);
	tcase_add_test(live, test_http_async_stop_and_413_body);
	tcase_add_test(live, test_listener_idle_and_describe);
	tcase_add_test(live, test_listener_adopt);
	tcase_add_test(live, test_ws_echo);
	tcase_add_test(live, test_ws_too_big);
	tcase_add_test(live, test_ws_server_close);
	tcase_add_test(live, test_ws_post);
	tcase_add_test(live, test_ws_post_defer);
	tcase_add_test(live, test_ws_slow_consumer);
	tcase_add_test(tc, test_ws_frame_header);
	tcase_add_test(live, test_ws_batched_writes);
	tcase_add_test(live, test_ws_drop_if_slow);
	tcase_add_test(live, test_ws_loop_work_per_connect);
	tcase_add_test(live, test_ws_timer_order);
	suite_add_tcase(s, live);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(net_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
