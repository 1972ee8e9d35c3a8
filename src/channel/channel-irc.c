/* The IRC adapter: one TCP connection per account on the channel loop
 * (non-blocking, epoll), registration (PASS, CAP LS + SASL PLAIN, NICK,
 * USER), NickServ, JOIN and rejoin, PING/PONG with lag, nick collisions,
 * reconnect with capped exponential backoff and jitter, a token bucket on
 * outbound lines, CTCP, bounded input. doc/channels.md. */
#include <errno.h>
#include <stdarg.h>
#include <time.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "channel/channel-int.h"
#include "channel/irc-line.h"
#include "config/config.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"

#define IRC_BACKOFF_BASE_MS 1000
#define IRC_BACKOFF_MAX_MS 60000
#define IRC_REGISTER_TIMEOUT_MS 30000
#define IRC_PING_EVERY_MS 60000
#define IRC_PING_TIMEOUT_MS 120000
#define IRC_OUT_MAX_LINES 2000
#define IRC_FLOOD_BURST 5
#define IRC_FLOOD_INTERVAL_MS 500
#define IRC_USERHOST_GUESS 74	/* "~" + 10-char user + "@" + 63-char host */
#define IRC_NICK_MAX 32
#define IRC_BAD_LINES_LOG 5
#define IRC_CTCP_QUEUE_MAX 4

enum irc_state { IRC_DOWN = 0, IRC_CONNECTING, IRC_TLS, IRC_REGISTERING,
		 IRC_READY };

struct irc_out {
	char *line;		/* with CR LF */
	struct irc_out *next;
};

struct irc_conn {
	struct chan_account *a;
	struct channel_io io;
	enum irc_state st;
	int stopping;
	char in[IRC_LINE_BUF];
	size_t inlen;
	int discarding;		/* dropping an over-long line up to LF */
	unsigned bad_lines;
	/* outbound: lines waiting for a token, then the write buffer */
	struct irc_out *qhead, *qtail;
	size_t qlen;
	char *wbuf;
	size_t wlen, wcap;
	double tokens;
	int64_t refill_at;
	int64_t flood_ms;
	int burst;
	struct channel_timer reconnect_t, flood_t, ping_t, reg_t;
	char nick[IRC_NICK_MAX + 1];
	int nick_try;
	size_t userhost_len;
	int64_t ping_sent_at;	/* 0 = no PING outstanding */
	int64_t lag_ms;
	int attempts;
	int sasl;		/* 1 requested, 2 done */
	int identified;
	/* TLS (OpenSSL, certificate and host name verified) */
	SSL_CTX *ctx;
	SSL *ssl;
	int64_t reg_timeout_ms;	/* connect + TLS + registration bound */
	int64_t ping_every_ms, ping_timeout_ms;
};

static const char *irc_cfg_str(const json_t *cfg, const char *k)
{
	const char *v = json_string_value(json_object_get(cfg, k));

	return v && *v ? v : NULL;
}

static int irc_cfg_tls(const json_t *cfg)
{
	const json_t *t = json_object_get(cfg, "tls");

	return t ? json_is_true(t) : 1;
}

static int irc_cfg_port(const json_t *cfg)
{
	const json_t *p = json_object_get(cfg, "port");

	if (json_is_integer(p) && json_integer_value(p) > 0 &&
	    json_integer_value(p) < 65536)
		return (int)json_integer_value(p);
	if (json_is_string(p) && util_parse_port(json_string_value(p)) > 0)
		return util_parse_port(json_string_value(p));
	return irc_cfg_tls(cfg) ? 6697 : 6667;
}

/* A secret value (string or SecretRef) of the account, resolved. */
static char *irc_cfg_secret(const json_t *cfg, const char *k)
{
	const json_t *v = json_object_get(cfg, k);
	char *out = NULL, why[128];

	if (!v || json_is_null(v))
		return NULL;
	if (config_secret_resolve(v, &out, why, sizeof(why)) != 0) {
		log_warn("irc", "%s: %s", k, why);
		return NULL;
	}
	return out;
}

/* ---- config --------------------------------------------------------------- */

static void irc_env(json_t *o, const char *key, const char *env, int type)
{
	const char *v = getenv(env);

	if (!v || !*v || json_object_get(o, key))
		return;
	if (type == 'i' && util_parse_port(v) > 0)
		json_object_set_new(o, key, json_integer(util_parse_port(v)));
	else if (type == 'b')
		json_object_set_new(o, key, json_boolean(
			strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0));
	else if (type == 'l') {
		json_t *a = json_array();
		char *dup = xstrdup(v), *save = NULL, *t;

		for (t = strtok_r(dup, ",", &save); t;
		     t = strtok_r(NULL, ",", &save))
			if (*t)
				json_array_append_new(a, json_string(t));
		free(dup);
		json_object_set_new(o, key, a);
	} else if (type == 's')
		json_object_set_new(o, key, json_string(v));
}

static json_t *irc_resolve(const json_t *chan, const char *account_id,
			   int is_default)
{
	json_t *o = json_is_object(chan) ? json_deep_copy(chan)
					 : json_object();
	const json_t *acct = json_object_get(json_object_get(chan,
					     "accounts"), account_id);
	const char *k;
	json_t *v;

	json_object_del(o, "accounts");
	json_object_del(o, "defaultAccount");
	json_object_foreach((json_t *)acct, k, v)
		json_object_set(o, k, v);
	if (is_default) {
		json_t *ns;

		irc_env(o, "host", "IRC_HOST", 's');
		irc_env(o, "port", "IRC_PORT", 'i');
		irc_env(o, "tls", "IRC_TLS", 'b');
		irc_env(o, "nick", "IRC_NICK", 's');
		irc_env(o, "username", "IRC_USERNAME", 's');
		irc_env(o, "realname", "IRC_REALNAME", 's');
		irc_env(o, "password", "IRC_PASSWORD", 's');
		irc_env(o, "channels", "IRC_CHANNELS", 'l');
		if (getenv("IRC_NICKSERV_PASSWORD") ||
		    getenv("IRC_NICKSERV_REGISTER_EMAIL")) {
			ns = json_object_get(o, "nickserv");
			if (!json_is_object(ns)) {
				ns = json_object();
				json_object_set_new(o, "nickserv", ns);
			}
			irc_env(ns, "password", "IRC_NICKSERV_PASSWORD", 's');
			irc_env(ns, "registerEmail",
				"IRC_NICKSERV_REGISTER_EMAIL", 's');
		}
	}
	return o;
}

static int irc_configured(const json_t *cfg)
{
	return irc_cfg_str(cfg, "host") && irc_cfg_str(cfg, "nick");
}

/* ---- output ----------------------------------------------------------------- */

static void irc_want_write(struct irc_conn *k, int on)
{
	if (k->io.fd >= 0)
		channel_io_mod(k->a, &k->io, EPOLLIN | EPOLLRDHUP |
			       (on ? EPOLLOUT : 0));
}

static void irc_flush(struct irc_conn *k);
static void irc_drop(struct irc_conn *k, const char *why);

/* Bytes straight to the write buffer (registration, PONG: no tokens). */
static void irc_raw(struct irc_conn *k, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void irc_raw(struct irc_conn *k, const char *fmt, ...)
{
	char line[IRC_LINE_MAX + 1];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 3)
		n = (int)(sizeof(line) - 3);
	memcpy(line + n, "\r\n", 3);
	n += 2;
	if (k->wlen + (size_t)n > k->wcap) {
		k->wcap = (k->wlen + (size_t)n) * 2;
		k->wbuf = xrealloc(k->wbuf, k->wcap);
	}
	memcpy(k->wbuf + k->wlen, line, (size_t)n);
	k->wlen += (size_t)n;
	irc_flush(k);
}

static void irc_refill(struct irc_conn *k)
{
	int64_t now = util_mono_ms();

	if (k->refill_at == 0) {
		k->tokens = k->burst;
		k->refill_at = now;
		return;
	}
	k->tokens += (double)(now - k->refill_at) / (double)k->flood_ms;
	if (k->tokens > k->burst)
		k->tokens = k->burst;
	k->refill_at = now;
}

/* Move queued lines into the write buffer as tokens allow. */
static void irc_pump(struct irc_conn *k)
{
	if (k->st != IRC_READY)
		return;
	irc_refill(k);
	while (k->qhead && k->tokens >= 1.0) {
		struct irc_out *o = k->qhead;
		size_t n = strlen(o->line);

		k->qhead = o->next;
		if (!k->qhead)
			k->qtail = NULL;
		k->qlen--;
		k->tokens -= 1.0;
		if (k->wlen + n > k->wcap) {
			k->wcap = (k->wlen + n) * 2;
			k->wbuf = xrealloc(k->wbuf, k->wcap);
		}
		memcpy(k->wbuf + k->wlen, o->line, n);
		k->wlen += n;
		free(o->line);
		free(o);
	}
	if (k->qhead && !k->flood_t.at)
		channel_timer_set(k->a, &k->flood_t, (int64_t)((1.0 -
				  k->tokens) * (double)k->flood_ms) + 1);
	irc_flush(k);
	channel_account_outbound(k->a);
}

static void irc_flood_cb(struct channel_timer *t)
{
	irc_pump(t->arg);
}

static void irc_flush(struct irc_conn *k)
{
	ssize_t n;

	if (k->io.fd < 0 || k->st == IRC_CONNECTING || k->st == IRC_TLS)
		return;
	while (k->wlen) {
		if (k->ssl) {
			int w = SSL_write(k->ssl, k->wbuf, (int)(k->wlen >
					  65536 ? 65536 : k->wlen));

			if (w <= 0) {
				int e = SSL_get_error(k->ssl, w);

				if (e == SSL_ERROR_WANT_WRITE ||
				    e == SSL_ERROR_WANT_READ) {
					irc_want_write(k, 1);
					return;
				}
				irc_drop(k, "TLS write failed");
				return;
			}
			n = w;
		} else {
			n = send(k->io.fd, k->wbuf, k->wlen, MSG_NOSIGNAL);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				irc_want_write(k, 1);
				return;
			}
			irc_drop(k, strerror(errno));
			return;
		}
		memmove(k->wbuf, k->wbuf + n, k->wlen - (size_t)n);
		k->wlen -= (size_t)n;
	}
	irc_want_write(k, 0);
}

static void irc_queue_clear(struct irc_conn *k)
{
	while (k->qhead) {
		struct irc_out *o = k->qhead;

		k->qhead = o->next;
		free(o->line);
		free(o);
	}
	k->qtail = NULL;
	k->qlen = 0;
}

/* One line through the token bucket (CTCP answers): dropped when the
 * queue already holds more than a few lines, so that a CTCP flood cannot
 * make the bot flood the server. */
static void irc_queue_fmt(struct irc_conn *k, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void irc_queue_fmt(struct irc_conn *k, const char *fmt, ...)
{
	struct irc_out *o;
	char line[IRC_LINE_MAX - 1];
	va_list ap;

	if (k->qlen >= IRC_CTCP_QUEUE_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	o = xcalloc(1, sizeof(*o));
	o->line = xasprintf("%s\r\n", line);
	if (k->qtail)
		k->qtail->next = o;
	else
		k->qhead = o;
	k->qtail = o;
	k->qlen++;
	irc_pump(k);
}

static int irc_target_ok(const char *t)
{
	size_t n = t ? strlen(t) : 0;

	return n > 0 && n <= 200 && !strpbrk(t, " \r\n\t,") && t[0] != ':';
}

static int irc_send(struct chan_account *a, const char *target,
		    const char *text, char **err)
{
	struct irc_conn *k = a->impl;
	char **lines = NULL;
	size_t n, i, budget;

	*err = NULL;
	/* While (re)connecting, lines wait in the queue for the welcome. */
	if (!k) {
		*err = xstrdup("IRC is not running");
		return -1;
	}
	if (!irc_target_ok(target)) {
		*err = xasprintf("invalid IRC target: %s", target);
		return -1;
	}
	budget = irc_line_budget(k->nick, k->userhost_len ? k->userhost_len
			: IRC_USERHOST_GUESS, "PRIVMSG", target);
	{
		/* No CR, LF or NUL reaches the wire; controls are dropped. */
		char *clean = xstrdup(text);
		char *w = clean;

		for (const char *r = clean; *r; r++)
			if ((unsigned char)*r >= 0x20 || *r == '\n' ||
			    *r == 0x02 || *r == 0x01)
				*w++ = *r;
		*w = 0;
		n = irc_line_split(clean, budget, &lines);
		free(clean);
	}
	if (n == 0) {
		irc_line_strv_free(lines);
		*err = xstrdup("message is empty after IRC formatting");
		return -1;
	}
	if (k->qlen + n > IRC_OUT_MAX_LINES) {
		irc_line_strv_free(lines);
		*err = xstrdup("IRC outbound queue is full");
		return -1;
	}
	for (i = 0; i < n; i++) {
		struct irc_out *o = xcalloc(1, sizeof(*o));

		o->line = xasprintf("PRIVMSG %s :%s\r\n", target, lines[i]);
		if (k->qtail)
			k->qtail->next = o;
		else
			k->qhead = o;
		k->qtail = o;
		k->qlen++;
	}
	irc_line_strv_free(lines);
	irc_pump(k);
	return 0;
}

/* ---- connection lifecycle ------------------------------------------------------ */

static void irc_connect(struct irc_conn *k);

static void irc_close_fd(struct irc_conn *k)
{
	SSL_free(k->ssl);
	k->ssl = NULL;
	SSL_CTX_free(k->ctx);
	k->ctx = NULL;
	if (k->io.fd >= 0) {
		channel_io_del(k->a, &k->io);
		close(k->io.fd);
		k->io.fd = -1;
	}
	k->inlen = 0;
	k->discarding = 0;
	k->wlen = 0;
	k->ping_sent_at = 0;
	k->sasl = 0;
	channel_timer_cancel(k->a, &k->flood_t);
	channel_timer_cancel(k->a, &k->ping_t);
	channel_timer_cancel(k->a, &k->reg_t);
}

static void irc_reconnect_cb(struct channel_timer *t)
{
	irc_connect(t->arg);
}

/* Connection lost: close, then reconnect after a capped exponential
 * backoff with +-25% jitter. */
static void irc_drop(struct irc_conn *k, const char *why)
{
	int64_t delay;
	uint32_t r;
	int was = k->st == IRC_READY;

	irc_close_fd(k);
	k->st = IRC_DOWN;
	if (k->stopping)
		return;
	delay = IRC_BACKOFF_BASE_MS;
	for (int i = 0; i < k->attempts && delay < IRC_BACKOFF_MAX_MS; i++)
		delay *= 2;
	if (delay > IRC_BACKOFF_MAX_MS)
		delay = IRC_BACKOFF_MAX_MS;
	util_random(&r, sizeof(r));
	delay = delay * 3 / 4 + (int64_t)(r % (uint32_t)(delay / 2 + 1));
	k->attempts++;
	channel_account_attempts(k->a, k->attempts);
	if (was)
		channel_account_connected(k->a, 0, why);
	else
		channel_account_error(k->a, why);
	log_info("irc", "%s: %s; reconnecting in %lld ms (attempt %d)",
		 k->a->id, why, (long long)delay, k->attempts);
	channel_timer_set(k->a, &k->reconnect_t, delay);
}

static void irc_register(struct irc_conn *k)
{
	const json_t *cfg = k->a->cfg;
	const char *user = irc_cfg_str(cfg, "username");
	const char *real = irc_cfg_str(cfg, "realname");
	char *pass = irc_cfg_secret(cfg, "password");

	k->st = IRC_REGISTERING;
	if (pass) {
		irc_raw(k, "PASS %s", pass);
		xfree_secret(pass);
	}
	irc_raw(k, "CAP LS 302");
	irc_raw(k, "NICK %s", k->nick);
	irc_raw(k, "USER %s 0 * :%s", user ? user : k->nick,
		real ? real : "OpenClaw");
}

static void irc_reg_timeout_cb(struct channel_timer *t)
{
	struct irc_conn *k = t->arg;

	irc_drop(k, k->st == IRC_CONNECTING ? "connect timed out"
					     : "registration timed out");
}

static void irc_ping_cb(struct channel_timer *t)
{
	struct irc_conn *k = t->arg;
	int64_t now = util_mono_ms();

	if (k->ping_sent_at && now - k->ping_sent_at >= k->ping_timeout_ms) {
		irc_drop(k, "ping timeout");
		return;
	}
	if (!k->ping_sent_at) {
		k->ping_sent_at = now;
		irc_raw(k, "PING :clawgate-%lld", (long long)now);
	}
	channel_timer_set(k->a, &k->ping_t, k->ping_sent_at +
			  k->ping_timeout_ms - now < k->ping_every_ms ?
			  k->ping_sent_at + k->ping_timeout_ms - now :
			  k->ping_every_ms);
}

static void irc_join_all(struct irc_conn *k)
{
	const json_t *chans = json_object_get(k->a->cfg, "channels");
	size_t i;
	json_t *c;

	json_array_foreach(chans, i, c) {
		const char *name = json_string_value(c);

		if (name && irc_line_is_channel(name) &&
		    !strpbrk(name, "\r\n") && strlen(name) < 200)
			irc_raw(k, "JOIN %s", name);
	}
}

/* ---- inbound ---------------------------------------------------------------- */

static void irc_ctcp(struct irc_conn *k, const char *nick, char *body,
		     const struct irc_msg *m)
{
	char *end = strchr(body, '\x01'), *arg;

	if (end)
		*end = 0;
	arg = strchr(body, ' ');
	if (arg)
		*arg++ = 0;
	if (strcasecmp(body, "VERSION") == 0) {
		irc_queue_fmt(k, "NOTICE %s :\x01VERSION clawgate (OpenClaw "
			"gateway)\x01", nick);
	} else if (strcasecmp(body, "PING") == 0) {
		irc_queue_fmt(k, "NOTICE %s :\x01PING %.100s\x01", nick,
			arg ? arg : "");
	} else if (strcasecmp(body, "TIME") == 0) {
		char ts[64];
		time_t now = time(NULL);
		struct tm tm;

		gmtime_r(&now, &tm);
		strftime(ts, sizeof(ts), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		irc_queue_fmt(k, "NOTICE %s :\x01TIME %s\x01", nick, ts);
	} else if (strcasecmp(body, "CLIENTINFO") == 0) {
		irc_queue_fmt(k, "NOTICE %s :\x01CLIENTINFO ACTION CLIENTINFO PING "
			"TIME VERSION\x01", nick);
	} else if (strcasecmp(body, "ACTION") == 0 && arg) {
		/* "/me text": a message like any other */
		char *text = xasprintf("* %s %s", nick, arg);
		struct channel_inbound in = { 0 };
		int dm = !irc_line_is_channel(m->params[0]);

		irc_line_sanitize(text);
		in.conversation = dm ? nick : m->params[0];
		in.sender = m->prefix;
		in.nick = nick;
		in.text = text;
		in.is_dm = dm;
		in.bot_nick = k->nick;
		channel_inbound(k->a, &in);
		free(text);
	}
}

static void irc_privmsg(struct irc_conn *k, const struct irc_msg *m)
{
	char nick[IRC_NICK_MAX * 2];
	struct channel_inbound in = { 0 };
	char *text;
	const char *target;

	if (m->nparams < 2 || !m->prefix || !strchr(m->prefix, '!'))
		return;
	irc_line_nick(m->prefix, nick, sizeof(nick));
	if (!*nick || irc_line_casecmp(nick, k->nick) == 0)
		return;
	target = m->params[0];
	text = xstrdup(m->params[1]);
	if (text[0] == '\x01') {
		irc_ctcp(k, nick, text + 1, m);
		free(text);
		return;
	}
	irc_line_sanitize(text);
	if (!*text) {
		free(text);
		return;
	}
	in.is_dm = !irc_line_is_channel(target);
	in.conversation = in.is_dm ? nick : target;
	in.sender = m->prefix;
	in.nick = nick;
	in.text = text;
	in.bot_nick = k->nick;
	channel_inbound(k->a, &in);
	free(text);
}

static void irc_cap(struct irc_conn *k, const struct irc_msg *m)
{
	const char *sub = m->nparams > 1 ? m->params[1] : "";
	const char *list = m->nparams > 2 ? m->params[m->nparams - 1] : "";
	const json_t *ns = json_object_get(k->a->cfg, "nickserv");
	char *pw = irc_cfg_secret(ns, "password");

	if (strcmp(sub, "LS") == 0) {
		/* multi-line LS ("*" marker): wait for the last line */
		if (m->nparams > 3 && strcmp(m->params[2], "*") == 0)
			goto out;
		if (pw && (strstr(list, "sasl") != NULL)) {
			k->sasl = 1;
			irc_raw(k, "CAP REQ :sasl");
		} else {
			irc_raw(k, "CAP END");
		}
	} else if (strcmp(sub, "ACK") == 0 && k->sasl == 1) {
		irc_raw(k, "AUTHENTICATE PLAIN");
	} else if (strcmp(sub, "NAK") == 0) {
		k->sasl = 0;
		irc_raw(k, "CAP END");
	}
out:
	xfree_secret(pw);
}

static void irc_authenticate(struct irc_conn *k)
{
	const json_t *ns = json_object_get(k->a->cfg, "nickserv");
	char *pw = irc_cfg_secret(ns, "password");
	const char *user = irc_cfg_str(ns, "account");
	char *plain, *b64;
	size_t n;

	if (!pw) {
		irc_raw(k, "AUTHENTICATE *");
		return;
	}
	if (!user)
		user = k->nick;
	n = strlen(user) * 2 + strlen(pw) + 2;
	plain = xmalloc(n + 1);
	snprintf(plain, n + 1, "%s%c%s%c%s", user, 0, user, 0, pw);
	b64 = util_b64url_encode((const uint8_t *)plain, n);
	/* SASL wants standard base64: map the URL alphabet back, pad. */
	for (char *p = b64; *p; p++)
		*p = *p == '-' ? '+' : *p == '_' ? '/' : *p;
	{
		size_t l = strlen(b64);
		char *pad = xmalloc(l + 4);

		memcpy(pad, b64, l);
		while (l % 4)
			pad[l++] = '=';
		pad[l] = 0;
		irc_raw(k, "AUTHENTICATE %s", pad);
		xfree_secret(pad);
	}
	xfree_secret(b64);
	explicit_bzero(plain, n);
	free(plain);
	xfree_secret(pw);
}

static void irc_welcome(struct irc_conn *k, const struct irc_msg *m)
{
	const json_t *ns = json_object_get(k->a->cfg, "nickserv");
	char *pw;

	if (m->nparams > 0 && strlen(m->params[0]) <= IRC_NICK_MAX)
		snprintf(k->nick, sizeof(k->nick), "%s", m->params[0]);
	k->st = IRC_READY;
	k->attempts = 0;
	channel_timer_cancel(k->a, &k->reg_t);
	channel_account_connected(k->a, 1, NULL);
	pw = irc_cfg_secret(ns, "password");
	if (pw && k->sasl != 2 &&
	    !json_is_false(json_object_get(ns, "enabled"))) {
		const char *svc = irc_cfg_str(ns, "service");
		const char *email = irc_cfg_str(ns, "registerEmail");

		if (json_is_true(json_object_get(ns, "register")) && email)
			irc_raw(k, "PRIVMSG %s :REGISTER %s %s",
				svc ? svc : "NickServ", pw, email);
		irc_raw(k, "PRIVMSG %s :IDENTIFY %s", svc ? svc : "NickServ",
			pw);
	}
	xfree_secret(pw);
	irc_join_all(k);
	channel_timer_set(k->a, &k->ping_t, k->ping_every_ms);
	irc_pump(k);
}

static void irc_nick_taken(struct irc_conn *k)
{
	const char *base = irc_cfg_str(k->a->cfg, "nick");
	char suffix[16];
	size_t bl;

	if (k->st != IRC_REGISTERING)
		return;
	k->nick_try++;
	if (k->nick_try > 20) {
		irc_drop(k, "nick collision: no free nick");
		return;
	}
	snprintf(suffix, sizeof(suffix), "%d", k->nick_try);
	bl = strlen(base);
	if (bl + strlen(suffix) + 1 > IRC_NICK_MAX)
		bl = IRC_NICK_MAX - strlen(suffix) - 1;
	snprintf(k->nick, sizeof(k->nick), "%.*s_%s", (int)bl, base, suffix);
	log_info("irc", "%s: nick in use; trying %s", k->a->id, k->nick);
	irc_raw(k, "NICK %s", k->nick);
}

static void irc_handle(struct irc_conn *k, const struct irc_msg *m)
{
	const char *c = m->command;
	char nick[IRC_NICK_MAX * 2];

	irc_line_nick(m->prefix, nick, sizeof(nick));
	if (strcmp(c, "PING") == 0) {
		irc_raw(k, "PONG :%.400s", m->nparams ? m->params[0] : "");
	} else if (strcmp(c, "PONG") == 0) {
		if (k->ping_sent_at) {
			k->lag_ms = util_mono_ms() - k->ping_sent_at;
			k->ping_sent_at = 0;
		}
	} else if (strcmp(c, "001") == 0) {
		irc_welcome(k, m);
	} else if (strcmp(c, "433") == 0 || strcmp(c, "432") == 0 ||
		   strcmp(c, "436") == 0) {
		irc_nick_taken(k);
	} else if (strcmp(c, "CAP") == 0) {
		irc_cap(k, m);
	} else if (strcmp(c, "AUTHENTICATE") == 0) {
		if (m->nparams && strcmp(m->params[0], "+") == 0)
			irc_authenticate(k);
	} else if (strcmp(c, "903") == 0) {
		k->sasl = 2;
		irc_raw(k, "CAP END");
	} else if (strcmp(c, "904") == 0 || strcmp(c, "905") == 0 ||
		   strcmp(c, "906") == 0 || strcmp(c, "908") == 0) {
		log_warn("irc", "%s: SASL authentication failed", k->a->id);
		k->sasl = 0;
		irc_raw(k, "CAP END");
	} else if (strcmp(c, "PRIVMSG") == 0) {
		irc_privmsg(k, m);
	} else if (strcmp(c, "JOIN") == 0) {
		if (irc_line_casecmp(nick, k->nick) == 0 && m->prefix) {
			const char *bang = strchr(m->prefix, '!');

			if (bang)
				k->userhost_len = strlen(bang + 1);
			log_info("irc", "%s: joined %s", k->a->id,
				 m->nparams ? m->params[0] : "?");
		}
	} else if (strcmp(c, "KICK") == 0) {
		if (m->nparams >= 2 &&
		    irc_line_casecmp(m->params[1], k->nick) == 0) {
			log_info("irc", "%s: kicked from %s; rejoining",
				 k->a->id, m->params[0]);
			irc_raw(k, "JOIN %s", m->params[0]);
		}
	} else if (strcmp(c, "NICK") == 0) {
		if (irc_line_casecmp(nick, k->nick) == 0 && m->nparams &&
		    strlen(m->params[0]) <= IRC_NICK_MAX)
			snprintf(k->nick, sizeof(k->nick), "%s",
				 m->params[0]);
	} else if (strcmp(c, "KILL") == 0) {
		log_warn("irc", "%s: killed by %s: %s", k->a->id, nick,
			 m->nparams > 1 ? m->params[1] : "");
	} else if (strcmp(c, "ERROR") == 0) {
		char why[256];

		snprintf(why, sizeof(why), "server closed the link: %s",
			 m->nparams ? m->params[0] : "");
		irc_drop(k, why);
	} else if (strcmp(c, "464") == 0) {
		channel_account_error(k->a, "password incorrect");
	}
}

static void irc_line(struct irc_conn *k, char *line, size_t n)
{
	struct irc_msg m;

	if (n && line[n - 1] == '\r')
		line[--n] = 0;
	if (!n)
		return;
	if (memchr(line, 0, n) || irc_line_parse(line, &m) != 0) {
		if (k->bad_lines++ < IRC_BAD_LINES_LOG)
			log_warn("irc", "%s: malformed line dropped",
				 k->a->id);
		return;
	}
	irc_handle(k, &m);
}

static void irc_read(struct irc_conn *k)
{
	for (;;) {
		ssize_t n;
		char *p, *nl;
		size_t left;

		if (k->io.fd < 0)
			return;
		if (k->ssl) {
			int rd = SSL_read(k->ssl, k->in + k->inlen,
					  (int)(sizeof(k->in) - 1 - k->inlen));

			if (rd <= 0) {
				int e = SSL_get_error(k->ssl, rd);

				if (e == SSL_ERROR_WANT_READ)
					return;
				if (e == SSL_ERROR_WANT_WRITE) {
					irc_want_write(k, 1);
					return;
				}
				irc_drop(k, e == SSL_ERROR_ZERO_RETURN ?
					 "connection closed by the server" :
					 "TLS read failed");
				return;
			}
			n = rd;
		} else {
			n = recv(k->io.fd, k->in + k->inlen, sizeof(k->in) -
				 1 - k->inlen, 0);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			irc_drop(k, strerror(errno));
			return;
		}
		if (n == 0) {
			irc_drop(k, "connection closed by the server");
			return;
		}
		k->inlen += (size_t)n;
		k->in[k->inlen] = 0;
		p = k->in;
		left = k->inlen;
		while ((nl = memchr(p, '\n', left))) {
			size_t len = (size_t)(nl - p);

			*nl = 0;
			if (k->discarding)
				k->discarding = 0;
			else
				irc_line(k, p, len);
			if (k->io.fd < 0)
				return;	/* dropped while handling */
			left -= len + 1;
			p = nl + 1;
		}
		if (left && p != k->in)
			memmove(k->in, p, left);
		k->inlen = left;
		if (k->inlen >= sizeof(k->in) - 1) {
			/* no LF within 8 KB: drop this line up to its end */
			if (!k->discarding)
				log_warn("irc", "%s: line over %d bytes "
					 "dropped", k->a->id, IRC_LINE_BUF);
			k->discarding = 1;
			k->inlen = 0;
		}
	}
}

/* Start the TLS handshake on the connected socket: the system trust
 * store (SSL_CERT_FILE / SSL_CERT_DIR override it), peer verification
 * and the host name (or IP address) checked against the certificate. */
static int irc_tls_begin(struct irc_conn *k)
{
	const char *host = irc_cfg_str(k->a->cfg, "host");
	unsigned char buf[sizeof(struct in6_addr)];
	int is_ip = inet_pton(AF_INET, host, buf) == 1 ||
		    inet_pton(AF_INET6, host, buf) == 1;

	k->ctx = SSL_CTX_new(TLS_client_method());
	if (!k->ctx)
		goto fail;
	SSL_CTX_set_min_proto_version(k->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(k->ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_set_default_verify_paths(k->ctx) != 1)
		goto fail;
	SSL_CTX_set_mode(k->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	k->ssl = SSL_new(k->ctx);
	if (!k->ssl || SSL_set_fd(k->ssl, k->io.fd) != 1)
		goto fail;
	if (is_ip) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(k->ssl),
						  host) != 1)
			goto fail;
	} else {
		SSL_set_tlsext_host_name(k->ssl, host);
		if (SSL_set1_host(k->ssl, host) != 1)
			goto fail;
	}
	k->st = IRC_TLS;
	return 0;
fail:
	ERR_clear_error();
	irc_drop(k, "cannot set up TLS");
	return -1;
}

static void irc_tls_step(struct irc_conn *k)
{
	int r = SSL_connect(k->ssl), e;
	char why[300];

	if (r == 1) {
		irc_register(k);
		irc_want_write(k, k->wlen > 0);
		return;
	}
	e = SSL_get_error(k->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		irc_want_write(k, 0);
		return;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		irc_want_write(k, 1);
		return;
	}
	if (SSL_get_verify_result(k->ssl) != X509_V_OK)
		snprintf(why, sizeof(why), "TLS certificate verification "
			 "failed: %s", X509_verify_cert_error_string(
				 SSL_get_verify_result(k->ssl)));
	else
		snprintf(why, sizeof(why), "TLS handshake failed: %s",
			 ERR_reason_error_string(ERR_peek_last_error()) ?
			 ERR_reason_error_string(ERR_peek_last_error()) :
			 "connection closed");
	ERR_clear_error();
	irc_drop(k, why);
}

static void irc_io_cb(struct channel_io *io, uint32_t ev)
{
	struct irc_conn *k = io->arg;

	if (k->st == IRC_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err) {
			char why[160];

			snprintf(why, sizeof(why), "connect failed: %s",
				 strerror(err));
			irc_drop(k, why);
			return;
		}
		if (irc_cfg_tls(k->a->cfg)) {
			if (irc_tls_begin(k) == 0)
				irc_tls_step(k);
			return;
		}
		irc_register(k);
		irc_want_write(k, k->wlen > 0);
		return;
	}
	if (k->st == IRC_TLS) {
		irc_tls_step(k);
		return;
	}
	if (ev & EPOLLIN)
		irc_read(k);
	if (k->io.fd < 0)
		return;
	if (ev & (EPOLLERR | EPOLLHUP)) {
		irc_drop(k, "connection reset");
		return;
	}
	if (ev & EPOLLOUT)
		irc_flush(k);
}

static void irc_connect(struct irc_conn *k)
{
	const json_t *cfg = k->a->cfg;
	const char *host = irc_cfg_str(cfg, "host");
	struct addrinfo hints = { 0 }, *res = NULL, *ai;
	char port[8], why[200];
	int fd = -1, rc, one = 1;

	snprintf(port, sizeof(port), "%d", irc_cfg_port(cfg));
	snprintf(k->nick, sizeof(k->nick), "%.*s", IRC_NICK_MAX,
		 irc_cfg_str(cfg, "nick"));
	k->nick_try = 0;
	hints.ai_socktype = SOCK_STREAM;
	/* Name resolution blocks this loop briefly (getaddrinfo has no
	 * non-blocking form); IRC hosts are few and resolve rarely. */
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(why, sizeof(why), "cannot resolve %s: %s", host,
			 gai_strerror(rc));
		irc_drop(k, why);
		return;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
			    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
		    errno == EINPROGRESS)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(why, sizeof(why), "cannot connect to %s:%s: %s",
			 host, port, strerror(errno));
		irc_drop(k, why);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	k->io.fd = fd;
	k->wlen = 0;
	k->st = IRC_CONNECTING;
	k->refill_at = 0;
	if (channel_io_add(k->a, &k->io, EPOLLIN | EPOLLOUT | EPOLLRDHUP)
	    != 0) {
		irc_drop(k, strerror(errno));
		return;
	}
	channel_timer_set(k->a, &k->reg_t, k->reg_timeout_ms);
}

static int irc_start(struct chan_account *a)
{
	struct irc_conn *k = xcalloc(1, sizeof(*k));
	const char *fl = getenv("CLAWGATE_IRC_FLOOD_MS");

	k->a = a;
	k->io.fd = -1;
	k->io.cb = irc_io_cb;
	k->io.arg = k;
	k->reconnect_t.cb = irc_reconnect_cb;
	k->reconnect_t.arg = k;
	k->flood_t.cb = irc_flood_cb;
	k->flood_t.arg = k;
	k->ping_t.cb = irc_ping_cb;
	k->ping_t.arg = k;
	k->reg_t.cb = irc_reg_timeout_cb;
	k->reg_t.arg = k;
	k->burst = IRC_FLOOD_BURST;
	k->flood_ms = fl && atoi(fl) > 0 ? atoi(fl) : IRC_FLOOD_INTERVAL_MS;
	fl = getenv("CLAWGATE_IRC_PING_MS");	/* tests: PING interval */
	k->ping_every_ms = fl && atoi(fl) > 0 ? atoi(fl) : IRC_PING_EVERY_MS;
	k->ping_timeout_ms = IRC_PING_TIMEOUT_MS > 2 * k->ping_every_ms ?
			     2 * k->ping_every_ms : IRC_PING_TIMEOUT_MS;
	fl = getenv("CLAWGATE_IRC_REGISTER_TIMEOUT_MS");
	k->reg_timeout_ms = fl && atoi(fl) > 0 ? atoi(fl)
					       : IRC_REGISTER_TIMEOUT_MS;
	a->impl = k;
	if (irc_cfg_str(a->cfg, "_secretError")) {
		/* a cold secret owner: no connection until secrets.reload
		 * (or a config change) resolves it */
		channel_account_error(a, irc_cfg_str(a->cfg, "_secretError"));
		log_warn("irc", "%s: %s", a->id,
			 irc_cfg_str(a->cfg, "_secretError"));
		return 0;
	}
	irc_connect(k);
	return 0;
}

static void irc_stop(struct chan_account *a)
{
	struct irc_conn *k = a->impl;

	if (!k)
		return;
	k->stopping = 1;
	if (k->st == IRC_READY) {
		/* A polite QUIT when it fits in the socket buffer now. */
		irc_raw(k, "QUIT :clawgate stopping");
	}
	irc_close_fd(k);
	channel_timer_cancel(a, &k->reconnect_t);
	irc_queue_clear(k);
	free(k->wbuf);
	free(k);
	a->impl = NULL;
}

static json_t *irc_probe(struct chan_account *a)
{
	struct irc_conn *k = a->impl;

	if (!k)
		return json_pack("{s:b}", "ok", 0);
	return json_pack("{s:b,s:b,s:s,s:I,s:s,s:i}", "ok",
			 k->st == IRC_READY, "connected", k->st == IRC_READY,
			 "nick", k->nick, "lagMs", (json_int_t)k->lag_ms,
			 "host", irc_cfg_str(a->cfg, "host") ?
			 irc_cfg_str(a->cfg, "host") : "",
			 "port", irc_cfg_port(a->cfg));
}

static void irc_status(struct chan_account *a, json_t *s)
{
	const char *host = irc_cfg_str(a->cfg, "host");

	json_object_set_new(s, "mode", json_string(irc_cfg_tls(a->cfg) ?
						   "tls" : "tcp"));
	if (host)
		json_object_set_new(s, "baseUrl", json_string(host));
	json_object_set_new(s, "port", json_integer(irc_cfg_port(a->cfg)));
	json_object_set_new(s, "allowUnmentionedGroups", json_false());
}

const struct channel_adapter channel_irc_adapter = {
	.id = "irc",
	.label = "IRC",
	.detail_label = "IRC",
	.id_label = "IRC id (nick!user@host)",
	.resolve = irc_resolve,
	.configured = irc_configured,
	.start = irc_start,
	.stop = irc_stop,
	.send = irc_send,
	.probe = irc_probe,
	.status = irc_status,
};
