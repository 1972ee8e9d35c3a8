/* Unit tests: device proof (payload vectors, key/signature decoding,
 * verification order), scope implication, the method -> scope table. */
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <openssl/evp.h>

#include "auth/device.h"
#include "auth/pairing.h"
#include "core/common.h"
#include "core/util.h"
#include "rpc/rpc.h"

static void proof_base(struct device_proof *p, json_t *scopes)
{
	memset(p, 0, sizeof(*p));
	p->id = "dev-1";
	p->client_id = "openclaw-macos";
	p->client_mode = "ui";
	p->role = "operator";
	p->scopes = scopes;
	p->signed_at = 1700000000000LL;
	p->nonce = "nonce-abc";
}

START_TEST(test_vectors)
{
	json_t *sc = json_pack("[s,s]", "operator.admin", "operator.read");
	json_t *sc2 = json_pack("[s]", "operator.read");
	struct device_proof p;
	char *s;

	proof_base(&p, sc);
	s = device_payload_v2(&p);
	ck_assert_str_eq(s, "v2|dev-1|openclaw-macos|ui|operator|"
			 "operator.admin,operator.read|1700000000000||"
			 "nonce-abc");
	free(s);
	p.token = "tok-123";
	p.platform = "  IOS  ";
	p.device_family = "  iPhone  ";
	s = device_payload_v3(&p);
	ck_assert_str_eq(s, "v3|dev-1|openclaw-macos|ui|operator|"
			 "operator.admin,operator.read|1700000000000|tok-123|"
			 "nonce-abc|ios|iphone");
	free(s);
	proof_base(&p, sc2);
	p.id = "dev-2";
	p.client_id = "openclaw-ios";
	p.signed_at = 1700000000001LL;
	p.nonce = "nonce-def";
	s = device_payload_v3(&p);
	ck_assert_str_eq(s, "v3|dev-2|openclaw-ios|ui|operator|operator.read|"
			 "1700000000001||nonce-def||");
	free(s);
	/* Non-ASCII is left alone by the ASCII-only lowercasing. */
	s = device_norm_meta(" \xc3\x84" "Bc ");
	ck_assert_str_eq(s, "\xc3\x84" "bc");
	free(s);
	json_decref(sc);
	json_decref(sc2);
}
END_TEST

START_TEST(test_key_decoding)
{
	static const char pem[] =
		"-----BEGIN PUBLIC KEY-----\n"
		"MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n"
		"-----END PUBLIC KEY-----\n";
	uint8_t raw[32], k[32], sig[64];
	char *b, id[65];

	memset(raw, 0x5a, sizeof(raw));
	b = util_b64url_encode(raw, 32);
	ck_assert_int_eq(device_pubkey_raw(b, k), 0);
	ck_assert(memcmp(raw, k, 32) == 0);
	free(b);
	b = util_b64url_encode(raw, 31);
	ck_assert_int_eq(device_pubkey_raw(b, k), -1);
	free(b);
	b = util_b64url_encode(raw, 32);
	b[3] = '*';
	ck_assert_int_eq(device_pubkey_raw(b, k), -1);
	free(b);
	ck_assert_int_eq(device_pubkey_raw("", k), -1);
	ck_assert_int_eq(device_pubkey_raw(pem, k), 0);
	device_id_of(k, id);
	ck_assert_int_eq(strlen(id), 64);
	ck_assert_int_eq(device_pubkey_raw("-----BEGIN PUBLIC KEY-----\n"
					   "AAAA\n-----END PUBLIC KEY-----\n",
					   k), -1);
	/* Signatures: 64 bytes, base64url or std base64. */
	memset(raw, 0xfb, sizeof(raw));
	b = util_b64url_encode((uint8_t[64]){0xfb, 0xff}, 64);
	ck_assert_int_eq(device_sig_decode(b, sig), 0);
	ck_assert_int_eq(sig[0], 0xfb);
	free(b);
	ck_assert_int_eq(device_sig_decode("+/8=", sig), -1);
	b = util_b64url_encode(raw, 32);
	ck_assert_int_eq(device_sig_decode(b, sig), -1);
	free(b);
	ck_assert_int_eq(device_sig_decode("!!!!", sig), -1);
	{
		char std[120];
		uint8_t s64[64];

		memset(s64, 0xfe, sizeof(s64));
		b = util_b64url_encode(s64, 64);
		snprintf(std, sizeof(std), "%s==", b);
		for (char *q = std; *q; q++) {
			if (*q == '-')
				*q = '+';
			if (*q == '_')
				*q = '/';
		}
		ck_assert_int_eq(device_sig_decode(std, sig), 0);
		ck_assert(memcmp(sig, s64, 64) == 0);
		free(b);
	}
}
END_TEST

/* Sign msg with pk (raw Ed25519). */
static char *sign_b64(EVP_PKEY *pk, const char *msg)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t sig[64];
	size_t n = 64;

	ck_assert(EVP_DigestSignInit(ctx, NULL, NULL, NULL, pk) == 1);
	ck_assert(EVP_DigestSign(ctx, sig, &n, (const uint8_t *)msg,
				 strlen(msg)) == 1);
	EVP_MD_CTX_free(ctx);
	return util_b64url_encode(sig, 64);
}

START_TEST(test_verify)
{
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	json_t *sc = json_pack("[s]", "operator.read");
	uint8_t pub[32], got[32];
	size_t n = 32;
	char id[65], *pubs, *msg, *sig;
	struct device_proof p;
	int64_t now = 1700000000000LL;

	ck_assert(EVP_PKEY_get_raw_public_key(pk, pub, &n) == 1);
	device_id_of(pub, id);
	pubs = util_b64url_encode(pub, 32);
	proof_base(&p, sc);
	p.id = id;
	p.public_key = pubs;
	p.platform = "Linux";
	p.signed_at = now;
	msg = device_payload_v3(&p);
	sig = sign_b64(pk, msg);
	free(msg);
	p.signature = sig;
	ck_assert_int_eq(device_verify(&p, "nonce-abc", now + 1000, got),
			 DEVICE_OK);
	ck_assert(memcmp(got, pub, 32) == 0);
	ck_assert_int_eq(device_verify(&p, "nonce-abc", now + 120000, NULL),
			 DEVICE_OK);
	ck_assert_int_eq(device_verify(&p, "nonce-abc", now + 120001, NULL),
			 DEVICE_SIG_EXPIRED);
	ck_assert_int_eq(device_verify(&p, "nonce-abc", now - 120001, NULL),
			 DEVICE_SIG_EXPIRED);
	ck_assert_int_eq(device_verify(&p, "other", now, NULL),
			 DEVICE_NONCE_MISMATCH);
	p.nonce = " ";
	ck_assert_int_eq(device_verify(&p, " ", now, NULL),
			 DEVICE_NONCE_REQUIRED);
	p.nonce = "nonce-abc";
	p.token = "tok";	/* not what was signed */
	ck_assert_int_eq(device_verify(&p, "nonce-abc", now, NULL),
			 DEVICE_SIG_INVALID);
	p.token = NULL;
	p.id = "0000";
	ck_assert_int_eq(device_verify(&p, "nonce-abc", now, NULL),
			 DEVICE_ID_MISMATCH);
	/* v2 accepted. */
	p.id = id;
	msg = device_payload_v2(&p);
	free(sig);
	sig = sign_b64(pk, msg);
	free(msg);
	p.signature = sig;
	ck_assert_int_eq(device_verify(&p, "nonce-abc", now, NULL), DEVICE_OK);
	{
		const char *m, *r, *c;

		device_fail_info(DEVICE_SIG_INVALID, &m, &r, &c);
		ck_assert_str_eq(m, "device signature invalid");
		ck_assert_str_eq(r, "device-signature");
		ck_assert_str_eq(c, "DEVICE_AUTH_SIGNATURE_INVALID");
		device_fail_info(DEVICE_PUBKEY_INVALID, &m, &r, &c);
		ck_assert_str_eq(c, "DEVICE_AUTH_PUBLIC_KEY_INVALID");
	}
	free(sig);
	free(pubs);
	json_decref(sc);
	EVP_PKEY_free(pk);
}
END_TEST

START_TEST(test_scope_implication)
{
	json_t *a = json_pack("[s]", "operator.admin");
	json_t *w = json_pack("[s]", "operator.write");

	ck_assert(rpc_scope_allows(SCOPE_ADMIN, SCOPE_PAIRING));
	ck_assert(rpc_scope_allows(SCOPE_WRITE, SCOPE_READ));
	ck_assert(rpc_scope_allows(SCOPE_WRITE, SCOPE_TALK));
	ck_assert(!rpc_scope_allows(SCOPE_READ, SCOPE_WRITE));
	ck_assert(!rpc_scope_allows(SCOPE_WRITE, SCOPE_APPROVALS));
	ck_assert(!rpc_scope_allows(SCOPE_PAIRING, SCOPE_READ));
	ck_assert(pairing_scope_covered(a, "operator.talk.secrets"));
	ck_assert(!pairing_scope_covered(a, "node.x"));
	ck_assert(pairing_scope_covered(w, "operator.read"));
	ck_assert(!pairing_scope_covered(w, "operator.pairing"));
	ck_assert_uint_eq(rpc_scope_bit("operator.questions"), SCOPE_QUESTIONS);
	ck_assert_uint_eq(rpc_scope_bit("operator.bogus"), 0);
	json_decref(a);
	json_decref(w);
}
END_TEST

/* Rows of the published map (protocol.schema.json 2026.9.1) for the
 * methods clawgate implements or gates specially. */
static const struct {
	const char *method, *published, *enforced;
} expected[] = {
	{"health", "operator.read", "operator.read"},
	{"status", "operator.read", "operator.read"},
	{"system-presence", "operator.read", "operator.read"},
	{"system-event", "operator.admin", "operator.admin"},
	{"last-heartbeat", "operator.read", "operator.read"},
	{"gateway.identity.get", "operator.read", "operator.read"},
	{"logs.tail", "operator.read", "operator.read"},
	{"device.pair.list", "operator.pairing", "operator.pairing"},
	{"device.pair.approve", "operator.pairing", "operator.pairing"},
	{"device.pair.reject", "operator.pairing", "operator.pairing"},
	{"device.pair.remove", "operator.pairing", "operator.pairing"},
	{"device.token.rotate", "operator.pairing", "operator.pairing"},
	{"device.token.revoke", "operator.pairing", "operator.pairing"},
	{"config.get", "operator.read", "operator.read"},
	{"config.schema", "operator.read", "operator.read"},
	{"config.set", "operator.admin", "operator.admin"},
	{"config.patch", "operator.admin", "operator.admin"},
	{"config.apply", "operator.admin", "operator.admin"},
	{"models.list", "operator.read", "operator.read"},
	{"agents.list", "operator.read", "operator.read"},
	{"sessions.list", "operator.read", "operator.read"},
	{"sessions.reset", "operator.admin", "operator.admin"},
	{"sessions.patch", "dynamic", "operator.write"},
	{"sessions.delete", "dynamic", "operator.admin"},
	{"chat.send", "operator.write", "operator.write"},
	{"chat.history", "operator.read", "operator.read"},
	{"chat.inject", "operator.admin", "operator.admin"},
	{"agent", "dynamic", "operator.write"},
	{"agent.wait", "operator.write", "operator.write"},
	{"wake", "operator.write", "operator.write"},
	{"node.list", "operator.read", "operator.read"},
	{"node.invoke", "dynamic", "operator.write"},
	{"node.invoke.result", "node", "node"},
	{"node.event", "node", "node"},
	{"exec.approval.list", "operator.approvals", "operator.approvals"},
	{"talk.speak", "operator.talk", "operator.talk"},
	{"question.list", "operator.questions", "operator.questions"},
	{"connect", "operator.admin", "operator.admin"},
};

START_TEST(test_scope_table)
{
	size_t i, n = rpc_scope_table_size();
	const char *name, *sc;

	ck_assert_uint_eq(n, 410);
	for (i = 1; i < n; i++)
		ck_assert_msg(strcmp(rpc_scope_table_name(i - 1),
				     rpc_scope_table_name(i)) < 0,
			      "scope table not sorted at %s",
			      rpc_scope_table_name(i));
	for (i = 0; i < ARRAY_SIZE(expected); i++) {
		sc = rpc_method_published_scope(expected[i].method);
		ck_assert_msg(sc && strcmp(sc, expected[i].published) == 0,
			      "%s: published %s", expected[i].method,
			      sc ? sc : "(none)");
		ck_assert_str_eq(rpc_method_scope(expected[i].method),
				 expected[i].enforced);
	}
	/* Every implemented method has a scope; a published one is the
	 * published scope (or the dynamic minimum). */
	for (i = 0; i < rpc_method_count(); i++) {
		name = rpc_method_name(i);
		sc = rpc_method_scope(name);
		ck_assert_msg(sc && *sc, "%s has no scope", name);
		if (rpc_method_published_scope(name) &&
		    strcmp(rpc_method_published_scope(name), "dynamic") != 0)
			ck_assert_str_eq(sc, rpc_method_published_scope(name));
	}
	/* One truth: where a group table names a scope, it is the one the
	 * scope table enforces. */
	for (i = 0; i < rpc_method_count(); i++) {
		const char *g;

		name = rpc_method_name(i);
		g = rpc_method_group_scope(name);
		if (g && rpc_method_published_scope(name))
			ck_assert_msg(strcmp(g, rpc_method_scope(name)) == 0,
				      "%s: group table says %s, scope table "
				      "%s", name, g, rpc_method_scope(name));
	}
	ck_assert_str_eq(rpc_method_scope("no.such.method"), "operator.admin");
	ck_assert_ptr_null(rpc_method_published_scope("no.such.method"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("device");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int nf;

	tcase_add_test(tc, test_vectors);
	tcase_add_test(tc, test_key_decoding);
	tcase_add_test(tc, test_verify);
	tcase_add_test(tc, test_scope_implication);
	tcase_add_test(tc, test_scope_table);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
