/* h2: the HTTP/2 client of https upstreams; see h2.h. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "agent/curl-dl.h"
#include "agent/h2.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"

#define H2_ADDRS 4		/* addresses of a name tried in order */
#define H2_DNS_TTL_MS 60000	/* a name's addresses reused this long */
#define H2_RETRIES 3		/* resends of a stream with no answer */
#define H2_READS 64		/* SSL_reads per connection and step */
#define H2_CONN_WINDOW (32 << 20)	/* the connection's receive window */
#define H2_POOL_MAX_IDLE 64	/* provider.c's defaults */
#define H2_POOL_IDLE_S 60
#define H2_CONNECT_MS 300000

struct h2_list {
	struct h2_stream *head, *tail;
};

struct h2_stream {
	struct h2 *c;
	struct h2_origin *o;
	struct h2_conn *conn;		/* while submitted */
	struct h2_list *on;		/* the list it is on, or NULL */
	struct h2_stream *prev, *next;
	void *arg;
	/* The request until an answer started (a resend needs it). */
	char *url, *hlines, *body;
	size_t body_len, body_off;
	int64_t deadline, t0;		/* mono ms (deadline 0: none) */
	int32_t id;			/* 0: not submitted */
	int32_t connect_ms;
	int status;
	uint8_t sse, started, body_eof, stopped, retries;
	int cerr;			/* why it ended (done list) */
	char *msg;
};

enum { C_CONNECTING = 1, C_TLS, C_H2, C_DEAD };

struct h2_conn {
	struct h2_origin *o;
	struct h2_conn *next;
	int fd, st, ai;			/* ai: the address being tried */
	SSL *ssl;
	nghttp2_session *ng;
	int settings, goaway, nactive;
	struct h2_list active;
	short events, revents;
	int slot, ready;
	char *wbuf;			/* bytes SSL_write has yet to take */
	size_t wlen, woff;
	int64_t t0, connect_at, idle_since;
};

struct h2_lookup;

struct h2_origin {
	struct h2_origin *next;
	char *host;			/* without brackets */
	char port[8];
	int is_ip, no_h2;
	struct sockaddr_storage sa[H2_ADDRS];
	socklen_t salen[H2_ADDRS];
	int nsa;
	int64_t sa_until;		/* 0: forever (an IP literal) */
	struct h2_lookup *lookup;	/* a name being resolved */
	struct h2_conn *conns;
	int nconns;
	struct h2_list wait;		/* streams waiting for a connection */
	long max_idle, max_host, idle_s;	/* the last request's */
};

struct h2 {
	struct h2_cbs cbs;
	uint32_t max_streams;
	struct h2_origin *origins;
	struct h2_list done;		/* ended, callbacks not yet called */
	int pump;			/* origins may have work: run soon */
	int64_t next_check;		/* earliest stream deadline (0 none) */
	SSL_CTX *ctx;
	int ctx_tried;
	struct stat ca_st;		/* NODE_EXTRA_CA_CERTS when built */
	int ca_had;
	nghttp2_session_callbacks *ngcb;
	nghttp2_option *ngopt;
};

/* A name resolved on its own thread: refs are the origin's and the
 * thread's (then its posted job's). The thread posts only while c is set,
 * under h2_lookup_mu: once h2_free cleared it, nothing is posted to a
 * provider that may be gone. */
static pthread_mutex_t h2_lookup_mu = PTHREAD_MUTEX_INITIALIZER;

struct h2_lookup {
	atomic_int refs;
	struct h2 *c;			/* NULL: the h2 went away */
	struct h2_origin *o;
	int (*post)(void *ctx, void (*fn)(void *arg), void *arg);
	void *post_ctx;
	int rc;
	struct addrinfo *res;
	char *host;
	char port[8];
};

/* ---- lists ------------------------------------------------------------------ */

static void h2_list_del(struct h2_stream *s)
{
	struct h2_list *l = s->on;

	if (!l)
		return;
	if (s->prev)
		s->prev->next = s->next;
	else
		l->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		l->tail = s->prev;
	s->prev = s->next = NULL;
	s->on = NULL;
}

static void h2_list_add(struct h2_list *l, struct h2_stream *s, int front)
{
	h2_list_del(s);
	s->on = l;
	if (front) {
		s->next = l->head;
		if (l->head)
			l->head->prev = s;
		else
			l->tail = s;
		l->head = s;
	} else {
		s->prev = l->tail;
		if (l->tail)
			l->tail->next = s;
		else
			l->head = s;
		l->tail = s;
	}
}

/* ---- URLs --------------------------------------------------------------------- */

struct h2_url {
	const char *host, *auth, *path;
	size_t hlen, alen;
	int port;
};

static int h2_url_parse(const char *url, struct h2_url *u)
{
	const char *a, *e, *p, *q;
	long port = 443;
	char *end;

	if (strncasecmp(url, "https://", 8) != 0)
		return 0;
	a = url + 8;
	e = a + strcspn(a, "/?#");
	if (e == a || memchr(a, '@', (size_t)(e - a)))
		return 0;
	u->auth = a;
	u->alen = (size_t)(e - a);
	if (*a == '[') {
		q = memchr(a, ']', (size_t)(e - a));
		if (!q)
			return 0;
		u->host = a + 1;
		u->hlen = (size_t)(q - a - 1);
		p = q + 1;
	} else {
		q = memchr(a, ':', (size_t)(e - a));
		u->host = a;
		p = q ? q : e;
		u->hlen = (size_t)(p - a);
	}
	if (p < e) {
		if (*p != ':' || p + 1 == e ||
		    strspn(p + 1, "0123456789") != (size_t)(e - p - 1))
			return 0;
		port = strtol(p + 1, &end, 10);
		if (end != e || port < 1 || port > 65535)
			return 0;
	}
	if (!u->hlen || u->hlen > 253)
		return 0;
	for (q = u->host; q < u->host + u->hlen; q++)
		if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
		      (*q >= '0' && *q <= '9') || strchr("-._:", *q)))
			return 0;
	for (q = e; *q; q++)
		if (*q <= 0x20 || *q >= 0x7f || *q == '#')
			return 0;
	u->path = e;
	u->port = (int)port;
	return 1;
}

int h2_url_ok(const char *url)
{
	struct h2_url u;

	return h2_url_parse(url, &u);
}

static struct h2_origin *h2_origin_find(struct h2 *c, const struct h2_url *u,
					int make)
{
	struct h2_origin *o;
	char port[8];
	struct in6_addr a6;
	struct sockaddr_in *s4;
	struct sockaddr_in6 *s6;

	snprintf(port, sizeof(port), "%d", u->port);
	for (o = c->origins; o; o = o->next)
		if (strlen(o->host) == u->hlen &&
		    strncasecmp(o->host, u->host, u->hlen) == 0 &&
		    strcmp(o->port, port) == 0)
			return o;
	if (!make)
		return NULL;
	o = xcalloc(1, sizeof(*o));
	o->host = xstrndup(u->host, u->hlen);
	memcpy(o->port, port, sizeof(port));
	s4 = (struct sockaddr_in *)&o->sa[0];
	s6 = (struct sockaddr_in6 *)&o->sa[0];
	if (inet_pton(AF_INET, o->host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)u->port);
		o->salen[0] = sizeof(*s4);
		o->nsa = o->is_ip = 1;
	} else if (inet_pton(AF_INET6, o->host, &a6) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)u->port);
		s6->sin6_addr = a6;
		o->salen[0] = sizeof(*s6);
		o->nsa = o->is_ip = 1;
	}
	o->next = c->origins;
	c->origins = o;
	return o;
}

int h2_origin_no_h2(struct h2 *c, const char *url)
{
	struct h2_url u;
	struct h2_origin *o;

	if (!h2_url_parse(url, &u))
		return 1;
	o = h2_origin_find(c, &u, 0);
	return o && o->no_h2;
}

/* ---- trust -------------------------------------------------------------------- */

/* The extra CA file's identity, to notice a change (missing: zeroes). */
static int h2_ca_stat(struct stat *st)
{
	const char *extra = getenv("NODE_EXTRA_CA_CERTS");

	memset(st, 0, sizeof(*st));
	return extra && *extra && stat(extra, st) == 0;
}

static SSL_CTX *h2_ctx_build(void)
{
	const char *extra = getenv("NODE_EXTRA_CA_CERTS");
	const char *dir = X509_get_default_cert_dir();
	const char *file = X509_get_default_cert_file();
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	X509_STORE *st;
	char *pem = NULL;
	size_t len = 0;
	BIO *bio;
	X509 *x;
	int n = 0;

	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
			 SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	st = SSL_CTX_get_cert_store(ctx);
	/* As libcurl does: a trusted intermediate anchors a chain. */
	X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN);
	/* The system roots as libcurl takes them (curl-dl.c): the hashed
	 * directory looked up as chains need it, else the bundle file. */
	if (!getenv("CLAWGATE_UPSTREAM_CA_BUNDLE") && curl_dl_ca_hashed_dir(dir))
		X509_STORE_load_path(st, dir);
	else if (!X509_STORE_load_file(st, file))
		log_warn("agent", "cannot read the system CA bundle %s", file);
	ERR_clear_error();
	if (extra && *extra && curl_dl_ca_read(extra, &pem, &len)) {
		bio = BIO_new_mem_buf(pem, (int)len);
		while (bio && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
			n += X509_STORE_add_cert(st, x) == 1;
			X509_free(x);
		}
		BIO_free(bio);
		ERR_clear_error();
		free(pem);
		log_info("agent", "upstream TLS (HTTP/2) trusts the system roots "
			 "and %d certificate(s) of %s (NODE_EXTRA_CA_CERTS)",
			 n, extra);
	}
	return ctx;
}

/* The process's SSL_CTX, built at the first connection and again when
 * the extra CA file changed. */
static SSL_CTX *h2_ctx(struct h2 *c)
{
	struct stat st;
	int had = h2_ca_stat(&st);

	if (c->ctx && (had != c->ca_had || st.st_ino != c->ca_st.st_ino ||
		       st.st_size != c->ca_st.st_size ||
		       st.st_mtim.tv_sec != c->ca_st.st_mtim.tv_sec ||
		       st.st_mtim.tv_nsec != c->ca_st.st_mtim.tv_nsec)) {
		SSL_CTX_free(c->ctx);	/* live SSLs hold their reference */
		c->ctx = NULL;
	}
	if (!c->ctx) {
		c->ctx = h2_ctx_build();
		c->ca_st = st;
		c->ca_had = had;
	}
	return c->ctx;
}

/* ---- streams ending ------------------------------------------------------------- */

static void h2_req_drop(struct h2_stream *s)
{
	free(s->url);
	s->url = NULL;
	xfree_secret(s->hlines);
	s->hlines = NULL;
	free(s->body);
	s->body = NULL;
}

/* s leaves its connection (one left idle is timed from now). */
static void h2_detach(struct h2_stream *s)
{
	if (!s->conn)
		return;
	if (!--s->conn->nactive)
		s->conn->idle_since = util_mono_ms();
	s->conn = NULL;
}

/* s is over: onto the done list (callbacks from h2_run). */
static void h2_end(struct h2_stream *s, int cerr, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void h2_end(struct h2_stream *s, int cerr, const char *fmt, ...)
{
	va_list ap;

	h2_detach(s);
	s->cerr = cerr;
	free(s->msg);
	s->msg = NULL;
	if (cerr) {
		va_start(ap, fmt);
		if (vasprintf(&s->msg, fmt, ap) < 0)
			s->msg = NULL;
		va_end(ap);
	}
	h2_list_add(&s->c->done, s, 0);
}

static void h2_flush_done(struct h2 *c)
{
	struct h2_stream *s;

	while ((s = c->done.head)) {
		h2_list_del(s);
		c->cbs.done(s->arg, s->status, s->cerr, s->cerr ? (s->msg
			    ? s->msg : "HTTP/2 transfer failed") : NULL);
	}
}

/* Back to the front of its origin's queue (its answer never started). */
static void h2_requeue(struct h2_stream *s)
{
	struct h2_origin *o = s->o;

	h2_detach(s);
	s->id = 0;
	s->status = 0;
	s->sse = 0;
	s->body_off = 0;
	s->body_eof = 0;
	s->retries++;
	h2_list_add(&o->wait, s, 1);
	s->c->pump = 1;
}

/* ---- nghttp2 callbacks ------------------------------------------------------------ */

static ssize_t h2_read_body(nghttp2_session *ng, int32_t id, uint8_t *buf,
			    size_t length, uint32_t *flags,
			    nghttp2_data_source *src, void *ud)
{
	struct h2_stream *s = nghttp2_session_get_stream_user_data(ng, id);
	size_t n;

	(void)src;
	(void)ud;
	if (!s || !s->body) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		return 0;
	}
	n = s->body_len - s->body_off;
	if (n > length)
		n = length;
	memcpy(buf, s->body + s->body_off, n);
	s->body_off += n;
	if (s->body_off == s->body_len) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		s->body_eof = 1;
		if (s->started)
			h2_req_drop(s);
	}
	return (ssize_t)n;
}

static int h2_on_header(nghttp2_session *ng, const nghttp2_frame *f,
			const uint8_t *name, size_t nlen, const uint8_t *value,
			size_t vlen, uint8_t flags, void *ud)
{
	struct h2_stream *s;
	char v[4];

	(void)flags;
	(void)ud;
	if (f->hd.type != NGHTTP2_HEADERS)
		return 0;
	s = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
	if (!s)
		return 0;
	if (nlen == 7 && memcmp(name, ":status", 7) == 0 && vlen == 3) {
		memcpy(v, value, 3);
		v[3] = 0;
		s->status = atoi(v);
	} else if (nlen == 12 && memcmp(name, "content-type", 12) == 0) {
		s->sse = memmem(value, vlen, "text/event-stream", 17) != NULL;
	}
	return 0;
}

static int h2_on_frame(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct h2_conn *cn = ud;
	struct h2_stream *s;

	switch (f->hd.type) {
	case NGHTTP2_SETTINGS:
		if (!(f->hd.flags & NGHTTP2_FLAG_ACK) && !cn->settings) {
			cn->settings = 1;
			cn->idle_since = util_mono_ms();
		}
		break;
	case NGHTTP2_GOAWAY:
		cn->goaway = 1;
		break;
	case NGHTTP2_HEADERS:
		s = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
		if (s && s->status >= 200 && !s->started) {
			/* The answer started: no resend, the request goes
			 * (the body once all of it is sent). */
			s->started = 1;
			free(s->url);
			s->url = NULL;
			xfree_secret(s->hlines);
			s->hlines = NULL;
			if (s->body_eof) {
				free(s->body);
				s->body = NULL;
			}
		}
		break;
	}
	return 0;
}

static int h2_on_data(nghttp2_session *ng, uint8_t flags, int32_t id,
		      const uint8_t *data, size_t len, void *ud)
{
	struct h2_stream *s = nghttp2_session_get_stream_user_data(ng, id);

	(void)flags;
	(void)ud;
	if (!s || s->stopped)
		return 0;
	if (!s->c->cbs.body(s->arg, s->status, s->sse, (const char *)data,
			    len)) {
		s->stopped = 1;
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id,
					  NGHTTP2_CANCEL);
	}
	return 0;
}

static int h2_on_close(nghttp2_session *ng, int32_t id, uint32_t err,
		       void *ud)
{
	struct h2_stream *s = nghttp2_session_get_stream_user_data(ng, id);

	(void)ud;
	if (!s)
		return 0;
	nghttp2_session_set_stream_user_data(ng, id, NULL);
	if (s->stopped) {
		h2_end(s, CURLE_WRITE_ERROR, "Failure writing output to "
		       "destination");
	} else if (err == NGHTTP2_REFUSED_STREAM && !s->started &&
		   s->retries < H2_RETRIES) {
		h2_requeue(s);
	} else if (err || s->status < 200) {
		h2_end(s, CURLE_HTTP2_STREAM, "HTTP/2 stream %d was not "
		       "closed cleanly: %s (err %u)", (int)id,
		       nghttp2_http2_strerror(err), err);
	} else {
		h2_end(s, 0, "%s", "");
	}
	return 0;
}

/* ---- connections -------------------------------------------------------------- */

static void h2_conn_close(struct h2 *c, struct h2_conn *cn)
{
	struct h2_origin *o = cn->o;
	struct h2_conn **pp;

	for (pp = &o->conns; *pp && *pp != cn; pp = &(*pp)->next)
		;
	if (*pp) {
		*pp = cn->next;
		o->nconns--;
	}
	if (cn->ng)
		nghttp2_session_del(cn->ng);
	if (cn->ssl)
		SSL_free(cn->ssl);
	if (cn->fd >= 0)
		close(cn->fd);
	free(cn->wbuf);
	free(cn);
	c->pump = 1;
}

/* The connection failed: its streams are resent on another when no byte
 * of their answer came (and they were not resent too often), else end
 * with the error. */
static void h2_conn_fail(struct h2 *c, struct h2_conn *cn, int cerr,
			 const char *why, const char *detail)
{
	struct h2_origin *o = cn->o;
	struct h2_conn *x;
	struct h2_stream *s;
	int other = 0, ready = cn->st == C_H2 && cn->settings;

	while ((s = cn->active.head)) {
		if (cn->ng)
			nghttp2_session_set_stream_user_data(cn->ng, s->id,
							     NULL);
		if (!s->started && !s->stopped && s->retries < H2_RETRIES)
			h2_requeue(s);
		else
			h2_end(s, cerr, "%s%s", why, detail ? detail : "");
	}
	for (x = o->conns; x; x = x->next)
		if (x != cn && x->st != C_DEAD && !x->goaway)
			other = 1;
	/* A connection that never got ready fails the request that opened
	 * it (the first waiting), or all waiting when no other may come. */
	while (!ready && (s = o->wait.head)) {
		h2_end(s, cerr, "%s%s", why, detail ? detail : "");
		if (other)
			break;
	}
	cn->st = C_DEAD;
	h2_conn_close(c, cn);
}

static int h2_connect_addr(struct h2_conn *cn)
{
	struct h2_origin *o = cn->o;
	int one = 1;

	for (; cn->ai < o->nsa; cn->ai++) {
		if (cn->fd >= 0)
			close(cn->fd);
		cn->fd = socket(o->sa[cn->ai].ss_family, SOCK_STREAM |
				SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (cn->fd < 0)
			continue;
		setsockopt(cn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(cn->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		if (connect(cn->fd, (struct sockaddr *)&o->sa[cn->ai],
			    o->salen[cn->ai]) == 0 || errno == EINPROGRESS) {
			cn->st = C_CONNECTING;
			cn->events = POLLOUT;
			return 0;
		}
	}
	return -1;
}

static void h2_conn_open(struct h2 *c, struct h2_origin *o, int64_t conn_ms)
{
	struct h2_conn *cn = xcalloc(1, sizeof(*cn));
	int err = 0;

	cn->o = o;
	cn->fd = -1;
	cn->slot = -1;
	cn->t0 = util_mono_ms();
	cn->connect_at = cn->t0 + (conn_ms > 0 ? conn_ms : H2_CONNECT_MS);
	cn->next = o->conns;
	o->conns = cn;
	o->nconns++;
	if (h2_connect_addr(cn) < 0) {
		err = errno;
		h2_conn_fail(c, cn, CURLE_COULDNT_CONNECT, "Failed to connect "
			     "to the upstream: ", strerror(err));
	}
}

/* Set up TLS on the connected socket. */
static int h2_tls_start(struct h2 *c, struct h2_conn *cn)
{
	static const unsigned char alpn[] = "\x02h2\x08http/1.1";
	struct h2_origin *o = cn->o;
	SSL_CTX *ctx = h2_ctx(c);

	if (!ctx || !(cn->ssl = SSL_new(ctx)))
		return -1;
	SSL_set_fd(cn->ssl, cn->fd);
	SSL_set_alpn_protos(cn->ssl, alpn, sizeof(alpn) - 1);
	if (o->is_ip) {
		if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(cn->ssl),
						   o->host))
			return -1;
	} else if (!SSL_set_tlsext_host_name(cn->ssl, o->host) ||
		   !SSL_set1_host(cn->ssl, o->host)) {
		return -1;
	}
	SSL_set_connect_state(cn->ssl);
	cn->st = C_TLS;
	return 0;
}

static int h2_session_start(struct h2 *c, struct h2_conn *cn)
{
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
	};

	if (nghttp2_session_client_new2(&cn->ng, c->ngcb, cn, c->ngopt) != 0)
		return -1;
	if (nghttp2_submit_settings(cn->ng, NGHTTP2_FLAG_NONE, iv, 1) != 0 ||
	    nghttp2_session_set_local_window_size(cn->ng, NGHTTP2_FLAG_NONE,
						  0, H2_CONN_WINDOW) != 0)
		return -1;
	cn->st = C_H2;
	cn->events = POLLIN;
	return 0;
}

/* Send what nghttp2 has: 0, or -1 on a write error. */
static int h2_conn_send(struct h2_conn *cn)
{
	const uint8_t *d;
	ssize_t n;
	int w, e;

	for (;;) {
		if (cn->wlen == cn->woff) {
			free(cn->wbuf);
			cn->wbuf = NULL;
			cn->wlen = cn->woff = 0;
			n = nghttp2_session_mem_send(cn->ng, &d);
			if (n < 0)
				return -1;
			if (n == 0)
				break;
			cn->wbuf = xmalloc((size_t)n);
			memcpy(cn->wbuf, d, (size_t)n);
			cn->wlen = (size_t)n;
		}
		ERR_clear_error();
		w = SSL_write(cn->ssl, cn->wbuf + cn->woff,
			      (int)(cn->wlen - cn->woff));
		if (w <= 0) {
			e = SSL_get_error(cn->ssl, w);
			if (e == SSL_ERROR_WANT_WRITE ||
			    e == SSL_ERROR_WANT_READ) {
				cn->events = POLLIN | POLLOUT;
				return 0;
			}
			return -1;
		}
		cn->woff += (size_t)w;
	}
	cn->events = POLLIN;
	return 0;
}

/* Read and process what came: 0, 1 when the peer closed, -1 on an error
 * (*why). */
static int h2_conn_recv(struct h2_conn *cn, const char **why)
{
	char buf[16384];
	ssize_t r;
	int n, e, i;

	for (i = 0; i < H2_READS; i++) {
		ERR_clear_error();
		n = SSL_read(cn->ssl, buf, sizeof(buf));
		if (n <= 0) {
			e = SSL_get_error(cn->ssl, n);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return 0;
			if (e == SSL_ERROR_ZERO_RETURN)
				return 1;
			*why = e == SSL_ERROR_SYSCALL && !n
			       ? "Connection closed by the upstream"
			       : "Failure when receiving data from the peer";
			return -1;
		}
		r = nghttp2_session_mem_recv(cn->ng, (const uint8_t *)buf,
					     (size_t)n);
		if (r < 0) {
			*why = nghttp2_strerror((int)r);
			return -1;
		}
	}
	cn->ready = 1;		/* more may be buffered: step again soon */
	return 0;
}

/* Drive one connection after its socket was polled (or it was marked
 * ready). */
static void h2_conn_step(struct h2 *c, struct h2_conn *cn)
{
	char detail[256];
	const unsigned char *proto = NULL;
	unsigned int plen = 0;
	const char *why = NULL;
	socklen_t el = sizeof(int);
	int err = 0, r, e;
	short rev = cn->revents;
	long vr;

	cn->ready = 0;
	cn->revents = 0;
	if (cn->st == C_CONNECTING) {
		if (!(rev & (POLLOUT | POLLERR | POLLHUP)))
			return;	/* not yet */
		if (getsockopt(cn->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err) {
			cn->ai++;
			if (h2_connect_addr(cn) == 0)
				return;
			snprintf(detail, sizeof(detail), "%s port %s: %s",
				 cn->o->host, cn->o->port, strerror(err));
			h2_conn_fail(c, cn, CURLE_COULDNT_CONNECT,
				     "Failed to connect to ", detail);
			return;
		}
		if (h2_tls_start(c, cn) < 0) {
			h2_conn_fail(c, cn, CURLE_SSL_CONNECT_ERROR,
				     "TLS set-up failed", NULL);
			return;
		}
	}
	if (cn->st == C_TLS) {
		ERR_clear_error();
		r = SSL_connect(cn->ssl);
		if (r <= 0) {
			e = SSL_get_error(cn->ssl, r);
			if (e == SSL_ERROR_WANT_READ) {
				cn->events = POLLIN;
				return;
			}
			if (e == SSL_ERROR_WANT_WRITE) {
				cn->events = POLLOUT;
				return;
			}
			vr = SSL_get_verify_result(cn->ssl);
			if (vr != X509_V_OK) {
				h2_conn_fail(c, cn, CURLE_PEER_FAILED_VERIFICATION,
					     "SSL certificate problem: ",
					     X509_verify_cert_error_string(vr));
				return;
			}
			snprintf(detail, sizeof(detail), "TLS connect error: %s",
				 ERR_reason_error_string(ERR_peek_last_error())
				 ?: "connection closed");
			h2_conn_fail(c, cn, CURLE_SSL_CONNECT_ERROR, detail,
				     NULL);
			return;
		}
		SSL_get0_alpn_selected(cn->ssl, &proto, &plen);
		if (plen != 2 || memcmp(proto, "h2", 2) != 0) {
			/* HTTP/1.1 only: remembered, its requests go to
			 * libcurl (this connection is not handed over). */
			cn->o->no_h2 = 1;
			log_info("agent", "upstream %s:%s does not speak HTTP/2 "
				 "(ALPN): its requests go through libcurl",
				 cn->o->host, cn->o->port);
			cn->st = C_DEAD;
			h2_conn_close(c, cn);
			return;
		}
		if (h2_session_start(c, cn) < 0) {
			h2_conn_fail(c, cn, CURLE_OUT_OF_MEMORY,
				     "HTTP/2 session set-up failed", NULL);
			return;
		}
	}
	r = h2_conn_recv(cn, &why);
	if (r == 0 && h2_conn_send(cn) < 0) {
		r = -1;
		why = "Failed sending data to the peer";
	}
	if (r == 0 && !nghttp2_session_want_read(cn->ng) &&
	    !nghttp2_session_want_write(cn->ng))
		r = 1;
	if (r == 1 && !cn->active.head) {
		cn->st = C_DEAD;
		h2_conn_close(c, cn);
	} else if (r != 0) {
		h2_conn_fail(c, cn, CURLE_RECV_ERROR, why ? why
			     : "Connection closed by the upstream", NULL);
	}
}

/* ---- name lookups ------------------------------------------------------------- */

static void h2_lookup_unref(struct h2_lookup *lk)
{
	if (atomic_fetch_sub(&lk->refs, 1) != 1)
		return;
	if (lk->res)
		freeaddrinfo(lk->res);
	free(lk->host);
	free(lk);
}

static void h2_lookup_done(void *arg)
{
	struct h2_lookup *lk = arg;
	struct h2_origin *o = lk->o;
	struct h2_stream *s;
	struct addrinfo *ai;
	char detail[300];

	if (lk->c) {
		o->lookup = NULL;
		o->nsa = 0;
		for (ai = lk->rc == 0 ? lk->res : NULL; ai && o->nsa < H2_ADDRS;
		     ai = ai->ai_next) {
			if (ai->ai_addrlen > sizeof(o->sa[0]))
				continue;
			memcpy(&o->sa[o->nsa], ai->ai_addr, ai->ai_addrlen);
			o->salen[o->nsa++] = ai->ai_addrlen;
		}
		o->sa_until = util_mono_ms() + H2_DNS_TTL_MS;
		lk->c->pump = 1;
		if (!o->nsa) {
			snprintf(detail, sizeof(detail), "%s (%s)", o->host,
				 lk->rc ? gai_strerror(lk->rc) : "no address");
			while ((s = o->wait.head))
				h2_end(s, CURLE_COULDNT_RESOLVE_HOST,
				       "Could not resolve host: %s", detail);
			o->sa_until = 0;
		}
		h2_lookup_unref(lk);	/* the origin's */
	}
	h2_lookup_unref(lk);		/* the job's */
}

static void *h2_lookup_main(void *arg)
{
	struct h2_lookup *lk = arg;
	struct addrinfo hints;
	int posted;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	lk->rc = getaddrinfo(lk->host, lk->port, &hints, &lk->res);
	pthread_mutex_lock(&h2_lookup_mu);
	posted = lk->c && lk->post(lk->post_ctx, h2_lookup_done, lk) == 0;
	pthread_mutex_unlock(&h2_lookup_mu);
	if (!posted)
		h2_lookup_unref(lk);
	return NULL;
}

static void h2_lookup_start(struct h2 *c, struct h2_origin *o)
{
	struct h2_lookup *lk = xcalloc(1, sizeof(*lk));
	pthread_attr_t at;
	pthread_t t;
	struct h2_stream *s;

	atomic_init(&lk->refs, 2);
	lk->c = c;
	lk->o = o;
	lk->post = c->cbs.post;
	lk->post_ctx = c->cbs.post_ctx;
	lk->host = xstrdup(o->host);
	memcpy(lk->port, o->port, sizeof(lk->port));
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 256 * 1024);
	if (pthread_create(&t, &at, h2_lookup_main, lk) != 0) {
		free(lk->host);
		free(lk);
		while ((s = o->wait.head))
			h2_end(s, CURLE_COULDNT_RESOLVE_HOST,
			       "Could not resolve host: %s", o->host);
	} else {
		o->lookup = lk;
	}
	pthread_attr_destroy(&at);
}

/* ---- dispatch ----------------------------------------------------------------- */

static uint32_t h2_conn_cap(struct h2 *c, struct h2_conn *cn)
{
	uint32_t m = nghttp2_session_get_remote_settings(
		cn->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);

	return m < c->max_streams ? m : c->max_streams;
}

/* A lower-cased header name HTTP/2 does not allow (connection-specific). */
static int h2_hop_header(const char *n, size_t nl)
{
	static const char *const hop[] = {
		"connection", "keep-alive", "upgrade", "proxy-connection",
		"transfer-encoding", "host", "te",
	};
	size_t i;

	for (i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		if (strlen(hop[i]) == nl && memcmp(hop[i], n, nl) == 0)
			return 1;
	return 0;
}

/* A header whose value may be a secret (kept out of the HPACK tables). */
static int h2_secret_header(const char *n, size_t nl)
{
	return memmem(n, nl, "auth", 4) || memmem(n, nl, "key", 3) ||
	       memmem(n, nl, "token", 5) || memmem(n, nl, "secret", 6) ||
	       memmem(n, nl, "cookie", 6);
}

static void h2_submit(struct h2 *c, struct h2_conn *cn, struct h2_stream *s)
{
	nghttp2_nv *nva = NULL;
	nghttp2_data_provider dp;
	struct h2_url u;
	char *names = NULL, clen[24];
	const char *p, *e, *colon, *v;
	size_t n = 0, used = 0, nl, i, lines = 0, plen;
	int32_t id;

	(void)c;
	if (!h2_url_parse(s->url, &u)) {
		h2_end(s, CURLE_URL_MALFORMAT, "URL rejected");
		return;
	}
	for (p = s->hlines; p && (p = strstr(p, "\r\n")); p += 2)
		lines++;
	plen = strlen(u.path);
	nva = xmalloc((lines + 8) * sizeof(*nva));
	names = xmalloc((s->hlines ? strlen(s->hlines) : 0) + plen + 2);
#define H2_NV(nm, nml, val, vl) do { \
		nva[n].name = (uint8_t *)(nm); nva[n].namelen = (nml); \
		nva[n].value = (uint8_t *)(val); nva[n].valuelen = (vl); \
		nva[n].flags = NGHTTP2_NV_FLAG_NONE; n++; } while (0)
	H2_NV(":method", 7, "POST", 4);
	H2_NV(":scheme", 7, "https", 5);
	H2_NV(":authority", 10, u.auth, u.alen);
	if (*u.path == '/') {
		H2_NV(":path", 5, u.path, plen);
	} else {	/* "" or "?query" */
		names[0] = '/';
		memcpy(names + 1, u.path, plen);
		used = 1 + plen;
		H2_NV(":path", 5, names, used);
	}
	H2_NV("user-agent", 10, "clawgate", 8);
	snprintf(clen, sizeof(clen), "%zu", s->body_len);
	H2_NV("content-length", 14, clen, strlen(clen));
	/* The header lines, names lower-cased; connection-specific ones
	 * (not allowed on HTTP/2) left out. */
	for (p = s->hlines; p && (e = strstr(p, "\r\n")); p = e + 2) {
		colon = memchr(p, ':', (size_t)(e - p));
		if (!colon || colon == p)
			continue;
		nl = (size_t)(colon - p);
		for (i = 0; i < nl; i++)
			names[used + i] = (char)tolower((unsigned char)p[i]);
		if (h2_hop_header(names + used, nl))
			continue;
		for (v = colon + 1; v < e && (*v == ' ' || *v == '\t'); v++)
			;
		H2_NV(names + used, nl, v, (size_t)(e - v));
		if (h2_secret_header(names + used, nl))	/* not in HPACK's */
			nva[n - 1].flags = NGHTTP2_NV_FLAG_NO_INDEX;	/* table */
		used += nl;
	}
#undef H2_NV
	dp.source.ptr = s;
	dp.read_callback = h2_read_body;
	/* nghttp2 copies the names and values. */
	id = nghttp2_submit_request(cn->ng, NULL, nva, n, &dp, s);
	free(nva);
	free(names);
	if (id < 0) {
		h2_end(s, CURLE_SEND_ERROR, "HTTP/2 request refused: %s",
		       nghttp2_strerror(id));
		return;
	}
	s->id = id;
	s->conn = cn;
	cn->nactive++;
	h2_list_add(&cn->active, s, 0);
	cn->ready = 1;		/* to send it */
}

static void h2_fallback_all(struct h2 *c, struct h2_origin *o)
{
	struct h2_stream *s;
	struct h2_req rq;
	int64_t now = util_mono_ms();

	while ((s = o->wait.head)) {
		h2_list_del(s);
		memset(&rq, 0, sizeof(rq));
		rq.url = s->url;
		rq.hlines = s->hlines;
		rq.body = s->body;
		rq.body_len = s->body_len;
		s->url = s->hlines = s->body = NULL;
		rq.timeout_ms = s->deadline ? (s->deadline > now ?
					       s->deadline - now : 1) : 0;
		rq.connect_timeout_ms = s->connect_ms;
		rq.pool_max_idle = o->max_idle;
		rq.pool_max_host = o->max_host;
		rq.pool_idle_s = o->idle_s;
		c->cbs.fallback(s->arg, &rq);
	}
}

static void h2_pump(struct h2 *c, struct h2_origin *o)
{
	struct h2_conn *cn, *use;
	int pending;
	int64_t now;

	while (o->wait.head) {
		if (o->no_h2) {
			h2_fallback_all(c, o);
			return;
		}
		use = NULL;
		pending = 0;
		for (cn = o->conns; cn; cn = cn->next) {
			if (cn->st == C_H2 && cn->settings && !cn->goaway &&
			    (uint32_t)cn->nactive < h2_conn_cap(c, cn)) {
				use = cn;
				break;
			}
			if (cn->st != C_DEAD && !(cn->st == C_H2 &&
						  cn->settings))
				pending = 1;
		}
		if (use) {
			h2_submit(c, use, o->wait.head);
			continue;
		}
		/* PIPEWAIT: the connection being set up may carry them. */
		if (pending || (o->max_host > 0 && o->nconns >= o->max_host))
			return;
		now = util_mono_ms();
		if (!o->is_ip && (!o->nsa || now >= o->sa_until)) {
			if (!o->lookup)
				h2_lookup_start(c, o);
			return;
		}
		h2_conn_open(c, o, o->wait.head->connect_ms);
		return;		/* one at a time */
	}
}

/* ---- the interface ------------------------------------------------------------- */

struct h2 *h2_new(const struct h2_cbs *cbs, uint32_t max_streams)
{
	struct h2 *c = xcalloc(1, sizeof(*c));

	c->cbs = *cbs;
	c->max_streams = max_streams ? max_streams : 100;
	if (nghttp2_session_callbacks_new(&c->ngcb) != 0 ||
	    nghttp2_option_new(&c->ngopt) != 0)
		abort();	/* only out of memory */
	nghttp2_session_callbacks_set_on_header_callback(c->ngcb, h2_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(c->ngcb,
							     h2_on_frame);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(c->ngcb,
								  h2_on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(c->ngcb,
							       h2_on_close);
	/* Until the server's SETTINGS come no stream is submitted anyway. */
	nghttp2_option_set_peer_max_concurrent_streams(c->ngopt, 1);
	return c;
}

void h2_free(struct h2 *c)
{
	struct h2_origin *o;

	if (!c)
		return;
	while ((o = c->origins)) {
		c->origins = o->next;
		while (o->conns)
			h2_conn_close(c, o->conns);
		if (o->lookup) {
			pthread_mutex_lock(&h2_lookup_mu);
			o->lookup->c = NULL;
			pthread_mutex_unlock(&h2_lookup_mu);
			h2_lookup_unref(o->lookup);
		}
		free(o->host);
		free(o);
	}
	if (c->ctx)
		SSL_CTX_free(c->ctx);
	nghttp2_session_callbacks_del(c->ngcb);
	nghttp2_option_del(c->ngopt);
	free(c);
}

struct h2_stream *h2_start(struct h2 *c, struct h2_req *rq, void *arg)
{
	struct h2_stream *s = xcalloc(1, sizeof(*s));
	struct h2_url u;

	s->c = c;
	s->arg = arg;
	s->url = rq->url;
	s->hlines = rq->hlines;
	s->body = rq->body;
	s->body_len = rq->body_len;
	rq->url = rq->hlines = rq->body = NULL;
	s->t0 = util_mono_ms();
	s->deadline = rq->timeout_ms > 0 ? s->t0 + rq->timeout_ms : 0;
	s->connect_ms = rq->connect_timeout_ms > 0 &&
			rq->connect_timeout_ms < H2_CONNECT_MS
			? (int32_t)rq->connect_timeout_ms : H2_CONNECT_MS;
	if (s->deadline && (!c->next_check || s->deadline < c->next_check))
		c->next_check = s->deadline;
	if (!h2_url_parse(s->url, &u)) {	/* checked by the caller */
		h2_end(s, CURLE_URL_MALFORMAT, "URL rejected");
		c->pump = 1;
		return s;
	}
	s->o = h2_origin_find(c, &u, 1);
	s->o->max_idle = rq->pool_max_idle;
	s->o->max_host = rq->pool_max_host;
	s->o->idle_s = rq->pool_idle_s;
	h2_list_add(&s->o->wait, s, 0);
	c->pump = 1;
	return s;
}

void h2_stream_free(struct h2_stream *s)
{
	struct h2_conn *cn;

	if (!s)
		return;
	if ((cn = s->conn)) {
		/* Open on a connection: reset (the others go on). */
		nghttp2_session_set_stream_user_data(cn->ng, s->id, NULL);
		nghttp2_submit_rst_stream(cn->ng, NGHTTP2_FLAG_NONE, s->id,
					  NGHTTP2_CANCEL);
		cn->ready = 1;
		h2_detach(s);
		s->c->pump = 1;
	}
	h2_list_del(s);
	h2_req_drop(s);
	free(s->msg);
	free(s);
}

void h2_pollset(struct h2 *c, int (*add)(void *arg, int fd, short events),
		void *arg, int *wait_ms)
{
	struct h2_origin *o;
	struct h2_conn *cn;
	int64_t now = util_mono_ms(), d;

	if (c->pump || c->done.head)
		*wait_ms = 0;
	if (c->next_check) {
		d = c->next_check - now;
		if (d < *wait_ms)
			*wait_ms = d > 0 ? (int)d : 0;
	}
	for (o = c->origins; o; o = o->next) {
		for (cn = o->conns; cn; cn = cn->next) {
			cn->slot = -1;
			if (cn->ready)
				*wait_ms = 0;
			d = cn->st == C_H2 && cn->settings
			    ? (cn->nactive ? 0 : cn->idle_since +
			       (o->idle_s > 0 ? o->idle_s : H2_POOL_IDLE_S)
			       * 1000LL)
			    : cn->connect_at;
			if (d && d - now < *wait_ms)
				*wait_ms = d - now > 0 ? (int)(d - now) : 0;
			if (cn->fd >= 0)
				cn->slot = add(arg, cn->fd, cn->events);
		}
	}
}

void h2_polled(struct h2 *c, short (*get)(void *arg, int slot), void *arg)
{
	struct h2_origin *o;
	struct h2_conn *cn;

	for (o = c->origins; o; o = o->next)
		for (cn = o->conns; cn; cn = cn->next)
			if (cn->slot >= 0)
				cn->revents = get(arg, cn->slot);
}

/* Streams past their whole-request deadline end (timed out). */
static void h2_deadlines(struct h2 *c, int64_t now)
{
	struct h2_origin *o;
	struct h2_conn *cn;
	struct h2_stream *s, *next;
	struct h2_list *l;
	int64_t min = 0;

	if (!c->next_check || now < c->next_check)
		return;
	for (o = c->origins; o; o = o->next) {
		for (cn = o->conns, l = &o->wait; l;
		     l = cn ? &cn->active : NULL, cn = cn ? cn->next : NULL) {
			for (s = l->head; s; s = next) {
				next = s->next;
				if (!s->deadline)
					continue;
				if (s->deadline > now) {
					if (!min || s->deadline < min)
						min = s->deadline;
					continue;
				}
				if (s->conn) {
					nghttp2_session_set_stream_user_data(
						s->conn->ng, s->id, NULL);
					nghttp2_submit_rst_stream(s->conn->ng,
						NGHTTP2_FLAG_NONE, s->id,
						NGHTTP2_CANCEL);
					s->conn->ready = 1;
				}
				h2_end(s, CURLE_OPERATION_TIMEDOUT,
				       "Operation timed out after %lld "
				       "milliseconds", (long long)(now -
								   s->t0));
			}
		}
	}
	c->next_check = min;
}

void h2_run(struct h2 *c)
{
	struct h2_origin *o;
	struct h2_conn *cn, *next, *old;
	int64_t now = util_mono_ms(), idle_ms;
	int nidle;
	long max_idle = H2_POOL_MAX_IDLE;
	char t[64];

	h2_deadlines(c, now);
	for (o = c->origins; o; o = o->next) {
		for (cn = o->conns; cn; cn = next) {
			next = cn->next;
			if (cn->st != C_H2 || !cn->settings) {
				if (now >= cn->connect_at) {
					snprintf(t, sizeof(t), "%lld "
						 "milliseconds", (long long)
						 (now - cn->t0));
					h2_conn_fail(c, cn,
						CURLE_OPERATION_TIMEDOUT,
						"Connection timed out after ",
						t);
					continue;
				}
			}
			if (cn->ready || cn->revents)
				h2_conn_step(c, cn);
		}
		h2_flush_done(c);
	}
	c->pump = 0;
	for (o = c->origins; o; o = o->next) {
		h2_pump(c, o);
		/* Submitted streams go out now. */
		for (cn = o->conns; cn; cn = next) {
			next = cn->next;
			if (cn->ready && cn->st == C_H2)
				h2_conn_step(c, cn);
		}
		if (o->max_idle > 0)
			max_idle = o->max_idle;
	}
	h2_flush_done(c);
	/* Idle connections: closed after the idle time, at most max_idle
	 * kept (the oldest go first). */
	do {
		nidle = 0;
		old = NULL;
		for (o = c->origins; o; o = o->next) {
			idle_ms = (o->idle_s > 0 ? o->idle_s : H2_POOL_IDLE_S)
				  * 1000LL;
			for (cn = o->conns; cn; cn = next) {
				next = cn->next;
				if (cn->st != C_H2 || !cn->settings ||
				    cn->nactive || o->wait.head)
					continue;
				if (now - cn->idle_since >= idle_ms) {
					cn->st = C_DEAD;
					h2_conn_close(c, cn);
					continue;
				}
				nidle++;
				if (!old || cn->idle_since < old->idle_since)
					old = cn;
			}
		}
		if (nidle > max_idle && old) {
			old->st = C_DEAD;
			h2_conn_close(c, old);
		}
	} while (nidle > max_idle);
}
