/* Usage and session-count queries (store-usage.c). Reader connection of
 * the calling thread: call from a worker, never from the lws thread. */
#pragma once

#include <stdint.h>

#include <jansson.h>

struct store;

/* *rows: [{day "YYYY-MM-DD" (UTC), sessionKey, agentId, model, role,
 * status, count, input, output, first, last (ms), metered (messages that
 * carried token counts)}] for transcript messages created in
 * [start_ms, end_ms), optionally of one agent and/or one session. */
int store_usage_rows(struct store *st, int64_t start_ms, int64_t end_ms,
		     const char *agent_id, const char *session_key,
		     json_t **rows);
/* *by_agent: {agentId: session count} (reads every row). */
int store_usage_session_counts(struct store *st, json_t **by_agent);
/* *n: the number of sessions, counted from the smallest index's entries
 * without reading the rows (20x cheaper than the counts by agent on a
 * million sessions). */
int store_usage_session_total(struct store *st, int64_t *n);
/* *rows: [{key, sessionId, agentId, label?, model?, updatedAt,
 * createdAt}], newest first, at most limit. */
int store_usage_sessions(struct store *st, const char *agent_id,
			 const char *session_key, int limit, json_t **rows);
