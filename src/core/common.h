/* Small common header: the error enum, allocation helpers, tiny macros.
 * Nothing else belongs here (STYLE.md rule 2). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The one error enum of the daemon. Messages and the mapping to protocol
 * error codes and HTTP statuses live in err.c. */
enum gw_err {
	GW_OK = 0,
	GW_EINVAL,	/* bad input from a peer or a caller */
	GW_ENOMEM,	/* only for bounded peer input that is too large */
	GW_ETOOBIG,	/* payload, body or frame over its limit */
	GW_ENOTFOUND,
	GW_EEXIST,
	GW_EFORBIDDEN,	/* authenticated but lacking scope */
	GW_EAUTH,	/* authentication failed */
	GW_ERATELIMIT,
	GW_EUNAVAIL,	/* temporarily unavailable, retryable */
	GW_ETIMEOUT,
	GW_EIO,		/* file or socket I/O */
	GW_ESTORE,	/* SQLite */
	GW_ECONFIG,	/* invalid configuration */
	GW_ECRYPTO,
	GW_EBUSY,	/* lock held, port taken */
	GW_EPENDING,	/* handler will answer later (not an error) */
	GW_EINTERNAL,
	GW__ECOUNT
};

const char *gw_err_str(int err);
/* Protocol error code ("INVALID_REQUEST", "UNAVAILABLE", ...). */
const char *gw_err_proto_code(int err);
int gw_err_http_status(int err);

/* Allocation never returns NULL: out of memory aborts (STYLE.md rule 7). */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Wipe then free a secret string. NULL is fine. */
void xfree_secret(char *s);
