/* libcurl through dlopen(): see curl-dl.h. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "agent/curl-dl.h"
#include "core/log.h"

#define CURL_DL_SONAME "libcurl.so.4"

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

int curl_dl_loaded(void)
{
	return atomic_load(&curl_dl_ok) == 1;
}

void curl_dl_cleanup(void)
{
	if (atomic_exchange(&curl_dl_ok, 0) == 1)
		curl_dl_table.global_cleanup();
}
