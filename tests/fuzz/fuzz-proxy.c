/* Fuzz target for the trusted-proxy parsers (src/auth/proxy.c): the input
 * is "cidr\nip\nx-forwarded-for\nx-real-ip". proxy_cidr_match answers
 * -1, 0 or 1; proxy_client_ip writes a terminated string that is the peer
 * address or one of the header's hops. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth/proxy.h"
#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_hdrs {
	const char *xff, *xri;
};

static const char *fuzz_proxy_header(void *arg, const char *name)
{
	struct fuzz_hdrs *h = arg;

	if (strcmp(name, "x-forwarded-for") == 0)
		return h->xff;
	if (strcmp(name, "x-real-ip") == 0)
		return h->xri;
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *part[4] = { NULL }, *p, *save = NULL;
	struct gw_config cfg;
	struct fuzz_hdrs h;
	struct proxy_req rq;
	char out[64];
	int i, r;

	memcpy(text, data, size);
	text[size] = '\0';
	p = text;
	for (i = 0; i < 4; i++) {
		part[i] = p;
		p = p ? strchr(p, '\n') : NULL;
		if (p)
			*p++ = '\0';
	}
	(void)save;
	r = proxy_cidr_match(part[0], part[1] ? part[1] : "");
	if (r < -1 || r > 1)
		abort();
	memset(&cfg, 0, sizeof(cfg));
	cfg.root = json_pack("{s:{s:[s,s],s:b}}", "gateway", "trustedProxies",
			     part[0], "127.0.0.1", "allowRealIpFallback", 1);
	if (cfg.root == NULL) {	/* not UTF-8: still exercise the parser */
		free(text);
		return 0;
	}
	h.xff = part[2];
	h.xri = part[3];
	memset(&rq, 0, sizeof(rq));
	rq.peer_ip = "127.0.0.1";
	rq.peer_loopback = 1;
	rq.header = fuzz_proxy_header;
	rq.arg = &h;
	memset(out, 'x', sizeof(out));
	proxy_client_ip(&cfg, &rq, out, sizeof(out));
	if (memchr(out, '\0', sizeof(out)) == NULL)
		abort();
	if (strcmp(out, "127.0.0.1") != 0 &&
	    (h.xff == NULL || strstr(h.xff, out) == NULL) &&
	    (h.xri == NULL || strstr(h.xri, out) == NULL))
		abort();
	json_decref(cfg.root);
	free(text);
	return 0;
}
