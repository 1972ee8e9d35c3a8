/* Unit tests for the CLI: option parser and command table, URL parsing,
 * the WebSocket frame codec and message assembly, Sec-WebSocket-Accept,
 * capability and scope mapping, the lock file, and the gateway handshake
 * against an in-process fake gateway. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>

#include "cli/cli.h"
#include "cli/wsclient.h"
#include "core/common.h"
#include "core/util.h"
#include "daemon.h"

/* The daemon is not linked: record what `gateway run` hands over. */
static struct daemon_opts last_opts;
static char last_password[64];
static int daemon_calls;

int daemon_run(const struct daemon_opts *o)
{
	last_opts = *o;
	snprintf(last_password, sizeof(last_password), "%s",
		 o->ov.password ? o->ov.password : "");
	daemon_calls++;
	return 0;
}

static int run_cli(int argc, const char **argv)
{
	return cli_main(argc, (char **)argv);
}

/* --- option parser and command table ------------------------------------ */

START_TEST(test_opt_parse)
{
	const struct cli_opt *const t[] = {cli_gateway_call_opts,
					   cli_global_opts, NULL};
	const char *argv[] = {"health", "--params", "{}", "--timeout=500",
			      "--json", "--profile", "p", "--", "--x"};
	struct cli_args a = {0};
	char err[128];

	ck_assert_int_eq(cli_opt_parse(t, 9, (char **)argv, &a, err,
				       sizeof(err)), 0);
	ck_assert_str_eq(a.params, "{}");
	ck_assert_str_eq(a.timeout, "500");
	ck_assert_int_eq(a.json, 1);
	ck_assert_str_eq(a.profile, "p");
	ck_assert_int_eq(a.npos, 2);
	ck_assert_str_eq(a.pos[0], "health");
	ck_assert_str_eq(a.pos[1], "--x");
	cli_args_free(&a);
}
END_TEST

START_TEST(test_opt_errors)
{
	const struct cli_opt *const t[] = {cli_gateway_call_opts, NULL};
	const char *unknown[] = {"--nope"};
	const char *flagval[] = {"--json=1"};
	const char *missing[] = {"--params"};
	const char *shortopt[] = {"-x"};
	struct cli_args a = {0};
	char err[128];

	ck_assert_int_eq(cli_opt_parse(t, 1, (char **)unknown, &a, err,
				       sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "--nope"));
	ck_assert_int_eq(cli_opt_parse(t, 1, (char **)flagval, &a, err,
				       sizeof(err)), -1);
	ck_assert_int_eq(cli_opt_parse(t, 1, (char **)missing, &a, err,
				       sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "needs a value"));
	ck_assert_int_eq(cli_opt_parse(t, 1, (char **)shortopt, &a, err,
				       sizeof(err)), -1);
	cli_args_free(&a);
}
END_TEST

START_TEST(test_cmd_table)
{
	const char *w1[] = {"gateway", "call", "health"};
	const char *w2[] = {"gateway", "--port", "1"};
	const char *w3[] = {"nope"};
	const struct cli_cmd *c;
	const struct cli_opt *o;
	size_t i;
	int used;

	for (i = 0; i < cli_ncmds; i++) {
		ck_assert_ptr_nonnull(cli_cmds[i].handler);
		ck_assert_ptr_nonnull(cli_cmds[i].opts);
		ck_assert_ptr_nonnull(cli_cmds[i].summary);
		for (o = cli_cmds[i].opts; o->name; o++) {
			ck_assert_ptr_nonnull(o->help);
			ck_assert(o->type == CLI_OPT_FLAG || o->arg);
		}
	}
	c = cli_cmd_find((char **)w1, 3, &used);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->path, "gateway call");
	ck_assert_int_eq(used, 2);
	c = cli_cmd_find((char **)w2, 3, &used);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->path, "gateway");
	ck_assert_int_eq(used, 1);
	ck_assert_ptr_null(cli_cmd_find((char **)w3, 1, &used));
}
END_TEST

START_TEST(test_main_exit_codes)
{
	const char *ver[] = {"clawgate", "--version"};
	const char *unk[] = {"clawgate", "frobnicate"};
	const char *unk2[] = {"clawgate", "gateway", "frobnicate"};
	const char *badflag[] = {"clawgate", "gateway", "health", "--nope"};
	const char *force[] = {"clawgate", "gateway", "run", "--force"};
	const char *badport[] = {"clawgate", "gateway", "run", "--port", "x"};
	const char *help[] = {"clawgate", "help", "gateway", "call"};
	const char *nomethod[] = {"clawgate", "gateway", "call"};
	const char *badparams[] = {"clawgate", "gateway", "call", "health",
				   "--params", "{nope"};

	daemon_calls = 0;
	ck_assert_int_eq(run_cli(2, ver), 0);
	ck_assert_int_eq(run_cli(2, unk), 2);
	ck_assert_int_eq(run_cli(3, unk2), 2);
	ck_assert_int_eq(run_cli(4, badflag), 2);
	ck_assert_int_eq(run_cli(4, force), 2);
	ck_assert_int_eq(run_cli(5, badport), 2);
	ck_assert_int_eq(run_cli(4, help), 0);
	ck_assert_int_eq(run_cli(3, nomethod), 2);
	ck_assert_int_eq(run_cli(6, badparams), 2);
	ck_assert_int_eq(daemon_calls, 0);
}
END_TEST

START_TEST(test_gateway_run_opts)
{
	char path[] = "/tmp/test-cli-pw-XXXXXX";
	int fd = mkstemp(path);
	const char *argv[] = {"clawgate", "--profile", "x", "gateway",
			      "--port", "12345", "--bind=lan", "--auth",
			      "password", "--password-file", path,
			      "--allow-unconfigured", "--verbose"};

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "s3cret\r\nsecond\n", 15), 15);
	close(fd);
	daemon_calls = 0;
	ck_assert_int_eq(run_cli(13, argv), 0);
	ck_assert_int_eq(daemon_calls, 1);
	ck_assert_int_eq(last_opts.ov.port, 12345);
	ck_assert_str_eq(last_opts.ov.bind, "lan");
	ck_assert_str_eq(last_opts.ov.auth_mode, "password");
	ck_assert_str_eq(last_opts.ov.profile, "x");
	ck_assert_str_eq(last_password, "s3cret");
	ck_assert_int_eq(last_opts.ov.allow_unconfigured, 1);
	ck_assert_int_eq(last_opts.verbose, 1);
	unlink(path);
}
END_TEST

/* --- URLs, frames, accept key ------------------------------------------- */

START_TEST(test_url_parse)
{
	struct wsclient_url u;
	char err[128];
	static const char *const bad[] = {
		"http://127.0.0.1:1", "ws://", "ws://:80", "ws://[::1",
		"ws://h:99999", "ws://h:12ab", "ws://h:", "ws://[]:1",
	};
	size_t i;

	ck_assert_int_eq(wsclient_url_parse("ws://127.0.0.1:18789", &u, err,
					    sizeof(err)), 0);
	ck_assert_str_eq(u.host, "127.0.0.1");
	ck_assert_int_eq(u.port, 18789);
	ck_assert_str_eq(u.path, "/");
	ck_assert_int_eq(u.ipv6, 0);
	wsclient_url_free(&u);
	ck_assert_int_eq(wsclient_url_parse("ws://[::1]:19001/x/y", &u, err,
					    sizeof(err)), 0);
	ck_assert_str_eq(u.host, "::1");
	ck_assert_int_eq(u.port, 19001);
	ck_assert_str_eq(u.path, "/x/y");
	ck_assert_int_eq(u.ipv6, 1);
	wsclient_url_free(&u);
	ck_assert_int_eq(wsclient_url_parse("WS://localhost", &u, err,
					    sizeof(err)), 0);
	ck_assert_str_eq(u.host, "localhost");
	ck_assert_int_eq(u.port, 80);
	wsclient_url_free(&u);
	for (i = 0; i < ARRAY_SIZE(bad); i++)
		ck_assert_msg(wsclient_url_parse(bad[i], &u, err,
						 sizeof(err)) < 0,
			      "accepted %s", bad[i]);
}
END_TEST

START_TEST(test_accept_key)
{
	char out[29];

	wsclient_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out);
	/* RFC 6455 1.3 (the brief quoted a wrong value) */
	ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}
END_TEST

static void check_roundtrip(size_t len, size_t want_hdr)
{
	const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
	struct wsclient_frame f;
	uint8_t *payload = xmalloc(len + 1), *enc;
	size_t i, n;

	for (i = 0; i < len; i++)
		payload[i] = (uint8_t)(i * 7);
	enc = wsclient_frame_encode(WS_OP_TEXT, 1, payload, len, mask, &n);
	ck_assert_uint_eq(n, want_hdr + len);
	ck_assert_int_eq(wsclient_frame_parse(enc, n, &f), 1);
	ck_assert_int_eq(f.fin, 1);
	ck_assert_int_eq(f.opcode, WS_OP_TEXT);
	ck_assert_int_eq(f.masked, 1);
	ck_assert_uint_eq(f.len, len);
	ck_assert_uint_eq(f.hdr_len, want_hdr);
	ck_assert_int_eq(memcmp(f.mask, mask, 4), 0);
	/* a truncated header asks for more bytes */
	ck_assert_int_eq(wsclient_frame_parse(enc, want_hdr - 1, &f), 0);
	wsclient_frame_parse(enc, n, &f);
	wsclient_mask(enc + f.hdr_len, len, f.mask, 0);
	ck_assert_int_eq(memcmp(enc + f.hdr_len, payload, len), 0);
	free(enc);
	free(payload);
}

START_TEST(test_frame_codec)
{
	const uint8_t rfc_hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
				     0x7f, 0x9f, 0x4d, 0x51, 0x58};
	const uint8_t rsv[] = {0xc1, 0x00};
	const uint8_t long_ping[] = {0x89, 0x7e, 0x00, 0x80};
	const uint8_t frag_close[] = {0x08, 0x00};
	const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
	struct wsclient_frame f;
	uint8_t *enc;
	size_t n;

	/* RFC 6455 5.7: a masked "Hello" */
	enc = wsclient_frame_encode(WS_OP_TEXT, 1, "Hello", 5, mask, &n);
	ck_assert_uint_eq(n, sizeof(rfc_hello));
	ck_assert_int_eq(memcmp(enc, rfc_hello, n), 0);
	free(enc);
	check_roundtrip(0, 6);
	check_roundtrip(125, 6);
	check_roundtrip(126, 8);
	check_roundtrip(65535, 8);
	check_roundtrip(65536, 14);
	check_roundtrip(70000, 14);
	/* unmasked, unfragmented start */
	enc = wsclient_frame_encode(WS_OP_BINARY, 0, "ab", 2, NULL, &n);
	ck_assert_int_eq(wsclient_frame_parse(enc, n, &f), 1);
	ck_assert_int_eq(f.fin, 0);
	ck_assert_int_eq(f.masked, 0);
	ck_assert_int_eq(f.opcode, WS_OP_BINARY);
	free(enc);
	ck_assert_int_eq(wsclient_frame_parse(rsv, 2, &f), -1);
	ck_assert_int_eq(wsclient_frame_parse(long_ping, 4, &f), -1);
	ck_assert_int_eq(wsclient_frame_parse(frag_close, 2, &f), -1);
}
END_TEST

static void put_frame(int fd, int op, int fin, const void *p, size_t len)
{
	size_t n;
	uint8_t *f = wsclient_frame_encode(op, fin, p, len, NULL, &n);

	ck_assert_int_eq(write(fd, f, n), (ssize_t)n);
	free(f);
}

/* Read one (masked) client frame from fd; returns its payload. */
static char *get_frame(int fd, int *op)
{
	uint8_t buf[65536];
	struct wsclient_frame f;
	size_t n = 0;
	ssize_t r;
	char *p;

	for (;;) {
		if (wsclient_frame_parse(buf, n, &f) == 1 &&
		    n >= f.hdr_len + f.len)
			break;
		r = read(fd, buf + n, sizeof(buf) - n);
		if (r <= 0)
			return NULL;
		n += (size_t)r;
	}
	ck_assert_int_eq(f.masked, 1);
	wsclient_mask(buf + f.hdr_len, (size_t)f.len, f.mask, 0);
	p = xstrndup((char *)buf + f.hdr_len, (size_t)f.len);
	*op = f.opcode;
	return p;
}

START_TEST(test_message_assembly)
{
	struct wsclient *c;
	char *m = NULL, *pong;
	size_t len;
	int sv[2], op;
	uint8_t huge[10] = {0x81, 127, 0, 0, 0, 0, 0x04, 0x10, 0, 0};

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	c = wsclient_new_fd(sv[0]);
	put_frame(sv[1], WS_OP_TEXT, 0, "Hel", 3);
	put_frame(sv[1], WS_OP_PING, 1, "pi", 2);
	put_frame(sv[1], WS_OP_CONT, 0, "l", 1);
	put_frame(sv[1], WS_OP_CONT, 1, "o", 1);
	ck_assert_int_eq(wsclient_recv(c, util_mono_ms() + 2000, &m, &len,
				       &op), 0);
	ck_assert_str_eq(m, "Hello");
	ck_assert_uint_eq(len, 5);
	ck_assert_int_eq(op, WS_OP_TEXT);
	free(m);
	pong = get_frame(sv[1], &op);
	ck_assert_int_eq(op, WS_OP_PONG);
	ck_assert_str_eq(pong, "pi");
	free(pong);
	/* nothing more: a deadline, not a hang */
	ck_assert_int_eq(wsclient_recv(c, util_mono_ms() + 50, &m, &len,
				       &op), GW_ETIMEOUT);
	/* a continuation without a start is a protocol error */
	put_frame(sv[1], WS_OP_CONT, 1, "x", 1);
	ck_assert_int_eq(wsclient_recv(c, util_mono_ms() + 2000, &m, &len,
				       &op), GW_EINVAL);
	wsclient_close(c, 0);
	close(sv[1]);

	/* over the message limit */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	c = wsclient_new_fd(sv[0]);
	ck_assert_int_eq(write(sv[1], huge, sizeof(huge)), sizeof(huge));
	ck_assert_int_eq(wsclient_recv(c, util_mono_ms() + 2000, &m, &len,
				       &op), GW_ETOOBIG);
	wsclient_close(c, 0);
	close(sv[1]);

	/* close: code and reason reported, echoed back */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	c = wsclient_new_fd(sv[0]);
	put_frame(sv[1], WS_OP_CLOSE, 1, "\x03\xf0" "bye", 5);
	ck_assert_int_eq(wsclient_recv(c, util_mono_ms() + 2000, &m, &len,
				       &op), GW_EIO);
	ck_assert_int_eq(wsclient_close_code(c), 1008);
	ck_assert_str_eq(wsclient_close_reason(c), "bye");
	pong = get_frame(sv[1], &op);
	ck_assert_int_eq(op, WS_OP_CLOSE);
	ck_assert_int_eq((uint8_t)pong[0] << 8 | (uint8_t)pong[1], 1008);
	free(pong);
	wsclient_close(c, 0);
	close(sv[1]);
}
END_TEST

/* --- mappings ------------------------------------------------------------ */

START_TEST(test_capability)
{
	json_t *h;

	h = json_pack("{s:{s:[s,s]}}", "auth", "scopes", "operator.read",
		      "operator.admin");
	ck_assert_str_eq(cli_gateway_capability(h, NULL), "admin-capable");
	json_decref(h);
	h = json_pack("{s:{s:[s]}}", "auth", "scopes", "operator.write");
	ck_assert_str_eq(cli_gateway_capability(h, NULL), "write-capable");
	json_decref(h);
	h = json_pack("{s:{s:[s]}}", "auth", "scopes", "operator.read");
	ck_assert_str_eq(cli_gateway_capability(h, NULL), "read-only");
	json_decref(h);
	h = json_pack("{s:{s:[]}}", "auth", "scopes");
	ck_assert_str_eq(cli_gateway_capability(h, NULL), "connect-only");
	json_decref(h);
	h = json_pack("{s:s}", "code", "NOT_PAIRED");
	ck_assert_str_eq(cli_gateway_capability(NULL, h), "pairing-pending");
	json_decref(h);
	h = json_pack("{s:s,s:{s:s}}", "code", "INVALID_REQUEST", "details",
		      "code", "PAIRING_REQUIRED");
	ck_assert_str_eq(cli_gateway_capability(NULL, h), "pairing-pending");
	json_decref(h);
	h = json_pack("{s:s}", "code", "INVALID_REQUEST");
	ck_assert_ptr_null(cli_gateway_capability(NULL, h));
	json_decref(h);
	ck_assert_ptr_null(cli_gateway_capability(NULL, NULL));
}
END_TEST

START_TEST(test_method_scope)
{
	ck_assert_str_eq(cli_gateway_method_scope("health"), "operator.read");
	ck_assert_str_eq(cli_gateway_method_scope("config.get"),
			 "operator.read");
	ck_assert_str_eq(cli_gateway_method_scope("chat.send"),
			 "operator.write");
	ck_assert_str_eq(cli_gateway_method_scope("device.pair.list"),
			 "operator.pairing");
	ck_assert_str_eq(cli_gateway_method_scope("exec.approval.list"),
			 "operator.approvals");
	ck_assert_str_eq(cli_gateway_method_scope("exec.approvals.get"),
			 "operator.admin");
	ck_assert_str_eq(cli_gateway_method_scope("config.apply"),
			 "operator.admin");
	ck_assert_str_eq(cli_gateway_method_scope("no.such"),
			 "operator.admin");
}
END_TEST

START_TEST(test_connect_params)
{
	const char *scopes[] = {"operator.read", NULL};
	struct gwclient_opts o = {
		.url = "ws://127.0.0.1:1", .token = "T", .client_id = "cli",
		.client_mode = "probe", .client_version = "dev",
		.scopes = scopes, .min_protocol = 3, .max_protocol = 4,
	};
	json_t *p = gwclient_connect_params(&o);

	ck_assert_int_eq(json_integer_value(json_object_get(p, "minProtocol")),
			 3);
	ck_assert_int_eq(json_integer_value(json_object_get(p, "maxProtocol")),
			 4);
	ck_assert_str_eq(json_string_value(json_object_get(
		json_object_get(p, "client"), "mode")), "probe");
	ck_assert_str_eq(json_string_value(json_object_get(
		json_object_get(p, "client"), "platform")), "linux");
	ck_assert_int_eq(json_string_length(json_object_get(
		json_object_get(p, "client"), "instanceId")), 36);
	ck_assert_ptr_null(json_object_get(json_object_get(p, "client"),
					   "displayName"));
	ck_assert_str_eq(json_string_value(json_object_get(
		json_object_get(p, "auth"), "token")), "T");
	ck_assert_str_eq(json_string_value(json_object_get(p, "role")),
			 "operator");
	ck_assert_int_eq(json_array_size(json_object_get(p, "caps")), 0);
	ck_assert_str_eq(json_string_value(json_array_get(
		json_object_get(p, "scopes"), 0)), "operator.read");
	json_decref(p);
}
END_TEST

START_TEST(test_json_number)
{
	static const struct {
		double v;
		const char *want;
	} cases[] = {
		{24.1, "24.1"}, {1011.0336749999988, "1011.0336749999988"},
		{0.017, "0.017"}, {100.0, "100"}, {-0.5, "-0.5"},
		{1e21, "1e+21"}, {1e-7, "1e-7"}, {1.5e-6, "0.0000015"},
		{123456789012345680000.0, "123456789012345680000"},
		{0.1 + 0.2, "0.30000000000000004"}, {-2.5e-10, "-2.5e-10"},
	};
	char out[40];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		cli_json_number(cases[i].v, out, sizeof(out));
		ck_assert_str_eq(out, cases[i].want);
	}
}
END_TEST

START_TEST(test_json_print)
{
	json_t *j = json_pack("{s:[i,f,s,b,n],s:{},s:[],s:s}", "a", 1, 24.1,
			      "x\"\x01/\xc3\xa9", 1, "o", "e", "s", "t\n");
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cli_json_print(f, j);
	fclose(f);
	ck_assert_str_eq(buf, "{\n  \"a\": [\n    1,\n    24.1,\n"
			 "    \"x\\\"\\u0001/\xc3\xa9\",\n    true,\n"
			 "    null\n  ],\n  \"o\": {},\n  \"e\": [],\n"
			 "  \"s\": \"t\\n\"\n}\n");
	free(buf);
	json_decref(j);
}
END_TEST

/* --- lock file and first-line reader ------------------------------------ */

START_TEST(test_lock_read)
{
	char dir[] = "/tmp/test-cli-lock-XXXXXX";
	char *path;
	json_t *j = NULL;
	FILE *f;
	int fd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(cli_lock_read(dir, &j), -1);
	ck_assert_ptr_null(j);
	path = xasprintf("%s/gateway.lock", dir);
	f = fopen(path, "w");
	fputs("{\"pid\":4242,\"port\":18789,\"bind\":\"loopback\","
	      "\"listening\":[\"127.0.0.1:18789\",\"[::1]:18789\"]}", f);
	fclose(f);
	ck_assert_int_eq(cli_lock_read(dir, &j), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "pid")), 4242);
	json_decref(j);
	/* held: flock conflicts across open file descriptions */
	fd = open(path, O_RDWR);
	ck_assert_int_eq(flock(fd, LOCK_EX | LOCK_NB), 0);
	ck_assert_int_eq(cli_lock_read(dir, &j), 1);
	ck_assert_int_eq(json_array_size(json_object_get(j, "listening")), 2);
	json_decref(j);
	close(fd);
	ck_assert_int_eq(cli_lock_read(dir, &j), 0);
	json_decref(j);
	/* garbage content: still reports the lock state */
	f = fopen(path, "w");
	fputs("not json", f);
	fclose(f);
	ck_assert_int_eq(cli_lock_read(dir, &j), 0);
	ck_assert_ptr_null(j);
	unlink(path);
	rmdir(dir);
	free(path);
}
END_TEST

START_TEST(test_first_line)
{
	char path[] = "/tmp/test-cli-line-XXXXXX";
	int fd = mkstemp(path);
	char *s, *big;

	ck_assert_int_eq(write(fd, "abc\n", 4), 4);
	close(fd);
	s = cli_gateway_read_first_line(path);
	ck_assert_str_eq(s, "abc");
	free(s);
	big = xmalloc(10000);
	memset(big, 'x', 10000);
	fd = open(path, O_WRONLY | O_TRUNC);
	ck_assert_int_eq(write(fd, big, 10000), 10000);
	close(fd);
	ck_assert_ptr_null(cli_gateway_read_first_line(path));
	free(big);
	unlink(path);
	ck_assert_ptr_null(cli_gateway_read_first_line(path));
}
END_TEST

/* --- a fake gateway on loopback ----------------------------------------- */

struct fake {
	int lfd;
	int port;
	int reject;		/* answer connect with an auth error */
	char *connect_frame;	/* what the client sent */
	char *req_frame;
};

static void fake_send_text(int fd, const char *s)
{
	put_frame(fd, WS_OP_TEXT, 1, s, strlen(s));
}

static void *fake_main(void *arg)
{
	struct fake *fk = arg;
	char head[4096], acc[29], key[64], *k, *resp, *id_end, *req;
	json_t *j;
	size_t n = 0;
	ssize_t r;
	int fd, op;

	fd = accept(fk->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	while (n < sizeof(head) - 1) {
		r = read(fd, head + n, sizeof(head) - 1 - n);
		if (r <= 0)
			goto out;
		n += (size_t)r;
		head[n] = '\0';
		if (strstr(head, "\r\n\r\n"))
			break;
	}
	k = strcasestr(head, "Sec-WebSocket-Key: ");
	if (!k)
		goto out;
	sscanf(k + 19, "%63[^\r]", key);
	wsclient_accept_key(key, acc);
	resp = xasprintf("HTTP/1.1 101 Switching Protocols\r\n"
			 "Upgrade: websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Accept: %s\r\n\r\n", acc);
	if (write(fd, resp, strlen(resp)) < 0) {
		free(resp);
		goto out;
	}
	free(resp);
	fake_send_text(fd, "{\"type\":\"event\","
		       "\"event\":\"connect.challenge\","
		       "\"payload\":{\"nonce\":\"n\",\"ts\":1}}");
	fk->connect_frame = get_frame(fd, &op);
	if (!fk->connect_frame)
		goto out;
	j = json_loads(fk->connect_frame, 0, NULL);
	id_end = xstrdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	if (fk->reject) {
		resp = xasprintf("{\"type\":\"res\",\"id\":\"%s\",\"ok\":false,"
				 "\"error\":{\"code\":\"INVALID_REQUEST\","
				 "\"message\":\"unauthorized: gateway token "
				 "mismatch\",\"details\":{\"code\":"
				 "\"AUTH_TOKEN_MISMATCH\"}}}", id_end);
		fake_send_text(fd, resp);
		free(resp);
		put_frame(fd, WS_OP_CLOSE, 1, "\x03\xf0" "unauthorized", 14);
		free(get_frame(fd, &op));
		free(id_end);
		goto out;
	}
	resp = xasprintf("{\"type\":\"res\",\"id\":\"%s\",\"ok\":true,"
			 "\"payload\":{\"type\":\"hello-ok\",\"protocol\":4,"
			 "\"server\":{\"version\":\"x\",\"connId\":\"c1\"},"
			 "\"auth\":{\"role\":\"operator\",\"scopes\":"
			 "[\"operator.read\"]}}}", id_end);
	fake_send_text(fd, resp);
	free(resp);
	free(id_end);
	req = get_frame(fd, &op);
	if (!req)
		goto out;
	fk->req_frame = req;
	j = json_loads(req, 0, NULL);
	/* an event first, then the answer in two fragments */
	fake_send_text(fd, "{\"type\":\"event\",\"event\":\"tick\",\"seq\":1,"
		       "\"payload\":{\"ts\":2}}");
	resp = xasprintf("{\"type\":\"res\",\"id\":\"%s\",\"ok\":true,"
			 "\"payload\":{\"ok\":true,\"durationMs\":7}}",
			 json_string_value(json_object_get(j, "id")));
	put_frame(fd, WS_OP_TEXT, 0, resp, 10);
	put_frame(fd, WS_OP_CONT, 1, resp + 10, strlen(resp) - 10);
	free(resp);
	json_decref(j);
	free(get_frame(fd, &op));	/* the client's close */
out:
	close(fd);
	return NULL;
}

static void fake_start(struct fake *fk, pthread_t *th)
{
	struct sockaddr_in sa = {0};
	socklen_t sl = sizeof(sa);

	fk->lfd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fk->lfd, (struct sockaddr *)&sa, sizeof(sa)),
			 0);
	ck_assert_int_eq(listen(fk->lfd, 4), 0);
	getsockname(fk->lfd, (struct sockaddr *)&sa, &sl);
	fk->port = ntohs(sa.sin_port);
	pthread_create(th, NULL, fake_main, fk);
}

START_TEST(test_gwclient_roundtrip)
{
	const char *scopes[] = {"operator.read", NULL};
	struct fake fk = {0};
	struct gwclient_opts o = {
		.token = "T", .client_id = "cli", .client_mode = "cli",
		.client_version = PACKAGE_VERSION, .scopes = scopes,
		.min_protocol = 4, .max_protocol = 4, .timeout_ms = 5000,
	};
	struct gwclient_err e = {0};
	struct gwclient *c = NULL;
	json_t *hello = NULL, *payload = NULL, *j;
	pthread_t th;
	char *url;

	fake_start(&fk, &th);
	url = xasprintf("ws://127.0.0.1:%d", fk.port);
	o.url = url;
	ck_assert_int_eq(gwclient_connect(&o, &c, &hello, &e), 0);
	ck_assert_str_eq(cli_gateway_capability(hello, NULL), "read-only");
	ck_assert_int_eq(gwclient_request(c, "health", NULL, 5000, 0,
					  &payload, &e), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(payload,
							    "durationMs")), 7);
	gwclient_close(c);
	pthread_join(th, NULL);
	j = json_loads(fk.connect_frame, 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(j, "method")),
			 "connect");
	ck_assert_ptr_nonnull(strchr(json_string_value(json_object_get(j,
								       "id")),
				     ':'));
	json_decref(j);
	j = json_loads(fk.req_frame, 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(j, "method")),
			 "health");
	ck_assert_ptr_null(json_object_get(j, "params"));
	ck_assert_int_eq(strncmp(json_string_value(json_object_get(j, "id")),
				 "2:", 2), 0);
	json_decref(j);
	json_decref(hello);
	json_decref(payload);
	free(fk.connect_frame);
	free(fk.req_frame);
	close(fk.lfd);
	free(url);
}
END_TEST

START_TEST(test_gwclient_rejected)
{
	const char *scopes[] = {"operator.read", NULL};
	struct fake fk = {.reject = 1};
	struct gwclient_opts o = {
		.token = "bad", .client_id = "cli", .client_mode = "cli",
		.client_version = PACKAGE_VERSION, .scopes = scopes,
		.min_protocol = 4, .max_protocol = 4, .timeout_ms = 5000,
	};
	struct gwclient_err e = {0};
	struct gwclient *c = NULL;
	json_t *hello = NULL;
	pthread_t th;
	char *url;

	fake_start(&fk, &th);
	url = xasprintf("ws://127.0.0.1:%d", fk.port);
	o.url = url;
	ck_assert_int_ne(gwclient_connect(&o, &c, &hello, &e), 0);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(e.kind, GWC_ERR_RPC);
	ck_assert_str_eq(json_string_value(json_object_get(e.error, "code")),
			 "INVALID_REQUEST");
	ck_assert_str_eq(e.message, "unauthorized: gateway token mismatch");
	ck_assert_int_eq(e.close_code, 1008);
	ck_assert_str_eq(e.close_reason, "unauthorized");
	pthread_join(th, NULL);
	gwclient_err_free(&e);
	free(fk.connect_frame);
	close(fk.lfd);
	free(url);
}
END_TEST

START_TEST(test_gwclient_refused)
{
	const char *scopes[] = {"operator.read", NULL};
	struct gwclient_opts o = {
		.client_id = "cli", .client_mode = "cli",
		.client_version = PACKAGE_VERSION, .scopes = scopes,
		.min_protocol = 4, .max_protocol = 4, .timeout_ms = 2000,
	};
	struct sockaddr_in sa = {0};
	socklen_t sl = sizeof(sa);
	struct gwclient_err e = {0};
	struct gwclient *c = NULL;
	json_t *hello = NULL;
	char *url;
	int fd;

	/* a port that was just free: bind, note it, close */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	close(fd);
	url = xasprintf("ws://127.0.0.1:%d", ntohs(sa.sin_port));
	o.url = url;
	ck_assert_int_ne(gwclient_connect(&o, &c, &hello, &e), 0);
	ck_assert_int_eq(e.kind, GWC_ERR_CONNECT);
	ck_assert_str_eq(e.sys, "ECONNREFUSED");
	gwclient_err_free(&e);
	free(url);
}
END_TEST

static Suite *cli_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_opt_parse);
	tcase_add_test(tc, test_opt_errors);
	tcase_add_test(tc, test_cmd_table);
	tcase_add_test(tc, test_main_exit_codes);
	tcase_add_test(tc, test_gateway_run_opts);
	tcase_add_test(tc, test_url_parse);
	tcase_add_test(tc, test_accept_key);
	tcase_add_test(tc, test_frame_codec);
	tcase_add_test(tc, test_message_assembly);
	tcase_add_test(tc, test_capability);
	tcase_add_test(tc, test_method_scope);
	tcase_add_test(tc, test_connect_params);
	tcase_add_test(tc, test_json_number);
	tcase_add_test(tc, test_json_print);
	tcase_add_test(tc, test_lock_read);
	tcase_add_test(tc, test_first_line);
	tcase_add_test(tc, test_gwclient_roundtrip);
	tcase_add_test(tc, test_gwclient_rejected);
	tcase_add_test(tc, test_gwclient_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cli_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
