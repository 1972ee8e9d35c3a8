/* Node surfaces (role "node"): the approved command surface of each paired
 * node and the pending surface waiting for node.pair.approve, kept as JSON
 * rows of the meta table ("node.surface.<nodeId>", "node.request.<nodeId>")
 * until the nodes get tables of their own (migration 0008). Reads use the
 * calling thread's reader; writes commit durably (worker threads only). */
#pragma once

#include <jansson.h>

struct store;

enum store_nodes_kind { STORE_NODES_SURFACE, STORE_NODES_REQUEST };

/* *rows: array of the stored objects of kind, in key order. */
int store_nodes_list(struct store *st, enum store_nodes_kind kind,
		     json_t **rows);
/* *row: the object of node_id; GW_ENOTFOUND when none. */
int store_nodes_get(struct store *st, enum store_nodes_kind kind,
		    const char *node_id, json_t **row);
/* In one transaction: put (or, with NULL, delete) the surface and the
 * request of node_id; keep_* leaves that row untouched. */
int store_nodes_write(struct store *st, const char *node_id,
		      const json_t *surface, int keep_surface,
		      const json_t *request, int keep_request);
