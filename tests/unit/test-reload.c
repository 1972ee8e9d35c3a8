/* Unit tests of the config lifecycle: the diff, the rule table (every
 * option has a class), merge patch, redaction round trip, the schema. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>

#include "config/config-reload.h"
#include "core/common.h"

static json_t *J(const char *s)
{
	json_error_t e;
	json_t *v = json_loads(s, JSON_DECODE_ANY, &e);

	ck_assert_msg(v != NULL, "bad test JSON: %s", e.text);
	return v;
}

/* The diff as "a,b,c". */
static char *diff_str(const char *a, const char *b)
{
	json_t *ja = a ? J(a) : NULL, *jb = b ? J(b) : NULL;
	char **p = NULL, buf[1024] = "";
	size_t n, i;

	n = config_plan_diff(ja, jb, &p);
	for (i = 0; i < n; i++) {
		strcat(buf, i ? "," : "");
		strcat(buf, p[i]);
	}
	ck_assert_ptr_null(p[n]);
	config_env_strv_free(p);
	json_decref(ja);
	json_decref(jb);
	return xstrdup(buf);
}

#define DIFF_IS(a, b, want)                                               \
	do {                                                              \
		char *got_ = diff_str(a, b);                              \
		ck_assert_str_eq(got_, want);                             \
		free(got_);                                               \
	} while (0)

START_TEST(test_diff)
{
	DIFF_IS("{}", "{}", "");
	DIFF_IS("{\"a\":1}", "{\"a\":1}", "");
	DIFF_IS("{\"a\":1}", "{\"a\":2}", "a");
	DIFF_IS("{\"a\":{\"b\":1,\"c\":2}}", "{\"a\":{\"b\":1,\"c\":3}}",
		"a.c");
	/* added / removed subtrees list their leaves */
	DIFF_IS("{}", "{\"g\":{\"x\":1,\"y\":{\"z\":true}}}", "g.x,g.y.z");
	DIFF_IS("{\"g\":{\"x\":1}}", "{}", "g.x");
	/* arrays compare structurally, as one leaf */
	DIFF_IS("{\"a\":[1,2]}", "{\"a\":[1,2]}", "");
	DIFF_IS("{\"a\":[1,2]}", "{\"a\":[2,1]}", "a");
	/* type change object -> scalar */
	DIFF_IS("{\"a\":{\"b\":1}}", "{\"a\":5}", "a");
	/* an empty object appearing is the path itself */
	DIFF_IS("{}", "{\"a\":{}}", "a");
	/* sorted output */
	DIFF_IS("{\"z\":1,\"a\":1}", "{\"z\":2,\"a\":2}", "a,z");
	DIFF_IS(NULL, "{\"a\":1}", "a");
}
END_TEST

static int is_override(const char *rule)
{
	enum config_reload c;
	size_t i;

	for (i = 0; i < 3; i++)
		if (strcmp(config_plan_rule(i, &c), rule) == 0)
			return 1;
	return 0;
}

START_TEST(test_rules_every_option_has_a_class)
{
	size_t n, i;
	const struct config_option *t = config_options_table(&n);

	ck_assert_uint_gt(n, 50);
	for (i = 0; i < n; i++) {
		char path[256], *p;
		const char *rule = NULL;
		enum config_reload c;

		ck_assert_msg(t[i].reload == CONFIG_RELOAD_HOT ||
			      t[i].reload == CONFIG_RELOAD_RESTART ||
			      t[i].reload == CONFIG_RELOAD_NONE,
			      "%s has no reload class", t[i].key);
		snprintf(path, sizeof(path), "%s", t[i].key);
		for (p = path; (p = strchr(p, '*')); )
			*p = 'x';
		c = config_plan_classify(path, &rule);
		ck_assert_msg(rule && *rule, "%s: no rule matches", path);
		/* the table's class, unless an override names the key */
		if (strcmp(rule, t[i].key) == 0 && !is_override(rule))
			ck_assert_int_eq(c, t[i].reload);
	}
	ck_assert_uint_eq(config_plan_rules_count(),
			  n + 3 /* overrides */);
	for (i = 0; i < config_plan_rules_count(); i++) {
		enum config_reload c;

		ck_assert_ptr_nonnull(config_plan_rule(i, &c));
	}
}
END_TEST

START_TEST(test_rules_classify)
{
	const char *rule;

	/* longest prefix wins */
	ck_assert_int_eq(config_plan_classify("gateway.port", NULL),
			 CONFIG_RELOAD_RESTART);
	ck_assert_int_eq(config_plan_classify(
		"gateway.controlUi.allowedOrigins", NULL), CONFIG_RELOAD_HOT);
	ck_assert_int_eq(config_plan_classify(
		"gateway.auth.rateLimit.maxAttempts", NULL),
		CONFIG_RELOAD_HOT);
	ck_assert_int_eq(config_plan_classify("gateway.reload.mode", NULL),
			 CONFIG_RELOAD_NONE);
	/* a path below an open object takes its parent's class */
	ck_assert_int_eq(config_plan_classify(
		"gateway.http.endpoints.chatCompletions.images.maxBytes",
		&rule), CONFIG_RELOAD_HOT);
	ck_assert_str_eq(rule, "gateway.http.endpoints.chatCompletions");
	ck_assert_int_eq(config_plan_classify("models.providers.local.baseUrl",
					      &rule), CONFIG_RELOAD_HOT);
	ck_assert_str_eq(rule, "models.providers.*.baseUrl");
	ck_assert_int_eq(config_plan_classify("agents.entries.a.model", NULL),
			 CONFIG_RELOAD_HOT);
	/* overrides: rotation is hot */
	ck_assert_int_eq(config_plan_classify("gateway.auth.token", &rule),
			 CONFIG_RELOAD_HOT);
	ck_assert_str_eq(rule, "gateway.auth.token");
	ck_assert_int_eq(config_plan_classify("gateway.auth.mode", NULL),
			 CONFIG_RELOAD_RESTART);
	/* unmatched: restart */
	ck_assert_int_eq(config_plan_classify("nosuchkey.x", &rule),
			 CONFIG_RELOAD_RESTART);
	ck_assert_str_eq(rule, "");
}
END_TEST

START_TEST(test_plan)
{
	struct config_plan p;
	json_t *a = J("{\"gateway\":{\"mode\":\"local\",\"port\":1}}");
	json_t *b = J("{\"gateway\":{\"mode\":\"local\",\"port\":2,"
		      "\"controlUi\":{\"allowedOrigins\":[\"x\"]}},"
		      "\"logging\":{\"file\":\"/tmp/x.log\"}}");
	json_t *pj;
	char *s;

	config_plan_build_json(a, b, &p);
	ck_assert_uint_eq(p.n, 3);
	ck_assert(p.restart);
	ck_assert(p.hot);
	s = config_plan_paths(&p, CONFIG_RELOAD_RESTART);
	ck_assert_str_eq(s, "gateway.port");
	free(s);
	s = config_plan_paths(&p, -1);
	ck_assert_str_eq(s, "gateway.controlUi.allowedOrigins, gateway.port, "
			 "logging.file");
	free(s);
	pj = config_plan_json(&p);
	ck_assert_str_eq(json_string_value(json_object_get(
		json_array_get(pj, 2), "action")), "none");
	json_decref(pj);
	config_plan_free(&p);
	json_decref(a);
	json_decref(b);
}
END_TEST

START_TEST(test_plan_secret_rotation)
{
	struct gw_config a = {0}, b = {0};
	struct config_plan p;

	a.root = J("{\"gateway\":{\"auth\":{\"token\":{\"source\":\"file\","
		   "\"id\":\"/x\"}}}}");
	b.root = json_incref(a.root);
	a.auth_token = (char *)"old";
	b.auth_token = (char *)"new";
	config_plan_build(&a, &b, &p);
	ck_assert_uint_eq(p.n, 1);
	ck_assert_str_eq(p.v[0].path, "gateway.auth.token");
	ck_assert(p.rotate);
	ck_assert(!p.restart);
	config_plan_free(&p);
	b.auth_token = (char *)"old";
	config_plan_build(&a, &b, &p);
	ck_assert_uint_eq(p.n, 0);
	config_plan_free(&p);
	json_decref(a.root);
	json_decref(b.root);
}
END_TEST

static char *patched(const char *target, const char *patch)
{
	json_t *t = J(target), *p = J(patch);
	char *s;

	config_merge_patch(&t, p);
	s = json_dumps(t, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	json_decref(t);
	json_decref(p);
	return s;
}

#define PATCH_IS(t, p, want)                                              \
	do {                                                              \
		char *got_ = patched(t, p);                               \
		ck_assert_str_eq(got_, want);                             \
		free(got_);                                               \
	} while (0)

START_TEST(test_merge_patch)
{
	/* RFC 7396 appendix A */
	PATCH_IS("{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
	PATCH_IS("{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}");
	PATCH_IS("{\"a\":\"b\"}", "{\"a\":null}", "{}");
	PATCH_IS("{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}");
	PATCH_IS("{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
	PATCH_IS("{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}");
	PATCH_IS("{\"a\":{\"b\":\"c\"}}",
		 "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}");
	PATCH_IS("{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}");
	PATCH_IS("[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]");
	PATCH_IS("{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]");
	PATCH_IS("{\"a\":\"foo\"}", "null", "null");
	PATCH_IS("{\"e\":null}", "{\"a\":1}", "{\"a\":1,\"e\":null}");
	PATCH_IS("[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}");
	PATCH_IS("{}", "{\"a\":{\"bb\":{\"ccc\":null}}}",
		 "{\"a\":{\"bb\":{}}}");
	/* arrays of objects with ids merge by id, new ids append */
	PATCH_IS("{\"m\":[{\"id\":\"a\",\"x\":1,\"y\":1},{\"id\":\"b\"}]}",
		 "{\"m\":[{\"id\":\"a\",\"x\":2,\"y\":null},{\"id\":\"c\"}]}",
		 "{\"m\":[{\"id\":\"a\",\"x\":2},{\"id\":\"b\"},"
		 "{\"id\":\"c\"}]}");
	/* not all elements have ids: replaced */
	PATCH_IS("{\"m\":[{\"id\":\"a\"},{\"x\":1}]}",
		 "{\"m\":[{\"id\":\"a\",\"x\":2}]}",
		 "{\"m\":[{\"id\":\"a\",\"x\":2}]}");
}
END_TEST

START_TEST(test_redact_round_trip)
{
	json_t *cur = J("{\"gateway\":{\"auth\":{\"token\":\"s3cret\","
			"\"password\":{\"source\":\"env\",\"id\":\"PW\"}},"
			"\"port\":1,\"remote\":{\"token\":\"${REMOTE_TOK}\"}},"
			"\"models\":{\"providers\":{\"p\":{\"apiKey\":\"k\","
			"\"headers\":{\"Authorization\":\"Bearer z\"},"
			"\"models\":[{\"id\":\"m\",\"maxTokens\":5}]}}}}");
	json_t *red = config_redact(cur), *back;
	char bad[100];
	char *s;

	s = json_dumps(red, JSON_COMPACT);
	ck_assert_ptr_null(strstr(s, "s3cret"));
	ck_assert_ptr_null(strstr(s, "Bearer z"));
	ck_assert_ptr_null(strstr(s, "\"k\""));
	/* references are kept: they name a secret */
	ck_assert_ptr_nonnull(strstr(s, "${REMOTE_TOK}"));
	ck_assert_ptr_nonnull(strstr(s, "\"source\":\"env\""));
	/* maxTokens is not a secret */
	ck_assert_ptr_nonnull(strstr(s, "\"maxTokens\":5"));
	free(s);
	ck_assert(config_redact_has_sentinel(red));
	ck_assert(config_redact_is_secret("gateway.auth.token"));
	ck_assert(config_redact_is_secret("channels.telegram.botToken"));
	ck_assert(!config_redact_is_secret("agents.defaults.maxTokens"));
	/* restore from the current values gives the original back */
	back = json_deep_copy(red);
	ck_assert_int_eq(config_redact_restore(back, cur, bad, sizeof(bad)),
			 0);
	ck_assert(json_equal(back, cur));
	json_decref(back);
	/* a sentinel with no current value names its path */
	back = J("{\"gateway\":{\"auth\":{\"token\":\"__OPENCLAW_REDACTED__"
		 "\"}},\"x\":{\"secret\":\"__OPENCLAW_REDACTED__\"}}");
	ck_assert_int_eq(config_redact_restore(back, cur, bad, sizeof(bad)),
			 -1);
	ck_assert_str_eq(bad, "x.secret");
	json_decref(back);
	json_decref(red);
	json_decref(cur);
}
END_TEST

START_TEST(test_redact_text)
{
	const char *raw = "// comment\n{ gateway: { auth: { token: 'tt' }, "
			  "port: 5, }, }\n";
	char *s = config_redact_text(raw, strlen(raw));

	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_null(strstr(s, "tt"));
	ck_assert_ptr_nonnull(strstr(s, CONFIG_REDACTED));
	free(s);
	ck_assert_ptr_null(config_redact_text("{", 1));
}
END_TEST

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}

/* The start-up record hands back the file's text only while it is the
 * one the running config was loaded from: an edit made right after the
 * load (before the record) has not started, so it is not the copy a
 * failing restart rolls back to. */
START_TEST(test_started_text_is_what_started)
{
	char dir[] = "/tmp/test-reload-XXXXXX", path[64];
	const char *good = "{ gateway: { mode: 'local', port: 5 } }\n";
	struct config_issues is = {0};
	struct config_reloader_opts o = {0};
	struct config_reloader *r;
	struct gw_config *cfg = NULL;
	size_t len = 1;
	char *text;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/openclaw.json", dir);
	write_text(path, good);
	ck_assert_int_eq(config_load(path, NULL, &cfg, &is), GW_OK);
	o.path = path;
	r = config_reloader_new(&o);
	text = config_reloader_started(r, cfg, "startup", NULL, &len);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(len, strlen(good));
	ck_assert(memcmp(text, good, len) == 0);
	free(text);
	write_text(path, "{ gateway: { mode: 'local', port: 6 } }\n");
	len = 1;
	ck_assert_ptr_null(config_reloader_started(r, cfg, "startup", NULL,
						   &len));
	ck_assert_uint_eq(len, 0);
	config_reloader_free(r);
	config_unref(cfg);
	config_issues_free(&is);
	unlink(path);
	rmdir(dir);
}
END_TEST

START_TEST(test_schema)
{
	json_t *s = config_schema_json("v1"), *node, *l;

	node = json_object_get(json_object_get(json_object_get(
		json_object_get(json_object_get(s, "schema"), "properties"),
		"gateway"), "properties"), "port");
	ck_assert_str_eq(json_string_value(json_object_get(node, "type")),
			 "integer");
	ck_assert_int_eq(json_integer_value(json_object_get(node, "default")),
			 18789);
	ck_assert(json_is_true(json_object_get(json_object_get(
		json_object_get(s, "uiHints"), "gateway.auth.token"),
		"sensitive")));
	ck_assert_str_eq(json_string_value(json_object_get(s, "version")),
			 "v1");
	json_decref(s);
	l = config_schema_lookup("gateway.auth");
	ck_assert_ptr_nonnull(l);
	ck_assert_uint_gt(json_array_size(json_object_get(l, "children")), 3);
	json_decref(l);
	l = config_schema_lookup("models.providers.local.baseUrl");
	ck_assert_ptr_nonnull(l);
	ck_assert_str_eq(json_string_value(json_object_get(l, "hintPath")),
			 "models.providers.*.baseUrl");
	json_decref(l);
	ck_assert_ptr_null(config_schema_lookup("gateway.nosuch"));
}
END_TEST

static Suite *reload_suite(void)
{
	Suite *s = suite_create("reload");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_diff);
	tcase_add_test(tc, test_rules_every_option_has_a_class);
	tcase_add_test(tc, test_rules_classify);
	tcase_add_test(tc, test_plan);
	tcase_add_test(tc, test_plan_secret_rotation);
	tcase_add_test(tc, test_merge_patch);
	tcase_add_test(tc, test_redact_round_trip);
	tcase_add_test(tc, test_redact_text);
	tcase_add_test(tc, test_started_text_is_what_started);
	tcase_add_test(tc, test_schema);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(reload_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
