/* The provider interface, shared by the src/secrets/ files only. A new
 * backend is one file defining a struct secrets_provider and one row in
 * secrets_providers[] (secrets.c). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Bounds shared by the providers. */
#define SECRETS_VALUE_MAX (64u * 1024)		/* one resolved value */
#define SECRETS_FILE_MAX_DEFAULT (1024 * 1024)
#define SECRETS_EXEC_OUT_DEFAULT (1024 * 1024)
#define SECRETS_TIMEOUT_DEFAULT 5000
#define SECRETS_IDS_MAX 4096			/* ids per provider call */

/* One call of a provider: every id its refs name in this activation. */
struct secrets_batch {
	const char *alias;	/* provider alias (for messages) */
	const json_t *def;	/* secrets.providers.<alias>, or NULL for a
				 * built-in provider */
	const char **ids;	/* unique ids, borrowed */
	size_t n;
	char **values;		/* out, n entries: owned value or NULL */
	char **errs;		/* out, n entries: owned reason or NULL */
};

struct secrets_provider {
	const char *source;	/* "env", "file", "exec", "store" */
	/* Check a provider definition (keys, types, limits): 0, or -1 with
	 * a reason. NULL: nothing to check. */
	int (*check)(const json_t *def, char *why, size_t len);
	/* 1 if id fits this source's grammar (def may be NULL). */
	int (*id_valid)(const char *id, const json_t *def);
	/* Resolve every id of b. Per-id failures go to b->errs; -1 with a
	 * reason when the whole provider failed (every id then fails). */
	int (*resolve)(struct secrets_batch *b, char *why, size_t len);
};

extern const struct secrets_provider secrets_env_provider;
extern const struct secrets_provider secrets_file_provider;
extern const struct secrets_provider secrets_exec_provider;
extern const struct secrets_provider secrets_store_provider;

/* secrets.c: shared helpers for providers. */

/* Integer field of def with a default; -1 when present but invalid. */
int64_t secrets_def_int(const json_t *def, const char *key, int64_t dflt,
			int64_t min, int64_t max);
/* "~/x" expanded against HOME (owned). */
char *secrets_expand_home(const char *path);
/* 0 if def has only keys from allowed (NULL-terminated); else -1 and the
 * first unknown key in why. */
int secrets_def_keys(const json_t *def, const char *const *allowed,
		     char *why, size_t len);

/* secrets-exec.c: parse a resolver's stdout (protocol v1) for b. Also the
 * fuzz target's entry point. 0, or -1 with a reason. */
int secrets_exec_parse(const char *out, size_t len, int json_only,
		       struct secrets_batch *b, char *why, size_t wlen);

/* secrets-store.c: the key and the sealed values. */
#define SECRETS_KEY_LEN 32
/* Load the key (create = make it when missing, 0600). GW_ENOTFOUND when
 * missing and !create; GW_ECRYPTO for a malformed key file. */
int secrets_key_load(const char *state_dir, int create,
		     uint8_t key[SECRETS_KEY_LEN], char *why, size_t len);
/* The key file path in use (owned). */
char *secrets_key_path(const char *state_dir);
/* AES-256-GCM with a fresh nonce, name as associated data. *blob owned. */
int secrets_seal(const uint8_t key[SECRETS_KEY_LEN], const char *name,
		 const char *val, size_t vlen, uint8_t **blob, size_t *blen);
/* GW_ECRYPTO on a wrong key or tampered data (never garbage). */
int secrets_unseal(const uint8_t key[SECRETS_KEY_LEN], const char *name,
		   const uint8_t *blob, size_t blen, char **val,
		   size_t *vlen);
