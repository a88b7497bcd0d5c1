/*
 * test_keccak.c — Keccak-256 against the golden vectors made by the official client libraries
 * (auth_vectors.json: plain hashes, personal-sign message hashes, public key → address) and
 * against fixed values at the sponge's block boundaries.
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

#include <cmocka.h>
#include <jansson.h>

#include "door/keccak.h"

static json_t *vectors; /* auth_vectors.json, loaded once for the group */

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

static void
hex_of(const uint8_t *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", in[i]);
}

/* "0x"-prefixed (or bare) hex of exactly n bytes. */
static void
bytes_of(const char *hex, uint8_t *out, size_t n)
{
	if (hex[0] == '0' && hex[1] == 'x')
		hex += 2;
	assert_int_equal(strlen(hex), 2 * n);
	for (size_t i = 0; i < n; i++)
	{
		unsigned int b;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &b), 1);
		out[i] = (uint8_t) b;
	}
}

static void
assert_keccak(const void *data, size_t len, const char *expected_hex)
{
	uint8_t digest[32];
	char	hex[65];

	if (expected_hex[0] == '0' && expected_hex[1] == 'x')
		expected_hex += 2;
	keccak256(data, len, digest);
	hex_of(digest, sizeof(digest), hex);
	assert_string_equal(hex, expected_hex);
}

static int
group_setup(void **state)
{
	vectors = vectors_load("auth_vectors.json");
	return vectors != NULL ? 0 : -1;
}

static int
group_teardown(void **state)
{
	json_decref(vectors);
	return 0;
}

/* keccak256: {"<input text>": "0x<digest>"} */
static void
test_vector_hashes(void **state)
{
	json_t	   *table = json_object_get(vectors, "keccak256");
	const char *input;
	json_t	   *digest;
	int			n = 0;

	assert_true(json_is_object(table));
	json_object_foreach(table, input, digest)
	{
		assert_keccak(input, strlen(input), json_string_value(digest));
		n++;
	}
	assert_true(n >= 2);
}

/* The personal-sign hash is keccak256("\x19Ethereum Signed Message:\n" + byte length + msg);
 * the 117-byte ephemeral message makes it span two blocks. */
static void
test_vector_personal_hashes(void **state)
{
	json_t *list = json_object_get(vectors, "personalSign");
	size_t	i;
	json_t *item;

	assert_true(json_array_size(list) >= 2);
	json_array_foreach(list, i, item)
	{
		const char *msg = vector_string(item, "message");
		char	   *buf;
		int			n = asprintf(&buf,
								 "\x19"
										 "Ethereum Signed Message:\n%zu%s",
								 strlen(msg), msg);

		assert_true(n > 0);
		assert_keccak(buf, (size_t) n, vector_string(item, "hash"));
		free(buf);
	}
}

/* address = last 20 bytes of keccak256(uncompressed public key without its 0x04). */
static void
test_vector_addresses(void **state)
{
	static const char *const who[] = {"owner", "ephemeral"};

	for (size_t w = 0; w < 2; w++)
	{
		json_t *id = json_object_get(vectors, who[w]);
		uint8_t pub[65];
		uint8_t digest[32];
		char	address[43] = "0x";
		char	expected[43];

		bytes_of(vector_string(id, "publicKeyUncompressed"), pub, sizeof(pub));
		assert_int_equal(pub[0], 0x04);
		keccak256(pub + 1, 64, digest);
		hex_of(digest + 12, 20, address + 2);

		snprintf(expected, sizeof(expected), "%s", vector_string(id, "address"));
		for (char *p = expected; *p; p++)
			*p = (char) (*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
		assert_string_equal(address, expected);
	}
}

/*
 * Lengths around the 136-byte rate, over bytes (7 i + 3) mod 256. The values come from this
 * implementation after the same sponge with SHA3's 0x06 domain byte matched Python's
 * hashlib.sha3_256 on every length 0..699 (the two differ only in that byte).
 */
static const struct
{
	size_t		len;
	const char *digest;
} boundary_cases[] = {
	{1, "69c322e3248a5dfc29d73c5b0553b0185a35cd5bb6386747517ef7e53b15e287"},
	{135, "00ef96af9cf4b24c7f269d922294444a197d0a33638c2e56634c57e892103a8f"},
	{136, "742061bcad767ed4c4f5883b1dcb1aad11afdcc140dc469d953759b127b9f9ed"},
	{137, "e3371f61e770abf254c34239c3b0099ad90594507415bc81dd0a10b9692bbf2a"},
	{271, "4401c4afbe16ff911bdbf2d38e556e5b861f3fdf0f9d4306b1c46f6ae4f73584"},
	{272, "ac141fd7b0a0ffcd2e967254d508da3ec616596493c36fa304425647d90e6de5"},
	{273, "16192ea86793083e47731cb3c970600f04768414d92bc0540e54ce8607a0fce0"},
	{699, "481d3b14132ea834ac80a559c6bddf48078211a942cbf6c20d11cc52e9f071a6"},
};

static void
test_block_boundaries(void **state)
{
	uint8_t buf[700];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t) (i * 7 + 3);
	for (size_t c = 0; c < sizeof(boundary_cases) / sizeof(boundary_cases[0]); c++)
		assert_keccak(buf, boundary_cases[c].len, boundary_cases[c].digest);
}

/* A published value (the Ethereum yellow-paper era test string). */
static void
test_known_sentence(void **state)
{
	static const char fox[] = "The quick brown fox jumps over the lazy dog";

	assert_keccak(fox, strlen(fox),
				  "4d741b6f1eb29cb2a9b9911c82f56fa8d73b04959d3d9d222895df6c0b28aa15");
}

/* Input alignment must not matter: lanes are loaded byte by byte. */
static void
test_unaligned_input(void **state)
{
	uint8_t buf[300];
	uint8_t a[32];
	uint8_t b[32];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t) (i * 13 + 1);
	for (size_t off = 1; off < 8; off++)
	{
		uint8_t copy[300];

		memcpy(copy, buf + off, sizeof(buf) - off);
		keccak256(buf + off, sizeof(buf) - off, a);
		keccak256(copy, sizeof(buf) - off, b);
		assert_memory_equal(a, b, sizeof(a));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector_hashes),	 cmocka_unit_test(test_vector_personal_hashes),
		cmocka_unit_test(test_vector_addresses), cmocka_unit_test(test_block_boundaries),
		cmocka_unit_test(test_known_sentence),	 cmocka_unit_test(test_unaligned_input),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
