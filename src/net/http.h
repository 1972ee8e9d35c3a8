/* HTTP transport on top of libmicrohttpd: a daemon with no listen socket that
 * is handed connections by the listener. No domain knowledge: a handler gets
 * a request and answers through http_reply_* . */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct http_server;
struct http_req;

/* Runs on the MHD thread; must call one http_reply_* function exactly once
 * (if it does not, the transport answers 500). The body is complete
 * (bounded by the limit that http_server_cbs.body_limit returned). */
typedef void (*http_handler_fn)(struct http_req *r, void *arg);

struct http_server_cbs {
	/* Called once the headers are known: return the maximum body size to
	 * accept for this request (0 = no body). Over it, the transport
	 * answers 413 {"error":{"message":"Payload too large",
	 * "type":"invalid_request_error"}} and closes the connection. */
	size_t (*body_limit)(struct http_req *r, void *arg);
	http_handler_fn handler;
	void *arg;
};

struct http_server *http_server_new(const struct http_server_cbs *cbs);
int http_server_start(struct http_server *s);
/* Any thread: hand an accepted fd to MHD (MHD closes it on failure). */
int http_server_adopt(struct http_server *s, int fd, const struct sockaddr *sa,
		      socklen_t salen);
void http_server_stop(struct http_server *s);
void http_server_free(struct http_server *s);

const char *http_req_method(const struct http_req *r);
const char *http_req_path(const struct http_req *r);
/* Case-insensitive header lookup; NULL when absent. */
const char *http_req_header(const struct http_req *r, const char *name);
const char *http_req_query(const struct http_req *r, const char *name);
const char *http_req_body(const struct http_req *r, size_t *len);
const char *http_req_peer_ip(const struct http_req *r);
int http_req_peer_is_loopback(const struct http_req *r);

/* Add a response header for the reply to come. */
void http_reply_header(struct http_req *r, const char *name,
		       const char *value);
/* Reply with a body (copied). Security headers (nosniff, no-referrer) are
 * added to every response by the transport. */
void http_reply(struct http_req *r, int status, const char *content_type,
		const char *body, size_t len);
void http_reply_json(struct http_req *r, int status, const char *json);
