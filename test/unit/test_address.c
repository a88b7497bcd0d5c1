/*
 * test_address.c — daemon/lib/address.c: which strings are kept addresses (address_valid),
 * which are addresses in any case (address_hex, with and without "0X"), and lower-casing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/address.h"

#define A40 "0123456789abcdef0123456789abcdef01234567"
#define U40 "0123456789ABCDEF0123456789abcdef01234567"

static const struct
{
	const char *s;
	bool		valid;	 /* address_valid */
	bool		hex;	 /* address_hex(s, false) */
	bool		hex_any; /* address_hex(s, true) */
} cases[] = {
	{"0x" A40, true, true, true},
	{"0x" U40, false, true, true},
	{"0X" A40, false, false, true},
	{"0X" U40, false, false, true},
	{"0x" A40 "0", false, true, true}, /* longer: a prefix is an address, the string is not */
	{"0x" A40 ".heartbeat", false, true, true},
	{"0x" A40 "\n", false, true, true},
	{"0x0123456789abcdef0123456789abcdef0123456", false, false, false}, /* 39 digits */
	{"0x0123456789abcdef0123456789abcdef0123456g", false, false, false},
	{"0x0123456789abcdef0123456789abcdef012345 7", false, false, false},
	{"1x" A40, false, false, false},
	{"00" A40, false, false, false},
	{"x" A40 "0", false, false, false},
	{"0x", false, false, false},
	{"", false, false, false},
	{" 0x" A40, false, false, false},
	{"0x\xe0" A40, false, false, false},
};

static void
test_checks(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		assert_int_equal(address_valid(cases[i].s), cases[i].valid);
		assert_int_equal(address_hex(cases[i].s, false), cases[i].hex);
		assert_int_equal(address_hex(cases[i].s, true), cases[i].hex_any);
	}
	assert_false(address_valid(NULL));
	assert_false(address_hex(NULL, true));
}

static void
test_lower(void **state)
{
	static const struct
	{
		const char *in;
		const char *out;
	} lower[] = {
		{"0x" A40, "0x" A40},
		{"0x" U40, "0x" A40},
		{"0X" U40, "0x" A40},
		{"0x" A40 ".tail", "0x" A40},
		{"0XABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCD",
		 "0xabcdefabcdefabcdefabcdefabcdefabcdefabcd"},
	};

	for (size_t i = 0; i < sizeof(lower) / sizeof(lower[0]); i++)
	{
		char out[ADDRESS_LEN + 1];

		memset(out, '#', sizeof(out));
		address_lower(lower[i].in, out);
		assert_string_equal(out, lower[i].out);
		assert_true(address_valid(out));
	}
}

static void
test_len(void **state)
{
	assert_int_equal(ADDRESS_LEN, strlen("0x" A40));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checks),
		cmocka_unit_test(test_lower),
		cmocka_unit_test(test_len),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
