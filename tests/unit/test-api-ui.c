/* Unit tests: the Control UI server's pure parts (src/api/api-ui.h): path
 * safety, base path, content types, Accept / Accept-Encoding, HTTP dates,
 * inline script hashes, the CSP and the index.html rewrite. */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "api/api-ui.h"

static const char *rel(const char *path)
{
	static char out[256];

	if (api_ui_rel_path(path, out, sizeof(out)) != 0)
		return NULL;
	return out;
}

START_TEST(test_rel_path)
{
	ck_assert_str_eq(rel("/"), "");
	ck_assert_str_eq(rel("/assets/app.js"), "assets/app.js");
	ck_assert_str_eq(rel("//assets//./app.js"), "assets/app.js");
	ck_assert_str_eq(rel("/settings/devices"), "settings/devices");
	ck_assert_str_eq(rel("/docs/"), "docs/");
	ck_assert_str_eq(rel("/a/.../b"), "a/.../b");	/* a name */
	ck_assert_str_eq(rel("/..x/y"), "..x/y");
	ck_assert_ptr_null(rel("/../etc/passwd"));
	ck_assert_ptr_null(rel("/assets/../../x"));
	ck_assert_ptr_null(rel("/a/.."));
	ck_assert_ptr_null(rel("/a/../b"));	/* no resolving: refused */
	ck_assert_ptr_null(rel("/a\\..\\b"));
	ck_assert_ptr_null(rel("/a\nb"));
	ck_assert_ptr_null(rel("/a\x7f"));
	{
		char small[8];

		ck_assert_int_eq(api_ui_rel_path("/abcdefgh", small,
						 sizeof(small)), -1);
		ck_assert_int_eq(api_ui_rel_path("/abc", small, sizeof(small)),
				 0);
		ck_assert_str_eq(small, "abc");
	}
}
END_TEST

START_TEST(test_base_path)
{
	char b[64];

	ck_assert_int_eq(api_ui_base_path(NULL, b, sizeof(b)), 0);
	ck_assert_str_eq(b, "");
	ck_assert_int_eq(api_ui_base_path("/", b, sizeof(b)), 0);
	ck_assert_str_eq(b, "");
	ck_assert_int_eq(api_ui_base_path(" openclaw/ ", b, sizeof(b)), 0);
	ck_assert_str_eq(b, "/openclaw");
	ck_assert_int_eq(api_ui_base_path("/a/b", b, sizeof(b)), 0);
	ck_assert_str_eq(b, "/a/b");
	ck_assert_int_eq(api_ui_base_path("/a\"b", b, sizeof(b)), -1);
	ck_assert_int_eq(api_ui_base_path("/a?b", b, sizeof(b)), -1);
}
END_TEST

START_TEST(test_content_types)
{
	ck_assert_str_eq(api_ui_content_type("assets/a.js"),
			 "application/javascript; charset=utf-8");
	ck_assert_str_eq(api_ui_content_type("x.CSS"),
			 "text/css; charset=utf-8");
	ck_assert_str_eq(api_ui_content_type("manifest.webmanifest"),
			 "application/manifest+json; charset=utf-8");
	ck_assert_str_eq(api_ui_content_type("f/a.woff2"), "font/woff2");
	ck_assert_str_eq(api_ui_content_type("i.svg"), "image/svg+xml");
	ck_assert_str_eq(api_ui_content_type("i.webp"), "image/webp");
	ck_assert_str_eq(api_ui_content_type("m.wasm"), "application/wasm");
	ck_assert_str_eq(api_ui_content_type("index.html"),
			 "text/html; charset=utf-8");
	ck_assert_ptr_null(api_ui_content_type("settings/devices"));
	ck_assert_ptr_null(api_ui_content_type("a.js/b"));
	ck_assert_ptr_null(api_ui_content_type("a.gz"));
}
END_TEST

START_TEST(test_accept)
{
	ck_assert_int_eq(api_ui_accepts_html(NULL), 1);
	ck_assert_int_eq(api_ui_accepts_html(""), 1);
	ck_assert_int_eq(api_ui_accepts_html("text/html"), 1);
	ck_assert_int_eq(api_ui_accepts_html("*/*"), 1);
	ck_assert_int_eq(api_ui_accepts_html("application/json"), 0);
	ck_assert_int_eq(api_ui_accepts_html("text/html;q=0, */*"), 0);
	ck_assert_int_eq(api_ui_accepts_html(
		"text/html,application/xhtml+xml,*/*;q=0.8"), 1);
	ck_assert_int_eq(api_ui_accepts_html("image/png, text/*;q=0.5"), 1);

	ck_assert_str_eq(api_ui_encoding(NULL, 1, 1), "identity");
	ck_assert_str_eq(api_ui_encoding("gzip, br", 1, 1), "br");
	ck_assert_str_eq(api_ui_encoding("gzip, br;q=0.5", 1, 1), "gzip");
	ck_assert_str_eq(api_ui_encoding("gzip, br", 0, 1), "gzip");
	ck_assert_str_eq(api_ui_encoding("gzip", 0, 0), "identity");
	ck_assert_str_eq(api_ui_encoding("gzip;q=0", 1, 1), "identity");
	ck_assert_str_eq(api_ui_encoding("*", 1, 1), "br");
	ck_assert_str_eq(api_ui_encoding("identity;q=1, gzip;q=0.5", 1, 1),
			 "identity");
	ck_assert_ptr_null(api_ui_encoding("identity;q=0", 1, 1));
	ck_assert_ptr_null(api_ui_encoding("*;q=0", 1, 1));
	ck_assert_str_eq(api_ui_encoding("identity;q=0, gzip", 1, 1), "gzip");
}
END_TEST

START_TEST(test_http_date)
{
	ck_assert_int_eq(api_ui_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
			 784111777);
	ck_assert_int_eq(api_ui_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
			 -1);
	ck_assert_int_eq(api_ui_http_date("Sun, 06 Nov 1994 08:49:37 GMTx"),
			 -1);
	ck_assert_int_eq(api_ui_http_date(NULL), -1);
	ck_assert_int_eq(api_ui_http_date(""), -1);
}
END_TEST

START_TEST(test_script_hashes)
{
	size_t n;
	char **h = api_ui_script_hashes(
		"<script>alert(1)</script><script src=\"a.js\"></script>"
		"<SCRIPT type=\"x\">b</Script><script></script>"
		"<scripts>no</scripts><script data-src=\"x\">c</script>"
		"<script SRC='y'>d</script><script\n>e</script>", &n);

	ck_assert_uint_eq(n, 4);
	/* sha256("alert(1)") etc., base64 */
	ck_assert_str_eq(h[0],
		"sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI=");
	ck_assert_str_eq(h[1],
		"sha256-PiPoFgA5WUoziU9lZOGxNIu9egCI1CxKy3PurtWcAJ0=");
	ck_assert_str_eq(h[2],
		"sha256-Ln0sA6lQeuJl7PW1NWiFpTOTogKdJBOUmXJloaJa78Y=");
	ck_assert_str_eq(h[3],
		"sha256-P3m7e0NbBTIWUdrv03TNxoHcBvqmXjdOODN7iMoEbeo=");
	ck_assert_ptr_null(h[4]);
	api_ui_strv_free(h);
	h = api_ui_script_hashes("<script>unterminated", &n);
	ck_assert_uint_eq(n, 0);
	api_ui_strv_free(h);
}
END_TEST

START_TEST(test_csp)
{
	char a[] = "sha256-A", b[] = "sha256-B";
	char *hs[] = {a, b};
	char *c = api_ui_csp(hs, 2, "127.0.0.1:18789");

	ck_assert_ptr_nonnull(strstr(c, "; script-src 'self' 'sha256-A' "
				     "'sha256-B'; "));
	ck_assert_ptr_nonnull(strstr(c, "connect-src 'self' ws: wss: data: "
		"https://api.openai.com https://tweakcn.com "
		"http://127.0.0.1:* https://127.0.0.1:*"));
	ck_assert(strncmp(c, "default-src 'self'; base-uri 'none'; ", 37) == 0);
	free(c);
	c = api_ui_csp(NULL, 0, "[::1]:80");
	ck_assert_ptr_nonnull(strstr(c, "http://[::1]:* https://[::1]:*"));
	free(c);
	/* Host values that are not a plain host[:port] add nothing. */
	c = api_ui_csp(NULL, 0, "evil.example; script-src *");
	ck_assert_ptr_null(strstr(c, "evil"));
	free(c);
	c = api_ui_csp(NULL, 0, "a.example:12x");
	ck_assert_ptr_null(strstr(c, "a.example"));
	free(c);
}
END_TEST

START_TEST(test_index_rewrite)
{
	char *o = api_ui_index_rewrite(
		"<!doctype html>\n<HTML data-openclaw-control-ui-build-id=\"x\""
		" lang=\"en\"><head><link href=\"./favicon.svg\">"
		"<link href=\"/sw.js\"><script src=\"./assets/a.js\">"
		"</script><link href=\"./assets/b.css\">"
		"<link href=\"./other.css\"></head></html>", "/oc",
		"{\"a\":\"<b>\"}");

	ck_assert_str_eq(o,
		"<!doctype html>\n<html data-openclaw-control-ui-base-path="
		"\"/oc\" data-openclaw-terminal-enabled=\"false\" "
		"data-openclaw-environment=\"{&quot;a&quot;:&quot;&lt;b&gt;"
		"&quot;}\" lang=\"en\"><head><link href=\"/oc/favicon.svg\">"
		"<link href=\"/oc/sw.js\"><script src=\"/oc/assets/a.js\">"
		"</script><link href=\"/oc/assets/b.css\">"
		"<link href=\"./other.css\"></head></html>");
	free(o);
	o = api_ui_index_rewrite("<htmlx><html>", "", NULL);
	ck_assert_str_eq(o, "<htmlx><html data-openclaw-control-ui-base-path="
			 "\"\" data-openclaw-terminal-enabled=\"false\">");
	free(o);
	o = api_ui_index_rewrite("no tag", "", NULL);
	ck_assert_str_eq(o, "no tag");
	free(o);
	o = api_ui_index_rewrite("", "", NULL);
	ck_assert_str_eq(o, "");
	free(o);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("api-ui");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int nf;

	tcase_add_test(tc, test_rel_path);
	tcase_add_test(tc, test_base_path);
	tcase_add_test(tc, test_content_types);
	tcase_add_test(tc, test_accept);
	tcase_add_test(tc, test_http_date);
	tcase_add_test(tc, test_script_hashes);
	tcase_add_test(tc, test_csp);
	tcase_add_test(tc, test_index_rewrite);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
