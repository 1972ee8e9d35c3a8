/* inotify watcher of the config file's directory (reference/c-stack.md §4:
 * what each editor's save looks like). One thread: poll on the inotify fd
 * and a stop eventfd; each relevant event re-arms the debounce deadline;
 * when it passes, the callback runs the reload path. */
#include <errno.h>
#include <libgen.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "config/config-watch.h"
#include "config/config.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"

#define CONFIG_WATCH_MAX_DIRS 16
#define CONFIG_WATCH_MAX_NAMES 64
#define CONFIG_WATCH_RETRY_MS 250
#define CONFIG_WATCH_DIR_MASK                                              \
	(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE |            \
	 IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct config_watch_dir {
	char *dir;
	int wd;			/* -1 while lost */
};

struct config_watch_name {
	int dir;		/* index into dirs */
	char *name;
};

struct config_watch {
	pthread_t thread;
	int ifd, efd;
	char *path;
	int64_t debounce_ms;
	config_watch_fn fn;
	void *arg;
	struct config_watch_dir dirs[CONFIG_WATCH_MAX_DIRS];
	int ndirs;
	struct config_watch_name names[CONFIG_WATCH_MAX_NAMES];
	int nnames;
	atomic_uint_fast64_t fired;
};

static int config_watch_dir_index(struct config_watch *w, const char *dir)
{
	int i;

	for (i = 0; i < w->ndirs; i++)
		if (strcmp(w->dirs[i].dir, dir) == 0)
			return i;
	if (w->ndirs == CONFIG_WATCH_MAX_DIRS)
		return -1;
	w->dirs[w->ndirs].dir = xstrdup(dir);
	w->dirs[w->ndirs].wd = -1;
	return w->ndirs++;
}

/* (Re-)add the watch of every lost directory; 1 if one came back. */
static int config_watch_arm_dirs(struct config_watch *w)
{
	int i, back = 0;

	for (i = 0; i < w->ndirs; i++) {
		if (w->dirs[i].wd >= 0)
			continue;
		w->dirs[i].wd = inotify_add_watch(w->ifd, w->dirs[i].dir,
						  CONFIG_WATCH_DIR_MASK);
		if (w->dirs[i].wd >= 0)
			back = 1;
	}
	return back;
}

static int config_watch_any_lost(const struct config_watch *w)
{
	int i;

	for (i = 0; i < w->ndirs; i++)
		if (w->dirs[i].wd < 0)
			return 1;
	return 0;
}

static void config_watch_add_file(struct config_watch *w, const char *file)
{
	char *a = xstrdup(file), *b = xstrdup(file);
	int d = config_watch_dir_index(w, dirname(a));

	if (d >= 0 && w->nnames < CONFIG_WATCH_MAX_NAMES) {
		w->names[w->nnames].dir = d;
		w->names[w->nnames].name = xstrdup(basename(b));
		w->nnames++;
	}
	free(a);
	free(b);
}

/* The watched names: the config file and the current $include files.
 * Directory watches are kept (extra events are filtered by name). */
static void config_watch_refresh(struct config_watch *w)
{
	struct gw_config *c = config_current();
	char **f;
	int i;

	for (i = 0; i < w->nnames; i++)
		free(w->names[i].name);
	w->nnames = 0;
	config_watch_add_file(w, w->path);
	for (f = c ? c->included_files : NULL; f && *f; f++)
		config_watch_add_file(w, *f);
	config_unref(c);
	config_watch_arm_dirs(w);
}

static int64_t config_watch_debounce(const struct config_watch *w)
{
	struct gw_config *c;
	int64_t ms = w->debounce_ms;

	if (ms >= 0)
		return ms;
	c = config_current();
	ms = c ? c->reload_debounce_ms : 300;
	config_unref(c);
	return ms > 0 ? ms : 0;
}

/* Handle one event; returns 1 = relevant, 2 = reload now, 0 = ignore. */
static int config_watch_event(struct config_watch *w,
			      const struct inotify_event *ev)
{
	int i, d = -1;

	if (ev->mask & IN_Q_OVERFLOW)
		return 2;
	for (i = 0; i < w->ndirs; i++)
		if (w->dirs[i].wd == ev->wd)
			d = i;
	if (d < 0)
		return 0;
	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
		/* The directory was removed or replaced: watch it again by
		 * name (retried until it exists) and re-read the file. */
		if (!(ev->mask & IN_IGNORED))
			inotify_rm_watch(w->ifd, w->dirs[d].wd);
		w->dirs[d].wd = -1;
		log_info("reload", "config directory %s replaced; re-watching",
			 w->dirs[d].dir);
		return 1;
	}
	if (!ev->len)
		return 0;
	for (i = 0; i < w->nnames; i++)
		if (w->names[i].dir == d &&
		    strcmp(w->names[i].name, ev->name) == 0)
			return 1;
	return 0;
}

static void *config_watch_main(void *arg)
{
	struct config_watch *w = arg;
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	int64_t deadline = 0;

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = w->ifd, .events = POLLIN },
			{ .fd = w->efd, .events = POLLIN },
		};
		int64_t now = util_mono_ms();
		int timeout = -1, now_fire = 0, k;
		ssize_t n;

		if (deadline)
			timeout = deadline > now ? (int)(deadline - now) : 0;
		if (config_watch_any_lost(w) &&
		    (timeout < 0 || timeout > CONFIG_WATCH_RETRY_MS))
			timeout = CONFIG_WATCH_RETRY_MS;
		k = poll(p, 2, timeout);
		if (k < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (k > 0 && (p[0].revents & POLLIN)) {
			n = read(w->ifd, buf, sizeof(buf));
			for (char *q = buf; n > 0 && q < buf + n;) {
				const struct inotify_event *ev =
					(const struct inotify_event *)q;
				int r = config_watch_event(w, ev);

				if (r == 2)
					now_fire = 1;
				else if (r == 1)
					deadline = util_mono_ms() +
						   config_watch_debounce(w);
				q += sizeof(*ev) + ev->len;
			}
		}
		if (config_watch_any_lost(w) && config_watch_arm_dirs(w))
			deadline = util_mono_ms() + config_watch_debounce(w);
		if (now_fire || (deadline && util_mono_ms() >= deadline)) {
			deadline = 0;
			w->fn(w->arg);
			atomic_fetch_add(&w->fired, 1);
			config_watch_refresh(w);
		}
	}
	return NULL;
}

struct config_watch *config_watch_start(const char *path, int64_t debounce_ms,
					config_watch_fn fn, void *arg)
{
	struct config_watch *w = xcalloc(1, sizeof(*w));

	w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->ifd < 0 || w->efd < 0) {
		log_warn("reload", "config watcher unavailable: %s",
			 strerror(errno));
		goto fail;
	}
	w->path = xstrdup(path);
	w->debounce_ms = debounce_ms;
	w->fn = fn;
	w->arg = arg;
	atomic_init(&w->fired, 0);
	config_watch_refresh(w);
	if (config_watch_any_lost(w))
		log_warn("reload", "cannot watch the directory of %s yet: %s "
			 "(retrying)", path, strerror(errno));
	if (pthread_create(&w->thread, NULL, config_watch_main, w) != 0) {
		log_warn("reload", "cannot start the config watcher");
		goto fail;
	}
	log_debug("reload", "watching %s", path);
	return w;
fail:
	if (w->ifd >= 0)
		close(w->ifd);
	if (w->efd >= 0)
		close(w->efd);
	free(w->path);
	free(w);
	return NULL;
}

void config_watch_stop(struct config_watch *w)
{
	uint64_t one = 1;
	int i;

	if (!w)
		return;
	if (write(w->efd, &one, sizeof(one)) < 0)
		log_warn("reload", "watcher wake: %s", strerror(errno));
	pthread_join(w->thread, NULL);
	close(w->ifd);
	close(w->efd);
	for (i = 0; i < w->ndirs; i++)
		free(w->dirs[i].dir);
	for (i = 0; i < w->nnames; i++)
		free(w->names[i].name);
	free(w->path);
	free(w);
}

uint64_t config_watch_fired(const struct config_watch *w)
{
	return w ? atomic_load(&w->fired) : 0;
}
