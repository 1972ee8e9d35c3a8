/* The config file watcher: inotify on the directories of the active config
 * file and of its $include files (never on the files: a rename-over would
 * kill such a watch), filtered by name, debounced, with a "reload now" on
 * queue overflow and the directory watch re-established when the directory
 * itself is replaced. It only notices; the reload path decides (unchanged
 * content is ignored there, by hash). */
#pragma once

#include <stdint.h>

struct config_watch;

/* Called on the watcher's thread after the debounce (or at once on
 * overflow). */
typedef void (*config_watch_fn)(void *arg);

/* Watch path (and the included files of the current snapshot, refreshed
 * after every callback). debounce_ms < 0: gateway.reload.debounceMs of the
 * current snapshot. NULL when inotify is unavailable (logged). */
struct config_watch *config_watch_start(const char *path, int64_t debounce_ms,
					config_watch_fn fn, void *arg);
/* Stop the thread and close the watches. NULL is fine. */
void config_watch_stop(struct config_watch *w);
/* Number of callbacks so far (tests, bench). */
uint64_t config_watch_fired(const struct config_watch *w);
