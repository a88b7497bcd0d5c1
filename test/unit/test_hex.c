/*
 * test_hex.c — daemon/lib/hex.c: the value of every byte as a hex digit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/hex.h"

static void
test_every_byte(void **state)
{
	for (int c = -128; c < 256; c++)
	{
		int want = -1;

		if (c >= '0' && c <= '9')
			want = c - '0';
		else if (c >= 'a' && c <= 'f')
			want = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			want = c - 'A' + 10;
		assert_int_equal(hex_value(c), want);
	}
}

static void
test_cases(void **state)
{
	static const struct
	{
		int c;
		int value;
	} cases[] = {
		{'0', 0},  {'9', 9},  {'a', 10}, {'f', 15}, {'A', 10}, {'F', 15},  {'g', -1},
		{'G', -1}, {'/', -1}, {':', -1}, {'`', -1}, {'@', -1}, {'\0', -1}, {0xe0, -1},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(hex_value(cases[i].c), cases[i].value);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_byte),
		cmocka_unit_test(test_cases),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
