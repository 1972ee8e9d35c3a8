/* Unit tests for the CLI's WebSocket frame reader (wsclient_reader_*): the
 * pure decoding under wsclient_recv, fed bytes by hand. The fuzz target
 * tests/fuzz/fuzz-wsframe.c checks the same reader on random streams. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/wsclient.h"
#include "core/common.h"
#include "core/util.h"

/* Append a server (unmasked) frame to buf. */
static size_t put(uint8_t *buf, size_t at, int op, int fin, const char *p,
		  size_t len)
{
	size_t n;
	uint8_t *f = wsclient_frame_encode(op, fin, p, len, NULL, &n);

	memcpy(buf + at, f, n);
	free(f);
	return at + n;
}

/* One step at buf[*pos..n) that must give kind; consumes what it used. */
static void step(struct wsclient_reader *r, const uint8_t *buf, size_t n,
		 size_t *pos, struct wsclient_event *ev, enum wsclient_ev kind)
{
	ck_assert_int_eq(wsclient_reader_step(r, buf + *pos, n - *pos, ev),
			 kind);
	ck_assert_uint_le(ev->used, n - *pos);
	*pos += ev->used;
}

START_TEST(test_reader_sequence)
{
	struct wsclient_reader r;
	struct wsclient_event ev;
	uint8_t buf[256];
	size_t n = 0, pos = 0;

	n = put(buf, n, WS_OP_TEXT, 0, "Hel", 3);
	n = put(buf, n, WS_OP_PING, 1, "pi", 2);
	n = put(buf, n, WS_OP_CONT, 0, "l", 1);
	n = put(buf, n, WS_OP_PONG, 1, "", 0);
	n = put(buf, n, WS_OP_CONT, 1, "o", 1);
	n = put(buf, n, WS_OP_BINARY, 1, "\0b", 2);
	n = put(buf, n, WS_OP_CLOSE, 1, "\x03\xe8" "bye", 5);
	wsclient_reader_init(&r, WSCLIENT_MAX_MESSAGE);

	step(&r, buf, n, &pos, &ev, WSCLIENT_EV_FRAGMENT);
	ck_assert_uint_eq(ev.used, 5);
	step(&r, buf, n, &pos, &ev, WSCLIENT_EV_PING);
	ck_assert_uint_eq(ev.len, 2);
	ck_assert_int_eq(memcmp(ev.payload, "pi", 2), 0);
	ck_assert_ptr_eq(ev.payload, buf + pos - 2);
	step(&r, buf, n, &pos, &ev, WSCLIENT_EV_FRAGMENT);
	step(&r, buf, n, &pos, &ev, WSCLIENT_EV_PONG);
	ck_assert_uint_eq(ev.len, 0);
	step(&r, buf, n, &pos, &ev, WSCLIENT_EV_MESSAGE);
	ck_assert_str_eq(ev.msg, "Hello");
	ck_assert_uint_eq(ev.mlen, 5);
	ck_assert_int_eq(ev.opcode, WS_OP_TEXT);
	free(ev.msg);
	step(&r, buf, n, &pos, &ev, WSCLIENT_EV_MESSAGE);
	ck_assert_uint_eq(ev.mlen, 2);
	ck_assert_int_eq(memcmp(ev.msg, "\0b", 3), 0);
	ck_assert_int_eq(ev.opcode, WS_OP_BINARY);
	free(ev.msg);
	step(&r, buf, n, &pos, &ev, WSCLIENT_EV_CLOSE);
	ck_assert_int_eq(ev.close_code, 1000);
	ck_assert_uint_eq(ev.len, 5);
	ck_assert_int_eq(memcmp(ev.payload + 2, "bye", 3), 0);
	ck_assert_uint_eq(pos, n);
	step(&r, buf, n, &pos, &ev, WSCLIENT_EV_NEED);
	ck_assert_uint_eq(ev.need, 2);
	wsclient_reader_reset(&r);

	/* a close frame without a code */
	n = put(buf, 0, WS_OP_CLOSE, 1, "", 0);
	pos = 0;
	step(&r, buf, n, &pos, &ev, WSCLIENT_EV_CLOSE);
	ck_assert_int_eq(ev.close_code, 1005);
}
END_TEST

START_TEST(test_reader_need)
{
	struct wsclient_reader r;
	struct wsclient_event ev;
	static uint8_t buf[70000];
	static char big[66000];
	size_t n, i;

	wsclient_reader_init(&r, WSCLIENT_MAX_MESSAGE);
	memset(big, 'x', sizeof(big));
	n = put(buf, 0, WS_OP_TEXT, 1, big, sizeof(big));
	ck_assert_uint_eq(n, 10 + sizeof(big));
	/* the header a byte at a time: it asks for what the header needs */
	ck_assert_int_eq(wsclient_reader_step(&r, buf, 0, &ev),
			 WSCLIENT_EV_NEED);
	ck_assert_uint_eq(ev.need, 2);
	for (i = 2; i < 10; i++) {
		ck_assert_int_eq(wsclient_reader_step(&r, buf, i, &ev),
				 WSCLIENT_EV_NEED);
		ck_assert_uint_eq(ev.need, 10);
		ck_assert_uint_eq(ev.used, 0);
	}
	/* then the whole payload at once */
	ck_assert_int_eq(wsclient_reader_step(&r, buf, 10, &ev),
			 WSCLIENT_EV_NEED);
	ck_assert_uint_eq(ev.need, n);
	ck_assert_int_eq(wsclient_reader_step(&r, buf, n - 1, &ev),
			 WSCLIENT_EV_NEED);
	ck_assert_uint_eq(ev.need, n);
	ck_assert_int_eq(wsclient_reader_step(&r, buf, n, &ev),
			 WSCLIENT_EV_MESSAGE);
	ck_assert_uint_eq(ev.mlen, sizeof(big));
	ck_assert_uint_eq(ev.used, n);
	free(ev.msg);
	/* 16-bit length */
	n = put(buf, 0, WS_OP_TEXT, 1, big, 300);
	ck_assert_int_eq(wsclient_reader_step(&r, buf, 3, &ev),
			 WSCLIENT_EV_NEED);
	ck_assert_uint_eq(ev.need, 4);
	ck_assert_int_eq(wsclient_reader_step(&r, buf, 4, &ev),
			 WSCLIENT_EV_NEED);
	ck_assert_uint_eq(ev.need, 304);
	wsclient_reader_reset(&r);
}
END_TEST

static void expect_error(const uint8_t *b, size_t n, size_t max, int error,
			 const char *what)
{
	struct wsclient_reader r;
	struct wsclient_event ev;
	uint8_t ok[16];
	size_t k;

	wsclient_reader_init(&r, max);
	ck_assert_int_eq(wsclient_reader_step(&r, b, n, &ev),
			 WSCLIENT_EV_ERROR);
	ck_assert_int_eq(ev.error, error);
	ck_assert_str_eq(ev.what, what);
	ck_assert_uint_eq(ev.used, 0);
	/* the reader starts over afterwards */
	k = put(ok, 0, WS_OP_TEXT, 1, "ok", 2);
	ck_assert_int_eq(wsclient_reader_step(&r, ok, k, &ev),
			 WSCLIENT_EV_MESSAGE);
	ck_assert_str_eq(ev.msg, "ok");
	free(ev.msg);
	wsclient_reader_reset(&r);
}

START_TEST(test_reader_errors)
{
	static const uint8_t masked[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
					  0x7f, 0x9f, 0x4d, 0x51, 0x58 };
	static const uint8_t rsv[] = { 0xc1, 0x00 };
	static const uint8_t unknown[] = { 0x83, 0x00 };
	static const uint8_t cont[] = { 0x80, 0x01, 'x' };
	static const uint8_t long_ping[] = { 0x89, 0x7e, 0x00, 0x80 };
	static const uint8_t frag_close[] = { 0x08, 0x00 };
	/* 1 GiB announced, no payload: refused before any is awaited */
	static const uint8_t huge[] = { 0x81, 127, 0, 0, 0, 0, 0x40, 0, 0, 0 };
	static const uint8_t msb[] = { 0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1 };
	struct wsclient_reader r;
	struct wsclient_event ev;
	uint8_t buf[300];
	size_t n, pos;

	static const struct {
		const uint8_t *b;
		size_t n, max;
		int error;
		const char *what;
	} cases[] = {
#define CASE(a, max, e, w) { a, sizeof(a), max, e, w }
		CASE(masked, 1024, GW_EINVAL, "invalid frame from server"),
		CASE(rsv, 1024, GW_EINVAL, "invalid frame from server"),
		CASE(long_ping, 1024, GW_EINVAL, "invalid frame from server"),
		CASE(frag_close, 1024, GW_EINVAL, "invalid frame from server"),
		CASE(msb, 1024, GW_EINVAL, "invalid frame from server"),
		CASE(unknown, 1024, GW_EINVAL, "unknown opcode"),
		CASE(cont, 1024, GW_EINVAL, "bad fragmentation"),
		CASE(huge, WSCLIENT_MAX_MESSAGE, GW_ETOOBIG,
		     "message too large"),
#undef CASE
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_error(cases[i].b, cases[i].n, cases[i].max,
			     cases[i].error, cases[i].what);

	/* a new data frame inside a fragmented message */
	wsclient_reader_init(&r, 100);
	n = put(buf, 0, WS_OP_TEXT, 0, "a", 1);
	put(buf, n, WS_OP_TEXT, 1, "b", 1);
	ck_assert_int_eq(wsclient_reader_step(&r, buf, n + 3, &ev),
			 WSCLIENT_EV_FRAGMENT);
	ck_assert_int_eq(wsclient_reader_step(&r, buf + n, 3, &ev),
			 WSCLIENT_EV_ERROR);
	ck_assert_str_eq(ev.what, "bad fragmentation");
	/* fragments that add up past the limit; control frames do not count */
	memset(buf, 'z', sizeof(buf));
	n = put(buf, 0, WS_OP_TEXT, 0, (char *)buf + 200, 60);
	n = put(buf, n, WS_OP_PING, 1, (char *)buf + 200, 50);
	n = put(buf, n, WS_OP_CONT, 0, (char *)buf + 200, 40);
	n = put(buf, n, WS_OP_CONT, 1, (char *)buf + 200, 1);
	pos = 0;
	step(&r, buf, n, &pos, &ev, WSCLIENT_EV_FRAGMENT);
	step(&r, buf, n, &pos, &ev, WSCLIENT_EV_PING);
	step(&r, buf, n, &pos, &ev, WSCLIENT_EV_FRAGMENT);
	step(&r, buf, n, &pos, &ev, WSCLIENT_EV_ERROR);
	ck_assert_int_eq(ev.error, GW_ETOOBIG);
	wsclient_reader_reset(&r);
}
END_TEST

/* wsclient_recv on the reader: a fragment that came before a timeout is
 * kept for the next call (it used to be dropped with the bytes consumed,
 * and the rest of the message then read as a bad fragmentation). */
START_TEST(test_recv_keeps_partial_message)
{
	struct wsclient *c;
	uint8_t buf[64];
	char *m = NULL;
	size_t n, len;
	int sv[2], op;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	c = wsclient_new_fd(sv[0]);
	n = put(buf, 0, WS_OP_TEXT, 0, "Hel", 3);
	ck_assert_int_eq(write(sv[1], buf, n), (ssize_t)n);
	ck_assert_int_eq(wsclient_recv(c, util_mono_ms() + 50, &m, &len,
				       &op), GW_ETIMEOUT);
	ck_assert_ptr_null(m);
	n = put(buf, 0, WS_OP_CONT, 1, "lo", 2);
	ck_assert_int_eq(write(sv[1], buf, n), (ssize_t)n);
	ck_assert_int_eq(wsclient_recv(c, util_mono_ms() + 5000, &m, &len,
				       &op), 0);
	ck_assert_str_eq(m, "Hello");
	ck_assert_int_eq(op, WS_OP_TEXT);
	free(m);
	/* an unknown opcode is named in the error */
	buf[0] = 0x8b;
	buf[1] = 0;
	ck_assert_int_eq(write(sv[1], buf, 2), 2);
	ck_assert_int_eq(wsclient_recv(c, util_mono_ms() + 5000, &m, &len,
				       &op), GW_EINVAL);
	ck_assert_str_eq(wsclient_error(c), "unknown opcode 11");
	wsclient_close(c, 0);
	close(sv[1]);
}
END_TEST

static Suite *wsclient_suite(void)
{
	Suite *s = suite_create("wsclient");
	TCase *tc = tcase_create("reader");

	tcase_add_test(tc, test_reader_sequence);
	tcase_add_test(tc, test_reader_need);
	tcase_add_test(tc, test_reader_errors);
	tcase_add_test(tc, test_recv_keeps_partial_message);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(wsclient_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
