/* Config versions: the config_snapshots table (migration 0003), one row
 * per config the gateway evaluated, written by the reload path
 * (src/config/config-reload.c) before the running snapshot swaps. text is
 * the redacted file content; the store never sees a resolved secret.
 * Reads use the calling thread's reader. */
#pragma once

#include <stdint.h>

#include <jansson.h>

struct store;

struct store_config_row {
	const char *hash;
	int64_t parent;			/* 0: none */
	const char *source, *actor, *method, *outcome, *reason;
	const char *text;		/* redacted JSON, or NULL */
	const char *paths;		/* JSON array; NULL = [] */
	int64_t restored_from;		/* 0: none */
};

/* Insert row durably (synchronous=FULL; ts = now), then, when keep > 0,
 * delete the rows older than the newest keep. *id gets the new row's id.
 * GW_OK or GW_ESTORE (logged; nothing written). */
int store_config_add(struct store *st, const struct store_config_row *row,
		     int64_t keep, int64_t *id);
/* New array of at most limit rows, newest first, as config.history shows
 * them: {id, ts, hash, parent?, source, actor?, method?, changes, outcome,
 * reason?, restoredFrom?}. GW_OK or GW_ESTORE (logged; *rows NULL). */
int store_config_history(struct store *st, int limit, json_t **rows);
/* The text of a version that can be restored (has a text, not rejected):
 * with id > 0 that row; otherwise the newest row below before_id whose
 * hash differs from hash. *text is new, *out_id its id. GW_OK,
 * GW_ENOTFOUND or GW_ESTORE (logged). */
int store_config_text(struct store *st, int64_t id, int64_t before_id,
		      const char *hash, char **text, int64_t *out_id);
