/* The CLI's client side of the gateway: a small blocking RFC 6455 client
 * over one TCP socket (wsclient_*), and the OpenClaw protocol on top of it
 * (gwclient_*: challenge, connect, hello-ok, request/response). Every read
 * is bounded in size and in time (poll with a deadline). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define WSCLIENT_MAX_MESSAGE (64u * 1024 * 1024)

enum wsclient_opcode {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xa,
};

/* A parsed ws:// URL. */
struct wsclient_url {
	char *host;	/* no brackets: "127.0.0.1", "::1", "localhost" */
	int port;
	char *path;	/* "/" when absent */
	int ipv6;	/* host was a bracketed literal */
};

/* Parse ws://host[:port][/path] (port defaults to 80). Returns 0 or -1 with
 * a message in err. */
int wsclient_url_parse(const char *url, struct wsclient_url *u, char *err,
		       size_t errlen);
void wsclient_url_free(struct wsclient_url *u);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)) into out[29]. */
void wsclient_accept_key(const char *key, char out[29]);

/* One decoded frame header. */
struct wsclient_frame {
	int fin;
	int opcode;
	int masked;
	uint8_t mask[4];
	uint64_t len;		/* payload length */
	size_t hdr_len;		/* bytes of header before the payload */
};

/* Encode a frame (mask may be NULL for an unmasked server-style frame).
 * Returns a new buffer of *outlen bytes. */
uint8_t *wsclient_frame_encode(int opcode, int fin, const void *payload,
			       size_t len, const uint8_t *mask,
			       size_t *outlen);
/* Parse a frame header from buf[0..n). Returns 1 when a full header was
 * parsed, 0 when more bytes are needed, -1 on a protocol error. */
int wsclient_frame_parse(const uint8_t *buf, size_t n,
			 struct wsclient_frame *f);
/* XOR data with the mask, starting at mask offset off. */
void wsclient_mask(uint8_t *data, size_t n, const uint8_t mask[4],
		   size_t off);

/* The pure side of wsclient_recv: bytes in, frames and messages out, no
 * socket. The caller keeps the received bytes; each step looks at the
 * front of them, decodes at most one frame and says how many bytes it used
 * (consume them before the next step). Data fragments are assembled here,
 * bounded by max. The fuzz target tests/fuzz/fuzz-wsframe.c drives it. */
struct wsclient_reader {
	size_t max;		/* message limit (WSCLIENT_MAX_MESSAGE) */
	uint8_t *msg;		/* data fragments so far */
	size_t mlen;
	size_t mcap;		/* allocated: grows by doubling, max + 1 */
	int mop;		/* opcode of the message, -1 when none */
};

enum wsclient_ev {
	WSCLIENT_EV_NEED,	/* buf must hold ev.need bytes; none used */
	WSCLIENT_EV_FRAGMENT,	/* a non-final data fragment was kept */
	WSCLIENT_EV_MESSAGE,	/* ev.msg (NUL-terminated, caller frees) */
	WSCLIENT_EV_PING,	/* ev.payload/ev.len point into buf */
	WSCLIENT_EV_PONG,
	WSCLIENT_EV_CLOSE,	/* ev.close_code, reason in payload + 2 */
	WSCLIENT_EV_ERROR,	/* ev.error (GW_EINVAL, GW_ETOOBIG), ev.what;
				 * the reader is reset, nothing used */
};

struct wsclient_event {
	enum wsclient_ev kind;
	size_t used;		/* bytes of buf this step consumed */
	size_t need;		/* WSCLIENT_EV_NEED */
	const uint8_t *payload;	/* control frames */
	size_t len;
	char *msg;		/* WSCLIENT_EV_MESSAGE */
	size_t mlen;
	int opcode;		/* WS_OP_TEXT or WS_OP_BINARY */
	int close_code;		/* 1005 when the close frame has no code */
	int error;
	const char *what;	/* static text for WSCLIENT_EV_ERROR */
};

void wsclient_reader_init(struct wsclient_reader *r, size_t max);
void wsclient_reader_reset(struct wsclient_reader *r);
/* Decode at most one frame from buf[0..n) (frames from a server: never
 * masked). Fills ev and returns ev->kind. */
enum wsclient_ev wsclient_reader_step(struct wsclient_reader *r,
				      const uint8_t *buf, size_t n,
				      struct wsclient_event *ev);

struct wsclient;

/* Connect (TCP + HTTP upgrade) within timeout_ms. On failure returns a
 * GW_E* code; err gets a message and sys (if non-NULL, >= 32 bytes) the
 * errno name ("ECONNREFUSED") when the failure was a system error. */
int wsclient_connect(const struct wsclient_url *u, int timeout_ms,
		     struct wsclient **out, char *err, size_t errlen,
		     char *sys);
/* Wrap an already connected (and upgraded) socket; used by tests. */
struct wsclient *wsclient_new_fd(int fd);
/* Send one masked text message. */
int wsclient_send_text(struct wsclient *c, const char *s, size_t len);
/* Receive one complete data message (text or binary), answering pings,
 * until deadline (util_mono_ms). *out is NUL-terminated and owned by the
 * caller. Returns 0, GW_ETIMEOUT, GW_ETOOBIG, GW_EIO (closed or broken:
 * see wsclient_close_code) or GW_EINVAL (protocol error). */
int wsclient_recv(struct wsclient *c, int64_t deadline, char **out,
		  size_t *len, int *opcode);
/* Close code and reason received from the peer (0 when none). */
int wsclient_close_code(const struct wsclient *c);
const char *wsclient_close_reason(const struct wsclient *c);
/* Last error text. */
const char *wsclient_error(const struct wsclient *c);
/* Send a close frame (code 0 = no status) and free the client. */
void wsclient_close(struct wsclient *c, int code);

/* --- the OpenClaw gateway protocol --------------------------------------- */

struct gwclient_opts {
	const char *url;
	const char *token;		/* NULL when absent */
	const char *password;		/* NULL when absent */
	const char *client_id;		/* "cli", "gateway-client" */
	const char *client_mode;	/* "cli", "backend", "probe" */
	const char *client_version;	/* PACKAGE_VERSION or "dev" */
	const char *display_name;	/* NULL when absent */
	const char *const *scopes;	/* NULL-terminated */
	int min_protocol;
	int max_protocol;
	int timeout_ms;			/* for the whole connect */
	/* Optional: called with the connect params and the challenge
	 * (nonce, ts) before connect is sent, to add a device proof.
	 * Non-zero aborts the connect. */
	int (*sign)(void *arg, json_t *params, const char *nonce,
		    int64_t ts);
	void *sign_arg;
};

enum gwclient_err_kind {
	GWC_ERR_NONE = 0,
	GWC_ERR_URL,		/* bad URL */
	GWC_ERR_CONNECT,	/* TCP/upgrade failed (refused, timeout) */
	GWC_ERR_CLOSED,		/* socket closed by the gateway */
	GWC_ERR_TIMEOUT,	/* no answer in time */
	GWC_ERR_PROTOCOL,	/* malformed frame from the gateway */
	GWC_ERR_RPC,		/* res ok:false */
};

/* What went wrong; fields are NULL/0 when unknown. */
struct gwclient_err {
	enum gwclient_err_kind kind;
	char *message;		/* human text */
	char sys[32];		/* errno name for connect failures */
	json_t *error;		/* the res error object (RPC) */
	int close_code;
	char *close_reason;
};

void gwclient_err_free(struct gwclient_err *e);

struct gwclient;

/* Connect, wait for connect.challenge, send connect and read hello-ok.
 * *hello is a new reference to the hello-ok payload. */
int gwclient_connect(const struct gwclient_opts *o, struct gwclient **out,
		     json_t **hello, struct gwclient_err *err);
/* Send a request and wait for its res (events are skipped). params is
 * borrowed and may be NULL (no params key). With expect_final, an
 * {status:"accepted"} answer is skipped in favour of the final one. */
int gwclient_request(struct gwclient *c, const char *method,
		     const json_t *params, int timeout_ms, int expect_final,
		     json_t **payload, struct gwclient_err *err);
void gwclient_close(struct gwclient *c);

/* Build the connect params (exposed for tests). New reference. */
json_t *gwclient_connect_params(const struct gwclient_opts *o);
