/* libcurl loaded with dlopen() on first use: the daemon maps it (and its
 * ~30 dependencies: krb5, ldap, ssh2, libssl...) only once an agent calls
 * an upstream provider. The headers still come from libcurl's -dev
 * package; the calls go through this table. */
#pragma once

#include <curl/curl.h>

struct curl_dl {
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *e, CURLoption opt, ...);
	CURLcode (*easy_getinfo)(CURL *e, CURLINFO info, ...);
	const char *(*easy_strerror)(CURLcode code);
	void (*easy_cleanup)(CURL *e);
	void (*easy_reset)(CURL *e);
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_add_handle)(CURLM *m, CURL *e);
	CURLMcode (*multi_remove_handle)(CURLM *m, CURL *e);
	CURLMcode (*multi_perform)(CURLM *m, int *running);
	CURLMsg *(*multi_info_read)(CURLM *m, int *left);
	CURLMcode (*multi_poll)(CURLM *m, struct curl_waitfd fds[],
				unsigned int nfds, int timeout_ms, int *ret);
	CURLMcode (*multi_wakeup)(CURLM *m);
	CURLMcode (*multi_cleanup)(CURLM *m);
	CURLMcode (*multi_setopt)(CURLM *m, CURLMoption opt, ...);
	struct curl_slist *(*slist_append)(struct curl_slist *l,
					   const char *s);
	void (*slist_free_all)(struct curl_slist *l);
	CURLcode (*global_init)(long flags);
	void (*global_cleanup)(void);
};

/* The table, loading libcurl.so.4 and running curl_global_init on the
 * first call (thread-safe); NULL when it cannot be loaded (logged once,
 * and *err, when not NULL, gets a borrowed message). */
const struct curl_dl *curl_dl_get(const char **err);

/* Set the roots a handle's TLS verifies against: the system's plus, as
 * OpenClaw's node does, the PEM file named by NODE_EXTRA_CA_CERTS (read
 * once when libcurl is loaded, kept until exit, set with
 * CURLOPT_CAINFO_BLOB, not copied; a file that cannot be used gets one
 * warning in the log and the system roots alone are trusted). The system
 * roots come from libcurl's CA directory when it is a hashed one (looked
 * up as needed, not loaded whole per connection), else from its CA
 * bundle. Call after curl_dl_get succeeded. */
void curl_dl_ca_apply(const struct curl_dl *cu, CURL *e);

/* Also for h2.c's trust store: whether dir is an OpenSSL hashed CA
 * directory, and the extra CA file read whole (1 with *out; else 0 after
 * the one warning naming NODE_EXTRA_CA_CERTS). */
int curl_dl_ca_hashed_dir(const char *dir);
int curl_dl_ca_read(const char *path, char **out, size_t *len);

/* Whether libcurl has been loaded (for tests and the RSS figures). */
int curl_dl_loaded(void);

/* curl_global_cleanup if libcurl was loaded; call once at exit, when no
 * thread uses curl any more. The library stays mapped. */
void curl_dl_cleanup(void);
