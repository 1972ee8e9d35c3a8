/* Secrets bench (not a test): activation of 1,000 SecretRefs over 10
 * providers (4 file, 3 exec, 3 env; exec batched: one process per
 * provider), and the cost of reading a secret on a request (a lookup in
 * the snapshot the request already holds) with 1,000 refs configured and
 * with one. Usage: secrets-bench [activations] [lookups]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "core/common.h"
#include "core/log.h"
#include "core/util.h"
#include "secrets/secrets.h"

#define NREFS 1000
#define NPROV 10

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
	chmod(path, mode);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median seconds of n config_load calls of path. */
static double time_loads(const char *path, int n, struct gw_config **keep)
{
	double *t = xcalloc((size_t)n, sizeof(double)), med;
	int i;

	for (i = 0; i < n; i++) {
		struct config_issues is = { 0 };
		struct gw_config *c = NULL;
		double t0 = now_s();

		if (config_load(path, NULL, &c, &is) != GW_OK) {
			config_issues_print(stderr, path, &is);
			exit(1);
		}
		t[i] = now_s() - t0;
		config_issues_free(&is);
		if (keep && !*keep)
			*keep = c;
		else
			config_unref(c);
	}
	qsort(t, (size_t)n, sizeof(double), cmp_double);
	med = t[n / 2];
	free(t);
	return med;
}

static double time_lookups(const struct gw_config *c, long n, int nrefs)
{
	char path[NREFS][64], why[300];
	const char *v;
	double t0;
	long i, ok = 0;
	int k;

	for (k = 0; k < nrefs; k++)
		snprintf(path[k], sizeof(path[k]), "models.providers.p%d.apiKey",
			 k);
	t0 = now_s();
	for (i = 0; i < n; i++)
		ok += secrets_lookup(c, path[i % nrefs], &v, why,
				     sizeof(why)) == GW_OK;
	if (ok != n) {
		fprintf(stderr, "lookups failed: %ld of %ld\n", n - ok, n);
		exit(1);
	}
	return (now_s() - t0) / (double)n;
}

int main(int argc, char **argv)
{
	int acts = argc > 1 ? atoi(argv[1]) : 7;
	long looks = argc > 2 ? atol(argv[2]) : 2000000;
	char dir[] = "/tmp/secrets-bench-XXXXXX", path[256], one[256];
	char *cfg, *cfg1, *keys;
	size_t cap = 1 << 20, len = 0;
	struct gw_config *big = NULL, *small = NULL;
	double act, act1, lk, lk1;
	int i, p;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	log_set_console(0);
	secrets_install(SECRETS_SCOPE_FULL, dir);
	/* 4 JSON files with 100 keys each */
	keys = xmalloc(cap);
	for (p = 0; p < 4; p++) {
		len = (size_t)snprintf(keys, cap, "{");
		for (i = 0; i < NREFS / NPROV; i++)
			len += (size_t)snprintf(keys + len, cap - len,
						"%s\"k%d\":\"sk-file-%d-%d\"",
						i ? "," : "", i, p, i);
		snprintf(keys + len, cap - len, "}");
		snprintf(path, sizeof(path), "%s/keys%d.json", dir, p);
		write_file(path, keys, 0600);
	}
	/* one resolver answers every id it is asked for */
	snprintf(path, sizeof(path), "%s/resolver.py", dir);
	write_file(path, "#!/usr/bin/python3 -S\nimport json, sys\n"
		   "r = json.load(sys.stdin)\nprint(json.dumps({'protocolVersion'"
		   ": 1, 'values': {i: 'sk-exec-' + i for i in r['ids']}}))\n",
		   0700);
	for (i = 0; i < NREFS; i++) {
		char name[32];

		snprintf(name, sizeof(name), "BENCH_KEY_%d", i);
		setenv(name, "sk-env-value", 1);
	}
	/* the config: 1000 model providers, 100 refs per secret provider */
	cfg = xmalloc(cap);
	len = (size_t)snprintf(cfg, cap, "{\"secrets\":{\"providers\":{");
	for (p = 0; p < 4; p++)
		len += (size_t)snprintf(cfg + len, cap - len, "\"f%d\":{\"source"
					"\":\"file\",\"path\":\"%s/keys%d.json\"},",
					p, dir, p);
	for (p = 0; p < 3; p++)
		len += (size_t)snprintf(cfg + len, cap - len, "\"x%d\":{\"source"
					"\":\"exec\",\"command\":\"%s/resolver.py"
					"\",\"passEnv\":[\"PATH\"]},", p, dir);
	len += (size_t)snprintf(cfg + len, cap - len, "\"e1\":{\"source\":"
				"\"env\"},\"e2\":{\"source\":\"env\"}}},"
				"\"models\":{\"providers\":{");
	for (i = 0; i < NREFS; i++) {
		int prov = i / (NREFS / NPROV), k = i % (NREFS / NPROV);
		char ref[160];

		if (prov < 4)
			snprintf(ref, sizeof(ref), "{\"source\":\"file\","
				 "\"provider\":\"f%d\",\"id\":\"/k%d\"}", prov,
				 k);
		else if (prov < 7)
			snprintf(ref, sizeof(ref), "{\"source\":\"exec\","
				 "\"provider\":\"x%d\",\"id\":\"id/%d\"}",
				 prov - 4, k);
		else
			snprintf(ref, sizeof(ref), "{\"source\":\"env\","
				 "\"provider\":\"%s\",\"id\":\"BENCH_KEY_%d\"}",
				 prov == 7 ? "default" : prov == 8 ? "e1" : "e2",
				 i);
		len += (size_t)snprintf(cfg + len, cap - len, "%s\"p%d\":{"
					"\"baseUrl\":\"http://127.0.0.1:9\","
					"\"apiKey\":%s}", i ? "," : "", i, ref);
	}
	snprintf(cfg + len, cap - len, "}}}");
	snprintf(path, sizeof(path), "%s/openclaw.json", dir);
	write_file(path, cfg, 0600);
	cfg1 = xasprintf("{\"models\":{\"providers\":{\"p0\":{\"baseUrl\":"
			 "\"http://127.0.0.1:9\",\"apiKey\":{\"source\":\"env\","
			 "\"id\":\"BENCH_KEY_0\"}}}}}");
	snprintf(one, sizeof(one), "%s/one.json", dir);
	write_file(one, cfg1, 0600);

	act = time_loads(path, acts, &big);
	act1 = time_loads(one, acts, &small);
	if (secrets_warning_count(big) != 0) {
		fprintf(stderr, "unexpected warnings: %d\n",
			secrets_warning_count(big));
		return 1;
	}
	lk = time_lookups(big, looks, NREFS);
	lk1 = time_lookups(small, looks, 1);
	{
		double t0, with, without;
		long k, nl = looks / 10;

		t0 = now_s();
		for (k = 0; k < nl; k++)
			log_info("bench", "run %ld started (agent main, session "
				 "agent:main:openai:8d64223c-d7dd-4511-a7f1-"
				 "d991d596577a, model fake/fake-model)", k);
		with = (now_s() - t0) / (double)nl;
		log_set_mask(NULL);
		t0 = now_s();
		for (k = 0; k < nl; k++)
			log_info("bench", "run %ld started (agent main, session "
				 "agent:main:openai:8d64223c-d7dd-4511-a7f1-"
				 "d991d596577a, model fake/fake-model)", k);
		without = (now_s() - t0) / (double)nl;
		printf("log line, %d values registered with the mask: %.0f ns; "
		       "no mask: %.0f ns\n", NREFS, with * 1e9,
		       without * 1e9);
	}
	printf("activation, %d refs over %d providers (3 exec processes): "
	       "%.1f ms (median of %d)\n", NREFS, NPROV, act * 1e3, acts);
	printf("activation, 1 env ref: %.2f ms\n", act1 * 1e3);
	printf("secret read on a request, %d refs: %.1f ns; 1 ref: %.1f ns\n",
	       NREFS, lk * 1e9, lk1 * 1e9);
	config_unref(big);
	config_unref(small);
	free(cfg);
	free(cfg1);
	free(keys);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	return system(path) == 0 ? 0 : 1;
}
