/* WebSocket transport on libwebsockets: one context, one vhost without a
 * listen socket, one service thread running a libev loop (epoll) that lws
 * is integrated into (lws's own poll(2) loop when its libev plugin is
 * missing; doc/hardening.md, "Idle sockets"). Sockets arrive from the listener
 * through a mutex-protected job queue drained on the lws thread in
 * LWS_CALLBACK_EVENT_WAIT_CANCELLED (lws_adopt_* is only legal there);
 * ws_post() closures travel the same queue.
 *
 * Lifetime: a struct ws_conn is created at LWS_CALLBACK_ESTABLISHED and
 * freed at LWS_CALLBACK_CLOSED right after on_close. Closing is always
 * asynchronous (flag + writeable callback, or an lws kill timeout), so a
 * ws_conn stays valid for the whole callback that asked to close it. */
#include "net/ws.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <libwebsockets.h>

#include "core/common.h"
#include "core/util.h"
#include "core/wake.h"
#include "core/log.h"
#include "net/listener.h"

#define WS_PROTOCOL_NAME "openclaw"
/* lws's per-connection receive buffer, held (and touched) for the
 * connection's life: messages arrive in chunks of this size and are
 * reassembled in c->rx. 1 KiB instead of 64 KiB saves ~4 KB of RSS per
 * idle socket; a 20 MB message still takes the same time (lws parses
 * byte by byte either way). Writes keep WS_TX_PACKET. */
#define WS_RX_BUFFER 1024
#define WS_TX_PACKET (64 * 1024)
#define WS_HEADER_MAX 4096
#define WS_REASON_MAX 120
#define WS_CLOSE_TIMEOUT_S 10
/* Outbound bytes queued across every connection (issue 10): over it, the
 * slow consumers with the oldest backlog are closed 1008 first. */
#define WS_TOTAL_BUDGET (128u * 1024 * 1024)
/* One batched write carries queued frames up to this many bytes (a
 * bigger frame goes alone). What lws keeps of a partial write is out of
 * our queue's count (ws_conn_buffered), so this also bounds how much of
 * a slow reader's backlog the budgets do not see. */
#define WS_BATCH_MAX (64 * 1024)
/* The batch buffer is kept between writes up to this size. */
#define WS_TX_KEEP (256 * 1024)
/* Queue entries of shared frames kept for reuse (no malloc and free per
 * frame per connection): at most this many (40 bytes each). */
#define WS_SPARE_MAX 4096

/* Captured request headers: lowercase name, lws token (-1: custom). */
static const struct {
	const char *name;
	int token;
} ws_hdr_table[] = {
	{ "origin", WSI_TOKEN_ORIGIN },
	{ "host", WSI_TOKEN_HOST },
	{ "user-agent", WSI_TOKEN_HTTP_USER_AGENT },
	{ "x-forwarded-for", WSI_TOKEN_X_FORWARDED_FOR },
	{ "x-real-ip", WSI_TOKEN_HTTP_X_REAL_IP },
	{ "x-forwarded-proto", -1 },
	{ "x-forwarded-host", -1 },
	{ "forwarded", -1 },
	{ ":path", WSI_TOKEN_GET_URI },
	/* Identity headers of trusted-proxy auth (gateway.auth.trustedProxy
	 * userHeader / requiredHeaders must be one of these on WS). */
	{ "x-forwarded-user", -1 },
	{ "x-forwarded-email", -1 },
	{ "x-forwarded-groups", -1 },
	{ "x-auth-request-user", -1 },
	{ "x-auth-request-email", -1 },
	{ "x-pomerium-claim-email", -1 },
	{ "x-remote-user", -1 },
	{ "remote-user", -1 },
	{ "x-openclaw-scopes", -1 },
};
#define WS_NHDR ARRAY_SIZE(ws_hdr_table)

struct ws_shared {
	unsigned refs;		/* lws thread once posted */
	size_t len;		/* text bytes (the number not counted) */
	size_t split;		/* where each connection's number goes */
	char *text;
};

/* A queued frame: its whole text inline, or a shared text with the
 * connection's own number spliced in (no copy until it is written). */
struct ws_msg {
	struct ws_msg *next;
	struct ws_shared *head;	/* NULL: the text is inline */
	size_t len;		/* payload bytes */
	uint64_t num;		/* with head: the number */
	unsigned char buf[];	/* inline text after LWS_PRE headroom */
};

struct ws_conn {
	struct ws_server *s;
	struct lws *wsi;
	uint64_t id;
	void *user;
	char peer_ip[64];
	int loopback;
	char *hdr[WS_NHDR];
	/* input reassembly */
	char *rx;
	size_t rx_len, rx_cap;
	size_t max_payload;
	int rx_in_msg, rx_binary, rx_discard;
	/* output */
	struct ws_msg *out_head, *out_tail;
	size_t buffered;
	int64_t backlog_since;	/* when the queue last became non-empty */
	int closing, drop, close_code;
	/* Queued during ws_drain: written at its end (ws_flush_dirty). */
	int dirty;
	struct ws_conn *dirty_next;
	char close_reason[WS_REASON_MAX + 1];
	size_t close_reason_len;
	struct ws_conn *prev, *next;
};

struct ws_pss {
	struct ws_conn *c;
};

struct ws_job {
	struct ws_job *next;
	int fd;			/* adopt when fn is NULL */
	void (*fn)(void *arg);
	void *arg;
};

struct ws_timer {
	lws_sorted_usec_list_t sul;	/* first: lws hands this back */
	ev_timer ev;		/* instead of sul on the libev loop */
	struct ws_server *s;
	void (*fn)(void *arg);
	void *arg;
	struct ws_timer *prev, *next;
};

struct ws_server {
	struct ws_server_opts o;
	int wake_reg;			/* wake_target_add took it */
	struct ws_server_cbs cbs;
	struct lws_protocols protocols[2];
	struct lws_context *ctx;
	struct lws_vhost *vh;
	/* The service loop: libev on epoll (lws's own poll(2) loop scans
	 * every fd on each wake-up: quadratic in open connections). NULL
	 * when the lws libev plugin is missing (poll fallback). */
	struct ev_loop *loop;
	/* Work of the loop (lws thread; read anywhere, approximate):
	 * wake-ups, and watchers (fds or timers) examined over them. On
	 * epoll these are the ready events only; the poll fallback counts
	 * every fd it scans. */
	_Atomic unsigned long long loop_iters, loop_scanned;
	const char *backend;	/* set at start, for any thread */
	atomic_size_t ntimers;	/* ws_timer handles alive */
	/* lws 4.1's libev glue never moves its armed timer earlier (it
	 * restarts an active ev_timer, which libev ignores): a timeout that
	 * lws schedules before the armed one would wait for it. This 1 s
	 * lws timer bounds that wait; ws_timer runs on libev directly. */
	lws_sorted_usec_list_t sul_beat;
	pthread_t thread;
	int running;
	atomic_int stopping;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ws_job *jobs, *jobs_tail;	/* under mu */
	size_t count;				/* under mu */
	/* lws thread only */
	uint64_t next_id;
	struct ws_conn *conns;
	struct ws_timer *timers;
	int stop_code;
	char stop_reason[WS_REASON_MAX + 1];
	size_t total_buffered;	/* sum of every conn's queue */
	size_t max_total;	/* global budget (ws_server_set_total_budget) */
	unsigned long budget_closed;
	int batch;		/* batched writes (no extension rewrites
				 * frames; CLAWGATE_WS_BATCH=0: off) */
	unsigned char *tx;	/* batch buffer (LWS_PRE headroom first) */
	size_t tx_cap;
	struct ws_msg *spare;	/* shared-frame entries for reuse */
	size_t nspare;
	/* While ws_drain runs its jobs, connections that get frames are
	 * listed here and written once at its end, from the loop (no
	 * writeable round trip: no POLLOUT armed and disarmed per burst). */
	int in_drain;
	struct ws_conn *dirty;
	/* ws_server_out_stats (written on the lws thread) */
	_Atomic unsigned long long st_frames, st_writes, st_batched,
		st_dropped;
};

struct ws_shared *
ws_shared_new(char *text, size_t len, size_t split)
{
	struct ws_shared *sh = xmalloc(sizeof(*sh));

	sh->refs = 1;
	sh->len = len;
	sh->split = split < len ? split : len;
	sh->text = text;
	return sh;
}

void
ws_shared_unref(struct ws_shared *sh)
{
	if (sh == NULL || --sh->refs > 0)
		return;
	free(sh->text);
	free(sh);
}

const char *
ws_shared_text(const struct ws_shared *sh, size_t *len, size_t *split)
{
	*len = sh->len;
	*split = sh->split;
	return sh->text;
}

/* Decimal digits of v. */
static size_t
ws_num_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

/* m's payload (m->len bytes) written to p. */
static void
ws_msg_put(unsigned char *p, const struct ws_msg *m)
{
	const struct ws_shared *sh = m->head;
	size_t d;
	uint64_t v;

	if (sh == NULL) {
		memcpy(p, m->buf + LWS_PRE, m->len);
		return;
	}
	memcpy(p, sh->text, sh->split);
	p += sh->split;
	d = m->len - sh->len;
	for (v = m->num; d > 0; v /= 10)
		p[--d] = (unsigned char)('0' + v % 10);
	p += m->len - sh->len;
	memcpy(p, sh->text + sh->split, sh->len - sh->split);
}

static void
ws_msg_free(struct ws_server *s, struct ws_msg *m)
{
	if (m->head == NULL) {
		free(m);
		return;
	}
	ws_shared_unref(m->head);
	if (s->nspare >= WS_SPARE_MAX) {
		free(m);
		return;
	}
	m->next = s->spare;
	s->spare = m;
	s->nspare++;
}

static void
ws_spare_free(struct ws_server *s)
{
	struct ws_msg *m;

	while ((m = s->spare) != NULL) {
		s->spare = m->next;
		free(m);
	}
	s->nspare = 0;
}

size_t
ws_frame_header(unsigned char out[WS_FRAME_HDR_MAX], size_t len)
{
	uint64_t n = len;
	int i;

	out[0] = 0x81;		/* FIN, text */
	if (n < 126) {
		out[1] = (unsigned char)n;
		return 2;
	}
	if (n <= 0xffff) {
		out[1] = 126;
		out[2] = (unsigned char)(n >> 8);
		out[3] = (unsigned char)n;
		return 4;
	}
	out[1] = 127;
	for (i = 0; i < 8; i++)
		out[2 + i] = (unsigned char)(n >> (56 - 8 * i));
	return 10;
}

void
ws_server_out_stats(const struct ws_server *s, struct ws_out_stats *st)
{
	st->frames = atomic_load_explicit(&s->st_frames, memory_order_relaxed);
	st->writes = atomic_load_explicit(&s->st_writes, memory_order_relaxed);
	st->batched = atomic_load_explicit(&s->st_batched,
					   memory_order_relaxed);
	st->dropped = atomic_load_explicit(&s->st_dropped,
					   memory_order_relaxed);
}

static void
ws_stat_add(_Atomic unsigned long long *v, unsigned long long n)
{
	/* one writer (the lws thread): no read-modify-write needed */
	atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed)
			      + n, memory_order_relaxed);
}

static void
ws_msg_free_all(struct ws_conn *c)
{
	struct ws_msg *m, *next;

	for (m = c->out_head; m != NULL; m = next) {
		next = m->next;
		ws_msg_free(c->s, m);
	}
	c->out_head = c->out_tail = NULL;
	c->s->total_buffered -= c->buffered;
	c->buffered = 0;
}

static void
ws_conn_free(struct ws_conn *c)
{
	size_t i;

	if (c == NULL)
		return;
	ws_msg_free_all(c);
	for (i = 0; i < WS_NHDR; i++)
		free(c->hdr[i]);
	free(c->rx);
	free(c);
}

/* Copy one request header (bounded) or NULL when absent. */
static char *
ws_hdr_get(struct lws *wsi, const char *name, int token)
{
	char cname[64];
	char *v = NULL;
	int n, nlen;

	if (token >= 0) {
		n = lws_hdr_total_length(wsi, (enum lws_token_indexes)token);
		if (n <= 0 || n > WS_HEADER_MAX)
			return NULL;
		v = xmalloc((size_t)n + 1);
		if (lws_hdr_copy(wsi, v, n + 1,
				 (enum lws_token_indexes)token) < 0)
			goto fail;
		return v;
	}
	nlen = snprintf(cname, sizeof(cname), "%s:", name);
	n = lws_hdr_custom_length(wsi, cname, nlen);
	if (n < 0 || n > WS_HEADER_MAX)
		return NULL;
	v = xmalloc((size_t)n + 1);
	if (lws_hdr_custom_copy(wsi, v, n + 1, cname, nlen) < 0)
		goto fail;
	return v;
fail:
	free(v);
	return NULL;
}

static void
ws_conn_open(struct ws_server *s, struct lws *wsi, struct ws_pss *pss)
{
	struct ws_conn *c = xcalloc(1, sizeof(*c));
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	size_t i;

	c->s = s;
	c->wsi = wsi;
	c->id = ++s->next_id;
	c->max_payload = s->o.max_payload;
	if (getpeername(lws_get_socket_fd(wsi), (struct sockaddr *)&ss,
			&sl) == 0)
		listener_addr_format((struct sockaddr *)&ss, sl, c->peer_ip,
				     sizeof(c->peer_ip), &c->loopback);
	for (i = 0; i < WS_NHDR; i++)
		c->hdr[i] = ws_hdr_get(wsi, ws_hdr_table[i].name,
				       ws_hdr_table[i].token);
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	pss->c = c;
	pthread_mutex_lock(&s->mu);
	s->count++;
	pthread_mutex_unlock(&s->mu);
	if (s->cbs.on_open != NULL)
		s->cbs.on_open(c, s->cbs.arg);
}

static void
ws_conn_closed(struct ws_server *s, struct ws_pss *pss)
{
	struct ws_conn *c = pss->c;

	if (c == NULL)
		return;
	pss->c = NULL;
	c->closing = 1;		/* sends from on_close fail cleanly */
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	pthread_mutex_lock(&s->mu);
	s->count--;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	if (s->cbs.on_close != NULL)
		s->cbs.on_close(c, s->cbs.arg);
	ws_conn_free(c);
}

/* Over the limit: tell the owner, close (1009 unless it did), discard the
 * rest of the message. */
static void
ws_conn_too_big(struct ws_conn *c, size_t len)
{
	struct ws_server *s = c->s;

	c->rx_discard = 1;
	free(c->rx);
	c->rx = NULL;
	c->rx_len = c->rx_cap = 0;
	if (s->cbs.on_too_big != NULL)
		s->cbs.on_too_big(c, len, s->cbs.arg);
	if (!c->closing)
		ws_conn_close(c, 1009, "Max payload size exceeded");
}

static int
ws_conn_rx(struct ws_conn *c, const char *in, size_t len)
{
	struct lws *wsi = c->wsi;
	size_t remain = lws_remaining_packet_payload(wsi);
	int final = lws_is_final_fragment(wsi) && remain == 0;

	if (!c->rx_in_msg) {
		c->rx_in_msg = 1;
		c->rx_len = 0;
		c->rx_discard = 0;
		c->rx_binary = lws_frame_is_binary(wsi);
	}
	if (c->closing)
		c->rx_discard = 1;
	if (!c->rx_discard && c->rx_len + len + remain > c->max_payload)
		ws_conn_too_big(c, c->rx_len + len + remain);
	if (!c->rx_discard) {
		if (c->rx_len + len + 1 > c->rx_cap) {
			size_t need = c->rx_len + len + remain + 1;
			/* A message's first frame: its size (a request of a
			 * few hundred bytes stays in malloc's small caches;
			 * a 4 KiB block took ~5k instructions to get and
			 * free, issue 11); later frames grow it by half. */
			size_t cap = c->rx_cap ? c->rx_cap + c->rx_cap / 2
					       : need;

			if (cap < need)
				cap = need;
			if (cap > c->max_payload + 1)
				cap = c->max_payload + 1;
			c->rx = xrealloc(c->rx, cap);
			c->rx_cap = cap;
		}
		memcpy(c->rx + c->rx_len, in, len);
		c->rx_len += len;
		c->rx[c->rx_len] = '\0';
	}
	if (!final)
		return 0;
	c->rx_in_msg = 0;
	if (c->rx_discard)
		return 0;
	if (c->s->cbs.on_message != NULL)
		c->s->cbs.on_message(c, c->rx != NULL ? c->rx : "", c->rx_len,
				     c->rx_binary, c->s->cbs.arg);
	c->rx_len = 0;
	/* Keep no buffer between messages: an idle connection holds none
	 * (it cost ~4 KB each of 10,000 idle sockets). */
	free(c->rx);
	c->rx = NULL;
	c->rx_cap = 0;
	return 0;
}

/* Take the head of c's queue off its counts. */
static struct ws_msg *
ws_conn_pop(struct ws_conn *c)
{
	struct ws_msg *m = c->out_head;

	c->out_head = m->next;
	if (c->out_head == NULL)
		c->out_tail = NULL;
	c->buffered -= m->len;
	c->s->total_buffered -= m->len;
	return m;
}

/* The batch buffer with room for n bytes after LWS_PRE. */
static unsigned char *
ws_tx_reserve(struct ws_server *s, size_t n)
{
	if (LWS_PRE + n > s->tx_cap) {
		s->tx_cap = LWS_PRE + (n > WS_BATCH_MAX ? n : WS_BATCH_MAX);
		free(s->tx);
		s->tx = xmalloc(s->tx_cap);
	}
	return s->tx + LWS_PRE;
}

static void
ws_tx_trim(struct ws_server *s)
{
	if (s->tx_cap > LWS_PRE + WS_TX_KEEP) {
		free(s->tx);
		s->tx = NULL;
		s->tx_cap = 0;
	}
}

/* One frame, as lws frames it (LWS_WRITE_TEXT): an inline text from its
 * own buffer, a shared one assembled in the batch buffer. */
static int
ws_conn_write_one(struct ws_conn *c)
{
	struct ws_server *s = c->s;
	struct ws_msg *m = ws_conn_pop(c);
	unsigned char *p;
	int n;

	if (m->head == NULL) {
		p = m->buf + LWS_PRE;
	} else {
		p = ws_tx_reserve(s, m->len);
		ws_msg_put(p, m);
	}
	/* counted before the peer can see it */
	ws_stat_add(&s->st_frames, 1);
	ws_stat_add(&s->st_writes, 1);
	n = lws_write(c->wsi, p, m->len, LWS_WRITE_TEXT);
	ws_msg_free(s, m);
	ws_tx_trim(s);
	return n < 0 ? -1 : 0;
}

/* Every queued frame that fits WS_BATCH_MAX (at least one), framed here
 * and written at once as raw bytes: one send for what a broadcast burst
 * queued. lws keeps and flushes an unsent tail itself. */
static int
ws_conn_write_batch(struct ws_conn *c)
{
	struct ws_server *s = c->s;
	struct ws_msg *m;
	size_t need = 0, k = 0, i, off = 0;
	unsigned char *p;
	int n;

	for (m = c->out_head; m != NULL; m = m->next) {
		if (k > 0 && need + WS_FRAME_HDR_MAX + m->len > WS_BATCH_MAX)
			break;
		need += WS_FRAME_HDR_MAX + m->len;
		k++;
	}
	p = ws_tx_reserve(s, need);
	for (i = 0; i < k; i++) {
		m = ws_conn_pop(c);
		off += ws_frame_header(p + off, m->len);
		ws_msg_put(p + off, m);
		off += m->len;
		ws_msg_free(s, m);
	}
	ws_stat_add(&s->st_frames, k);
	ws_stat_add(&s->st_writes, 1);
	if (k > 1)
		ws_stat_add(&s->st_batched, k);
	n = lws_write(c->wsi, p, off, LWS_WRITE_RAW);
	ws_tx_trim(s);
	return n < 0 ? -1 : 0;
}

/* The queued frames (batched, or one per callback), then the close frame
 * once the queue is empty. lws keeps any unsent tail itself and calls
 * back only when its own buffer has drained. */
static int
ws_conn_writeable(struct ws_conn *c)
{
	struct ws_msg *m = c->out_head;
	int n;

	if (c->drop)
		return -1;
	if (m != NULL) {
		/* A lone inline frame goes from its own buffer. */
		if (c->s->batch && (m->next != NULL || m->head != NULL))
			n = ws_conn_write_batch(c);
		else
			n = ws_conn_write_one(c);
		if (n < 0)
			return -1;
		if (c->out_head != NULL || c->closing)
			lws_callback_on_writable(c->wsi);
		return 0;
	}
	if (c->closing) {
		lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
				 (unsigned char *)c->close_reason,
				 c->close_reason_len);
		return -1;
	}
	return 0;
}

static void ws_flush_dirty(struct ws_server *s);

/* The jobs queued now, then those that came while they ran (up to
 * WS_DRAIN_ROUNDS takes: producers that never pause must not starve the
 * sockets), then one write per connection for all they queued: a job
 * posted while the others ran shares their writes instead of waking the
 * thread for writes of its own (a broadcast's write per connection is
 * most of this thread's cost). */
#define WS_DRAIN_ROUNDS 4

static void
ws_drain(struct ws_server *s)
{
	struct ws_job *j, *next;
	int round;

	s->in_drain = 1;
	for (round = 0; round < WS_DRAIN_ROUNDS; round++) {
		pthread_mutex_lock(&s->mu);
		j = s->jobs;
		s->jobs = s->jobs_tail = NULL;
		pthread_mutex_unlock(&s->mu);
		if (j == NULL)
			break;
		for (; j != NULL; j = next) {
			next = j->next;
			if (j->fn != NULL) {
				j->fn(j->arg);
			} else if (atomic_load(&s->stopping)) {
				close(j->fd);
			} else if (lws_adopt_socket_vhost(s->vh, j->fd) ==
				   NULL) {
				/* lws closed the fd. */
				log_warn("ws", "adopt failed");
			}
			free(j);
		}
	}
	s->in_drain = 0;
	ws_flush_dirty(s);
}

static int
ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
	    void *in, size_t len)
{
	struct ws_server *s = lws_context_user(lws_get_context(wsi));
	struct ws_pss *pss = user;

	switch (reason) {
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		/* Broadcast to every protocol: ours is the only one. */
		ws_drain(s);
		/* ws_server_stop: leave ev_run (its wake-up lands here). */
		if (atomic_load(&s->stopping) && s->loop != NULL)
			ev_break(s->loop, EVBREAK_ALL);
		return 0;
	case LWS_CALLBACK_ESTABLISHED:
		ws_conn_open(s, wsi, pss);
		return 0;
	case LWS_CALLBACK_RECEIVE:
		if (pss == NULL || pss->c == NULL)
			return -1;
		return ws_conn_rx(pss->c, in, len);
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (pss == NULL || pss->c == NULL)
			return 0;
		return ws_conn_writeable(pss->c);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		/* lws echoes the close frame; stop queueing output. */
		if (pss != NULL && pss->c != NULL)
			pss->c->closing = 1;
		return 0;
	case LWS_CALLBACK_CLOSED:
		if (pss != NULL)
			ws_conn_closed(s, pss);
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static void
ws_timers_free(struct ws_server *s)
{
	struct ws_timer *t, *next;

	for (t = s->timers; t != NULL; t = next) {
		next = t->next;
		if (s->loop != NULL)
			ev_timer_stop(s->loop, &t->ev);
		free(t);
	}
	atomic_store(&s->ntimers, 0);
	s->timers = NULL;
}

static void
ws_lws_log(int level, const char *line)
{
	size_t n = strlen(line);

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	log_msg(level == LLL_ERR ? LOG_ERROR : LOG_WARN, "ws", "lws: %.*s",
		(int)n, line);
}

static void ws_beat(lws_sorted_usec_list_t *sul);

static void *
ws_thread(void *arg)
{
	struct ws_server *s = arg;

	wake_hold();
	if (s->loop != NULL)
		lws_sul_schedule(s->ctx, 0, &s->sul_beat, ws_beat,
				 LWS_US_PER_SEC);
	while (!atomic_load(&s->stopping)) {
		if (s->loop != NULL) {
			ev_run(s->loop, 0);
			continue;
		}
		atomic_fetch_add(&s->loop_iters, 1);
		atomic_fetch_add(&s->loop_scanned, s->count + 1);
		if (lws_service(s->ctx, 0) < 0)
			break;
		wake_flush();
	}
	pthread_mutex_lock(&s->mu);
	atomic_store(&s->stopping, 1);
	pthread_mutex_unlock(&s->mu);
	/* Closures still queued run here, on this thread with the context
	 * alive (their owners may wait for them or have handed them
	 * ownership); adopted fds are closed (stopping). */
	ws_drain(s);
	lws_sul_cancel(&s->sul_beat);
	wake_flush();
	/* No held wake-up of another thread reaches the context from here
	 * (one running now finishes first; ws_push refuses from here on,
	 * stopping is set). */
	if (s->wake_reg)
		wake_target_del(s);
	/* Destroy on the service thread: remaining connections get their
	 * CLOSED callbacks (and on_close) here. */
	lws_context_destroy(s->ctx);
	s->ctx = NULL;
	s->vh = NULL;
	ws_timers_free(s);
	if (s->loop != NULL)
		ev_loop_destroy(s->loop);
	s->loop = NULL;
	return NULL;
}

/* No lws validity timer per connection: lws keeps every wsi's timer in
 * one sorted list, and inserting the newest (always the latest deadline)
 * walks the whole list, quadratic in idle connections. The protocol's
 * own keepalive is the `tick` event every 30 s (slow or dead peers are
 * closed by the output budgets); upstream sends no WebSocket pings. */
static const lws_retry_bo_t ws_retry_policy = {
	.secs_since_valid_ping = 0,
	.secs_since_valid_hangup = 0,
};

static void
ws_beat(lws_sorted_usec_list_t *sul)
{
	struct ws_server *s = lws_container_of(sul, struct ws_server,
					       sul_beat);

	lws_sul_schedule(s->ctx, 0, &s->sul_beat, ws_beat, LWS_US_PER_SEC);
}

/* libev's pending watchers are the work of one wake-up (lws thread). */
static void
ws_ev_invoke(struct ev_loop *loop)
{
	struct ws_server *s = ev_userdata(loop);

	atomic_fetch_add(&s->loop_iters, 1);
	atomic_fetch_add(&s->loop_scanned, (unsigned)ev_pending_count(loop));
	ev_invoke_pending(loop);
	/* The iteration's posts to the store and the agents are made:
	 * their receivers are woken once each (wake.h). */
	wake_flush();
}

/* The lws context on a libev loop of ours (epoll), or, when lws cannot
 * load its libev plugin, on lws's own poll(2) loop. */
static struct lws_context *
ws_context_new(struct ws_server *s)
{
	struct lws_context_creation_info info;
	struct lws_context *ctx;
	/* CLAWGATE_WS_LOOP=poll: lws's own loop (a test proves that the
	 * work figure catches its quadratic cost; doc/hardening.md). */
	const char *want = getenv("CLAWGATE_WS_LOOP");

	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
		LWS_SERVER_OPTION_VALIDATE_UTF8;
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.gid = (gid_t)-1;
	info.uid = (uid_t)-1;
	info.user = s;
	info.max_http_header_data = 16384;
	if (want == NULL || strcmp(want, "poll") != 0)
		s->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV);
	if (s->loop != NULL) {
		ev_set_userdata(s->loop, s);
		ev_set_invoke_pending_cb(s->loop, ws_ev_invoke);
		info.options |= LWS_SERVER_OPTION_LIBEV;
		info.foreign_loops = (void **)&s->loop;
		ctx = lws_create_context(&info);
		if (ctx != NULL)
			return ctx;
		log_warn("ws", "lws libev loop unavailable "
			 "(libwebsockets-evlib-ev); using poll");
		ev_loop_destroy(s->loop);
		s->loop = NULL;
	}
	info.options &= ~(uint64_t)LWS_SERVER_OPTION_LIBEV;
	info.foreign_loops = NULL;
	return lws_create_context(&info);
}

static const char *
ws_backend_name(struct ev_loop *loop)
{
	if (loop == NULL)
		return "poll";
	switch (ev_backend(loop)) {
	case EVBACKEND_EPOLL: return "epoll";
	case EVBACKEND_POLL: return "poll";
	case EVBACKEND_SELECT: return "select";
	default: return "other";
	}
}

const char *
ws_server_loop_backend(const struct ws_server *s)
{
	return s != NULL && s->backend != NULL ? s->backend : "none";
}

size_t
ws_server_timers(const struct ws_server *s)
{
	return atomic_load(&s->ntimers);
}

void
ws_server_loop_work(const struct ws_server *s, unsigned long long *iters,
		    unsigned long long *scanned)
{
	*iters = atomic_load(&s->loop_iters);
	*scanned = atomic_load(&s->loop_scanned);
}

struct ws_server *
ws_server_new(const struct ws_server_opts *o, const struct ws_server_cbs *cbs)
{
	struct ws_server *s = xcalloc(1, sizeof(*s));
	const char *e;

	s->o = *o;
	s->cbs = *cbs;
	s->max_total = WS_TOTAL_BUDGET;
	/* The vhost offers no extension (lws_create_vhost gets none), so no
	 * connection's frames are rewritten: batched raw writes are safe. */
	e = getenv("CLAWGATE_WS_BATCH");
	s->batch = e == NULL || strcmp(e, "0") != 0;
	/* Tests: a small per-connection output limit (slow consumers). */
	e = getenv("CLAWGATE_WS_MAX_BUFFERED");
	if (e != NULL && atol(e) > 0)
		s->o.max_buffered = (size_t)atol(e);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	atomic_init(&s->stopping, 0);
	s->protocols[0].name = WS_PROTOCOL_NAME;
	s->protocols[0].callback = ws_callback;
	s->protocols[0].per_session_data_size = sizeof(struct ws_pss);
	s->protocols[0].rx_buffer_size = WS_RX_BUFFER;
	s->protocols[0].tx_packet_size = WS_TX_PACKET;
	s->protocols[0].user = s;
	return s;
}

int
ws_server_start(struct ws_server *s)
{
	struct lws_context_creation_info info;
	int r;

	if (s->running)
		return -EALREADY;
	lws_set_log_level(LLL_ERR | LLL_WARN, ws_lws_log);
	s->ctx = ws_context_new(s);
	s->backend = ws_backend_name(s->loop);
	if (s->ctx == NULL) {
		log_error("ws", "lws_create_context failed");
		return -EIO;
	}
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.vhost_name = "clawgate";
	info.protocols = s->protocols;
	info.retry_and_idle_policy = &ws_retry_policy;
	s->vh = lws_create_vhost(s->ctx, &info);
	if (s->vh == NULL) {
		log_error("ws", "lws_create_vhost failed");
		r = -EIO;
		goto fail;
	}
	atomic_store(&s->stopping, 0);
	s->wake_reg = wake_target_add(s);
	r = pthread_create(&s->thread, NULL, ws_thread, s);
	if (r != 0) {
		r = -r;
		if (s->wake_reg)
			wake_target_del(s);
		s->wake_reg = 0;
		goto fail;
	}
	pthread_setname_np(s->thread, "ws");
	s->running = 1;
	return 0;
fail:
	lws_context_destroy(s->ctx);
	s->ctx = NULL;
	s->vh = NULL;
	if (s->loop != NULL)
		ev_loop_destroy(s->loop);
	s->loop = NULL;
	return r;
}

/* A held wake-up (wake.h; s is alive: its thread has not left). */
static void
ws_wake(void *arg)
{
	struct ws_server *s = arg;

	lws_cancel_service(s->ctx);
}

/* Append a job; 0, or -1 when the server is not running. */
static int
ws_push(struct ws_server *s, struct ws_job *j)
{
	int ok;

	pthread_mutex_lock(&s->mu);
	ok = s->running && !atomic_load(&s->stopping);
	if (ok) {
		/* One wake-up per burst: while jobs are queued, the wake-up
		 * of the first is pending (the lws thread reads its pipe,
		 * then takes the whole list). */
		if (s->jobs_tail != NULL) {
			s->jobs_tail->next = j;
		} else {
			s->jobs = j;
			if (!s->wake_reg || !wake_later(ws_wake, s))
				lws_cancel_service(s->ctx);
		}
		s->jobs_tail = j;
	}
	pthread_mutex_unlock(&s->mu);
	return ok ? 0 : -1;
}

void
ws_server_adopt(struct ws_server *s, int fd)
{
	struct ws_job *j = xcalloc(1, sizeof(*j));

	j->fd = fd;
	if (ws_push(s, j) < 0) {
		close(fd);
		free(j);
	}
}

/* What this thread holds back (ws_post_defer). */
static __thread void (*ws_defer_fn)(void *arg);
static __thread void *ws_defer_arg;

void
ws_post_defer(void (*fn)(void *arg), void *arg)
{
	ws_defer_fn = fn;
	ws_defer_arg = arg;
}

int
ws_post(struct ws_server *s, void (*fn)(void *arg), void *arg)
{
	void (*held)(void *arg) = ws_defer_fn;
	struct ws_job *j;

	if (held) {
		ws_defer_fn = NULL;
		held(ws_defer_arg);
	}
	j = xcalloc(1, sizeof(*j));
	j->fn = fn;
	j->arg = arg;
	if (ws_push(s, j) < 0) {
		free(j);
		return -1;
	}
	return 0;
}

static void
ws_stop_close_all(void *arg)
{
	struct ws_server *s = arg;
	struct ws_conn *c;

	for (c = s->conns; c != NULL; c = c->next)
		ws_conn_close(c, s->stop_code, s->stop_reason);
}

void
ws_server_stop(struct ws_server *s, int code, const char *reason,
	       int wait_ms)
{
	struct timespec ts;
	struct ws_job *j, *next;

	if (s == NULL || !s->running)
		return;
	s->stop_code = code;
	snprintf(s->stop_reason, sizeof(s->stop_reason), "%s",
		 reason != NULL ? reason : "");
	ws_post(s, ws_stop_close_all, s);
	util_deadline(&ts, wait_ms);
	pthread_mutex_lock(&s->mu);
	while (s->count > 0)
		if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT)
			break;
	atomic_store(&s->stopping, 1);
	lws_cancel_service(s->ctx);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	/* Jobs that never ran: close adopted fds, drop closures. */
	pthread_mutex_lock(&s->mu);
	s->running = 0;
	j = s->jobs;
	s->jobs = s->jobs_tail = NULL;
	pthread_mutex_unlock(&s->mu);
	for (; j != NULL; j = next) {
		next = j->next;
		if (j->fn == NULL)
			close(j->fd);
		free(j);
	}
	{
		struct ws_out_stats st;

		ws_server_out_stats(s, &st);
		log_info("ws", "ws: %llu frames in %llu writes (%.2f per "
			 "write; %llu shared a write), %llu dropped if slow",
			 st.frames, st.writes, st.writes ?
			 (double)st.frames / (double)st.writes : 0.0,
			 st.batched, st.dropped);
	}
	free(s->tx);
	s->tx = NULL;
	s->tx_cap = 0;
	ws_spare_free(s);
}

void
ws_server_free(struct ws_server *s)
{
	if (s == NULL)
		return;
	ws_server_stop(s, 1001, "server stopping", 0);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

size_t
ws_server_count(struct ws_server *s)
{
	size_t n;

	pthread_mutex_lock(&s->mu);
	n = s->count;
	pthread_mutex_unlock(&s->mu);
	return n;
}

static void
ws_timer_run(struct ws_timer *t)
{
	void (*fn)(void *arg) = t->fn;
	void *arg = t->arg;

	atomic_fetch_sub(&t->s->ntimers, 1);
	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		t->s->timers = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	free(t);
	fn(arg);
}

static void
ws_timer_fire(lws_sorted_usec_list_t *sul)
{
	ws_timer_run(lws_container_of(sul, struct ws_timer, sul));
}

static void
ws_timer_ev_fire(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	ws_timer_run(lws_container_of(w, struct ws_timer, ev));
}

struct ws_timer *
ws_timer_add(struct ws_server *s, int64_t delay_ms, void (*fn)(void *arg),
	     void *arg)
{
	struct ws_timer *t = xcalloc(1, sizeof(*t));

	atomic_fetch_add(&s->ntimers, 1);
	t->s = s;
	t->fn = fn;
	t->arg = arg;
	t->next = s->timers;
	if (s->timers != NULL)
		s->timers->prev = t;
	s->timers = t;
	if (delay_ms < 0)
		delay_ms = 0;
	if (s->loop != NULL) {
		ev_now_update(s->loop);
		ev_timer_init(&t->ev, ws_timer_ev_fire,
			      (ev_tstamp)delay_ms / 1000.0, 0.0);
		ev_timer_start(s->loop, &t->ev);
	} else {
		lws_sul_schedule(s->ctx, 0, &t->sul, ws_timer_fire,
				 (lws_usec_t)delay_ms * LWS_US_PER_MS);
	}
	return t;
}

void
ws_timer_cancel(struct ws_timer *t)
{
	if (t == NULL)
		return;
	atomic_fetch_sub(&t->s->ntimers, 1);
	if (t->s->loop != NULL)
		ev_timer_stop(t->s->loop, &t->ev);
	else
		lws_sul_cancel(&t->sul);
	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		t->s->timers = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	free(t);
}

/* Bytes the global budget still allows. */
static size_t
s_budget_room(const struct ws_server *s)
{
	return s->total_buffered >= s->max_total ? 0 :
		s->max_total - s->total_buffered;
}

/* Whether c has output waiting: queued here, or (while it is not
 * closing) the unsent rest of a write that lws keeps: a batched write
 * can move c's whole queue there, and its backlog is not over then. */
static int
ws_conn_backlogged(const struct ws_conn *c)
{
	return c->buffered > 0 ||
	       (!c->closing && lws_partial_buffered(c->wsi));
}

/* The global budget is full: close the slow consumers whose backlog is
 * the oldest (1008, queue dropped) until len fits. -1 when c itself was
 * closed (or nothing could be freed). */
static int
ws_budget_make_room(struct ws_conn *c, size_t len)
{
	struct ws_server *s = c->s;

	while (len > s_budget_room(s)) {
		struct ws_conn *o, *old = NULL;

		for (o = s->conns; o != NULL; o = o->next)
			if (ws_conn_backlogged(o) && !o->drop &&
			    (old == NULL || o->backlog_since <
			     old->backlog_since))
				old = o;
		if (old == NULL)
			old = c;
		log_warn("ws", "conn %llu: slow consumer (%zu bytes queued; "
			 "%zu queued in all)", (unsigned long long)old->id,
			 old->buffered, s->total_buffered);
		s->budget_closed++;
		ws_msg_free_all(old);
		/* What the kernel still holds for it goes too: the peer
		 * does not read, so its send buffer would drain at the
		 * pace of a closed receive window (seconds to minutes
		 * before the peer saw the end); the close is abortive. */
		{
			struct linger lg = { 1, 0 };

			setsockopt(lws_get_socket_fd(old->wsi), SOL_SOCKET,
				   SO_LINGER, &lg, sizeof(lg));
		}
		/* When lws itself still holds part of a write for it, a
		 * close frame would wait for that to drain (the same closed
		 * window): drop it at once. */
		if (lws_partial_buffered(old->wsi))
			ws_conn_close(old, 0, NULL);
		else
			ws_conn_close(old, 1008, "slow consumer");
		if (old == c)
			return -1;
	}
	return 0;
}

void
ws_server_set_total_budget(struct ws_server *s, size_t bytes)
{
	s->max_total = bytes > 0 ? bytes : WS_TOTAL_BUDGET;
}

unsigned long
ws_server_budget_closed(const struct ws_server *s)
{
	return s->budget_closed;
}

/* Whether a frame of len bytes may be queued on c: 0 yes; 1 skipped
 * (WS_SEND_DROP_IF_SLOW and over a limit); -1 closing, or closed 1008
 * for passing a limit. */
static int
ws_conn_admit(struct ws_conn *c, size_t len, unsigned flags)
{
	if (c->closing)
		return -1;
	if (len > c->s->o.max_buffered - c->buffered ||
	    c->buffered > c->s->o.max_buffered) {
		if (flags & WS_SEND_DROP_IF_SLOW) {
			ws_stat_add(&c->s->st_dropped, 1);
			return 1;
		}
		/* The peer does not read: nothing queued will get through,
		 * so drop the queue and close at once. */
		log_warn("ws", "conn %llu: slow consumer (%zu bytes queued)",
			 (unsigned long long)c->id, c->buffered);
		ws_msg_free_all(c);
		ws_conn_close(c, 1008, "slow consumer");
		return -1;
	}
	if (len > s_budget_room(c->s)) {
		if (flags & WS_SEND_DROP_IF_SLOW) {
			ws_stat_add(&c->s->st_dropped, 1);
			return 1;
		}
		if (ws_budget_make_room(c, len) != 0)
			return -1;
	}
	return 0;
}

static void
ws_conn_queue(struct ws_conn *c, struct ws_msg *m)
{
	int was_empty = c->out_head == NULL;
	struct ws_server *s = c->s;

	m->next = NULL;
	if (c->out_tail != NULL)
		c->out_tail->next = m;
	else
		c->out_head = m;
	c->out_tail = m;
	if (!ws_conn_backlogged(c))
		c->backlog_since = util_mono_ms();
	c->buffered += m->len;
	c->s->total_buffered += m->len;
	/* A non-empty queue already has its writeable callback asked for
	 * (the callback asks again while frames remain), or is listed. */
	if (!was_empty)
		return;
	if (s->in_drain && s->batch) {
		if (!c->dirty) {
			c->dirty = 1;
			c->dirty_next = s->dirty;
			s->dirty = c;
		}
		return;
	}
	lws_callback_on_writable(c->wsi);
}

/* The end of ws_drain: write what its jobs queued, one batch per
 * connection, right away when lws holds nothing unsent for it (else, and
 * for what does not fit one batch, the writeable callback). A
 * connection stays valid for the whole drain (closing is asynchronous). */
static void
ws_flush_dirty(struct ws_server *s)
{
	struct ws_conn *c;

	while ((c = s->dirty) != NULL) {
		s->dirty = c->dirty_next;
		c->dirty = 0;
		c->dirty_next = NULL;
		if (c->out_head == NULL)
			continue;
		if (!c->closing && !c->drop && !lws_partial_buffered(c->wsi) &&
		    ws_conn_write_batch(c) < 0) {
			ws_conn_close(c, 0, NULL);
			continue;
		}
		if (c->out_head != NULL || c->closing)
			lws_callback_on_writable(c->wsi);
	}
}

int
ws_conn_send(struct ws_conn *c, const char *text, size_t len)
{
	struct ws_msg *m;

	if (ws_conn_admit(c, len, 0) != 0)
		return -1;
	m = xmalloc(sizeof(*m) + LWS_PRE + len);
	m->head = NULL;
	m->len = len;
	memcpy(m->buf + LWS_PRE, text, len);
	ws_conn_queue(c, m);
	return 0;
}

int
ws_conn_send_shared(struct ws_conn *c, struct ws_shared *head, uint64_t num,
		    unsigned flags)
{
	struct ws_server *s = c->s;
	struct ws_msg *m;
	size_t len = head->len + ws_num_len(num);
	int r = ws_conn_admit(c, len, flags);

	if (r != 0)
		return r;
	if ((m = s->spare) != NULL) {
		s->spare = m->next;
		s->nspare--;
	} else {
		m = xmalloc(sizeof(*m));
	}
	m->head = head;
	head->refs++;
	m->len = len;
	m->num = num;
	ws_conn_queue(c, m);
	return 0;
}

void
ws_conn_close(struct ws_conn *c, int code, const char *reason)
{
	size_t n;

	if (code == 0) {
		c->closing = 1;
		c->drop = 1;
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK,
				LWS_TO_KILL_ASYNC);
		return;
	}
	if (c->closing)
		return;
	c->closing = 1;
	c->close_code = code;
	n = reason != NULL ? strlen(reason) : 0;
	if (n > WS_REASON_MAX) {
		n = WS_REASON_MAX;
		/* Do not cut a UTF-8 sequence in half. */
		while (n > 0 && ((unsigned char)reason[n] & 0xc0) == 0x80)
			n--;
	}
	if (n > 0)
		memcpy(c->close_reason, reason, n);
	c->close_reason[n] = '\0';
	c->close_reason_len = n;
	/* Bound the flush and the close handshake. */
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, WS_CLOSE_TIMEOUT_S);
	lws_callback_on_writable(c->wsi);
}

void
ws_conn_set_max_payload(struct ws_conn *c, size_t n)
{
	c->max_payload = n;
}

size_t
ws_conn_buffered(const struct ws_conn *c)
{
	return c->buffered;
}

int
ws_conn_is_closing(const struct ws_conn *c)
{
	return c->closing;
}

void
ws_conn_set_user(struct ws_conn *c, void *user)
{
	c->user = user;
}

void *
ws_conn_user(const struct ws_conn *c)
{
	return c->user;
}

uint64_t
ws_conn_id(const struct ws_conn *c)
{
	return c->id;
}

const char *
ws_conn_peer_ip(const struct ws_conn *c)
{
	return c->peer_ip;
}

int
ws_conn_peer_is_loopback(const struct ws_conn *c)
{
	return c->loopback;
}

const char *
ws_conn_header(const struct ws_conn *c, const char *name)
{
	size_t i;

	for (i = 0; i < WS_NHDR; i++)
		if (strcasecmp(ws_hdr_table[i].name, name) == 0)
			return c->hdr[i];
	return NULL;
}

void
ws_server_foreach(struct ws_server *s,
		  void (*fn)(struct ws_conn *c, void *arg), void *arg)
{
	struct ws_conn *c, *next;

	for (c = s->conns; c != NULL; c = next) {
		next = c->next;
		fn(c, arg);
	}
}
