/* libcurl through dlopen(): see curl-dl.h. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "agent/curl-dl.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"

#define CURL_DL_SONAME "libcurl.so.4"
#define CURL_DL_CA_MAX (4u << 20)	/* bytes of one CA file */
#define CURL_DL_PEM_CERT "-----BEGIN CERTIFICATE-----"

static const struct {
	const char *name;
	size_t off;
} curl_dl_syms[] = {
	{ "curl_easy_init", offsetof(struct curl_dl, easy_init) },
	{ "curl_easy_setopt", offsetof(struct curl_dl, easy_setopt) },
	{ "curl_easy_getinfo", offsetof(struct curl_dl, easy_getinfo) },
	{ "curl_easy_strerror", offsetof(struct curl_dl, easy_strerror) },
	{ "curl_easy_cleanup", offsetof(struct curl_dl, easy_cleanup) },
	{ "curl_multi_init", offsetof(struct curl_dl, multi_init) },
	{ "curl_multi_add_handle", offsetof(struct curl_dl, multi_add_handle) },
	{ "curl_multi_remove_handle",
	  offsetof(struct curl_dl, multi_remove_handle) },
	{ "curl_multi_perform", offsetof(struct curl_dl, multi_perform) },
	{ "curl_multi_info_read", offsetof(struct curl_dl, multi_info_read) },
	{ "curl_multi_poll", offsetof(struct curl_dl, multi_poll) },
	{ "curl_multi_wakeup", offsetof(struct curl_dl, multi_wakeup) },
	{ "curl_multi_cleanup", offsetof(struct curl_dl, multi_cleanup) },
	{ "curl_easy_reset", offsetof(struct curl_dl, easy_reset) },
	{ "curl_multi_setopt", offsetof(struct curl_dl, multi_setopt) },
	{ "curl_slist_append", offsetof(struct curl_dl, slist_append) },
	{ "curl_slist_free_all", offsetof(struct curl_dl, slist_free_all) },
	{ "curl_global_init", offsetof(struct curl_dl, global_init) },
	{ "curl_global_cleanup", offsetof(struct curl_dl, global_cleanup) },
};

static pthread_once_t curl_dl_once = PTHREAD_ONCE_INIT;
static struct curl_dl curl_dl_table;
static atomic_int curl_dl_ok;		/* 1 loaded, -1 failed */
static char curl_dl_err[256];
static struct curl_blob curl_dl_ca;	/* data NULL: no extra CAs */

/* A CA file read whole: 1 with *out, else 0 after one warning. */
static int curl_dl_ca_read(const char *path, char **out, size_t *len)
{
	int r = util_read_file(path, CURL_DL_CA_MAX, out, len);

	if (r == 1 && memmem(*out, *len, CURL_DL_PEM_CERT,
			     sizeof(CURL_DL_PEM_CERT) - 1))
		return 1;
	if (r == 1) {
		free(*out);
		*out = NULL;
	}
	log_warn("agent", "ignoring extra CA certificates from %s "
		 "(NODE_EXTRA_CA_CERTS): %s; upstream TLS trusts the system "
		 "roots only", path, r == 1 ? "no PEM certificate in it"
		 : r == 0 ? "no such file" : strerror(-r));
	return 0;
}

/* NODE_EXTRA_CA_CERTS: libcurl's default bundle + that file, in
 * curl_dl_ca (see curl_dl_ca_blob). Runs once, with libcurl loaded. */
static void curl_dl_ca_load(void)
{
	const char *extra = getenv("NODE_EXTRA_CA_CERTS");
	char *sys = NULL, *add = NULL, *def = NULL, *all;
	size_t slen = 0, alen = 0;
	CURL *e;

	if (!extra || !*extra || !curl_dl_ca_read(extra, &add, &alen))
		return;
	/* The bundle libcurl verifies against by default (its build's
	 * --with-ca-bundle); its CA path, if any, stays in use as well. */
	e = curl_dl_table.easy_init();
	if (e && curl_dl_table.easy_getinfo(e, CURLINFO_CAINFO, &def) ==
	    CURLE_OK && def && *def &&
	    util_read_file(def, CURL_DL_CA_MAX, &sys, &slen) != 1)
		log_warn("agent", "cannot read the system CA bundle %s", def);
	if (e)
		curl_dl_table.easy_cleanup(e);
	all = xmalloc(slen + 1 + alen + 1);
	if (sys)
		memcpy(all, sys, slen);
	all[slen] = '\n';
	memcpy(all + slen + 1, add, alen + 1);
	free(sys);
	free(add);
	curl_dl_ca.data = all;
	curl_dl_ca.len = slen + 1 + alen;
	curl_dl_ca.flags = CURL_BLOB_NOCOPY;
	log_info("agent", "upstream TLS trusts the system roots and %s "
		 "(NODE_EXTRA_CA_CERTS)", extra);
}

static void curl_dl_load(void)
{
	void *h, *fp;
	size_t i;
	CURLcode c;

	h = dlopen(CURL_DL_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(curl_dl_err, sizeof(curl_dl_err),
			 "cannot load %s: %s", CURL_DL_SONAME, dlerror());
		goto fail;
	}
	for (i = 0; i < sizeof(curl_dl_syms) / sizeof(curl_dl_syms[0]); i++) {
		fp = dlsym(h, curl_dl_syms[i].name);
		if (!fp) {
			snprintf(curl_dl_err, sizeof(curl_dl_err),
				 "%s has no %s", CURL_DL_SONAME,
				 curl_dl_syms[i].name);
			goto fail;
		}
		memcpy((char *)&curl_dl_table + curl_dl_syms[i].off, &fp,
		       sizeof(fp));
	}
	c = curl_dl_table.global_init(CURL_GLOBAL_DEFAULT);
	if (c != CURLE_OK) {
		snprintf(curl_dl_err, sizeof(curl_dl_err),
			 "curl_global_init failed (%d)", (int)c);
		goto fail;
	}
	curl_dl_ca_load();
	atomic_store(&curl_dl_ok, 1);
	return;
fail:
	/* The handle stays open: a half-loaded library is harmless, and
	 * dlclose under a thread that may still look it up is not. */
	log_error("agent", "libcurl unavailable, upstream calls will fail: %s",
		  curl_dl_err);
	atomic_store(&curl_dl_ok, -1);
}

const struct curl_dl *curl_dl_get(const char **err)
{
	pthread_once(&curl_dl_once, curl_dl_load);
	if (atomic_load(&curl_dl_ok) == 1)
		return &curl_dl_table;
	if (err)
		*err = curl_dl_err;
	return NULL;
}

const struct curl_blob *curl_dl_ca_blob(void)
{
	return curl_dl_ca.data ? &curl_dl_ca : NULL;
}

int curl_dl_loaded(void)
{
	return atomic_load(&curl_dl_ok) == 1;
}

void curl_dl_cleanup(void)
{
	if (atomic_exchange(&curl_dl_ok, 0) == 1)
		curl_dl_table.global_cleanup();
	free(curl_dl_ca.data);
	curl_dl_ca.data = NULL;
}
