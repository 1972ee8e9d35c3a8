/* HTTP transport on libmicrohttpd: a daemon without a listen socket fed by
 * the listener through MHD_add_connection.
 *
 * Request lifetime: the first access-handler call allocates a struct
 * http_req and returns without queueing (MHD 0.9.75 closes keep-alive
 * connections when a response is queued in that first call); upload calls
 * append to the bounded body; the final call runs the handler, which builds
 * exactly one response, and the response is queued there. The request is
 * freed in the completion callback. */
#include "net/http.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "core/common.h"
#include "core/log.h"
#include "net/listener.h"

#define HTTP_CONN_LIMIT 2048
#define HTTP_CONN_TIMEOUT_S 30
#define HTTP_CONN_MEMORY (64 * 1024)
#define HTTP_TOO_BIG_JSON                                                \
	"{\"error\":{\"message\":\"Payload too large\","                 \
	"\"type\":\"invalid_request_error\"}}"
#define HTTP_INTERNAL_JSON                                               \
	"{\"error\":{\"message\":\"Internal server error\","             \
	"\"type\":\"server_error\"}}"

struct http_server {
	struct MHD_Daemon *d;
	struct http_server_cbs cbs;
};

struct http_hdr {
	char *name, *value;
	struct http_hdr *next;
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
};

static void
http_req_free(struct http_req *r)
{
	struct http_hdr *h, *next;

	if (r == NULL)
		return;
	for (h = r->hdrs; h != NULL; h = next) {
		next = h->next;
		free(h->name);
		free(h->value);
		free(h);
	}
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
	ret = MHD_queue_response(r->conn, r->status, r->resp);
	MHD_destroy_response(r->resp);
	r->resp = NULL;
	r->queued = 1;
	return ret;
}

static void
http_too_big(struct http_req *r)
{
	if (r->resp != NULL)
		MHD_destroy_response(r->resp);
	r->resp = http_response_new("application/json", HTTP_TOO_BIG_JSON,
				    strlen(HTTP_TOO_BIG_JSON));
	r->status = MHD_HTTP_CONTENT_TOO_LARGE;
	MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONNECTION, "close");
}

/* First call: set up the request; headers are known here. */
static enum MHD_Result
http_begin(struct http_server *s, struct MHD_Connection *conn,
	   const char *url, const char *method, void **con_cls)
{
	const union MHD_ConnectionInfo *ci;
	struct http_req *r = xcalloc(1, sizeof(*r));
	const char *cl;

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
	r->limit = s->cbs.body_limit != NULL ?
		s->cbs.body_limit(r, s->cbs.arg) : 0;
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
	}
	return MHD_YES;
}

static enum MHD_Result
http_access(void *cls, struct MHD_Connection *conn, const char *url,
	    const char *method, const char *version, const char *upload_data,
	    size_t *upload_data_size, void **con_cls)
{
	struct http_server *s = cls;
	struct http_req *r = *con_cls;

	(void)version;
	if (r == NULL)
		return http_begin(s, conn, url, method, con_cls);
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
		if (n > r->limit - r->len) {
			r->too_big = 1;
			free(r->body);
			r->body = NULL;
			r->len = r->cap = 0;
			return MHD_YES;
		}
		if (r->len + n + 1 > r->cap) {
			size_t cap = r->cap ? r->cap : 4096;

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
	/* Final call: the whole request is here. */
	if (r->too_big) {
		http_too_big(r);
		return http_queue(r);
	}
	s->cbs.handler(r, s->cbs.arg);
	return http_queue(r);
}

struct http_server *
http_server_new(const struct http_server_cbs *cbs)
{
	struct http_server *s = xcalloc(1, sizeof(*s));

	s->cbs = *cbs;
	return s;
}

int
http_server_start(struct http_server *s)
{
	unsigned int flags = MHD_USE_NO_LISTEN_SOCKET |
		MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC |
		MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;

	if (s->d != NULL)
		return -EALREADY;
	s->d = MHD_start_daemon(flags, 0, NULL, NULL, http_access, s,
		MHD_OPTION_EXTERNAL_LOGGER, http_log, s,
		MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned int)HTTP_CONN_TIMEOUT_S,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTP_CONN_LIMIT,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
		MHD_OPTION_NOTIFY_COMPLETED, http_completed, s,
		MHD_OPTION_END);
	if (s->d == NULL) {
		log_error("http", "MHD_start_daemon failed");
		return -EIO;
	}
	return 0;
}

int
http_server_adopt(struct http_server *s, int fd, const struct sockaddr *sa,
		  socklen_t salen)
{
	if (MHD_add_connection(s->d, fd, sa, salen) != MHD_YES) {
		/* MHD closed fd itself. */
		log_warn("http", "MHD_add_connection failed");
		return -1;
	}
	return 0;
}

void
http_server_stop(struct http_server *s)
{
	if (s == NULL || s->d == NULL)
		return;
	MHD_stop_daemon(s->d);
	s->d = NULL;
}

void
http_server_free(struct http_server *s)
{
	if (s == NULL)
		return;
	http_server_stop(s);
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
	struct http_hdr *h = xcalloc(1, sizeof(*h));

	h->name = xstrdup(name);
	h->value = xstrdup(value);
	if (r->hdrs_tail != NULL)
		r->hdrs_tail->next = h;
	else
		r->hdrs = h;
	r->hdrs_tail = h;
}

void
http_reply(struct http_req *r, int status, const char *content_type,
	   const char *body, size_t len)
{
	struct http_hdr *h;

	if (r->resp != NULL || r->queued) {
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
