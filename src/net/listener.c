/* The one port: accept, peek the request head without consuming it, then
 * hand the fd to lws (WebSocket upgrade) or MHD (everything else).
 *
 * Pending sockets sit in their own epoll set with EPOLLET: MSG_PEEK leaves
 * the data readable, so level-triggered epoll would spin while a head is
 * incomplete; each new segment raises a new edge. After hand-off the fd
 * belongs to the callee and is never touched here again. */
#include "net/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "net/head.h"

#define LISTENER_MAX_FDS 16
/* lws takes up to 16 KiB of head (ws.c max_http_header_data); a longer
 * head is answered 431 here. */
#define LISTENER_WINDOW 16384
#define LISTENER_BACKLOG 1024
/* Budgets for unclassified sockets (doc/hardening.md). */
#define LISTENER_MAX_PENDING 4096
#define LISTENER_PER_ADDR 32
/* Sockets younger than this do not count against the per-address budget
 * (a client opening 64 connections at once is not an attacker) up to
 * LISTENER_BURST_FACTOR times the budget. */
#define LISTENER_GRACE_MS 500
#define LISTENER_BURST_FACTOR 4
#define LISTENER_PENDING_MS 10000
#define LISTENER_EMFILE_PAUSE_MS 100
#define LISTENER_ADDR_BUCKETS 1024

struct listener_addr;

struct listener_pending {
	int fd;
	struct sockaddr_storage sa;
	socklen_t salen;
	int64_t since;
	int64_t deadline;	/* for the complete head, from accept */
	struct listener_pending *prev, *next;	/* all, oldest first */
	struct listener_addr *addr;
	struct listener_pending *aprev, *anext;	/* same address */
};

/* Unclassified sockets of one source address (IPv4, IPv6 /64; loopback
 * IPv6 as /128). */
struct listener_addr {
	unsigned char key[16];
	int n;
	struct listener_pending *head, *tail;
	struct listener_addr *next;	/* bucket chain */
};

struct listener {
	int fds[LISTENER_MAX_FDS];
	int nfds;
	int epfd;
	int evfd;
	int running;
	int keep;		/* listen fds handed to someone else */
	int paused;		/* listen fds removed from epoll (EMFILE) */
	int64_t paused_until;
	int pending_ms;
	pthread_t thread;
	struct listener_cbs cbs;
	/* Ordered by deadline (FIFO: every entry gets the same timeout). */
	struct listener_pending *head, *tail;
	int npending;
	int max_pending, per_addr;
	struct listener_addr *buckets[LISTENER_ADDR_BUCKETS];
	struct listener_stats st;
	/* epoll tags: the address of these identifies the event source. */
	char tag_ev;
	char tag_listen[LISTENER_MAX_FDS];
};

enum listener_class
listener_classify(const char *buf, size_t len, size_t window,
		  const char **status)
{
	struct head_info hi;
	enum head_result r = head_check(buf, len, window, &hi);

	if (status != NULL)
		*status = head_status_line(r);
	switch (r) {
	case HEAD_INCOMPLETE:
		return LISTENER_PENDING;
	case HEAD_OK:
		return hi.websocket ? LISTENER_WS : LISTENER_HTTP;
	default:
		return LISTENER_REFUSE;
	}
}

void
listener_refuse(int fd, const char *status)
{
	char buf[4096], out[256];
	int i, n;

	/* Consume what was sent (bounded) so that close sends a FIN, not
	 * an RST that could discard the answer before the peer reads it. */
	for (i = 0; i < 16; i++)
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
			break;
	n = snprintf(out, sizeof(out), "HTTP/1.1 %s\r\nConnection: close\r\n"
		     "Content-Type: text/plain; charset=utf-8\r\n"
		     "Content-Length: %zu\r\n\r\n%s\n", status,
		     strlen(status) + 1, status);
	if (n > 0 && send(fd, out, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		(void)0;	/* best effort */
	close(fd);
}

const char *
listener_addr_format(const struct sockaddr *sa, socklen_t salen, char *buf,
		     size_t len, int *loopback)
{
	int lo = 0;

	if (len > 0)
		buf[0] = '\0';
	if (sa == NULL)
		goto out;
	if (sa->sa_family == AF_INET &&
	    salen >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, buf, (socklen_t)len);
		lo = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	} else if (sa->sa_family == AF_INET6 &&
		   salen >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s6 =
			(const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			const uint8_t *b = s6->sin6_addr.s6_addr + 12;

			inet_ntop(AF_INET, b, buf, (socklen_t)len);
			lo = b[0] == 127;
		} else {
			inet_ntop(AF_INET6, &s6->sin6_addr, buf,
				  (socklen_t)len);
			lo = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
		}
	}
out:
	if (loopback != NULL)
		*loopback = lo;
	return buf;
}

/* Open, configure and bind one listen socket. Returns fd or -errno. */
static int
listener_open(const char *host, int port)
{
	struct addrinfo hints, *ai = NULL;
	char portstr[16];
	int fd = -1, one = 1, r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", port);
	r = getaddrinfo(host, portstr, &hints, &ai);
	if (r != 0 || ai == NULL) {
		r = -EINVAL;
		goto out;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    listen(fd, LISTENER_BACKLOG) < 0) {
		r = -errno;
		goto out;
	}
	r = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	if (ai != NULL)
		freeaddrinfo(ai);
	return r;
}

static void
listener_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static struct listener *
listener_alloc(void)
{
	struct listener *l = xcalloc(1, sizeof(*l));

	l->epfd = -1;
	l->evfd = -1;
	l->pending_ms = LISTENER_PENDING_MS;
	l->max_pending = LISTENER_MAX_PENDING;
	l->per_addr = LISTENER_PER_ADDR;
	return l;
}

int
listener_bind(struct listener **out, const char *const *hosts, int n,
	      int port, int retries, int retry_ms, const char **failed_host)
{
	struct listener *l = NULL;
	int i, r = 0;

	*out = NULL;
	if (failed_host != NULL)
		*failed_host = NULL;
	if (n <= 0 || n > LISTENER_MAX_FDS)
		return -EINVAL;
	l = listener_alloc();
	for (i = 0; i < n; i++) {
		int attempt = 0, fd;

		for (;;) {
			fd = listener_open(hosts[i], port);
			if (fd != -EADDRINUSE || attempt >= retries)
				break;
			attempt++;
			listener_sleep_ms(retry_ms);
		}
		if (fd < 0) {
			r = fd;
			if (failed_host != NULL)
				*failed_host = hosts[i];
			goto out;
		}
		l->fds[l->nfds++] = fd;
	}
	*out = l;
	l = NULL;
out:
	listener_free(l);
	return r;
}

struct listener *
listener_adopt(const int *fds, int n)
{
	struct listener *l;
	int i;

	if (n <= 0 || n > LISTENER_MAX_FDS)
		return NULL;
	l = listener_alloc();
	for (i = 0; i < n; i++) {
		int fl = fcntl(fds[i], F_GETFL);

		if (fl >= 0)
			fcntl(fds[i], F_SETFL, fl | O_NONBLOCK);
		l->fds[l->nfds++] = fds[i];
	}
	return l;
}

int
listener_fds(const struct listener *l, int *fds, int max)
{
	int i, n = 0;

	for (i = 0; i < l->nfds && n < max; i++)
		if (l->fds[i] >= 0)
			fds[n++] = l->fds[i];
	return n;
}

int
listener_port(const struct listener *l)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (l == NULL || l->nfds == 0 || l->fds[0] < 0 ||
	    getsockname(l->fds[0], (struct sockaddr *)&ss, &sl) < 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

char *
listener_describe(const struct listener *l)
{
	char *out = xstrdup("");
	int i;

	for (i = 0; i < l->nfds; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char host[INET6_ADDRSTRLEN], *next;
		int port = 0;

		if (l->fds[i] < 0 ||
		    getsockname(l->fds[i], (struct sockaddr *)&ss, &sl) < 0)
			continue;
		listener_addr_format((struct sockaddr *)&ss, sl, host,
				     sizeof(host), NULL);
		if (ss.ss_family == AF_INET)
			port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		next = xasprintf(ss.ss_family == AF_INET6 ? "%s%s[%s]:%d" :
				 "%s%s%s:%d", out, *out ? ", " : "", host,
				 port);
		free(out);
		out = next;
	}
	return out;
}

void
listener_set_pending_timeout(struct listener *l, int ms)
{
	l->pending_ms = ms > 0 ? ms : LISTENER_PENDING_MS;
}

void
listener_set_budgets(struct listener *l, int per_addr, int total)
{
	if (per_addr > 0)
		l->per_addr = per_addr;
	if (total > 0)
		l->max_pending = total;
}

void
listener_get_stats(const struct listener *l, struct listener_stats *out)
{
	/* Counters are only written by the listener thread; a torn read
	 * of a statistic is harmless. */
	*out = l->st;
}

/* The budget key of a peer address. */
static void
listener_addr_key(const struct sockaddr_storage *sa, unsigned char key[16])
{
	memset(key, 0, 16);
	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;

		key[10] = key[11] = 0xff;
		memcpy(key + 12, &s4->sin_addr, 4);
	} else if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		memcpy(key, &s6->sin6_addr, 16);
		if (!IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) &&
		    !IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
			memset(key + 8, 0, 8);	/* one budget per /64 */
	}
}

static unsigned
listener_addr_hash(const unsigned char key[16])
{
	return util_fnv1a(key, 16) % LISTENER_ADDR_BUCKETS;
}

static struct listener_addr *
listener_addr_get(struct listener *l, const struct sockaddr_storage *sa)
{
	unsigned char key[16];
	struct listener_addr *a;
	unsigned h;

	listener_addr_key(sa, key);
	h = listener_addr_hash(key);
	for (a = l->buckets[h]; a != NULL; a = a->next)
		if (memcmp(a->key, key, 16) == 0)
			return a;
	a = xcalloc(1, sizeof(*a));
	memcpy(a->key, key, 16);
	a->next = l->buckets[h];
	l->buckets[h] = a;
	return a;
}

static void
listener_addr_put(struct listener *l, struct listener_addr *a)
{
	struct listener_addr **pp;

	if (a->n > 0)
		return;
	for (pp = &l->buckets[listener_addr_hash(a->key)]; *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == a) {
			*pp = a->next;
			free(a);
			return;
		}
	}
}

/* The address holding the most unclassified sockets. */
static struct listener_addr *
listener_addr_heaviest(struct listener *l)
{
	struct listener_addr *a, *best = NULL;
	int i;

	for (i = 0; i < LISTENER_ADDR_BUCKETS; i++)
		for (a = l->buckets[i]; a != NULL; a = a->next)
			if (best == NULL || a->n > best->n)
				best = a;
	return best;
}

static void
listener_unlink(struct listener *l, struct listener_pending *p)
{
	struct listener_addr *a = p->addr;

	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		l->head = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	else
		l->tail = p->prev;
	p->prev = p->next = NULL;
	l->npending--;
	if (a != NULL) {
		if (p->aprev != NULL)
			p->aprev->anext = p->anext;
		else
			a->head = p->anext;
		if (p->anext != NULL)
			p->anext->aprev = p->aprev;
		else
			a->tail = p->aprev;
		p->aprev = p->anext = NULL;
		a->n--;
		p->addr = NULL;
		listener_addr_put(l, a);
	}
}

/* Drop a pending socket: unregister, close, free. */
static void
listener_drop(struct listener *l, struct listener_pending *p)
{
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, p->fd, NULL);
	close(p->fd);
	listener_unlink(l, p);
	free(p);
}

/* Peek at a pending socket and hand it over once classified. */
static void
listener_peek(struct listener *l, struct listener_pending *p, int hup)
{
	char buf[LISTENER_WINDOW];
	enum listener_class c;
	const char *status = NULL;
	ssize_t n;
	int fd;

	n = recv(p->fd, buf, sizeof(buf), MSG_PEEK);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		       errno != EINTR)) {
		listener_drop(l, p);
		return;
	}
	if (n < 0) {
		if (hup)
			listener_drop(l, p);
		return;
	}
	c = listener_classify(buf, (size_t)n, sizeof(buf), &status);
	if (c == LISTENER_PENDING) {
		/* The peer stopped sending before a full head. */
		if (hup)
			listener_drop(l, p);
		return;
	}
	fd = p->fd;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	listener_unlink(l, p);
	if (c == LISTENER_WS) {
		l->st.to_ws++;
		l->cbs.to_ws(l->cbs.arg, fd, (struct sockaddr *)&p->sa,
			     p->salen);
	} else if (c == LISTENER_HTTP) {
		l->st.to_http++;
		l->cbs.to_http(l->cbs.arg, fd, (struct sockaddr *)&p->sa,
			       p->salen);
	} else {
		l->st.bad_heads++;
		listener_refuse(fd, status);
	}
	free(p);
}

/* Room for one more unclassified socket from a? 0: refuse it. Frees a
 * slot when the total is full by closing the oldest socket of the
 * heaviest address, so a newcomer is never refused for someone else. */
static int
listener_admit(struct listener *l, struct listener_addr *a, int64_t now)
{
	if (a->n >= l->per_addr &&
	    (a->n >= l->per_addr * LISTENER_BURST_FACTOR ||
	     now - a->head->since >= LISTENER_GRACE_MS))
		return 0;
	if (l->npending >= l->max_pending) {
		struct listener_addr *h = listener_addr_heaviest(l);

		if (h == NULL || h == a || h->n <= a->n)
			return 0;
		l->st.evicted++;
		listener_drop(l, h->head);
	}
	return 1;
}

static void
listener_pause(struct listener *l, int on)
{
	int i;

	if (l->paused == on)
		return;
	for (i = 0; i < l->nfds; i++) {
		struct epoll_event ev = { .events = EPOLLIN };

		ev.data.ptr = &l->tag_listen[i];
		if (on)
			epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->fds[i], NULL);
		else
			epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->fds[i], &ev);
	}
	l->paused = on;
	if (on)
		l->paused_until = util_mono_ms() + LISTENER_EMFILE_PAUSE_MS;
}

/* Accept what is waiting on one listen socket (bounded batch). */
static void
listener_accept(struct listener *l, int lfd)
{
	int i;

	for (i = 0; i < 64; i++) {
		struct listener_pending *p;
		struct listener_addr *a;
		struct epoll_event ev;
		struct sockaddr_storage sa;
		int64_t now;
		socklen_t salen = sizeof(sa);
		int fd, one = 1;

		fd = accept4(lfd, (struct sockaddr *)&sa, &salen,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				log_warn("net", "accept: %s; pausing",
					 strerror(errno));
				listener_pause(l, 1);
			}
			return;
		}
		if (sa.ss_family == AF_INET || sa.ss_family == AF_INET6)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				   sizeof(one));
		now = util_mono_ms();
		a = listener_addr_get(l, &sa);
		if (!listener_admit(l, a, now)) {
			l->st.refused++;
			listener_addr_put(l, a);
			listener_refuse(fd, "503 Service Unavailable");
			continue;
		}
		l->st.accepted++;
		p = xcalloc(1, sizeof(*p));
		p->fd = fd;
		memcpy(&p->sa, &sa, salen);
		p->salen = salen;
		p->since = now;
		p->deadline = now + l->pending_ms;
		p->prev = l->tail;
		if (l->tail != NULL)
			l->tail->next = p;
		else
			l->head = p;
		l->tail = p;
		l->npending++;
		p->addr = a;
		p->aprev = a->tail;
		if (a->tail != NULL)
			a->tail->anext = p;
		else
			a->head = p;
		a->tail = p;
		a->n++;
		if (l->npending > l->st.max_pending)
			l->st.max_pending = l->npending;
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN | EPOLLET | EPOLLRDHUP;
		ev.data.ptr = p;
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			listener_unlink(l, p);
			free(p);
			continue;
		}
		/* The head may already be here. */
		listener_peek(l, p, 0);
	}
}

static void *
listener_thread(void *arg)
{
	struct listener *l = arg;
	struct epoll_event evs[64];

	for (;;) {
		int64_t now = util_mono_ms(), wait = -1;
		int i, n;

		while (l->head != NULL && l->head->deadline <= now) {
			l->st.timed_out++;
			listener_drop(l, l->head);
		}
		if (l->paused && l->paused_until <= now)
			listener_pause(l, 0);
		if (l->head != NULL)
			wait = l->head->deadline - now;
		if (l->paused && (wait < 0 || l->paused_until - now < wait))
			wait = l->paused_until - now;
		n = epoll_wait(l->epfd, evs, (int)ARRAY_SIZE(evs),
			       wait < 0 ? -1 : (int)(wait + 1));
		if (n < 0 && errno != EINTR) {
			log_error("net", "epoll_wait: %s", strerror(errno));
			break;
		}
		for (i = 0; i < n; i++) {
			char *tag = evs[i].data.ptr;

			if (tag == &l->tag_ev)
				goto out;
			if (tag >= l->tag_listen &&
			    tag < l->tag_listen + LISTENER_MAX_FDS) {
				if (!l->paused)
					listener_accept(l, l->fds[tag -
							l->tag_listen]);
				continue;
			}
			listener_peek(l, (struct listener_pending *)tag,
				      (evs[i].events & (EPOLLRDHUP | EPOLLHUP |
							EPOLLERR)) != 0);
		}
	}
out:
	return NULL;
}

int
listener_start(struct listener *l, const struct listener_cbs *cbs)
{
	struct epoll_event ev;
	int i, r;

	if (l->running)
		return -EALREADY;
	l->cbs = *cbs;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->epfd < 0 || l->evfd < 0) {
		r = -errno;
		goto fail;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = &l->tag_ev;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &ev) < 0) {
		r = -errno;
		goto fail;
	}
	for (i = 0; i < l->nfds; i++) {
		ev.events = EPOLLIN;
		ev.data.ptr = &l->tag_listen[i];
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->fds[i], &ev) < 0) {
			r = -errno;
			goto fail;
		}
	}
	l->paused = 0;
	r = pthread_create(&l->thread, NULL, listener_thread, l);
	if (r != 0) {
		r = -r;
		goto fail;
	}
	pthread_setname_np(l->thread, "listener");
	l->running = 1;
	return 0;
fail:
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->evfd >= 0)
		close(l->evfd);
	l->epfd = l->evfd = -1;
	return r;
}

void
listener_stop(struct listener *l, int keep_fds)
{
	int i;

	if (l == NULL)
		return;
	if (l->running) {
		uint64_t one = 1;

		if (write(l->evfd, &one, sizeof(one)) < 0)
			log_warn("net", "listener wake: %s", strerror(errno));
		pthread_join(l->thread, NULL);
		l->running = 0;
	}
	while (l->head != NULL)
		listener_drop(l, l->head);
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->evfd >= 0)
		close(l->evfd);
	l->epfd = l->evfd = -1;
	if (keep_fds) {
		l->keep = 1;
		return;
	}
	for (i = 0; i < l->nfds; i++)
		if (l->fds[i] >= 0)
			close(l->fds[i]);
	l->nfds = 0;
}

void
listener_free(struct listener *l)
{
	int i;

	if (l == NULL)
		return;
	if (l->running)
		listener_stop(l, l->keep);
	for (i = 0; !l->keep && i < l->nfds; i++)
		if (l->fds[i] >= 0)
			close(l->fds[i]);
	free(l);
}
