/* libcurl through dlopen(): see curl-dl.h. */
#include <dirent.h>
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
/* The system roots come from libcurl's CA directory alone (its bundle
 * file not loaded): see curl_dl_ca_apply. */
static int curl_dl_ca_dir_only;

/* Whether dir is an OpenSSL hashed CA directory (c_rehash /
 * update-ca-certificates: links named 8 hex digits, '.', a digit). */
int curl_dl_ca_hashed_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int found = 0;

	if (!d)
		return 0;
	while (!found && (de = readdir(d)))
		found = strlen(de->d_name) == 10 && de->d_name[8] == '.' &&
			strspn(de->d_name, "0123456789abcdef") == 8 &&
			de->d_name[9] >= '0' && de->d_name[9] <= '9';
	closedir(d);
	return found;
}

/* A CA file read whole: 1 with *out, else 0 after one warning. */
int curl_dl_ca_read(const char *path, char **out, size_t *len)
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

/* The trusted roots, once, with libcurl loaded: the system's (libcurl's
 * defaults: its build's --with-ca-bundle file and --with-ca-path
 * directory) and NODE_EXTRA_CA_CERTS's (curl_dl_ca). */
static void curl_dl_ca_load(void)
{
	const char *extra = getenv("NODE_EXTRA_CA_CERTS");
	char *sys = NULL, *add = NULL, *def = NULL, *dir = NULL, *all;
	size_t slen = 0, alen = 0;
	CURL *e = curl_dl_table.easy_init();

	if (e) {
		curl_dl_table.easy_getinfo(e, CURLINFO_CAINFO, &def);
		curl_dl_table.easy_getinfo(e, CURLINFO_CAPATH, &dir);
	}
	/* OpenSSL loads a CA file whole into each connection's store
	 * (Debian's bundle: ~1.1 MB per upstream connection, measured with
	 * tests/bench/streams.sh) but looks a hashed directory's
	 * certificates up when a chain needs them: when libcurl has both
	 * and the directory is hashed (Debian: /etc/ssl/certs, the same
	 * roots as the bundle), the directory alone. */
	/* CLAWGATE_UPSTREAM_CA_BUNDLE=1 (tests): the bundle file anyway. */
	curl_dl_ca_dir_only = def && *def && dir && *dir &&
			      !getenv("CLAWGATE_UPSTREAM_CA_BUNDLE") &&
			      curl_dl_ca_hashed_dir(dir);
	if (!extra || !*extra || !curl_dl_ca_read(extra, &add, &alen))
		goto out;
	/* A CA blob replaces the CA file: the bundle goes in first unless
	 * the directory serves the system roots. */
	if (!curl_dl_ca_dir_only && def && *def &&
	    util_read_file(def, CURL_DL_CA_MAX, &sys, &slen) != 1)
		log_warn("agent", "cannot read the system CA bundle %s", def);
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
out:
	if (e)
		curl_dl_table.easy_cleanup(e);
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

void curl_dl_ca_apply(const struct curl_dl *cu, CURL *e)
{
	if (curl_dl_ca_dir_only)
		cu->easy_setopt(e, CURLOPT_CAINFO, NULL);
	if (curl_dl_ca.data)
		cu->easy_setopt(e, CURLOPT_CAINFO_BLOB, &curl_dl_ca);
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
