/* Unit tests for the channel subsystem's pure parts: the IRC line parser,
 * the sanitiser, Markdown rendering, the 512-byte splitter and the access
 * policy table. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel/channel-policy.h"
#include "channel/irc-line.h"
#include "store/store-channels.h"

/* ---- line parser ---------------------------------------------------------- */

START_TEST(test_parse_full)
{
	char line[] = "@time=2026-01-01T00:00:00Z :alice!~a@host PRIVMSG "
		      "#room :hello there :)";
	struct irc_msg m;

	ck_assert_int_eq(irc_line_parse(line, &m), 0);
	ck_assert_str_eq(m.tags, "time=2026-01-01T00:00:00Z");
	ck_assert_str_eq(m.prefix, "alice!~a@host");
	ck_assert_str_eq(m.command, "PRIVMSG");
	ck_assert_int_eq(m.nparams, 2);
	ck_assert_str_eq(m.params[0], "#room");
	ck_assert_str_eq(m.params[1], "hello there :)");
}
END_TEST

START_TEST(test_parse_shapes)
{
	struct irc_msg m;
	char a[] = "PING :irc.test";
	char b[] = ":srv 001 bot :Welcome";
	char c[] = "ping x";
	char d[] = ":srv 353 bot = #r :a b c";
	char e[] = "CAP * LS :multi-prefix sasl";
	char f[] = ":srv NOTICE *   :spaces  ";

	ck_assert_int_eq(irc_line_parse(a, &m), 0);
	ck_assert_ptr_null(m.prefix);
	ck_assert_str_eq(m.command, "PING");
	ck_assert_str_eq(m.params[0], "irc.test");
	ck_assert_int_eq(irc_line_parse(b, &m), 0);
	ck_assert_str_eq(m.command, "001");
	ck_assert_str_eq(m.params[1], "Welcome");
	ck_assert_int_eq(irc_line_parse(c, &m), 0);
	ck_assert_str_eq(m.command, "PING");	/* upper-cased */
	ck_assert_int_eq(irc_line_parse(d, &m), 0);
	ck_assert_int_eq(m.nparams, 4);
	ck_assert_str_eq(m.params[3], "a b c");
	ck_assert_int_eq(irc_line_parse(e, &m), 0);
	ck_assert_str_eq(m.params[2], "multi-prefix sasl");
	ck_assert_int_eq(irc_line_parse(f, &m), 0);
	ck_assert_int_eq(m.nparams, 2);
	ck_assert_str_eq(m.params[1], "spaces  ");
}
END_TEST

START_TEST(test_parse_malformed)
{
	static const char *const bad[] = {
		"", ":", ":onlyprefix", "@tags", "@tags :p", ":p ", "12 x",
		"PR1VMSG x", "1234 x", ": PRIVMSG x",
		"PRIVMSG a\rb",
	};
	struct irc_msg m;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *s = strdup(bad[i]);

		ck_assert_msg(irc_line_parse(s, &m) == -1, "%s", bad[i]);
		free(s);
	}
}
END_TEST

START_TEST(test_parse_param_cap)
{
	char line[300] = "CMD";
	struct irc_msg m;

	for (int i = 0; i < 20; i++)
		strcat(line, " p");
	ck_assert_int_eq(irc_line_parse(line, &m), 0);
	ck_assert_int_eq(m.nparams, IRC_PARAMS_MAX);
	/* the last parameter keeps the rest of the line */
	ck_assert_str_eq(m.params[IRC_PARAMS_MAX - 1], "p p p p p p");
}
END_TEST

START_TEST(test_nick_and_case)
{
	char n[8];

	ck_assert_uint_eq(irc_line_nick("alice!~a@h", n, sizeof(n)), 5);
	ck_assert_str_eq(n, "alice");
	ck_assert_uint_eq(irc_line_nick("verylongnick!u@h", n, sizeof(n)), 7);
	ck_assert_uint_eq(irc_line_nick(NULL, n, sizeof(n)), 0);
	ck_assert_int_eq(irc_line_casecmp("Bot[1]", "bot{1}"), 0);
	ck_assert_int_ne(irc_line_casecmp("bot", "bots"), 0);
	ck_assert(irc_line_is_channel("#a") && irc_line_is_channel("&b"));
	ck_assert(!irc_line_is_channel("nick"));
}
END_TEST

/* ---- sanitiser -------------------------------------------------------------- */

START_TEST(test_sanitize)
{
	char a[] = "\x03" "04,12red\x03 \x02" "bold\x02 \x1fu\x1f\x0f\tx";
	char b[] = "ok \xff\xfe caf\xc3\xa9 \xe2\x82";
	char c[] = "\x04" "ff0000hex\x04 \x16rev\x1d";
	char d[] = "\x03" "5x\x03,y";

	irc_line_sanitize(a);
	ck_assert_str_eq(a, "red bold u x");
	irc_line_sanitize(b);
	ck_assert_str_eq(b, "ok ?? caf\xc3\xa9 ??");
	ck_assert(irc_line_utf8_valid(b, strlen(b)));
	irc_line_sanitize(c);
	ck_assert_str_eq(c, "hex rev");
	irc_line_sanitize(d);
	ck_assert_str_eq(d, "x,y");
	ck_assert(!irc_line_utf8_valid("\xed\xa0\x80", 3));	/* surrogate */
	ck_assert(!irc_line_utf8_valid("\xc0\xaf", 2));	/* overlong */
}
END_TEST

/* ---- Markdown and splitting ------------------------------------------------- */

START_TEST(test_markdown)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "**bold** and *it* and __u__", "bold and it and u" },
		{ "# Title\n## Sub", "Title\nSub" },
		{ "see [docs](https://x.y/z) now",
		  "see docs (https://x.y/z) now" },
		{ "[https://a.b](https://a.b)", "https://a.b" },
		{ "use `a*b*c` here", "use a*b*c here" },
		{ "```c\nint *p = **q;\n```\nafter", "int *p = **q;\nafter" },
		{ "* item\n- other", "* item\n- other" },
		{ "2 * 3 = 6", "2 * 3 = 6" },
		{ "> quoted", "quoted" },
		{ "snake_case_name", "snake_case_name" },
		{ "~~gone~~", "gone" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *o = irc_line_markdown(cases[i].in);

		ck_assert_msg(strcmp(o, cases[i].out) == 0, "%s -> [%s]",
			      cases[i].in, o);
		free(o);
	}
}
END_TEST

static size_t count_words(const char *s)
{
	size_t n = 0;
	int in = 0;

	for (; *s; s++) {
		if (*s == ' ' || *s == '\n')
			in = 0;
		else if (!in) {
			in = 1;
			n++;
		}
	}
	return n;
}

START_TEST(test_split_words)
{
	char text[8192] = "";
	char **v = NULL;
	size_t n, i, total = 0;

	for (i = 0; i < 300; i++) {
		char w[32];

		snprintf(w, sizeof(w), "%sw%03zu-\xc3\xa9t\xc3\xa9",
			 i ? " " : "", i);
		strcat(text, w);
	}
	n = irc_line_split(text, 100, &v);
	ck_assert_uint_gt(n, 10);
	for (i = 0; i < n; i++) {
		ck_assert_uint_le(strlen(v[i]), 100);
		ck_assert(irc_line_utf8_valid(v[i], strlen(v[i])));
		ck_assert(v[i][0] != ' ');
		total += count_words(v[i]);
	}
	ck_assert_uint_eq(total, 300);
	irc_line_strv_free(v);
}
END_TEST

START_TEST(test_split_utf8_no_spaces)
{
	char text[4000] = "";
	char **v = NULL;
	size_t n, i, len = 0;

	for (i = 0; i < 500; i++)
		strcat(text, "\xe2\x82\xac");	/* euro sign, 3 bytes */
	n = irc_line_split(text, 100, &v);
	for (i = 0; i < n; i++) {
		ck_assert_uint_le(strlen(v[i]), 100);
		ck_assert(irc_line_utf8_valid(v[i], strlen(v[i])));
		len += strlen(v[i]);
	}
	ck_assert_uint_eq(len, 1500);
	irc_line_strv_free(v);
}
END_TEST

START_TEST(test_split_newlines_and_empty)
{
	char **v = NULL;
	size_t n = irc_line_split("one\n\n  \ntwo  \nthree", 50, &v);

	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(v[0], "one");
	ck_assert_str_eq(v[1], "two");
	ck_assert_str_eq(v[2], "three");
	ck_assert_ptr_null(v[3]);
	irc_line_strv_free(v);
	n = irc_line_split("   \n\n", 50, &v);
	ck_assert_uint_eq(n, 0);
	irc_line_strv_free(v);
}
END_TEST

START_TEST(test_budget)
{
	/* ":bot!~bot@host PRIVMSG #r :" + text + CRLF fits 512 */
	size_t b = irc_line_budget("bot", strlen("~bot@host"), "PRIVMSG",
				   "#r");

	ck_assert_uint_eq(b + strlen(":bot!~bot@host PRIVMSG #r :") + 2,
			  512);
}
END_TEST

/* ---- policy table ------------------------------------------------------------ */

struct policy_case {
	const char *acct;	/* JSON */
	int is_dm;
	const char *sender, *target, *text;
	int paired;
	enum channel_verdict want;
	const char *reason;
};

static const struct policy_case policy_cases[] = {
	/* DMs */
	{ "{}", 1, "a!u@h", NULL, "hi", 0, CHANNEL_PAIR,
	  "dmPolicy=pairing" },
	{ "{}", 1, "a!u@h", NULL, "hi", 1, CHANNEL_ACCEPT, "" },
	{ "{\"allowFrom\":[\"a!u@h\"]}", 1, "A!U@H", NULL, "hi", 0,
	  CHANNEL_ACCEPT, "" },
	{ "{\"allowFrom\":[\"a!*@*\"]}", 1, "a!x@y", NULL, "hi", 0,
	  CHANNEL_ACCEPT, "" },
	{ "{\"allowFrom\":[\"irc:a!u@h\"]}", 1, "a!u@h", NULL, "hi", 0,
	  CHANNEL_ACCEPT, "" },
	{ "{\"allowFrom\":[\"a\"]}", 1, "a!u@h", NULL, "hi", 0,
	  CHANNEL_PAIR, "dmPolicy=pairing" },
	{ "{\"allowFrom\":[\"a\"],\"dangerouslyAllowNameMatching\":true}",
	  1, "a!u@h", NULL, "hi", 0, CHANNEL_ACCEPT, "" },
	{ "{\"dmPolicy\":\"allowlist\"}", 1, "a!u@h", NULL, "hi", 1,
	  CHANNEL_DROP, "dmPolicy=allowlist" },
	{ "{\"dmPolicy\":\"open\",\"allowFrom\":[\"*\"]}", 1, "z!u@h", NULL,
	  "hi", 0, CHANNEL_ACCEPT, "" },
	{ "{\"dmPolicy\":\"open\",\"allowFrom\":[\"b!u@h\"]}", 1, "z!u@h",
	  NULL, "hi", 0, CHANNEL_DROP, "dmPolicy=open" },
	{ "{\"dmPolicy\":\"disabled\",\"allowFrom\":[\"*\"]}", 1, "a!u@h",
	  NULL, "hi", 1, CHANNEL_DROP, "dmPolicy=disabled" },
	/* groups */
	{ "{}", 0, "a!u@h", "#r", "bot: hi", 0, CHANNEL_DROP,
	  "channel-not-allowed" },
	{ "{\"groups\":{\"#r\":{}}}", 0, "a!u@h", "#r", "bot: hi", 0,
	  CHANNEL_DROP, "policy=allowlist" },
	{ "{\"groups\":{\"#R\":{\"allowFrom\":[\"*\"]}}}", 0, "a!u@h", "#r",
	  "hello", 0, CHANNEL_DROP, "missing-mention" },
	{ "{\"groups\":{\"#r\":{\"allowFrom\":[\"*\"]}}}", 0, "a!u@h", "#r",
	  "hey Bot, hi", 0, CHANNEL_ACCEPT, "" },
	{ "{\"groups\":{\"#r\":{\"allowFrom\":[\"*\"]}}}", 0, "a!u@h", "#r",
	  "botany", 0, CHANNEL_DROP, "missing-mention" },
	{ "{\"groups\":{\"#r\":{\"allowFrom\":[\"*\"],"
	  "\"requireMention\":false}}}", 0, "a!u@h", "#r", "hello", 0,
	  CHANNEL_ACCEPT, "" },
	{ "{\"groups\":{\"#r\":{\"enabled\":false,\"allowFrom\":[\"*\"]}}}",
	  0, "a!u@h", "#r", "bot hi", 0, CHANNEL_DROP, "channel-disabled" },
	{ "{\"groupAllowFrom\":[\"a!u@h\"],\"groups\":{\"#r\":{}}}", 0,
	  "a!u@h", "#r", "bot hi", 0, CHANNEL_ACCEPT, "" },
	{ "{\"groupAllowFrom\":[\"a!u@h\"],\"groups\":{\"#r\":{}}}", 0,
	  "b!u@h", "#r", "bot hi", 0, CHANNEL_DROP, "policy=allowlist" },
	{ "{\"groupPolicy\":\"open\"}", 0, "a!u@h", "#any", "bot hi", 0,
	  CHANNEL_ACCEPT, "" },
	{ "{\"groupPolicy\":\"open\"}", 0, "a!u@h", "#any", "hi", 0,
	  CHANNEL_DROP, "missing-mention" },
	{ "{\"groupPolicy\":\"open\",\"groups\":{\"*\":"
	  "{\"requireMention\":false}}}", 0, "a!u@h", "#any", "hi", 0,
	  CHANNEL_ACCEPT, "" },
	{ "{\"groupPolicy\":\"disabled\",\"groups\":{\"#r\":"
	  "{\"allowFrom\":[\"*\"]}}}", 0, "a!u@h", "#r", "bot hi", 0,
	  CHANNEL_DROP, "groupPolicy=disabled" },
	{ "{\"groupPolicy\":\"open\",\"mentionPatterns\":[\"^hey (ai|you)\"]}",
	  0, "a!u@h", "#any", "hey you there", 0, CHANNEL_ACCEPT, "" },
	/* a DM pairing approval grants no group access */
	{ "{\"groups\":{\"#r\":{}}}", 0, "a!u@h", "#r", "bot hi", 1,
	  CHANNEL_DROP, "policy=allowlist" },
};

START_TEST(test_policy_table)
{
	const struct policy_case *pc = &policy_cases[_i];
	struct channel_policy_in in = { 0 };
	json_t *acct = json_loads(pc->acct, 0, NULL);
	const char *reason = NULL;
	char nick[32];

	ck_assert_ptr_nonnull(acct);
	irc_line_nick(pc->sender, nick, sizeof(nick));
	in.acct = acct;
	in.is_dm = pc->is_dm;
	in.sender = pc->sender;
	in.nick = nick;
	in.target = pc->target ? pc->target : nick;
	in.text = pc->text;
	in.bot_nick = "bot";
	in.paired = pc->paired;
	ck_assert_msg(channel_policy_decide(&in, &reason) == pc->want,
		      "case %d: %s", _i, pc->acct);
	ck_assert_str_eq(reason, pc->reason);
	json_decref(acct);
}
END_TEST

START_TEST(test_policy_access_groups)
{
	json_t *root = json_loads("{\"accessGroups\":{\"ops\":{\"type\":"
		"\"message.senders\",\"members\":{\"irc\":[\"op!*@*\"],"
		"\"telegram\":[\"123\"]}},\"other\":{\"type\":\"x\","
		"\"members\":{\"irc\":[\"*\"]}}}}", 0, NULL);
	json_t *acct = json_loads("{\"dmPolicy\":\"allowlist\",\"allowFrom\":"
		"[\"accessGroup:ops\",\"accessGroup:other\","
		"\"accessGroup:none\"]}", 0, NULL);
	struct channel_policy_in in = { 0 };
	const char *reason;

	ck_assert_ptr_nonnull(root);
	ck_assert_ptr_nonnull(acct);
	in.acct = acct;
	in.root = root;
	in.is_dm = 1;
	in.sender = "op!~op@host";
	in.nick = "op";
	in.text = "hi";
	in.bot_nick = "bot";
	ck_assert_int_eq(channel_policy_decide(&in, &reason), CHANNEL_ACCEPT);
	in.sender = "eve!~e@host";
	in.nick = "eve";
	ck_assert_int_eq(channel_policy_decide(&in, &reason), CHANNEL_DROP);
	ck_assert_str_eq(reason, "dmPolicy=allowlist");
	json_decref(acct);
	json_decref(root);
}
END_TEST

START_TEST(test_pairing_code)
{
	char c[STORE_CHANNELS_CODE_LEN + 1];

	for (int i = 0; i < 200; i++) {
		store_channels_code(c);
		ck_assert_uint_eq(strlen(c), 8);
		ck_assert_ptr_null(strpbrk(c, "01OI"));
		for (int j = 0; j < 8; j++)
			ck_assert(strchr(STORE_CHANNELS_ALPHABET, c[j]));
	}
}
END_TEST

static Suite *channel_suite(void)
{
	Suite *s = suite_create("channel");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_parse_full);
	tcase_add_test(tc, test_parse_shapes);
	tcase_add_test(tc, test_parse_malformed);
	tcase_add_test(tc, test_parse_param_cap);
	tcase_add_test(tc, test_nick_and_case);
	tcase_add_test(tc, test_sanitize);
	tcase_add_test(tc, test_markdown);
	tcase_add_test(tc, test_split_words);
	tcase_add_test(tc, test_split_utf8_no_spaces);
	tcase_add_test(tc, test_split_newlines_and_empty);
	tcase_add_test(tc, test_budget);
	tcase_add_loop_test(tc, test_policy_table, 0,
			    sizeof(policy_cases) / sizeof(policy_cases[0]));
	tcase_add_test(tc, test_policy_access_groups);
	tcase_add_test(tc, test_pairing_code);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(channel_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
