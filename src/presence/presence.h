/* Presence entries and the health snapshot, with their state versions.
 * Thread-safe; the transport-free core of `system-presence`, `presence` and
 * `health` events. Persistence is a hook so this layer stays below store. */
#pragma once

#include <stdint.h>

#include <jansson.h>

#define PRESENCE_TTL_MS (5 * 60 * 1000)
#define PRESENCE_MAX 200

struct presence_opts {
	const char *version;	/* app version for the self entry */
	const char *instance_id; /* gateway instance id */
	int64_t presence_version; /* last persisted versions (0 = fresh) */
	int64_t health_version;
	/* Called (under no lock) after each change with the entry (borrowed)
	 * or NULL for a removal; used to persist. */
	void (*on_change)(const char *key, const json_t *entry,
			  int64_t version, void *arg);
	/* Called after each health version bump (to persist it). */
	void (*on_health)(int64_t version, void *arg);
	void *arg;
};

/* Versions start exactly at the given values (at least 1). */
void presence_init(const struct presence_opts *o);
void presence_shutdown(void);
/* Upsert the entry for key with fields merged in (fields is borrowed);
 * sets ts. Returns the new presence version. */
int64_t presence_upsert(const char *key, const json_t *fields);
/* Current entries, newest first, expired ones pruned (new reference). */
json_t *presence_list(void);
int64_t presence_version(void);
int64_t presence_health_version(void);
/* Bump the health version (after a health refresh); returns it. */
int64_t presence_health_bump(void);

/* The session count health reports (counted from the store by the
 * caller, a worker). Any thread. */
void presence_set_sessions(int64_t count);
/* The health summary (new reference): {ok, ts, durationMs, channels, ...}. */
json_t *presence_health(const char *sessions_path);
/* Self entry text helpers (for unit tests). */
char *presence_self_text(const char *host, const char *ip, const char *ver);
