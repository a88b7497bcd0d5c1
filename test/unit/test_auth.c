/*
 * test_auth.c — the auth chain (daemon/auth.c) against doc/auth-chain.md.
 *
 * Three sources of truth, in this order: the golden vectors made by the official client
 * libraries (auth_vectors.json: keys, addresses, personal-sign signatures, frames that must
 * pass or fail), frames this file signs itself with auth_personal_sign to reach every branch
 * of the algorithm, and hostile bytes that must be refused without a crash. The clock is
 * always injected; nothing here depends on the wall clock.
 *
 * The vectors directory is $SOCIAL_VECTORS, else test/vectors (made by test/vectors/generate.js)
 * found from the repository root, daemon/ or test/unit/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include <cmocka.h>
#include <jansson.h>

#include "door/auth.h"

#define WINDOW 300000
#define TS 1767225600000LL
#define TS_STR "1767225600000"
#define PAYLOAD "get:/:" TS_STR ":{}"
#define EXPIRATION "2030-01-01T00:00:00.000Z"
#define EXPIRATION_MS 1893456000000LL

/* The vectors' identities, spelled as the clients spell them (EIP-55). */
#define OWNER "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
#define OWNER_LOWER "0x2c7536e3605d9c16a7a3d7b1898e529396a65c23"
#define EPH "0xFCAd0B19bB29D4674531d6f115237E16AfCE377c"
#define EPH_MSG_FOR(address, exp) \
	"Decentraland Login\nEphemeral address: " address "\nExpiration: " exp
#define EPH_MSG EPH_MSG_FOR(EPH, EXPIRATION)

#define MAX_FRAME AUTH_FRAME_MAX /* the largest frame auth_verify reads (auth.h) */

static json_t *vectors; /* auth_vectors.json */
static uint8_t owner_key[32];
static uint8_t eph_key[32];
static uint8_t other_key[32];

/*
 * Helpers.
 */
static json_t *
vectors_load(const char *file)
{
	static const char *const fallbacks[] = {
		"test/vectors",
		"../test/vectors",
		"../vectors",
	};
	const char	*env = getenv("SOCIAL_VECTORS");
	char		 path[4096];
	json_error_t error;
	json_t		*doc;

	if (env != NULL && env[0] != '\0')
	{
		snprintf(path, sizeof(path), "%s/%s", env, file);
		doc = json_load_file(path, 0, &error);
		if (doc == NULL)
			fprintf(stderr, "cannot load %s: %s\n", path, error.text);
		return doc;
	}
	for (size_t i = 0; i < sizeof(fallbacks) / sizeof(fallbacks[0]); i++)
	{
		snprintf(path, sizeof(path), "%s/%s", fallbacks[i], file);
		doc = json_load_file(path, 0, &error);
		if (doc != NULL)
			return doc;
	}
	fprintf(stderr, "cannot find %s: set SOCIAL_VECTORS to the vectors directory\n", file);
	return NULL;
}

static const char *
vector_string(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	if (s == NULL)
		fail_msg("vector field %s is missing or not a string", key);
	return s;
}

static int64_t
vector_int(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v))
		fail_msg("vector field %s is missing or not an integer", key);
	return (int64_t) json_integer_value(v);
}

static void
lower_in_place(char *s)
{
	for (; *s; s++)
	{
		if (*s >= 'A' && *s <= 'Z')
			*s = (char) (*s - 'A' + 'a');
	}
}

static void
sig_to_hex(const uint8_t sig[65], char out[133])
{
	out[0] = '0';
	out[1] = 'x';
	for (int i = 0; i < 65; i++)
		sprintf(out + 2 + 2 * i, "%02x", sig[i]);
}

static void
sign_hex(const uint8_t *key, const char *msg, char out[133])
{
	uint8_t sig[65];

	assert_int_equal(auth_personal_sign(key, msg, strlen(msg), sig), 0);
	sig_to_hex(sig, out);
}

static void
sig_from_hex(const char *hex, uint8_t sig[65])
{
	assert_int_equal(strlen(hex), 132);
	for (int i = 0; i < 65; i++)
	{
		unsigned int b;

		assert_int_equal(sscanf(hex + 2 + 2 * i, "%2x", &b), 1);
		sig[i] = (uint8_t) b;
	}
}

/* Verifies from an exact-size heap copy (no NUL after it), so any over-read is caught by
 * ASan/valgrind; binary and text frames are the same bytes to auth_verify. */
static AuthStatus
verify_window(const char *frame, size_t len, int64_t now, int64_t window, char *address)
{
	AuthOptions opt = {.now_ms = now, .timestamp_window_ms = window};
	char	   *copy = malloc(len > 0 ? len : 1);
	AuthStatus	status;

	assert_non_null(copy);
	memcpy(copy, frame, len);
	status = auth_verify(copy, len, &opt, address);
	free(copy);
	return status;
}

static void
expect_status_at(const char *what, const char *frame, int64_t now, AuthStatus want)
{
	char	   address[ADDRESS_LEN + 1];
	AuthStatus got;

	assert_non_null(frame);
	got = verify_window(frame, strlen(frame), now, WINDOW, address);
	if (got != want)
		fail_msg("%s: got %s, want %s", what, auth_status_name(got), auth_status_name(want));
	if (want == AUTH_OK)
		assert_string_equal(address, OWNER_LOWER);
	else
		assert_string_equal(address, "");
}

/* One link of a frame under construction. */
typedef struct LinkSpec
{
	const char	  *type;
	const char	  *payload;
	const uint8_t *key;			/* when set, signs signed_text (default: payload) */
	const char	  *signature;	/* used as is when key is NULL; NULL means "" */
	const char	  *signed_text; /* what key signs when it is not the payload */
} LinkSpec;

static json_t *
link_value(const LinkSpec *spec)
{
	char	sig[133] = "";
	json_t *link;
	char   *text;
	json_t *value;

	if (spec->key != NULL)
		sign_hex(spec->key, spec->signed_text ? spec->signed_text : spec->payload, sig);
	link = json_pack("{s:s, s:s, s:s}", "type", spec->type, "payload", spec->payload, "signature",
					 spec->key != NULL ? sig : (spec->signature ? spec->signature : ""));
	assert_non_null(link);
	text = json_dumps(link, JSON_COMPACT);
	assert_non_null(text);
	value = json_string(text);
	free(text);
	json_decref(link);
	return value;
}

static void
headers_set_link(json_t *headers, int index, json_t *value)
{
	char key[40];

	snprintf(key, sizeof(key), "x-identity-auth-chain-%d", index);
	assert_int_equal(json_object_set_new(headers, key, value), 0);
}

static json_t *
headers_make(const LinkSpec *links, int n, const char *ts, const char *meta)
{
	json_t *headers = json_object();

	for (int i = 0; i < n; i++)
		headers_set_link(headers, i, link_value(&links[i]));
	if (ts != NULL)
		json_object_set_new(headers, "x-identity-timestamp", json_string(ts));
	if (meta != NULL)
		json_object_set_new(headers, "x-identity-metadata", json_string(meta));
	return headers;
}

static char *
headers_dump(json_t *headers)
{
	char *text = json_dumps(headers, JSON_COMPACT);

	assert_non_null(text);
	json_decref(headers);
	return text;
}

/* malloc'd frame; ts and meta NULL mean the header is absent. */
static char *
frame_make(const LinkSpec *links, int n, const char *ts, const char *meta)
{
	return headers_dump(headers_make(links, n, ts, meta));
}

/* The usual three links, owner → ephemeral → payload. */
static char *
frame_standard(const char *payload, const char *ts, const char *meta)
{
	const LinkSpec links[] = {
		{"SIGNER", OWNER, NULL, ""},
		{"ECDSA_EPHEMERAL", EPH_MSG, owner_key},
		{"ECDSA_SIGNED_ENTITY", payload, eph_key},
	};

	return frame_make(links, 3, ts, meta);
}

static int
group_setup(void **state)
{
	vectors = vectors_load("auth_vectors.json");
	if (vectors == NULL)
		return -1;
	if (auth_parse_key(vector_string(json_object_get(vectors, "owner"), "privateKey"), owner_key) <
			0 ||
		auth_parse_key(vector_string(json_object_get(vectors, "ephemeral"), "privateKey"),
					   eph_key) < 0)
		return -1;
	memset(other_key, 0x11, sizeof(other_key));
	return 0;
}

static int
group_teardown(void **state)
{
	json_decref(vectors);
	return 0;
}

/*
 * Keys, addresses, signatures.
 */
static void
test_parse_key(void **state)
{
	static const char hex64[] = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
	static const struct
	{
		const char *text;
		int			rc;
	} cases[] = {
		{"0x"
		 "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318",
		 0},
		{"4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318", 0},
		{"0x4C0883A69102937D6231471B5DBB6204FE5129617082792AE468D01A3F362318", 0},
		{"0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f36231", -1},
		{"0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f3623181", -1},
		{"0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f36231g", -1},
		{"0X4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318", -1},
		{" 4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f36231", -1},
		{"0x", -1},
		{"", -1},
	};
	uint8_t expected[32];
	uint8_t key[32];

	for (int i = 0; i < 32; i++)
	{
		unsigned int b;

		assert_int_equal(sscanf(hex64 + 2 * i, "%2x", &b), 1);
		expected[i] = (uint8_t) b;
	}
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
	{
		memset(key, 0xAA, sizeof(key));
		if (auth_parse_key(cases[c].text, key) != cases[c].rc)
			fail_msg("auth_parse_key(\"%s\") != %d", cases[c].text, cases[c].rc);
		if (cases[c].rc == 0)
			assert_memory_equal(key, expected, sizeof(key));
	}
	assert_int_equal(auth_parse_key(NULL, key), -1);
}

static void
test_address_from_key(void **state)
{
	static const char *const who[] = {"owner", "ephemeral"};
	/* secp256k1's group order n: not a valid private key, nor is 0. */
	static const uint8_t order[32] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
									  0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE,
									  0xBA, 0xAE, 0xDC, 0xE6, 0xAF, 0x48, 0xA0, 0x3B,
									  0xBF, 0xD2, 0x5E, 0x8C, 0xD0, 0x36, 0x41, 0x41};
	static const uint8_t zero[32];
	char				 address[ADDRESS_LEN + 1];

	for (size_t w = 0; w < 2; w++)
	{
		json_t *id = json_object_get(vectors, who[w]);
		uint8_t key[32];
		char	expected[ADDRESS_LEN + 1];

		assert_int_equal(auth_parse_key(vector_string(id, "privateKey"), key), 0);
		assert_int_equal(auth_address_from_key(key, address), 0);
		snprintf(expected, sizeof(expected), "%s", vector_string(id, "address"));
		lower_in_place(expected);
		assert_string_equal(address, expected);
	}
	assert_int_equal(auth_address_from_key(zero, address), -1);
	assert_int_equal(auth_address_from_key(order, address), -1);
}

/* RFC 6979 makes personal_sign deterministic: the vectors' signatures come out byte for byte. */
static void
test_personal_sign_vectors(void **state)
{
	json_t *list = json_object_get(vectors, "personalSign");
	size_t	i;
	json_t *item;
	char	owner[ADDRESS_LEN + 1];

	assert_int_equal(auth_address_from_key(owner_key, owner), 0);
	assert_true(json_array_size(list) >= 2);
	json_array_foreach(list, i, item)
	{
		char recovers[ADDRESS_LEN + 1];
		char expected[133];
		char sig[133];

		snprintf(recovers, sizeof(recovers), "%s", vector_string(item, "recovers"));
		lower_in_place(recovers);
		snprintf(expected, sizeof(expected), "%s", vector_string(item, "signature"));
		lower_in_place(expected);
		sign_hex(strcmp(recovers, owner) == 0 ? owner_key : eph_key, vector_string(item, "message"),
				 sig);
		assert_string_equal(sig, expected);
	}
	assert_int_equal(auth_personal_sign(owner_key, NULL, 5, (uint8_t[65]){0}), -1);
}

/*
 * The golden frames.
 */
static void
test_vector_frames_pass(void **state)
{
	static const char *const names[] = {"authMessage", "authMessageUnityStyleExpiration",
										"authMessageLowercaseAddresses"};

	for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); n++)
	{
		json_t	   *v = json_object_get(vectors, names[n]);
		const char *frame = vector_string(v, "json");
		char		address[ADDRESS_LEN + 1];
		AuthStatus	got;

		assert_non_null(v);
		got = verify_window(frame, strlen(frame), vector_int(v, "verifyNowMs"), WINDOW, address);
		if (got != AUTH_OK)
			fail_msg("%s: %s", names[n], auth_status_name(got));
		assert_string_equal(address, vector_string(v, "expectedUser"));
	}
}

/* Each mustReject case fails; where its `why` names the fault, the status must name it too.
 * The expired-ephemeral case is dated past its own timestamp's window, and the reference
 * checks the timestamp first, so both statuses are legitimate for it. */
static void
test_vector_frames_reject(void **state)
{
	static const struct
	{
		const char *why_contains;
		AuthStatus	allowed[2];
	} expectations[] = {
		{"timestamp outside", {AUTH_BAD_TIMESTAMP, AUTH_BAD_TIMESTAMP}},
		{"signature altered", {AUTH_WRONG_SIGNER, AUTH_BAD_SIGNATURE}},
		{"metadata header not the signed one", {AUTH_PAYLOAD_MISMATCH, AUTH_PAYLOAD_MISMATCH}},
		{"ephemeral key expired", {AUTH_BAD_TIMESTAMP, AUTH_EPHEMERAL_EXPIRED}},
		{"only one link", {AUTH_BAD_CHAIN, AUTH_BAD_CHAIN}},
		{"first link is not SIGNER", {AUTH_BAD_CHAIN, AUTH_BAD_CHAIN}},
	};
	json_t *list = json_object_get(vectors, "mustReject");
	size_t	i;
	json_t *item;

	assert_true(json_array_size(list) >= 6);
	json_array_foreach(list, i, item)
	{
		const char *why = vector_string(item, "why");
		const char *frame = vector_string(item, "json");
		char		address[ADDRESS_LEN + 1];
		AuthStatus	got =
			verify_window(frame, strlen(frame), vector_int(item, "verifyNowMs"), WINDOW, address);

		if (got == AUTH_OK)
			fail_msg("mustReject \"%s\" was accepted", why);
		for (size_t e = 0; e < sizeof(expectations) / sizeof(expectations[0]); e++)
		{
			if (strstr(why, expectations[e].why_contains) == NULL)
				continue;
			if (got != expectations[e].allowed[0] && got != expectations[e].allowed[1])
				fail_msg("mustReject \"%s\": got %s", why, auth_status_name(got));
		}
	}
}

/*
 * auth_build_frame.
 */

/* Same keys, timestamp and expiration as the lower-case-address vector, and RFC 6979: the
 * frame must be that vector byte for byte, and verify. */
static void
test_build_frame_matches_vector(void **state)
{
	json_t *v = json_object_get(vectors, "authMessageLowercaseAddresses");
	char   *frame = auth_build_frame(owner_key, eph_key, TS, EXPIRATION);

	assert_non_null(frame);
	assert_string_equal(frame, vector_string(v, "json"));
	expect_status_at("built frame", frame, TS, AUTH_OK);
	free(frame);
}

/* parseDate through the public API: each expiration holds until exactly its instant. */
static void
test_build_frame_expirations(void **state)
{
	static const struct
	{
		const char *expiration;
		int64_t		ms;
	} cases[] = {
		{"2030-01-01T00:00:00.000Z", 1893456000000LL}, /* @dcl/crypto toISOString */
		{"2030-01-01T00:00:00", 1893456000000LL},	   /* unity-explorer: no zone is UTC */
		{"2030-01-01T00:00:00Z", 1893456000000LL},
		{"2030-01-01T01:30:00+01:30", 1893456000000LL},
		{"2029-12-31T19:00:00-05:00", 1893456000000LL},
		{"2030-01-01T00:00:00.5Z", 1893456000500LL}, /* V8: .5 is 500 ms */
		{"2030-01-01T00:00:00.12", 1893456000120LL},
		{"2030-01-01T00:00:00.123456Z", 1893456000123LL}, /* V8: digits past ms dropped */
		{"2029-12-31T24:00:00Z", 1893456000000LL},		  /* 24:00 is the next midnight */
		{"2030-02-31T00:00:00Z", 1898726400000LL},		  /* V8 rolls into March 3 */
		{"2000-02-29T12:00:00Z", 951825600000LL},
		{"1969-12-31T23:59:59.999Z", -1LL},
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
	{
		/* A timestamp one ms before expiry keeps both instants inside the window. */
		char *frame = auth_build_frame(owner_key, eph_key, cases[c].ms - 1, cases[c].expiration);

		if (frame == NULL)
			fail_msg("auth_build_frame refused %s", cases[c].expiration);
		expect_status_at(cases[c].expiration, frame, cases[c].ms - 1, AUTH_OK);
		expect_status_at(cases[c].expiration, frame, cases[c].ms, AUTH_EPHEMERAL_EXPIRED);
		free(frame);
	}
}

static void
test_build_frame_rejects(void **state)
{
	static const char *const bad[] = {
		"",
		"tomorrow",
		"2030-01-01",
		"2030-01-01 00:00:00",
		"2030-01-01t00:00:00Z",
		"2030-01-01T00:00:00z",
		"2030-01-01T00:00",
		"2030-1-01T00:00:00Z",
		"2030-13-01T00:00:00Z",
		"2030-00-01T00:00:00Z",
		"2030-01-00T00:00:00Z",
		"2030-01-32T00:00:00Z",
		"2030-01-01T24:00:01Z",
		"2030-01-01T25:00:00Z",
		"2030-01-01T00:60:00Z",
		"2030-01-01T00:00:60Z",
		"2030-01-01T00:00:00.Z",
		"2030-01-01T00:00:00.000ZZ",
		"2030-01-01T00:00:00+0100",
		"2030-01-01T00:00:00+01",
		"2030-01-01T00:00:00+24:00",
		"2030-01-01T00:00:00+01:60",
		"2030-01-01T00:00:00.000Z ",
		" 2030-01-01T00:00:00.000Z",
		"2030-01-01T00:00:00.000Z\nEphemeral address: 0x0",
		"+002030-01-01T00:00:00Z",
	};
	static const uint8_t zero[32];

	for (size_t c = 0; c < sizeof(bad) / sizeof(bad[0]); c++)
	{
		char *frame = auth_build_frame(owner_key, eph_key, TS, bad[c]);

		if (frame != NULL)
			fail_msg("auth_build_frame accepted expiration \"%s\"", bad[c]);
	}
	assert_null(auth_build_frame(owner_key, eph_key, TS, NULL));
	assert_null(auth_build_frame(zero, eph_key, TS, EXPIRATION));
	assert_null(auth_build_frame(owner_key, zero, TS, EXPIRATION));
}

/*
 * §3 step 2: the timestamp.
 */
static void
test_timestamp_window_edges(void **state)
{
	static const struct
	{
		int64_t	   now_offset; /* now - timestamp */
		int64_t	   window;
		AuthStatus want;
	} cases[] = {
		{0, WINDOW, AUTH_OK},
		{WINDOW, WINDOW, AUTH_OK},
		{WINDOW + 1, WINDOW, AUTH_BAD_TIMESTAMP},
		{-WINDOW, WINDOW, AUTH_OK},
		{-WINDOW - 1, WINDOW, AUTH_BAD_TIMESTAMP},
		{-600000, WINDOW, AUTH_BAD_TIMESTAMP}, /* doc/auth-chain.md#must-reject: 10 minutes off */
		{600000, WINDOW, AUTH_BAD_TIMESTAMP},
		{0, 0, AUTH_OK},
		{1, 0, AUTH_BAD_TIMESTAMP},
		{-1, 0, AUTH_BAD_TIMESTAMP},
		{1000, 1000, AUTH_OK},
		{1001, 1000, AUTH_BAD_TIMESTAMP},
	};
	char *frame = auth_build_frame(owner_key, eph_key, TS, EXPIRATION);

	assert_non_null(frame);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
	{
		char	   address[ADDRESS_LEN + 1];
		AuthStatus got =
			verify_window(frame, strlen(frame), TS + cases[c].now_offset, cases[c].window, address);

		if (got != cases[c].want)
			fail_msg("now = ts %+lld, window %lld: got %s, want %s",
					 (long long) cases[c].now_offset, (long long) cases[c].window,
					 auth_status_name(got), auth_status_name(cases[c].want));
	}
	free(frame);
}

/* The header is read with JavaScript's Number() but signed as lower(rawTs), verbatim. */
static void
test_timestamp_forms(void **state)
{
	static const struct
	{
		const char *ts;		 /* NULL: header absent */
		const char *payload; /* what the ephemeral key signed */
		AuthStatus	want;
	} cases[] = {
		{TS_STR, PAYLOAD, AUTH_OK},
		{" " TS_STR "\t", "get:/: " TS_STR "\t:{}", AUTH_OK},
		{"\xc2\xa0" TS_STR "\xe2\x80\xa8", "get:/:\xc2\xa0" TS_STR "\xe2\x80\xa8:{}", AUTH_OK},
		{TS_STR ".0", "get:/:" TS_STR ".0:{}", AUTH_OK},
		{"+" TS_STR, "get:/:+" TS_STR ":{}", AUTH_OK},
		{"1.7672256E12", "get:/:1.7672256e12:{}", AUTH_OK},
		{"1.7672256E12", "get:/:1.7672256E12:{}", AUTH_PAYLOAD_MISMATCH},
		{"0x19B76DAA800", "get:/:0x19b76daa800:{}", AUTH_OK},
		{"", "get:/::{}", AUTH_BAD_TIMESTAMP},
		{NULL, "get:/::{}", AUTH_BAD_TIMESTAMP},
		{"   ", "get:/:   :{}", AUTH_BAD_TIMESTAMP},
		{"abc", "get:/:abc:{}", AUTH_BAD_TIMESTAMP},
		{TS_STR "x", "get:/:" TS_STR "x:{}", AUTH_BAD_TIMESTAMP},
		{"Infinity", "get:/:infinity:{}", AUTH_BAD_TIMESTAMP},
		{"-Infinity", "get:/:-infinity:{}", AUTH_BAD_TIMESTAMP},
		{"NaN", "get:/:nan:{}", AUTH_BAD_TIMESTAMP},
		{"1e400", "get:/:1e400:{}", AUTH_BAD_TIMESTAMP},
		{"1e", "get:/:1e:{}", AUTH_BAD_TIMESTAMP},
		{".", "get:/:.:{}", AUTH_BAD_TIMESTAMP},
		{"+", "get:/:+:{}", AUTH_BAD_TIMESTAMP},
		{"0x", "get:/:0x:{}", AUTH_BAD_TIMESTAMP},
		{"-0x19b76daa800", "get:/:-0x19b76daa800:{}", AUTH_BAD_TIMESTAMP},
		{"0x19b76daa80g", "get:/:0x19b76daa80g:{}", AUTH_BAD_TIMESTAMP},
		{"1767225600000 1", "get:/:1767225600000 1:{}", AUTH_BAD_TIMESTAMP},
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
	{
		char *frame = frame_standard(cases[c].payload, cases[c].ts, "{}");

		expect_status_at(cases[c].ts ? cases[c].ts : "(absent)", frame, TS, cases[c].want);
		free(frame);
	}
}

/*
 * §3 step 3: metadata.
 */
static void
test_metadata(void **state)
{
	static const struct
	{
		const char *meta;	 /* NULL: header absent */
		const char *payload; /* what the ephemeral key signed */
		AuthStatus	want;
	} cases[] = {
		{"{}", PAYLOAD, AUTH_OK},
		{NULL, "get:/:" TS_STR ":", AUTH_OK},
		{NULL, PAYLOAD, AUTH_PAYLOAD_MISMATCH},
		{"null", "get:/:" TS_STR ":null", AUTH_OK},
		{"{\"signer\":\"dcl:explorer\"}", "get:/:" TS_STR ":{\"signer\":\"dcl:explorer\"}",
		 AUTH_OK},
		{"{ \"signer\": \"dcl:explorer\" }", "get:/:" TS_STR ":{ \"signer\": \"dcl:explorer\" }",
		 AUTH_OK},
		{"{ \"signer\": \"dcl:explorer\" }", "get:/:" TS_STR ":{\"signer\":\"dcl:explorer\"}",
		 AUTH_PAYLOAD_MISMATCH},
		{"{\"Signer\":\"X\"}", "get:/:" TS_STR ":{\"signer\":\"x\"}", AUTH_PAYLOAD_MISMATCH},
		{"{\"n\":123456789012345678901234567890}",
		 "get:/:" TS_STR ":{\"n\":123456789012345678901234567890}", AUTH_OK},
		{"{\"a\":\"\\u0000\"}", "get:/:" TS_STR ":{\"a\":\"\\u0000\"}", AUTH_OK},
		{"{\"a\":1}", PAYLOAD, AUTH_PAYLOAD_MISMATCH},
		{"{\"signer\":\"decentraland-kernel-scene\"}",
		 "get:/:" TS_STR ":{\"signer\":\"decentraland-kernel-scene\"}", AUTH_SCENE_SIGNER},
		{"{\"signer\":\"Decentraland-Kernel-Scene\"}",
		 "get:/:" TS_STR ":{\"signer\":\"Decentraland-Kernel-Scene\"}", AUTH_SCENE_SIGNER},
		{"{\"signer\":\" decentraland-kernel-scene\"}",
		 "get:/:" TS_STR ":{\"signer\":\" decentraland-kernel-scene\"}", AUTH_SCENE_SIGNER},
		{"{\"signer\":\"dcl:explorer\\n\"}", "get:/:" TS_STR ":{\"signer\":\"dcl:explorer\\n\"}",
		 AUTH_SCENE_SIGNER},
		/* U+212A KELVIN SIGN lowercases to 'k': a disguised scene signer. */
		{"{\"signer\":\"decentraland-\xe2\x84\xaa"
		 "ernel-scene\"}",
		 "get:/:" TS_STR ":{\"signer\":\"decentraland-\xe2\x84\xaa"
		 "ernel-scene\"}",
		 AUTH_SCENE_SIGNER},
		{"{\"signer\":5}", "get:/:" TS_STR ":{\"signer\":5}", AUTH_BAD_METADATA},
		{"{\"signer\":null}", "get:/:" TS_STR ":{\"signer\":null}", AUTH_BAD_METADATA},
		{"[]", "get:/:" TS_STR ":[]", AUTH_BAD_METADATA},
		{"5", "get:/:" TS_STR ":5", AUTH_BAD_METADATA},
		{"\"{}\"", "get:/:" TS_STR ":\"{}\"", AUTH_BAD_METADATA},
		{"", "get:/:" TS_STR ":", AUTH_BAD_METADATA},
		{"{", "get:/:" TS_STR ":{", AUTH_BAD_METADATA},
		{"{}{}", "get:/:" TS_STR ":{}{}", AUTH_BAD_METADATA},
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
	{
		char *frame = frame_standard(cases[c].payload, TS_STR, cases[c].meta);

		expect_status_at(cases[c].meta ? cases[c].meta : "(absent)", frame, TS, cases[c].want);
		free(frame);
	}
}

/*
 * §3 steps 1, 5, 6: chain shape and walk.
 */
#define L_SIGNER                  \
	{                             \
		"SIGNER", OWNER, NULL, "" \
	}
#define L_EPH                                 \
	{                                         \
		"ECDSA_EPHEMERAL", EPH_MSG, owner_key \
	}
#define L_ENTITY                                \
	{                                           \
		"ECDSA_SIGNED_ENTITY", PAYLOAD, eph_key \
	}

static void
test_chain_walk(void **state)
{
	/* Long enough for the 1654 code path, which is never decoded. */
	static const char contract_sig[] =
		"0x"
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	const struct
	{
		const char *name;
		LinkSpec	links[4];
		int			n;
		AuthStatus	want;
	} cases[] = {
		{"standard", {L_SIGNER, L_EPH, L_ENTITY}, 3, AUTH_OK},
		{"owner signs the payload directly",
		 {L_SIGNER, {"ECDSA_SIGNED_ENTITY", PAYLOAD, owner_key}},
		 2,
		 AUTH_OK},
		{"lower-case addresses",
		 {{"SIGNER", OWNER_LOWER, NULL, ""},
		  {"ECDSA_EPHEMERAL", EPH_MSG_FOR("0xfcad0b19bb29d4674531d6f115237e16afce377c", EXPIRATION),
		   owner_key},
		  L_ENTITY},
		 3,
		 AUTH_OK},
		{"upper-case hex digits in the signer",
		 {{"SIGNER", "0x2C7536E3605D9C16A7A3D7B1898E529396A65C23", NULL, ""}, L_EPH, L_ENTITY},
		 3,
		 AUTH_OK},
		{"signer link carries a signature",
		 {{"SIGNER", OWNER, NULL, "0xdead"}, L_EPH, L_ENTITY},
		 3,
		 AUTH_OK},
		{"only one link", {L_SIGNER}, 1, AUTH_BAD_CHAIN},
		{"first link not SIGNER", {L_EPH, L_SIGNER, L_ENTITY}, 3, AUTH_BAD_CHAIN},
		{"two SIGNER links", {L_SIGNER, L_EPH, L_SIGNER, L_ENTITY}, 4, AUTH_BAD_CHAIN},
		{"EIP-1654 chain of three",
		 {L_SIGNER, {"ECDSA_EIP_1654_EPHEMERAL", EPH_MSG, NULL, contract_sig}, L_ENTITY},
		 3,
		 AUTH_UNSUPPORTED},
		{"EIP-1654 chain of two",
		 {L_SIGNER, {"ECDSA_EIP_1654_EPHEMERAL", PAYLOAD, NULL, contract_sig}},
		 2,
		 AUTH_UNSUPPORTED},
		/* Routing (step 5) comes before the walk's structural checks. */
		{"EIP-1654 chain with a second SIGNER",
		 {L_SIGNER, {"ECDSA_EIP_1654_EPHEMERAL", EPH_MSG, NULL, contract_sig}, L_SIGNER},
		 3,
		 AUTH_UNSUPPORTED},
		{"EIP-1654 signed entity",
		 {L_SIGNER, L_EPH, {"ECDSA_EIP_1654_SIGNED_ENTITY", PAYLOAD, NULL, contract_sig}},
		 3,
		 AUTH_UNSUPPORTED},
		{"unknown link type last",
		 {L_SIGNER, L_EPH, L_ENTITY, {"FOO", PAYLOAD, NULL, ""}},
		 4,
		 AUTH_PAYLOAD_MISMATCH},
		{"unknown link type in the middle",
		 {L_SIGNER, {"FOO", EPH, NULL, ""}, L_ENTITY},
		 3,
		 AUTH_WRONG_SIGNER},
		{"ephemeral link signed by another wallet",
		 {L_SIGNER, {"ECDSA_EPHEMERAL", EPH_MSG, other_key}, L_ENTITY},
		 3,
		 AUTH_WRONG_SIGNER},
		{"payload signed by the owner, not the ephemeral key",
		 {L_SIGNER, L_EPH, {"ECDSA_SIGNED_ENTITY", PAYLOAD, owner_key}},
		 3,
		 AUTH_WRONG_SIGNER},
		{"ephemeral message names another key",
		 {L_SIGNER,
		  {"ECDSA_EPHEMERAL", EPH_MSG_FOR("0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a", EXPIRATION),
		   owner_key},
		  L_ENTITY},
		 3,
		 AUTH_WRONG_SIGNER},
		{"signer is not an address",
		 {{"SIGNER", "alice", NULL, ""}, L_EPH, L_ENTITY},
		 3,
		 AUTH_WRONG_SIGNER},
		{"path /x",
		 {L_SIGNER, L_EPH, {"ECDSA_SIGNED_ENTITY", "get:/x:" TS_STR ":{}", eph_key}},
		 3,
		 AUTH_PAYLOAD_MISMATCH},
		{"upper-case GET",
		 {L_SIGNER, L_EPH, {"ECDSA_SIGNED_ENTITY", "GET:/:" TS_STR ":{}", eph_key}},
		 3,
		 AUTH_PAYLOAD_MISMATCH},
		{"chain stops at the ephemeral key", {L_SIGNER, L_EPH}, 2, AUTH_PAYLOAD_MISMATCH},
		{"empty ephemeral signature",
		 {L_SIGNER, {"ECDSA_EPHEMERAL", EPH_MSG, NULL, ""}, L_ENTITY},
		 3,
		 AUTH_BAD_SIGNATURE},
		{"empty entity signature",
		 {L_SIGNER, L_EPH, {"ECDSA_SIGNED_ENTITY", PAYLOAD, NULL, ""}},
		 3,
		 AUTH_BAD_SIGNATURE},
		{"ephemeral message of two lines",
		 {L_SIGNER,
		  {"ECDSA_EPHEMERAL", "Decentraland Login\nEphemeral address: " EPH, owner_key},
		  L_ENTITY},
		 3,
		 AUTH_BAD_CHAIN},
		{"ephemeral message without its address line",
		 {L_SIGNER,
		  {"ECDSA_EPHEMERAL", "Decentraland Login\nEphemeral: " EPH "\nExpiration: " EXPIRATION,
		   owner_key},
		  L_ENTITY},
		 3,
		 AUTH_BAD_CHAIN},
		{"ephemeral message without its expiration line",
		 {L_SIGNER,
		  {"ECDSA_EPHEMERAL",
		   "Decentraland Login\nEphemeral address: " EPH "\nExpires: " EXPIRATION, owner_key},
		  L_ENTITY},
		 3,
		 AUTH_BAD_CHAIN},
		{"ephemeral message with a fourth line",
		 {L_SIGNER, {"ECDSA_EPHEMERAL", EPH_MSG "\nthanks", owner_key}, L_ENTITY},
		 3,
		 AUTH_OK},
		{"any first line",
		 {L_SIGNER,
		  {"ECDSA_EPHEMERAL", "\nEphemeral address: " EPH "\nExpiration: " EXPIRATION, owner_key},
		  L_ENTITY},
		 3,
		 AUTH_OK},
		{"unparseable expiration",
		 {L_SIGNER, {"ECDSA_EPHEMERAL", EPH_MSG_FOR(EPH, "next year"), owner_key}, L_ENTITY},
		 3,
		 AUTH_EPHEMERAL_EXPIRED},
		{"expired ephemeral key",
		 {L_SIGNER,
		  {"ECDSA_EPHEMERAL", EPH_MSG_FOR(EPH, "2020-01-01T00:00:00.000Z"), owner_key},
		  L_ENTITY},
		 3,
		 AUTH_EPHEMERAL_EXPIRED},
		{"CRLF message, signed without the CRs",
		 {L_SIGNER,
		  {"ECDSA_EPHEMERAL",
		   "Decentraland Login\r\nEphemeral address: " EPH "\r\nExpiration: " EXPIRATION "\r",
		   owner_key, NULL, EPH_MSG},
		  L_ENTITY},
		 3,
		 AUTH_OK},
		{"CRLF message, signed with the CRs",
		 {L_SIGNER,
		  {"ECDSA_EPHEMERAL",
		   "Decentraland Login\r\nEphemeral address: " EPH "\r\nExpiration: " EXPIRATION,
		   owner_key},
		  L_ENTITY},
		 3,
		 AUTH_WRONG_SIGNER},
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
	{
		char *frame = frame_make(cases[c].links, cases[c].n, TS_STR, "{}");

		expect_status_at(cases[c].name, frame, TS, cases[c].want);
		free(frame);
	}
}

/* A chain of 10 links (owner, 8 ephemeral hops, payload) is the longest accepted; an 11th
 * link, or any x-identity-auth-chain-10 header, is refused. */
static void
test_chain_length(void **state)
{
	uint8_t	 keys[10][32];
	char	 addresses[10][ADDRESS_LEN + 1];
	char	 messages[10][200];
	LinkSpec links[11];
	json_t	*headers;
	char	*frame;

	memcpy(keys[0], owner_key, 32);
	for (int i = 1; i < 10; i++)
	{
		memset(keys[i], 0, 32);
		keys[i][31] = (uint8_t) (0x40 + i);
	}
	for (int i = 0; i < 10; i++)
		assert_int_equal(auth_address_from_key(keys[i], addresses[i]), 0);

	/* links[0] = SIGNER(owner); links[i] = keys[i-1] hands over to keys[i], i = 1..8;
	 * links[9] = keys[8] signs the payload. */
	links[0] = (LinkSpec){"SIGNER", OWNER, NULL, ""};
	for (int i = 1; i <= 8; i++)
	{
		snprintf(messages[i], sizeof(messages[i]),
				 "Decentraland Login\nEphemeral address: %s\nExpiration: " EXPIRATION,
				 addresses[i]);
		links[i] = (LinkSpec){"ECDSA_EPHEMERAL", messages[i], keys[i - 1]};
	}
	links[9] = (LinkSpec){"ECDSA_SIGNED_ENTITY", PAYLOAD, keys[8]};
	frame = frame_make(links, 10, TS_STR, "{}");
	expect_status_at("10 links", frame, TS, AUTH_OK);
	free(frame);

	/* 11 links: one more hop before the payload. */
	snprintf(messages[9], sizeof(messages[9]),
			 "Decentraland Login\nEphemeral address: %s\nExpiration: " EXPIRATION, addresses[9]);
	links[9] = (LinkSpec){"ECDSA_EPHEMERAL", messages[9], keys[8]};
	links[10] = (LinkSpec){"ECDSA_SIGNED_ENTITY", PAYLOAD, keys[9]};
	frame = frame_make(links, 11, TS_STR, "{}");
	expect_status_at("11 links", frame, TS, AUTH_BAD_CHAIN);
	free(frame);

	/* A valid chain of three plus a stray chain-10 header. */
	headers = headers_make((LinkSpec[]){L_SIGNER, L_EPH, L_ENTITY}, 3, TS_STR, "{}");
	json_object_set_new(headers, "x-identity-auth-chain-10", json_string("{}"));
	frame = headers_dump(headers);
	expect_status_at("stray chain-10", frame, TS, AUTH_BAD_CHAIN);
	free(frame);

	/* Links after a gap are not read: chain-4 without chain-3 changes nothing. */
	headers = headers_make((LinkSpec[]){L_SIGNER, L_EPH, L_ENTITY}, 3, TS_STR, "{}");
	headers_set_link(headers, 4, json_string("garbage"));
	frame = headers_dump(headers);
	expect_status_at("chain-4 after a gap", frame, TS, AUTH_OK);
	free(frame);

	/* An empty link ends the chain: owner → ephemeral, and the ephemeral key is no payload. */
	headers = headers_make((LinkSpec[]){L_SIGNER, L_EPH, L_ENTITY}, 3, TS_STR, "{}");
	headers_set_link(headers, 2, json_string(""));
	frame = headers_dump(headers);
	expect_status_at("empty chain-2", frame, TS, AUTH_PAYLOAD_MISMATCH);
	free(frame);
}

/* §3.1: the signature's shape, v, and high s. */
typedef enum SigEdit
{
	SIG_AS_IS,
	SIG_V_MINUS_27, /* v 0/1 */
	SIG_V_29,
	SIG_V_37, /* EIP-155 style */
	SIG_V_26,
	SIG_HIGH_S, /* s' = n - s, v flipped: the same signature, not normalized */
	SIG_R_ZERO,
	SIG_S_OVER_ORDER,
	SIG_TRUNCATED, /* 64 bytes */
	SIG_EXTENDED,  /* 66 bytes */
	SIG_UPPER_0X,
	SIG_NO_0X,
	SIG_NON_HEX,
	SIG_UPPER_HEX,
	SIG_ODD_LENGTH,
} SigEdit;

static const uint8_t secp256k1_order[32] = {
	0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE,
	0xBA, 0xAE, 0xDC, 0xE6, 0xAF, 0x48, 0xA0, 0x3B, 0xBF, 0xD2, 0x5E, 0x8C, 0xD0, 0x36, 0x41, 0x41};

static void
sig_edit(const char *good_hex, SigEdit edit, char *out /* >= 140 bytes */)
{
	uint8_t sig[65];

	sig_from_hex(good_hex, sig);
	switch (edit)
	{
		case SIG_AS_IS:
		case SIG_UPPER_0X:
		case SIG_NO_0X:
		case SIG_NON_HEX:
		case SIG_UPPER_HEX:
		case SIG_TRUNCATED:
		case SIG_EXTENDED:
		case SIG_ODD_LENGTH:
			break;
		case SIG_V_MINUS_27:
			sig[64] -= 27;
			break;
		case SIG_V_29:
			sig[64] = 29;
			break;
		case SIG_V_37:
			sig[64] = 37;
			break;
		case SIG_V_26:
			sig[64] = 26;
			break;
		case SIG_HIGH_S:
		{
			int borrow = 0;

			for (int i = 31; i >= 0; i--)
			{
				int d = secp256k1_order[i] - sig[32 + i] - borrow;

				borrow = d < 0;
				sig[32 + i] = (uint8_t) (d + (borrow ? 256 : 0));
			}
			sig[64] = (uint8_t) (27 + 28 - sig[64]); /* 27 <-> 28 */
			break;
		}
		case SIG_R_ZERO:
			memset(sig, 0, 32);
			break;
		case SIG_S_OVER_ORDER:
			memset(sig + 32, 0xFF, 32);
			break;
	}
	sig_to_hex(sig, out);
	switch (edit)
	{
		case SIG_TRUNCATED:
			out[130] = '\0';
			break;
		case SIG_EXTENDED:
			strcat(out, "00");
			break;
		case SIG_ODD_LENGTH:
			strcat(out, "0");
			break;
		case SIG_UPPER_0X:
			out[1] = 'X';
			break;
		case SIG_NO_0X:
			memmove(out, out + 2, strlen(out + 2) + 1);
			strcat(out, "00");
			break;
		case SIG_NON_HEX:
			out[70] = 'g';
			break;
		case SIG_UPPER_HEX:
			for (char *p = out + 2; *p; p++)
			{
				if (*p >= 'a' && *p <= 'f')
					*p = (char) (*p - 'a' + 'A');
			}
			break;
		default:
			break;
	}
}

static void
test_signature_forms(void **state)
{
	static const struct
	{
		const char *name;
		SigEdit		edit;
		AuthStatus	want;
	} cases[] = {
		{"as signed", SIG_AS_IS, AUTH_OK},
		{"v 0/1", SIG_V_MINUS_27, AUTH_OK},
		{"high s", SIG_HIGH_S, AUTH_OK},
		{"upper-case hex", SIG_UPPER_HEX, AUTH_OK},
		{"v 29", SIG_V_29, AUTH_BAD_SIGNATURE},
		{"v 37", SIG_V_37, AUTH_BAD_SIGNATURE},
		{"v 26", SIG_V_26, AUTH_BAD_SIGNATURE},
		{"r zero", SIG_R_ZERO, AUTH_BAD_SIGNATURE},
		{"s over the order", SIG_S_OVER_ORDER, AUTH_BAD_SIGNATURE},
		{"64 bytes", SIG_TRUNCATED, AUTH_BAD_SIGNATURE},
		{"66 bytes", SIG_EXTENDED, AUTH_BAD_SIGNATURE},
		{"odd length", SIG_ODD_LENGTH, AUTH_BAD_SIGNATURE},
		{"0X", SIG_UPPER_0X, AUTH_BAD_SIGNATURE},
		{"no 0x", SIG_NO_0X, AUTH_BAD_SIGNATURE},
		{"non-hex", SIG_NON_HEX, AUTH_BAD_SIGNATURE},
	};
	char good[133];

	/* Both signed links get the same edit: the owner's over the ephemeral message and the
	 * ephemeral key's over the payload. */
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
	{
		char	 eph_sig[140];
		char	 entity_sig[140];
		LinkSpec links[3] = {L_SIGNER,
							 {"ECDSA_EPHEMERAL", EPH_MSG, NULL, eph_sig},
							 {"ECDSA_SIGNED_ENTITY", PAYLOAD, NULL, entity_sig}};
		char	*frame;

		sign_hex(owner_key, EPH_MSG, good);
		sig_edit(good, cases[c].edit, eph_sig);
		sign_hex(eph_key, PAYLOAD, good);
		sig_edit(good, cases[c].edit, entity_sig);
		frame = frame_make(links, 3, TS_STR, "{}");
		expect_status_at(cases[c].name, frame, TS, cases[c].want);
		free(frame);
	}
}

/*
 * Hostile and malformed input.
 */
static void
test_malformed_frames(void **state)
{
	static const struct
	{
		const char *bytes;
		size_t		len; /* 0: strlen */
		AuthStatus	want;
	} cases[] = {
		{"", 0, AUTH_NOT_JSON},
		{"{", 0, AUTH_NOT_JSON},
		{"[]", 0, AUTH_NOT_JSON},
		{"[{}]", 0, AUTH_NOT_JSON},
		{"null", 0, AUTH_NOT_JSON},
		{"\"x-identity-auth-chain-0\"", 0, AUTH_NOT_JSON},
		{"42", 0, AUTH_NOT_JSON},
		{"{}x", 0, AUTH_NOT_JSON},
		{"{}{}", 0, AUTH_NOT_JSON},
		{"{'a':1}", 0, AUTH_NOT_JSON},
		{"{\"a\":\"\xff\"}", 0, AUTH_NOT_JSON},			/* invalid UTF-8 */
		{"{\"a\":\"\xc0\xaf\"}", 0, AUTH_NOT_JSON},		/* overlong */
		{"{\"a\":\"\xed\xa0\x80\"}", 0, AUTH_NOT_JSON}, /* UTF-16 surrogate */
		{"{\"a\":\"\\ud800\"}", 0, AUTH_NOT_JSON},		/* lone surrogate escape */
		{"{\"a\":1}\0", 8, AUTH_NOT_JSON},				/* trailing NUL byte */
		{"{\"a\":\"x\0y\"}", 11, AUTH_NOT_JSON},		/* raw NUL inside a string */
		{"\xef\xbb\xbf{}", 0, AUTH_NOT_JSON},			/* BOM: JSON.parse refuses it too */
		{"{}", 0, AUTH_BAD_CHAIN},
		{" \n{} ", 0, AUTH_BAD_CHAIN},
		{"{\"x-identity-auth-chain-0\":\"\"}", 0, AUTH_BAD_CHAIN},
		{"{\"x-identity-auth-chain-0\":\"{}\",\"x-identity-auth-chain-1\":\"{}\"}", 0,
		 AUTH_BAD_CHAIN},
	};
	AuthOptions opt = {.now_ms = TS, .timestamp_window_ms = WINDOW};
	char		address[ADDRESS_LEN + 1];

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
	{
		size_t	   len = cases[c].len ? cases[c].len : strlen(cases[c].bytes);
		AuthStatus got = verify_window(cases[c].bytes, len, TS, WINDOW, address);

		if (got != cases[c].want)
			fail_msg("case %zu: got %s, want %s", c, auth_status_name(got),
					 auth_status_name(cases[c].want));
	}

	assert_int_equal(auth_verify(NULL, 10, &opt, address), AUTH_NOT_JSON);
	assert_int_equal(auth_verify("{}", 2, NULL, address), AUTH_NOT_JSON);
	assert_int_equal(auth_verify("{}", 2, &opt, NULL), AUTH_NOT_JSON);
}

/* Deep nesting and size: jansson's depth cap and the frame cap keep them cheap. */
static void
test_hostile_sizes(void **state)
{
	char   *frame = auth_build_frame(owner_key, eph_key, TS, EXPIRATION);
	size_t	len = strlen(frame);
	char   *big = malloc(MAX_FRAME + 2);
	char   *deep = malloc(MAX_FRAME);
	char	address[ADDRESS_LEN + 1];
	json_t *headers;
	char   *nested;

	assert_non_null(big);
	assert_non_null(deep);

	/* A valid frame padded with white space up to the cap still verifies; one byte more and
	 * it is not read at all. */
	memcpy(big, frame, len);
	memset(big + len, ' ', MAX_FRAME + 2 - len);
	assert_int_equal(verify_window(big, MAX_FRAME, TS, WINDOW, address), AUTH_OK);
	assert_int_equal(verify_window(big, MAX_FRAME + 1, TS, WINDOW, address), AUTH_NOT_JSON);

	/* 30000 nested arrays: past jansson's depth limit, inside the size cap. */
	memset(deep, '[', 30000);
	assert_int_equal(verify_window(deep, 30000, TS, WINDOW, address), AUTH_NOT_JSON);
	memset(deep, '{', 1);
	memcpy(deep + 1, "\"a\":", 4);
	assert_int_equal(verify_window(deep, 30000, TS, WINDOW, address), AUTH_NOT_JSON);

	/* The same inside a link's JSON string. */
	nested = calloc(20001, 1);
	assert_non_null(nested);
	memset(nested, '[', 20000);
	headers = json_loads(frame, 0, NULL);
	assert_non_null(headers);
	headers_set_link(headers, 1, json_string(nested));
	free(nested);
	nested = headers_dump(headers);
	assert_int_equal(verify_window(nested, strlen(nested), TS, WINDOW, address), AUTH_BAD_CHAIN);

	free(nested);
	free(deep);
	free(big);
	free(frame);
}

/* Header values of the wrong JSON type. null reads as absent (as in JavaScript). */
static void
test_non_string_values(void **state)
{
	static const struct
	{
		const char *key;
		const char *json; /* the value as JSON text, or NULL to use str */
		const char *str;  /* the value as a string */
		AuthStatus	want;
	} cases[] = {
		{"x-identity-auth-chain-0", "42", NULL, AUTH_BAD_CHAIN},
		{"x-identity-auth-chain-0",
		 "{\"type\":\"SIGNER\",\"payload\":\"" OWNER "\",\"signature\":\"\"}", NULL,
		 AUTH_BAD_CHAIN},
		{"x-identity-auth-chain-1", "[]", NULL, AUTH_BAD_CHAIN},
		{"x-identity-auth-chain-1", "true", NULL, AUTH_BAD_CHAIN},
		{"x-identity-auth-chain-1", "false", NULL, AUTH_BAD_CHAIN},
		{"x-identity-auth-chain-1", "0", NULL, AUTH_BAD_CHAIN},
		{"x-identity-auth-chain-2", "null", NULL, AUTH_PAYLOAD_MISMATCH},
		{"x-identity-auth-chain-1", NULL, "not json", AUTH_BAD_CHAIN},
		{"x-identity-auth-chain-1", NULL, "\"a JSON string\"", AUTH_BAD_CHAIN},
		{"x-identity-auth-chain-1", NULL, "[1,2,3]", AUTH_BAD_CHAIN},
		{"x-identity-auth-chain-1", NULL, "null", AUTH_BAD_CHAIN},
		{"x-identity-auth-chain-0", NULL, "{\"type\":\"SIGNER\",\"payload\":\"" OWNER "\"}",
		 AUTH_BAD_CHAIN},
		{"x-identity-auth-chain-0", NULL,
		 "{\"type\":\"SIGNER\",\"payload\":\"" OWNER "\",\"signature\":null}", AUTH_BAD_CHAIN},
		{"x-identity-auth-chain-0", NULL,
		 "{\"type\":1,\"payload\":\"" OWNER "\",\"signature\":\"\"}", AUTH_BAD_CHAIN},
		{"x-identity-auth-chain-0", NULL,
		 "{\"type\":\"SIGNER\",\"payload\":[\"" OWNER "\"],\"signature\":\"\"}", AUTH_BAD_CHAIN},
		{"x-identity-auth-chain-0", NULL, "{\"type\":\"SIGNER\",\"payload\":{},\"signature\":\"\"}",
		 AUTH_BAD_CHAIN},
		{"x-identity-auth-chain-0", NULL,
		 "{\"type\":\"SIGNER\",\"payload\":\"" OWNER "\",\"signature\":\"\"} x", AUTH_BAD_CHAIN},
		/* Extra fields in a link, and a duplicated key (the last one wins, as in JSON.parse). */
		{"x-identity-auth-chain-0", NULL,
		 "{\"type\":\"SIGNER\",\"payload\":\"" OWNER "\",\"signature\":\"\",\"x\":[1]}", AUTH_OK},
		{"x-identity-auth-chain-0", NULL,
		 "{\"type\":\"FOO\",\"type\":\"SIGNER\",\"payload\":\"" OWNER "\",\"signature\":\"\"}",
		 AUTH_OK},
		{"x-identity-timestamp", TS_STR, NULL, AUTH_BAD_TIMESTAMP},
		{"x-identity-timestamp", "null", NULL, AUTH_BAD_TIMESTAMP},
		{"x-identity-timestamp", "[\"" TS_STR "\"]", NULL, AUTH_BAD_TIMESTAMP},
		{"x-identity-metadata", "{}", NULL, AUTH_BAD_METADATA},
		{"x-identity-metadata", "true", NULL, AUTH_BAD_METADATA},
		{"x-identity-metadata", "null", NULL, AUTH_PAYLOAD_MISMATCH},
		{"x-identity-other", "{\"any\":[1,{}]}", NULL, AUTH_OK},
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
	{
		json_t *headers = headers_make((LinkSpec[]){L_SIGNER, L_EPH, L_ENTITY}, 3, TS_STR, "{}");
		json_t *value = cases[c].json != NULL ? json_loads(cases[c].json, JSON_DECODE_ANY, NULL)
											  : json_string(cases[c].str);
		char	what[300];
		char   *frame;

		assert_non_null(value);
		assert_int_equal(json_object_set_new(headers, cases[c].key, value), 0);
		frame = headers_dump(headers);
		snprintf(what, sizeof(what), "%s = %s", cases[c].key,
				 cases[c].json ? cases[c].json : cases[c].str);
		expect_status_at(what, frame, TS, cases[c].want);
		free(frame);
	}
}

/* \u0000 inside strings is legal JSON; such bytes are compared, never truncated at. */
static void
test_embedded_nul(void **state)
{
	static const char payload_nul[] = "get:/:" TS_STR ":{}\0tail";
	static const char owner_nul[] = OWNER "\0x";
	static const char type_nul[] = "SIGNER\0";
	char			  sig[133];
	uint8_t			  raw[65];
	json_t			 *headers;
	json_t			 *link;
	char			 *text;
	char			 *frame;

	/* A payload that equals the expected one up to a NUL, signed in full. */
	assert_int_equal(auth_personal_sign(eph_key, payload_nul, sizeof(payload_nul) - 1, raw), 0);
	sig_to_hex(raw, sig);
	headers = headers_make((LinkSpec[]){L_SIGNER, L_EPH}, 2, TS_STR, "{}");
	link = json_pack("{s:s, s:s#, s:s}", "type", "ECDSA_SIGNED_ENTITY", "payload", payload_nul,
					 sizeof(payload_nul) - 1, "signature", sig);
	text = json_dumps(link, JSON_COMPACT | JSON_ENCODE_ANY);
	headers_set_link(headers, 2, json_string(text));
	free(text);
	json_decref(link);
	frame = headers_dump(headers);
	assert_non_null(strstr(frame, "\\\\u0000"));
	expect_status_at("NUL in the signed payload", frame, TS, AUTH_PAYLOAD_MISMATCH);
	free(frame);

	/* A signer address followed by a NUL and more. */
	headers = headers_make((LinkSpec[]){L_SIGNER, L_EPH, L_ENTITY}, 3, TS_STR, "{}");
	link = json_pack("{s:s, s:s#, s:s}", "type", "SIGNER", "payload", owner_nul,
					 sizeof(owner_nul) - 1, "signature", "");
	text = json_dumps(link, JSON_COMPACT);
	headers_set_link(headers, 0, json_string(text));
	free(text);
	json_decref(link);
	frame = headers_dump(headers);
	expect_status_at("NUL in the signer address", frame, TS, AUTH_WRONG_SIGNER);
	free(frame);

	/* "SIGNER\0" is not SIGNER. */
	headers = headers_make((LinkSpec[]){L_SIGNER, L_EPH, L_ENTITY}, 3, TS_STR, "{}");
	link = json_pack("{s:s#, s:s, s:s}", "type", type_nul, sizeof(type_nul) - 1, "payload", OWNER,
					 "signature", "");
	text = json_dumps(link, JSON_COMPACT);
	headers_set_link(headers, 0, json_string(text));
	free(text);
	json_decref(link);
	frame = headers_dump(headers);
	expect_status_at("NUL in a link type", frame, TS, AUTH_BAD_CHAIN);
	free(frame);

	/* A NUL in the timestamp header. */
	headers = headers_make((LinkSpec[]){L_SIGNER, L_EPH, L_ENTITY}, 3, NULL, "{}");
	json_object_set_new(headers, "x-identity-timestamp", json_stringn(TS_STR "\0", 14));
	frame = headers_dump(headers);
	expect_status_at("NUL in the timestamp", frame, TS, AUTH_BAD_TIMESTAMP);
	free(frame);
}

/* Every truncation and every one-bit flip of a valid frame is refused, and nothing crashes. */
static void
test_mutations_refused(void **state)
{
	char  *frame = auth_build_frame(owner_key, eph_key, TS, EXPIRATION);
	size_t len = strlen(frame);
	char   address[ADDRESS_LEN + 1];

	assert_int_equal(verify_window(frame, len, TS, WINDOW, address), AUTH_OK);
	for (size_t cut = 0; cut < len; cut++)
	{
		if (verify_window(frame, cut, TS, WINDOW, address) == AUTH_OK)
			fail_msg("frame cut to %zu bytes was accepted", cut);
	}
	for (size_t at = 0; at < len; at++)
	{
		frame[at] ^= 0x01;
		if (verify_window(frame, len, TS, WINDOW, address) == AUTH_OK)
			fail_msg("frame with byte %zu flipped was accepted", at);
		frame[at] ^= 0x01;
	}
	free(frame);
}

/*
 * Thread safety: auth_verify runs on libuv's pool. Several threads verify and sign at once
 * (the first call also races the one-time context creation); results are checked after join
 * because cmocka's asserts are not thread-safe.
 */
typedef struct Worker
{
	pthread_t	thread;
	const char *frame;
	int64_t		now;
	int			failures;
} Worker;

static void *
worker_run(void *arg)
{
	Worker	   *w = arg;
	AuthOptions opt = {.now_ms = w->now, .timestamp_window_ms = WINDOW};

	for (int i = 0; i < 40; i++)
	{
		char  address[ADDRESS_LEN + 1];
		char *built = auth_build_frame(owner_key, eph_key, w->now, EXPIRATION);

		if (auth_verify(w->frame, strlen(w->frame), &opt, address) != AUTH_OK ||
			strcmp(address, OWNER_LOWER) != 0)
			w->failures++;
		if (built == NULL || auth_verify(built, strlen(built), &opt, address) != AUTH_OK)
			w->failures++;
		free(built);
	}
	return NULL;
}

static void
test_concurrent_verify(void **state)
{
	json_t *v = json_object_get(vectors, "authMessage");
	Worker	workers[4];

	for (int i = 0; i < 4; i++)
	{
		workers[i] =
			(Worker){.frame = vector_string(v, "json"), .now = vector_int(v, "verifyNowMs")};
		assert_int_equal(pthread_create(&workers[i].thread, NULL, worker_run, &workers[i]), 0);
	}
	for (int i = 0; i < 4; i++)
	{
		assert_int_equal(pthread_join(workers[i].thread, NULL), 0);
		assert_int_equal(workers[i].failures, 0);
	}
}

static void
test_status_names(void **state)
{
	for (int a = AUTH_OK; a <= AUTH_PAYLOAD_MISMATCH; a++)
	{
		const char *name = auth_status_name((AuthStatus) a);

		assert_string_not_equal(name, "unknown");
		for (const char *p = name; *p; p++)
			assert_true((*p >= 'a' && *p <= 'z') || *p == '_');
		for (int b = AUTH_OK; b < a; b++)
			assert_string_not_equal(name, auth_status_name((AuthStatus) b));
	}
	assert_string_equal(auth_status_name(AUTH_OK), "ok");
	assert_string_equal(auth_status_name(AUTH_BAD_SIGNATURE), "bad_signature");
	assert_string_equal(auth_status_name((AuthStatus) 1000), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_key),
		cmocka_unit_test(test_address_from_key),
		cmocka_unit_test(test_personal_sign_vectors),
		cmocka_unit_test(test_vector_frames_pass),
		cmocka_unit_test(test_vector_frames_reject),
		cmocka_unit_test(test_build_frame_matches_vector),
		cmocka_unit_test(test_build_frame_expirations),
		cmocka_unit_test(test_build_frame_rejects),
		cmocka_unit_test(test_timestamp_window_edges),
		cmocka_unit_test(test_timestamp_forms),
		cmocka_unit_test(test_metadata),
		cmocka_unit_test(test_chain_walk),
		cmocka_unit_test(test_chain_length),
		cmocka_unit_test(test_signature_forms),
		cmocka_unit_test(test_malformed_frames),
		cmocka_unit_test(test_hostile_sizes),
		cmocka_unit_test(test_non_string_values),
		cmocka_unit_test(test_embedded_nul),
		cmocka_unit_test(test_mutations_refused),
		cmocka_unit_test(test_concurrent_verify),
		cmocka_unit_test(test_status_names),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
