/* A fast path for the request frames the WebSocket peers send.
 * rpc_json_load: the tree json_loadb(data, len, JSON_REJECT_DUPLICATES)
 * gives for the common frame (a top-level object of strings, integers,
 * true/false/null, arrays and objects), or NULL for anything it does not
 * take: then the caller parses with jansson, which gives the tree or the
 * error. It never returns a tree jansson would not give (checked against
 * jansson by tests/fuzz/fuzz-wsjson.c). */
#ifndef CLAWGATE_RPC_JSON_H
#define CLAWGATE_RPC_JSON_H

#include <stddef.h>

#include <jansson.h>

json_t *rpc_json_load(const char *data, size_t len);

/* rpc_json_load, else jansson's parse (jerr filled when both fail). */
json_t *rpc_json_frame(const char *data, size_t len, json_error_t *jerr);

#endif
