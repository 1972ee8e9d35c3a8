/* HTTP transport on libmicrohttpd: daemons without a listen socket fed by
 * the listener through MHD_add_connection. There are several (shards, each
 * with its own thread and count, started on demand), so that no daemon
 * ever gets near its own connection limit (doc/hardening.md) while the
 * gateway holds up to gateway.http.maxConnections; one access handler and
 * one struct http_server serve them all.
 *
 * Request lifetime: the first access-handler call allocates a struct
 * http_req and returns without queueing (MHD 0.9.75 closes keep-alive
 * connections when a response is queued in that first call); upload calls
 * append to the bounded body; the final call runs the handler, which builds
 * exactly one response, and the response is queued there. The request is
 * freed in the completion callback.
 *
 * Async replies (struct http_async): the handler hands the request to
 * another thread. A deferred reply suspends the connection after the
 * handler returns; the producer builds the response and resumes, and MHD
 * calls the access handler again, which queues it. A stream is a callback
 * response whose reader copies what the producer buffered and suspends the
 * connection when there is nothing yet; a write resumes it. Everything
 * shared between the MHD thread and the producer sits under a->mu; the
 * handle is reference counted (request, producer, response reader). Live
 * handles are listed on the server so that stop can resume them first. */
#include "net/http.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

#include <microhttpd.h>

#include "core/common.h"
#include "core/util.h"
#include "core/log.h"
#include "net/listener.h"

/* MHD's own limit per daemon, and ours: MHD 0.9.75 deadlocks when it is
 * reached through MHD_add_connection (doc/hardening.md), so each shard (one
 * MHD daemon) counts its hand-offs and takes at most HTTP_SHARD_CONNS, half
 * of it. More connections than that go to more shards, up to max_conns in
 * all (gateway.http.maxConnections). */
#define HTTP_CONN_LIMIT 2048
#define HTTP_SHARD_CONNS 1024
#define HTTP_MAX_CONNS 16384
#define HTTP_MAX_SHARDS 64
/* Descriptors kept for everything but HTTP streams (listen sockets, the
 * shards' epoll and event fds, the store, logs) when the fd limit sizes
 * the cap: each HTTP stream holds its client socket and an upstream one.
 * Beyond it, accept pauses on EMFILE (listener.c). */
#define HTTP_FD_RESERVE 512
/* A body must arrive at HTTP_BODY_MIN_RATE bytes/s on average once
 * HTTP_BODY_GRACE_MS have passed (slowloris bodies). */
#define HTTP_BODY_GRACE_MS 10000
#define HTTP_BODY_MIN_RATE 1024
#define HTTP_CONN_TIMEOUT_S 30
/* Memory pool of a connection (its request head, header table, reply
 * head and chunk buffer; bodies pass through it in pieces). A head of up
 * to 16 KiB (the listener's limit) needs the big pool; most heads are
 * small (a client SDK's is ~1 KiB), and a held stream's pool is all
 * resident for the connection's life (libmicrohttpd 0.9.75 zeroes what
 * it frees of its read buffer once the request is in), so a connection
 * goes to shards of the first pool class below whose limits its first
 * head meets (issue 11: RSS per held stream). The tiny class takes only
 * POSTs, the requests that hold streams: a browser's GETs keep the room
 * of the small pool for follow-up heads on their keep-alive connection,
 * and an API client sends the same head with each request. */
static const struct http_pool_class {
	size_t pool;		/* MHD_OPTION_CONNECTION_MEMORY_LIMIT */
	size_t head;		/* largest first head, bytes (0: any) */
	int lines;		/* in at most this many lines */
	int post;		/* POST only */
	const char *name;
} http_pools[] = {
	{ 3 * 1024, 1024, 24, 1, "tiny" },
	{ 8 * 1024, 2048, 32, 0, "small" },
	{ 32 * 1024, 0, 0, 0, "big" },
};
#define HTTP_POOLS ((int)(sizeof(http_pools) / sizeof(http_pools[0])))
#define HTTP_POOL_START 1	/* shard 0's class */
#define HTTP_PEEK_HEAD 2048	/* the largest limited head */
#define HTTP_TOO_BIG_JSON                                                \
	"{\"error\":{\"message\":\"Payload too large\","                 \
	"\"type\":\"invalid_request_error\"}}"
#define HTTP_STREAM_MAX (8u * 1024 * 1024)
/* MHD allocates (and clears) this with every callback response and a
 * held stream keeps it; chunked replies are written straight into the
 * connection's own buffer, so only HTTP/1.0 (unchunked) streams read in
 * blocks of it (an SSE event in two or three sends). */
#define HTTP_STREAM_BLOCK 128
#define HTTP_STOP_DRAIN_MS 300
#define HTTP_STOPPING_JSON                                               \
	"{\"error\":{\"message\":\"Server shutting down\","            \
	"\"type\":\"server_error\"}}"
#define HTTP_INTERNAL_JSON                                               \
	"{\"error\":{\"message\":\"Internal server error\","             \
	"\"type\":\"server_error\"}}"

struct http_async;
struct http_server;

/* One MHD daemon with its own thread and its own count. */
struct http_shard {
	struct MHD_Daemon *d;
	struct http_server *s;
	int cls;			/* its pool class, http_pools[] */
	int cap;			/* at most HTTP_SHARD_CONNS */
	int conns;			/* handed to this daemon, not yet
					 * closed (atomic) */
};

struct http_server {
	struct http_shard shards[HTTP_MAX_SHARDS];
	int nshards;			/* started (atomic; grows on the
					 * listener thread only) */
	int maxshards;			/* ceil(max_conns / shard_conns), +1
					 * for each other pool class */
	struct http_server_cbs cbs;
	pthread_mutex_t mu;		/* asyncs */
	pthread_cond_t cv;		/* an async completed */
	struct http_async *asyncs;	/* live handles */
	int max_conns;			/* all shards together */
	int max_set;			/* max_conns was configured */
	int shard_conns;
	int conns;			/* handed to MHD, not yet closed,
					 * all shards (atomic) */
	unsigned long refused;		/* atomic */
	int refusing;			/* atomic: shutting down */
};

struct http_hdr {
	char *name, *value;
	struct http_hdr *next;
};

struct http_async {
	pthread_mutex_t mu;
	int refs;
	struct http_server *s;
	struct MHD_Connection *conn;	/* NULL once gone */
	struct http_async *prev, *next;	/* s->asyncs */
	int listed;
	int suspended;		/* we suspended conn */
	int released;		/* the producer let go */
	int gone;		/* the request completed (client gone or
				 * reply sent) */
	int streaming;		/* a stream response exists */
	int ended;		/* no more stream data */
	struct MHD_Response *resp;	/* deferred reply, to queue */
	struct MHD_Response *head;	/* a stream's, until its head is
					 * built (http_async_head_sent) */
	unsigned int status;
	char *buf;
	size_t len, off, cap;
	struct http_hdr *hdrs, *hdrs_tail;
	http_done_fn done_fn;
	void *done_arg;
};

struct http_req {
	struct http_server *s;
	struct MHD_Connection *conn;
	char *method, *path;
	char *body;
	size_t len, cap, limit;
	int too_big;
	int queued;		/* a response was queued already */
	struct http_hdr *hdrs, *hdrs_tail;
	struct MHD_Response *resp;
	unsigned int status;
	char peer_ip[64];
	int loopback;
	int handled;		/* the handler ran */
	int authorized;		/* preauth accepted the caller */
	int64_t start_ms;
	const char *too_big_json;
	struct http_async *async;
	size_t hint;		/* declared length + 1: the body's buffer */
};

static void http_async_unref(struct http_async *a);
static void http_async_gone_now(struct http_async *a);

static void
http_hdrs_free(struct http_hdr *h)
{
	struct http_hdr *next;

	for (; h != NULL; h = next) {
		next = h->next;
		free(h->name);
		free(h->value);
		free(h);
	}
}

static void
http_hdrs_add(struct http_hdr **head, struct http_hdr **tail,
	      const char *name, const char *value)
{
	struct http_hdr *h = xcalloc(1, sizeof(*h));

	h->name = xstrdup(name);
	h->value = xstrdup(value);
	if (*tail != NULL)
		(*tail)->next = h;
	else
		*head = h;
	*tail = h;
}

static void
http_req_free(struct http_req *r)
{
	if (r == NULL)
		return;
	if (r->async != NULL) {
		http_async_gone_now(r->async);
		http_async_unref(r->async);
	}
	http_hdrs_free(r->hdrs);
	if (r->resp != NULL)
		MHD_destroy_response(r->resp);
	free(r->method);
	free(r->path);
	free(r->body);
	free(r);
}

static void
http_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	log_warn("http", "%s", buf);
}

static void
http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
	       enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	http_req_free(*con_cls);
	*con_cls = NULL;
}

static void
http_notify_conn(void *cls, struct MHD_Connection *conn, void **socket_ctx,
		 enum MHD_ConnectionNotificationCode toe)
{
	struct http_shard *sh = cls;

	(void)conn;
	(void)socket_ctx;
	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		__atomic_sub_fetch(&sh->conns, 1, __ATOMIC_SEQ_CST);
		__atomic_sub_fetch(&sh->s->conns, 1, __ATOMIC_SEQ_CST);
	}
}

struct http_frame_count {
	int host, length, encoding;
};

static enum MHD_Result
http_frame_iter(void *cls, enum MHD_ValueKind kind, const char *key,
		const char *value)
{
	struct http_frame_count *fc = cls;

	(void)kind;
	(void)value;
	if (strcasecmp(key, "host") == 0)
		fc->host++;
	else if (strcasecmp(key, "content-length") == 0)
		fc->length++;
	else if (strcasecmp(key, "transfer-encoding") == 0)
		fc->encoding++;
	return MHD_YES;
}

/* The listener checked the first head of the connection (net/head.c);
 * later requests on a keep-alive connection are checked here for what
 * could make a proxy and MHD disagree on framing. NULL when fine. */
static const char *
http_framing_error(struct MHD_Connection *conn, const char *version)
{
	struct http_frame_count fc = {0};
	int http11 = version != NULL && strcmp(version, "HTTP/1.1") == 0;

	MHD_get_connection_values(conn, MHD_HEADER_KIND, http_frame_iter,
				  &fc);
	if (http11 ? fc.host != 1 : fc.host > 1)
		return "exactly one Host header is required";
	if (fc.length > 1 || fc.encoding > 1 ||
	    (fc.length && fc.encoding))
		return "ambiguous message framing";
	return NULL;
}

/* Build a response with the headers every response carries. */
static struct MHD_Response *
http_response_new(const char *content_type, const char *body, size_t len)
{
	struct MHD_Response *resp;

	resp = MHD_create_response_from_buffer(len, (void *)body,
					       MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return NULL;
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	if (content_type != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
					content_type);
	return resp;
}

/* Queue r->resp (or a 500 when the handler produced nothing). */
static enum MHD_Result
http_queue(struct http_req *r)
{
	enum MHD_Result ret;

	if (r->resp == NULL) {
		log_warn("http", "%s %s: handler sent no reply", r->method,
			 r->path);
		r->resp = http_response_new("application/json",
					    HTTP_INTERNAL_JSON,
					    strlen(HTTP_INTERNAL_JSON));
		r->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		if (r->resp == NULL)
			return MHD_NO;
	}
	/* Past half the hand-off cap, no more keep-alive: every answer
	 * closes its connection, so slots recycle and a peer cannot hold
	 * one with a slowly trickled follow-up head (the listener's head
	 * deadline only covers a connection's first request). */
	if (__atomic_load_n(&r->s->conns, __ATOMIC_SEQ_CST) >
	    r->s->max_conns / 2)
		MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONNECTION,
					"close");
	ret = MHD_queue_response(r->conn, r->status, r->resp);
	MHD_destroy_response(r->resp);
	r->resp = NULL;
	r->queued = 1;
	return ret;
}

static void
http_too_big(struct http_req *r)
{
	const char *j = r->too_big_json ? r->too_big_json : HTTP_TOO_BIG_JSON;

	if (r->resp != NULL)
		MHD_destroy_response(r->resp);
	r->resp = http_response_new("application/json", j, strlen(j));
	r->status = MHD_HTTP_CONTENT_TOO_LARGE;
	MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONNECTION, "close");
}

/* First call: set up the request; headers are known here. */
static enum MHD_Result
http_begin(struct http_server *s, struct MHD_Connection *conn,
	   const char *url, const char *method, const char *version,
	   void **con_cls)
{
	const union MHD_ConnectionInfo *ci;
	struct http_req *r = xcalloc(1, sizeof(*r));
	const char *cl, *why;

	r->s = s;
	r->conn = conn;
	r->method = xstrdup(method);
	r->path = xstrdup(url);
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci != NULL && ci->client_addr != NULL) {
		const struct sockaddr *sa = ci->client_addr;
		socklen_t sl = sa->sa_family == AF_INET6 ?
			sizeof(struct sockaddr_in6) :
			sizeof(struct sockaddr_in);

		listener_addr_format(sa, sl, r->peer_ip, sizeof(r->peer_ip),
				     &r->loopback);
	}
	*con_cls = r;
	r->start_ms = util_mono_ms();
	/* Every answer from here on is queued in this first call: MHD then
	 * never reads the body and closes the connection. */
	if (__atomic_load_n(&s->refusing, __ATOMIC_SEQ_CST)) {
		r->resp = http_response_new("application/json",
					    HTTP_STOPPING_JSON,
					    strlen(HTTP_STOPPING_JSON));
		r->status = MHD_HTTP_SERVICE_UNAVAILABLE;
		goto close;
	}
	if ((why = http_framing_error(conn, version)) != NULL) {
		r->resp = http_response_new("text/plain; charset=utf-8", why,
					    strlen(why));
		r->status = MHD_HTTP_BAD_REQUEST;
		goto close;
	}
	r->limit = s->cbs.body_limit != NULL ?
		s->cbs.body_limit(r, s->cbs.arg) : 0;
	if (s->cbs.preauth != NULL && s->cbs.preauth(r, s->cbs.arg) != 0)
		goto close;
	/* A declared length over the limit: answer now and close, instead
	 * of reading a body we will throw away. Queueing in this first call
	 * makes MHD discard the request body and close the connection. */
	cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					 MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl != NULL) {
		char *end = NULL;
		unsigned long long n;

		errno = 0;
		n = strtoull(cl, &end, 10);
		if (errno == 0 && end != cl && n > r->limit) {
			r->too_big = 1;
			http_too_big(r);
			return http_queue(r);
		}
		if (errno == 0 && end != cl)
			r->hint = (size_t)n + 1;
	}
	return MHD_YES;
close:
	if (r->resp != NULL)
		MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONNECTION,
					"close");
	return http_queue(r);
}

static enum MHD_Result
http_access(void *cls, struct MHD_Connection *conn, const char *url,
	    const char *method, const char *version, const char *upload_data,
	    size_t *upload_data_size, void **con_cls)
{
	struct http_server *s = cls;
	struct http_req *r = *con_cls;

	if (r == NULL)
		return http_begin(s, conn, url, method, version, con_cls);
	if (r->queued) {
		/* 413 already queued: swallow whatever still arrives. */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (r->too_big)
			return MHD_YES;
		{
			int64_t ms = util_mono_ms() - r->start_ms;

			/* Slowloris body: below the minimum rate, close. */
			if (ms > HTTP_BODY_GRACE_MS &&
			    (r->len + n) * 1000 / (uint64_t)ms <
			    HTTP_BODY_MIN_RATE) {
				log_debug("http", "%s %s: body too slow; "
					  "closing", r->method, r->path);
				return MHD_NO;
			}
		}
		if (n > r->limit - r->len) {
			r->too_big = 1;
			free(r->body);
			r->body = NULL;
			r->len = r->cap = 0;
			return MHD_YES;
		}
		if (r->len + n + 1 > r->cap) {
			size_t cap = r->cap ? r->cap : r->hint ? r->hint :
				4096;

			while (cap < r->len + n + 1)
				cap *= 2;
			if (cap > r->limit + 1)
				cap = r->limit + 1;
			r->body = xrealloc(r->body, cap);
			r->cap = cap;
		}
		memcpy(r->body + r->len, upload_data, n);
		r->len += n;
		r->body[r->len] = '\0';
		return MHD_YES;
	}
	/* Final call: the whole request is here (or, for an async reply,
	 * a call after the producer resumed the connection). */
	if (r->too_big) {
		http_too_big(r);
		return http_queue(r);
	}
	if (!r->handled) {
		r->handled = 1;
		s->cbs.handler(r, s->cbs.arg);
		/* Handlers parse the body before they return (what they
		 * keep is theirs): a held stream does not keep it, a chat's
		 * whole history (issue 11). */
		free(r->body);
		r->body = NULL;
		r->len = r->cap = 0;
	}
	if (r->async != NULL && r->resp == NULL) {
		struct http_async *a = r->async;

		pthread_mutex_lock(&a->mu);
		if (a->resp != NULL) {
			r->resp = a->resp;
			r->status = a->status;
			a->resp = NULL;
		} else {
			/* Nothing yet: wait for the producer. */
			a->suspended = 1;
			MHD_suspend_connection(conn);
		}
		pthread_mutex_unlock(&a->mu);
		if (r->resp == NULL)
			return MHD_YES;
	}
	return http_queue(r);
}

struct http_server *
http_server_new(const struct http_server_cbs *cbs)
{
	struct http_server *s = xcalloc(1, sizeof(*s));

	s->cbs = *cbs;
	s->shard_conns = HTTP_SHARD_CONNS;
	s->max_conns = HTTP_MAX_CONNS;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	return s;
}

/* Start shard i (listener thread, or http_server_start for shard 0). */
static int
http_shard_start(struct http_server *s, int i, int cls)
{
	struct http_shard *sh = &s->shards[i];
	unsigned int flags = MHD_USE_NO_LISTEN_SOCKET |
		MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC |
		MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;

	sh->s = s;
	sh->cls = cls;
	sh->cap = s->shard_conns;
	sh->d = MHD_start_daemon(flags, 0, NULL, NULL, http_access, s,
		MHD_OPTION_EXTERNAL_LOGGER, http_log, s,
		MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned int)HTTP_CONN_TIMEOUT_S,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTP_CONN_LIMIT,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, http_pools[cls].pool,
		MHD_OPTION_NOTIFY_COMPLETED, http_completed, s,
		MHD_OPTION_NOTIFY_CONNECTION, http_notify_conn, sh,
		MHD_OPTION_END);
	if (sh->d == NULL) {
		log_error("http", "MHD_start_daemon failed (shard %d)", i);
		return -EIO;
	}
	__atomic_store_n(&s->nshards, i + 1, __ATOMIC_SEQ_CST);
	if (i > 0)
		log_info("http", "HTTP shard %d of at most %d started "
			 "(%s pool; %d connections)", i + 1, s->maxshards,
			 http_pools[cls].name, http_server_conns(s));
	return 0;
}

int
http_server_start(struct http_server *s)
{
	if (s->nshards > 0)
		return -EALREADY;
	s->maxshards = (s->max_conns + s->shard_conns - 1) / s->shard_conns
		+ HTTP_POOLS - 1;
	if (s->maxshards > HTTP_MAX_SHARDS)
		s->maxshards = HTTP_MAX_SHARDS;
	return http_shard_start(s, 0, HTTP_POOL_START);
}

/* The pool class of a head of len bytes (up to its empty line) in lines
 * lines. */
static int
http_pool_class(const char *head, size_t len, int lines)
{
	int c;

	for (c = 0; c < HTTP_POOLS - 1; c++)
		if (len <= http_pools[c].head && lines <= http_pools[c].lines &&
		    (!http_pools[c].post || (len >= 5 &&
					     memcmp(head, "POST ", 5) == 0)))
			return c;
	return HTTP_POOLS - 1;
}

/* The pool class of the head waiting on fd (complete: the listener
 * peeked it). Listener thread. */
static int
http_head_class(int fd)
{
	char buf[HTTP_PEEK_HEAD];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	int lines = 0;
	ssize_t i;

	for (i = 0; i + 2 < n; i++) {
		if (buf[i] != '\n')
			continue;
		lines++;
		if (buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return http_pool_class(buf, (size_t)i + 3, lines);
	}
	return HTTP_POOLS - 1;
}

/* The started shard of the pool class with the most room, starting one
 * more when every one of them is full; NULL when none can take it.
 * Listener thread. */
static struct http_shard *
http_shard_pick(struct http_server *s, int cls)
{
	struct http_shard *best = NULL;
	int i, room = 0, n = __atomic_load_n(&s->nshards, __ATOMIC_SEQ_CST);

	for (i = 0; i < n; i++) {
		struct http_shard *sh = &s->shards[i];
		int r = sh->cap - __atomic_load_n(&sh->conns,
						  __ATOMIC_SEQ_CST);

		if (sh->cls == cls && r > room) {
			room = r;
			best = sh;
		}
	}
	if (best == NULL && n > 0 && n < s->maxshards &&
	    http_shard_start(s, n, cls) == 0)
		best = &s->shards[n];
	return best;
}

int
http_server_adopt(struct http_server *s, int fd, const struct sockaddr *sa,
		  socklen_t salen)
{
	struct http_shard *sh = NULL;

	/* Counted by its shard before MHD sees it, uncounted when MHD
	 * reports it closed (or refused it): no MHD daemon's own count
	 * ever exceeds its shard's, so its limit (and the 0.9.75 deadlock
	 * behind it) is out of reach. Only the listener thread adds, so
	 * the room seen by http_shard_pick cannot shrink before the add. */
	if (!__atomic_load_n(&s->refusing, __ATOMIC_SEQ_CST) &&
	    __atomic_load_n(&s->conns, __ATOMIC_SEQ_CST) < s->max_conns)
		sh = http_shard_pick(s, http_head_class(fd));
	if (sh == NULL || __atomic_add_fetch(&sh->conns, 1,
					     __ATOMIC_SEQ_CST) > sh->cap) {
		if (sh != NULL)
			__atomic_sub_fetch(&sh->conns, 1, __ATOMIC_SEQ_CST);
		__atomic_add_fetch(&s->refused, 1, __ATOMIC_SEQ_CST);
		listener_refuse(fd, "503 Service Unavailable");
		return -1;
	}
	__atomic_add_fetch(&s->conns, 1, __ATOMIC_SEQ_CST);
	if (MHD_add_connection(sh->d, fd, sa, salen) != MHD_YES) {
		/* MHD closed fd itself, without a notification. */
		__atomic_sub_fetch(&sh->conns, 1, __ATOMIC_SEQ_CST);
		__atomic_sub_fetch(&s->conns, 1, __ATOMIC_SEQ_CST);
		log_warn("http", "MHD_add_connection failed");
		return -1;
	}
	return 0;
}

void
http_server_refuse_new(struct http_server *s)
{
	if (s != NULL)
		__atomic_store_n(&s->refusing, 1, __ATOMIC_SEQ_CST);
}

void
http_server_set_max_conns(struct http_server *s, int n)
{
	s->max_set = n >= 1;
	if (n < 1)
		n = HTTP_MAX_CONNS;
	if (n > HTTP_SHARD_CONNS * HTTP_MAX_SHARDS)
		n = HTTP_SHARD_CONNS * HTTP_MAX_SHARDS;
	s->max_conns = n;
}

void
http_server_set_shard_conns(struct http_server *s, int n)
{
	if (n < 1 || n > HTTP_CONN_LIMIT / 2)
		n = HTTP_SHARD_CONNS;
	s->shard_conns = n;
	if (s->max_conns > n * HTTP_MAX_SHARDS)
		s->max_conns = n * HTTP_MAX_SHARDS;
}

int
http_server_fit_nofile(struct http_server *s, int per_stream)
{
	struct rlimit rl;
	rlim_t want, was;
	int max;

	if (per_stream < 1)
		per_stream = 1;
	want = (rlim_t)s->max_conns * (rlim_t)per_stream + HTTP_FD_RESERVE;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return s->max_conns;
	was = rl.rlim_cur;
	if (rl.rlim_cur < want && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max != RLIM_INFINITY &&
			rl.rlim_max < want ? rl.rlim_max : want;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			log_info("http", "open-file limit raised from %llu "
				 "to %llu (hard limit %llu)",
				 (unsigned long long)was,
				 (unsigned long long)rl.rlim_cur,
				 (unsigned long long)rl.rlim_max);
		else
			rl.rlim_cur = was;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		long long fit = ((long long)rl.rlim_cur - HTTP_FD_RESERVE) /
				per_stream;

		max = fit < 64 ? 64 : (int)fit;
		if (max < s->max_conns) {
			/* A warning when the operator asked for more. */
			log_msg(s->max_set ? LOG_WARN : LOG_INFO, "http",
				"gateway.http.maxConnections %d lowered to "
				"%d: the open-file limit is %llu and each "
				"stream holds %s", s->max_conns, max,
				(unsigned long long)rl.rlim_cur,
				per_stream > 1 ? "two sockets (client and "
				"plain-http upstream)" : "a socket");
			s->max_conns = max;
		}
	}
	return s->max_conns;
}

int
http_server_conns(const struct http_server *s)
{
	return __atomic_load_n(&s->conns, __ATOMIC_SEQ_CST);
}

int
http_server_shards(const struct http_server *s)
{
	return __atomic_load_n(&s->nshards, __ATOMIC_SEQ_CST);
}

unsigned long
http_server_refused(const struct http_server *s)
{
	return __atomic_load_n(&s->refused, __ATOMIC_SEQ_CST);
}

void
http_req_set_authorized(struct http_req *r)
{
	r->authorized = 1;
}

int
http_req_authorized(const struct http_req *r)
{
	return r->authorized;
}

void
http_server_stop(struct http_server *s)
{
	struct http_async *a;
	struct timespec dl;
	int i;

	if (s == NULL || s->nshards == 0)
		return;
	/* MHD panics on suspended connections at stop: end every live
	 * async reply (503 or end of stream) and resume. */
	pthread_mutex_lock(&s->mu);
	for (a = s->asyncs; a != NULL; a = a->next) {
		pthread_mutex_lock(&a->mu);
		if (a->streaming)
			a->ended = 1;
		else if (a->resp == NULL && !a->gone) {
			a->resp = http_response_new("application/json",
				HTTP_STOPPING_JSON,
				strlen(HTTP_STOPPING_JSON));
			a->status = MHD_HTTP_SERVICE_UNAVAILABLE;
		}
		if (a->suspended && a->conn != NULL) {
			a->suspended = 0;
			MHD_resume_connection(a->conn);
		}
		pthread_mutex_unlock(&a->mu);
	}
	/* Let MHD send those final answers (bounded). */
	util_deadline(&dl, HTTP_STOP_DRAIN_MS);
	while (s->asyncs != NULL &&
	       pthread_cond_timedwait(&s->cv, &s->mu, &dl) == 0)
		;
	pthread_mutex_unlock(&s->mu);
	for (i = 0; i < s->nshards; i++) {
		MHD_stop_daemon(s->shards[i].d);
		s->shards[i].d = NULL;
	}
	s->nshards = 0;
}

void
http_server_free(struct http_server *s)
{
	if (s == NULL)
		return;
	http_server_stop(s);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

const char *
http_req_method(const struct http_req *r)
{
	return r->method;
}

const char *
http_req_path(const struct http_req *r)
{
	return r->path;
}

const char *
http_req_header(const struct http_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *
http_req_query(const struct http_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND,
					   name);
}

const char *
http_req_body(const struct http_req *r, size_t *len)
{
	if (len != NULL)
		*len = r->len;
	return r->body != NULL ? r->body : "";
}

const char *
http_req_peer_ip(const struct http_req *r)
{
	return r->peer_ip;
}

int
http_req_peer_is_loopback(const struct http_req *r)
{
	return r->loopback;
}

void
http_reply_header(struct http_req *r, const char *name, const char *value)
{
	http_hdrs_add(&r->hdrs, &r->hdrs_tail, name, value);
}

void
http_req_set_too_big_body(struct http_req *r, const char *json)
{
	r->too_big_json = json;
}

void
http_reply(struct http_req *r, int status, const char *content_type,
	   const char *body, size_t len)
{
	struct http_hdr *h;

	if (r->resp != NULL || r->queued || r->async != NULL) {
		log_warn("http", "%s %s: second reply ignored", r->method,
			 r->path);
		return;
	}
	r->resp = http_response_new(content_type, body != NULL ? body : "",
				    body != NULL ? len : 0);
	if (r->resp == NULL)
		return;
	r->status = (unsigned int)status;
	for (h = r->hdrs; h != NULL; h = h->next)
		MHD_add_response_header(r->resp, h->name, h->value);
}

void
http_reply_json(struct http_req *r, int status, const char *json)
{
	http_reply(r, status, "application/json; charset=utf-8", json,
		   strlen(json));
}

/* ---- async replies -------------------------------------------------------- */

static void
http_async_unref(struct http_async *a)
{
	int left;

	pthread_mutex_lock(&a->mu);
	left = --a->refs;
	pthread_mutex_unlock(&a->mu);
	if (left > 0)
		return;
	if (a->resp != NULL)
		MHD_destroy_response(a->resp);
	http_hdrs_free(a->hdrs);
	free(a->buf);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

/* The request completed (MHD thread): no more resumes; tell the producer
 * when it still holds the handle. */
static void
http_async_gone_now(struct http_async *a)
{
	struct http_server *s = a->s;
	http_done_fn fn;
	void *arg;
	int early;

	pthread_mutex_lock(&s->mu);
	if (a->listed) {
		if (a->prev != NULL)
			a->prev->next = a->next;
		else
			s->asyncs = a->next;
		if (a->next != NULL)
			a->next->prev = a->prev;
		a->listed = 0;
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_lock(&a->mu);
	a->gone = 1;
	a->conn = NULL;
	a->suspended = 0;
	early = !a->released;
	fn = a->done_fn;
	arg = a->done_arg;
	a->done_fn = NULL;
	pthread_mutex_unlock(&a->mu);
	if (fn != NULL)
		fn(arg, early);
}

static struct http_async *
http_async_new(struct http_req *r)
{
	struct http_async *a = xcalloc(1, sizeof(*a));
	struct http_server *s = r->s;
	struct http_hdr *h;

	pthread_mutex_init(&a->mu, NULL);
	a->refs = 2;		/* the request and the producer */
	a->s = s;
	a->conn = r->conn;
	for (h = r->hdrs; h != NULL; h = h->next)
		http_hdrs_add(&a->hdrs, &a->hdrs_tail, h->name, h->value);
	pthread_mutex_lock(&s->mu);
	a->next = s->asyncs;
	if (s->asyncs != NULL)
		s->asyncs->prev = a;
	s->asyncs = a;
	a->listed = 1;
	pthread_mutex_unlock(&s->mu);
	r->async = a;
	return a;
}

/* Resume the connection if we suspended it (a->mu held). */
static void
http_async_wake(struct http_async *a)
{
	if (a->suspended && a->conn != NULL) {
		a->suspended = 0;
		MHD_resume_connection(a->conn);
	}
}

struct http_hdr_pick {
	char name[64], value[256];
	int found;
};

static enum MHD_Result
http_hdr_pick_one(void *cls, enum MHD_ValueKind kind, const char *name,
		  const char *value)
{
	struct http_hdr_pick *p = cls;

	if (kind != MHD_HEADER_KIND ||
	    strcasecmp(name, MHD_HTTP_HEADER_CONNECTION) == 0 ||
	    strlen(name) >= sizeof(p->name) ||
	    strlen(value) >= sizeof(p->value))
		return MHD_YES;
	strcpy(p->name, name);
	strcpy(p->value, value);
	p->found = 1;
	return MHD_NO;
}

/* A stream's head is built (libmicrohttpd 0.9.75 calls the reader only
 * after it copied the reply head into its write buffer, and decided
 * keep-alive then): its copies of the reply headers are dropped, ~0.5 KB
 * of a held stream (issue 11). Not the Connection header (its flags),
 * nor footers (read at the end). Copies of name and value: deleting an
 * entry frees its strings. */
static void
http_async_head_sent(struct http_async *a)
{
	struct http_hdr_pick p;
	int i;

	for (i = 0; i < 32; i++) {
		p.found = 0;
		MHD_get_response_headers(a->head, http_hdr_pick_one, &p);
		if (!p.found ||
		    MHD_del_response_header(a->head, p.name, p.value) != MHD_YES)
			break;
	}
	a->head = NULL;
}

static ssize_t
http_async_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct http_async *a = cls;
	ssize_t n;

	(void)pos;
	pthread_mutex_lock(&a->mu);
	if (a->head != NULL)
		http_async_head_sent(a);
	if (a->len > a->off) {
		size_t k = a->len - a->off;

		if (k > max)
			k = max;
		memcpy(buf, a->buf + a->off, k);
		a->off += k;
		if (a->off == a->len) {
			/* Drained: a held stream keeps no buffer (a write
			 * allocates one again). */
			a->off = a->len = a->cap = 0;
			free(a->buf);
			a->buf = NULL;
		}
		n = (ssize_t)k;
	} else if (a->ended || a->gone) {
		n = MHD_CONTENT_READER_END_OF_STREAM;
	} else {
		/* Returning 0 without suspending would busy-loop. */
		a->suspended = 1;
		if (a->conn != NULL)
			MHD_suspend_connection(a->conn);
		n = 0;
	}
	pthread_mutex_unlock(&a->mu);
	return n;
}

static void
http_async_read_free(void *cls)
{
	http_async_unref(cls);
}

/* A streaming response reading from a (a->mu held or a not shared yet). */
static struct MHD_Response *
http_async_stream_resp(struct http_async *a, const char *content_type)
{
	struct MHD_Response *resp;
	struct http_hdr *h;

	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
		HTTP_STREAM_BLOCK, http_async_read, a, http_async_read_free);
	if (resp == NULL)
		return NULL;
	a->refs++;
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	if (content_type != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
					content_type);
	for (h = a->hdrs; h != NULL; h = h->next)
		MHD_add_response_header(resp, h->name, h->value);
	/* MHD has its copies; a held stream keeps none (no other reply
	 * follows a stream's). */
	http_hdrs_free(a->hdrs);
	a->hdrs = a->hdrs_tail = NULL;
	a->streaming = 1;
	a->head = resp;
	return resp;
}

struct http_async *
http_reply_later(struct http_req *r)
{
	if (r->async != NULL || r->resp != NULL || r->queued) {
		log_warn("http", "%s %s: reply_later after a reply", r->method,
			 r->path);
		return NULL;
	}
	return http_async_new(r);
}

struct http_async *
http_reply_stream(struct http_req *r, int status, const char *content_type)
{
	struct http_async *a;

	if (r->async != NULL || r->resp != NULL || r->queued) {
		log_warn("http", "%s %s: stream after a reply", r->method,
			 r->path);
		return NULL;
	}
	a = http_async_new(r);
	pthread_mutex_lock(&a->mu);
	r->resp = http_async_stream_resp(a, content_type);
	r->status = (unsigned int)status;
	pthread_mutex_unlock(&a->mu);
	return a;
}

void
http_async_on_done(struct http_async *a, http_done_fn fn, void *arg)
{
	int gone, early;

	pthread_mutex_lock(&a->mu);
	gone = a->gone;
	early = !a->released;
	if (!gone) {
		a->done_fn = fn;
		a->done_arg = arg;
	}
	pthread_mutex_unlock(&a->mu);
	if (gone && fn != NULL)
		fn(arg, early);
}

void
http_async_header(struct http_async *a, const char *name, const char *value)
{
	pthread_mutex_lock(&a->mu);
	http_hdrs_add(&a->hdrs, &a->hdrs_tail, name, value);
	pthread_mutex_unlock(&a->mu);
}

void
http_async_reply(struct http_async *a, int status, const char *content_type,
		 const char *body, size_t len)
{
	struct http_hdr *h;

	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	if (!a->gone && !a->streaming && a->resp == NULL && !a->released) {
		a->resp = http_response_new(content_type,
					    body != NULL ? body : "",
					    body != NULL ? len : 0);
		a->status = (unsigned int)status;
		for (h = a->hdrs; a->resp != NULL && h != NULL; h = h->next)
			MHD_add_response_header(a->resp, h->name, h->value);
		http_async_wake(a);
	}
	a->released = 1;
	pthread_mutex_unlock(&a->mu);
	http_async_unref(a);
}

void
http_async_reply_json(struct http_async *a, int status, const char *json)
{
	http_async_reply(a, status, "application/json; charset=utf-8", json,
			 strlen(json));
}

void
http_async_stream_begin(struct http_async *a, int status,
			const char *content_type)
{
	pthread_mutex_lock(&a->mu);
	if (!a->gone && !a->streaming && a->resp == NULL && !a->released) {
		a->resp = http_async_stream_resp(a, content_type);
		a->status = (unsigned int)status;
		http_async_wake(a);
	}
	pthread_mutex_unlock(&a->mu);
}

int
http_async_write(struct http_async *a, const void *data, size_t len)
{
	int r = 0;

	pthread_mutex_lock(&a->mu);
	if (a->gone || a->ended || a->released) {
		r = -1;
	} else if (a->len + len > HTTP_STREAM_MAX) {
		/* A client that does not read: cut the stream. */
		log_warn("http", "stream buffer over %u bytes: cut",
			 HTTP_STREAM_MAX);
		a->ended = 1;
		a->len = a->off = 0;
		http_async_wake(a);
		r = -1;
	} else if (len > 0) {
		if (a->off > 0 && a->len + len > a->cap) {
			memmove(a->buf, a->buf + a->off, a->len - a->off);
			a->len -= a->off;
			a->off = 0;
		}
		if (a->len + len > a->cap) {
			size_t cap = a->cap ? a->cap : 1024;

			while (cap < a->len + len)
				cap *= 2;
			a->buf = xrealloc(a->buf, cap);
			a->cap = cap;
		}
		memcpy(a->buf + a->len, data, len);
		a->len += len;
		http_async_wake(a);
	}
	pthread_mutex_unlock(&a->mu);
	return r;
}

int
http_async_write_take(struct http_async *a, char *data, size_t len)
{
	int r;

	pthread_mutex_lock(&a->mu);
	if (a->buf == NULL && len > 0 && len <= HTTP_STREAM_MAX &&
	    !a->gone && !a->ended && !a->released) {
		a->buf = data;
		a->len = a->cap = len;
		a->off = 0;
		http_async_wake(a);
		pthread_mutex_unlock(&a->mu);
		return 0;
	}
	pthread_mutex_unlock(&a->mu);
	r = http_async_write(a, data, len);
	free(data);
	return r;
}

int
http_async_gone(struct http_async *a)
{
	int g;

	pthread_mutex_lock(&a->mu);
	g = a->gone;
	pthread_mutex_unlock(&a->mu);
	return g;
}

void
http_async_end(struct http_async *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	if (a->streaming) {
		a->ended = 1;
	} else if (!a->gone && a->resp == NULL && !a->released) {
		a->resp = http_response_new("application/json",
					    HTTP_INTERNAL_JSON,
					    strlen(HTTP_INTERNAL_JSON));
		a->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
	a->released = 1;
	http_async_wake(a);
	pthread_mutex_unlock(&a->mu);
	http_async_unref(a);
}
