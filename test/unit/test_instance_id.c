/*
 * test_instance_id.c — daemon/lib/instance_id.c: the host:pid:random format, and one name per
 * process however often it is asked for.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/instance_id.h"

static void
test_format(void **state)
{
	static const struct
	{
		const char	 *host;
		int			  pid;
		unsigned char r[8];
		size_t		  size;
		const char	 *want;
	} cases[] = {
		{"web-1",
		 42,
		 {0, 1, 2, 3, 0xa4, 0xb5, 0xc6, 0xff},
		 INSTANCE_ID_MAX,
		 "web-1:42:00010203a4b5c6ff"},
		{"",
		 7,
		 {0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1},
		 INSTANCE_ID_MAX,
		 "sociald:7:deadbeef00000001"},
		{NULL, 1, {0}, INSTANCE_ID_MAX, "sociald:1:0000000000000000"},
		{"h", 123, {1, 2, 3, 4, 5, 6, 7, 8}, 8, "h:123:0"}, /* truncated, NUL-terminated */
		{"0123456789012345678901234567890123456789012345678901234567890123"
		 "456789",
		 4194304,
		 {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		 INSTANCE_ID_MAX,
		 "0123456789012345678901234567890123456789012345678901234567890123456789:4194304:"
		 "ffffffffffffffff"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		char out[INSTANCE_ID_MAX];

		memset(out, '#', sizeof(out));
		instance_id_format(out, cases[i].size, cases[i].host, cases[i].pid, cases[i].r);
		assert_string_equal(out, cases[i].want);
	}
}

static void
test_one_per_process(void **state)
{
	const char *id = instance_id();
	char		host[64] = {0};
	char		prefix[INSTANCE_ID_MAX];
	size_t		n;

	assert_non_null(id);
	assert_ptr_equal(instance_id(), id);
	assert_string_equal(instance_id(), id);
	if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "sociald");
	snprintf(prefix, sizeof(prefix), "%s:%d:", host, (int) getpid());
	n = strlen(prefix);
	assert_int_equal(strncmp(id, prefix, n), 0);
	assert_int_equal(strlen(id), n + 16);
	assert_int_equal(strspn(id + n, "0123456789abcdef"), 16);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_one_per_process),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
