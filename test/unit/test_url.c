/*
 * test_url.c — daemon/lib/url.c: schemes, host[:port] spans, ports at their limits and IP
 * literals. The redis:// and http(s):// parsers built on it have their own tables
 * (test_redis_client.c, test_archipelago.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/url.h"

static void
test_scheme(void **state)
{
	static const char *const schemes[] = {"rediss", "redis", "http"};
	const struct
	{
		const char *url;
		int			index;
		const char *rest;
	} cases[] = {
		{"redis://h", 1, "h"},	{"REDIS://h", 1, "h"},	  {"rediss://h", 0, "h"},
		{"ReDiSs://", 0, ""},	{"http://x/y", 2, "x/y"}, {"https://x", -1, NULL},
		{"redis:/h", -1, NULL}, {"redis:", -1, NULL},	  {"redis", -1, NULL},
		{"", -1, NULL},			{" redis://h", -1, NULL}, {"redisx://h", -1, NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		const char *rest = NULL;

		assert_int_equal(url_scheme(cases[i].url, schemes, 3, &rest), cases[i].index);
		if (cases[i].index >= 0)
			assert_string_equal(rest, cases[i].rest);
	}
}

static void
test_authority(void **state)
{
	const struct
	{
		const char *in;
		size_t		limit; /* bytes of in to read; 0: all */
		int			rc;
		const char *host;
		bool		bracketed;
		bool		has_port;
		long		port;
		const char *end; /* what is left after host[:port] */
	} cases[] = {
		{"host", 0, 0, "host", false, false, 0, ""},
		{"host:6379/2", 0, 0, "host", false, true, 6379, "/2"},
		{"Host_1.example-x:1", 0, 0, "Host_1.example-x", false, true, 1, ""},
		{"h:65535", 0, 0, "h", false, true, 65535, ""},
		{"h:65536", 0, 0, "h", false, true, -1, ""},
		{"h:0", 0, 0, "h", false, true, -1, ""},
		{"h:", 0, 0, "h", false, true, -1, ""},
		{"h:-1", 0, 0, "h", false, true, -1, "-1"},
		{"h:80x", 0, 0, "h", false, true, 80, "x"},
		{"h:99999999999999999999", 0, 0, "h", false, true, -1, ""},
		{"h:0000000080", 0, 0, "h", false, true, 80, ""},
		{"h*st:1", 0, 0, "h", false, false, 0, "*st:1"},
		{"user@host", 0, 0, "user", false, false, 0, "@host"},
		{":80", 0, 0, "", false, true, 80, ""},
		{"", 0, 0, "", false, false, 0, ""},
		{"[::1]:8080/x", 0, 0, "::1", true, true, 8080, "/x"},
		{"[::1]", 0, 0, "::1", true, false, 0, ""},
		{"[]", 0, 0, "", true, false, 0, ""},
		{"[::1]x", 0, 0, "::1", true, false, 0, "x"},
		{"[::1", 0, -1, NULL, false, false, 0, NULL},
		{"[::1/x]", 0, 0, "::1/x", true, false, 0, ""},
		{"[::1/x]", 4, -1, NULL, false, false, 0, NULL}, /* the ']' is past the limit */
		{"host:6379/2", 6, 0, "host", false, true, 6, "379/2"},
		{"hostname", 4, 0, "host", false, false, 0, "name"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		const char	*in = cases[i].in;
		const char	*limit = in + (cases[i].limit ? cases[i].limit : strlen(in));
		UrlAuthority a;

		assert_int_equal(url_authority(in, limit, &a), cases[i].rc);
		if (cases[i].rc != 0)
			continue;
		assert_int_equal(a.host_len, strlen(cases[i].host));
		assert_memory_equal(a.host, cases[i].host, a.host_len);
		assert_int_equal(a.bracketed, cases[i].bracketed);
		assert_int_equal(a.has_port, cases[i].has_port);
		if (a.has_port)
			assert_int_equal(a.port, cases[i].port);
		assert_string_equal(a.end, cases[i].end);
	}
}

static void
test_span_and_ip(void **state)
{
	const struct
	{
		const char *s;
		size_t		span;
		bool		v4, v6;
	} cases[] = {
		{"127.0.0.1", 9, true, false},	 {"::1", 0, false, true},
		{"2001:db8::1", 4, false, true}, {"example.org", 11, false, false},
		{"a_b-c.D9", 8, false, false},	 {"caf\xc3\xa9", 3, false, false},
		{"256.0.0.1", 9, false, false},	 {"", 0, false, false},
		{"[::1]", 0, false, false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		const char *s = cases[i].s;

		assert_int_equal(url_host_span(s, s + strlen(s)), cases[i].span);
		assert_int_equal(url_ipv4(s), cases[i].v4);
		assert_int_equal(url_ipv6(s), cases[i].v6);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scheme),
		cmocka_unit_test(test_authority),
		cmocka_unit_test(test_span_and_ip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
