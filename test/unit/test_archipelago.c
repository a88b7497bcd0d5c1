/*
 * test_archipelago.c — the pure parts of the Archipelago presence source (daemon/archipelago.c):
 * ARCHIPELAGO_STATS_URL parsing, id validation, and /peers bodies with jansson: valid ones,
 * junk of every shape, non-string and invalid ids skipped, a body near and over the 8 MiB
 * bound, deep nesting, and a callback that stops the walk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "presence/archipelago.h"

typedef struct UrlCase
{
	const char *url;
	bool		tls;
	const char *host;
	bool		numeric;
	int			port;
	const char *path;
	const char *host_header;
} UrlCase;

static void
test_url_valid(void **state)
{
	static const UrlCase cases[] = {
		{"http://archipelago", false, "archipelago", false, 80, "/peers", "archipelago"},
		{"http://archipelago/", false, "archipelago", false, 80, "/peers", "archipelago"},
		{"http://archipelago:3000", false, "archipelago", false, 3000, "/peers",
		 "archipelago:3000"},
		{"http://127.0.0.1:5000//", false, "127.0.0.1", true, 5000, "/peers", "127.0.0.1:5000"},
		{"https://stats.example.org/comms/", true, "stats.example.org", false, 443, "/comms/peers",
		 "stats.example.org"},
		{"https://stats.example.org:8443/a/b", true, "stats.example.org", false, 8443, "/a/b/peers",
		 "stats.example.org:8443"},
		{"http://[::1]:8080/x", false, "::1", true, 8080, "/x/peers", "[::1]:8080"},
		{"https://[2001:db8::1]", true, "2001:db8::1", true, 443, "/peers", "[2001:db8::1]"},
		{"HTTP://Host_1.example-x", false, "Host_1.example-x", false, 80, "/peers",
		 "Host_1.example-x"},
		{"http://h:65535", false, "h", false, 65535, "/peers", "h:65535"},
		{"http://h:443", false, "h", false, 443, "/peers", "h:443"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		const UrlCase *c = &cases[i];
		ArchipelagoUrl u;
		char		   err[160];

		if (archipelago_url_parse(c->url, &u, err, sizeof(err)) != 0)
			fail_msg("%s: refused: %s", c->url, err);
		assert_int_equal(u.tls, c->tls);
		assert_string_equal(u.host, c->host);
		assert_int_equal(u.numeric, c->numeric);
		assert_int_equal(u.port, c->port);
		assert_string_equal(u.path, c->path);
		assert_string_equal(u.host_header, c->host_header);
	}
}

typedef struct BadUrl
{
	const char *url;
	const char *why; /* a substring of the message */
} BadUrl;

static void
test_url_invalid(void **state)
{
	static const BadUrl cases[] = {
		{"", "empty"},
		{"archipelago:3000", "http:// or https://"},
		{"ftp://archipelago", "http:// or https://"},
		{"ws://archipelago", "http:// or https://"},
		{"http://", "no host"},
		{"http:///peers", "no host"},
		{"http://:80", "no host"},
		{"http://user@host", "user information"},
		{"http://user:pw@host", "port"},
		{"http://host:0", "port"},
		{"http://host:65536", "port"},
		{"http://host:-1", "port"},
		{"http://host:", "port"},
		{"http://host:abc", "port"},
		{"http://host:99999999999999999999", "port"},
		{"http://host:80x", "unexpected 'x'"},
		{"http://host?x=1", "unexpected '?'"},
		{"http://host/peers?x=1", "query"},
		{"http://host/#frag", "fragment"},
		{"http://host/a b", "spaces"},
		{"http://host/a\tb", "control"},
		{"http://host/caf\xc3\xa9", "control"},
		{"http://ho st", "unexpected ' '"},
		{"http://[::1", "[address]"},
		{"http://[]", "[address]"},
		{"http://[zz]:80", "not an IPv6"},
		{"http://[::1]x", "unexpected 'x'"},
	};
	ArchipelagoUrl u;
	char		   err[160];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		if (archipelago_url_parse(cases[i].url, &u, err, sizeof(err)) == 0)
			fail_msg("\"%s\" accepted", cases[i].url);
		if (!strstr(err, cases[i].why))
			fail_msg("\"%s\": message \"%s\" lacks \"%s\"", cases[i].url, err, cases[i].why);
	}
	assert_int_equal(archipelago_url_parse(NULL, &u, err, sizeof(err)), -1);

	/* A host of 255 characters fits; 256 does not. A path too long for the buffer is refused. */
	{
		char url[2200];

		snprintf(url, sizeof(url), "http://%0255d", 0);
		assert_int_equal(archipelago_url_parse(url, &u, err, sizeof(err)), 0);
		snprintf(url, sizeof(url), "http://%0256d", 0);
		assert_int_equal(archipelago_url_parse(url, &u, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "too long"));
		snprintf(url, sizeof(url), "http://h/%02000d", 0);
		assert_int_equal(archipelago_url_parse(url, &u, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "too long"));
	}
}

static void
test_address(void **state)
{
	static const struct
	{
		const char *id;
		const char *want; /* NULL: invalid */
	} cases[] = {
		{"0xabcdef0123456789abcdef0123456789abcdef01",
		 "0xabcdef0123456789abcdef0123456789abcdef01"},
		{"0xAbCdEf0123456789aBcDeF0123456789ABCDEF01",
		 "0xabcdef0123456789abcdef0123456789abcdef01"},
		{"0x0000000000000000000000000000000000000000",
		 "0x0000000000000000000000000000000000000000"},
		{"0XABCDEF0123456789ABCDEF0123456789ABCDEF01", NULL},
		{"abcdef0123456789abcdef0123456789abcdef0123", NULL},
		{"0xabcdef0123456789abcdef0123456789abcdef0", NULL},
		{"0xabcdef0123456789abcdef0123456789abcdef012", NULL},
		{"0xabcdef0123456789abcdef0123456789abcdef0g", NULL},
		{"0xabcdef0123456789abcdef0123456789abcdef01 ", NULL},
		{" 0xabcdef0123456789abcdef0123456789abcdef01", NULL},
		{"0x", NULL},
		{"", NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		char out[43] = "untouched";
		bool ok = archipelago_address(cases[i].id, out);

		if (ok != (cases[i].want != NULL))
			fail_msg("\"%s\": %s", cases[i].id, ok ? "accepted" : "refused");
		if (ok)
			assert_string_equal(out, cases[i].want);
		else
			assert_string_equal(out, "untouched");
	}
	assert_false(archipelago_address(NULL, (char[43]){0}));
}

/* Collects what the parser reports. */
typedef struct Seen
{
	char (*addr)[43];
	size_t n;
	size_t cap;
	size_t stop_at; /* 0: never stop */
} Seen;

static int
collect(void *ud, const char *address)
{
	Seen *s = ud;

	if (s->stop_at && s->n + 1 == s->stop_at)
		return -1;
	if (s->n == s->cap)
	{
		s->cap = s->cap ? s->cap * 2 : 16;
		s->addr = realloc(s->addr, s->cap * sizeof(*s->addr));
		assert_non_null(s->addr);
	}
	assert_int_equal(strlen(address), 42);
	memcpy(s->addr[s->n++], address, 43);
	return 0;
}

static long
parse(const char *body, Seen *s, size_t *invalid, char *err)
{
	memset(s, 0, sizeof(*s));
	return archipelago_parse_peers(body, strlen(body), collect, s, invalid, err, 256);
}

static void
test_parse_valid(void **state)
{
	Seen   s;
	size_t invalid;
	char   err[256];

	/* The documented shape, plus members Archipelago adds (ignored). */
	assert_int_equal(
		parse("{\"ok\":true,\"peers\":[{\"id\":\"0xAbCdEf0123456789aBcDeF0123456789ABCDEF01\","
			  "\"address\":\"x\",\"parcel\":[1,2],\"lastPing\":1},"
			  "{\"id\":\"0x2222222222222222222222222222222222222222\"}]}",
			  &s, &invalid, err),
		2);
	assert_int_equal(invalid, 0);
	assert_string_equal(s.addr[0], "0xabcdef0123456789abcdef0123456789abcdef01");
	assert_string_equal(s.addr[1], "0x2222222222222222222222222222222222222222");
	free(s.addr);

	/* Empty list; whitespace around everything. */
	assert_int_equal(parse(" \n{ \"peers\" : [ ] }\n ", &s, &invalid, err), 0);
	assert_int_equal(invalid, 0);
	free(s.addr);

	/* Duplicates are reported as they come (presence dedups by status). */
	assert_int_equal(parse("{\"peers\":[{\"id\":\"0x1111111111111111111111111111111111111111\"},"
						   "{\"id\":\"0x1111111111111111111111111111111111111111\"}]}",
						   &s, &invalid, err),
					 2);
	free(s.addr);
}

/* Entries that are skipped one by one; the rest of the list still counts. */
static void
test_parse_skips(void **state)
{
	Seen   s;
	size_t invalid;
	char   err[256];

	assert_int_equal(
		parse("{\"peers\":[42, \"0x1111111111111111111111111111111111111111\", null, true, [], {},"
			  "{\"id\":null}, {\"id\":42}, {\"id\":4.5}, {\"id\":true}, {\"id\":{}},"
			  "{\"id\":[\"0x1111111111111111111111111111111111111111\"]},"
			  "{\"ID\":\"0x1111111111111111111111111111111111111111\"},"
			  "{\"id\":\"\"}, {\"id\":\"bad\"}, {\"id\":\"0x111\"},"
			  "{\"id\":\"0X1111111111111111111111111111111111111111\"},"
			  "{\"id\":\"1111111111111111111111111111111111111111\"},"
			  "{\"id\":\"0x11111111111111111111111111111111111111111\"},"
			  "{\"id\":\"0x111111111111111111111111111111111111111g\"},"
			  "{\"id\":\" 0x1111111111111111111111111111111111111111\"},"
			  "{\"id\":\"0x1111111111111111111111111111111111111111\\n\"},"
			  "{\"id\":\"0x\\u00e91111111111111111111111111111111111111\"},"
			  "{\"id\":\"0x3333333333333333333333333333333333333333\"}]}",
			  &s, &invalid, err),
		1);
	assert_int_equal(invalid, 23);
	assert_string_equal(s.addr[0], "0x3333333333333333333333333333333333333333");
	free(s.addr);
}

/* Bodies that are not a /peers answer at all. */
static void
test_parse_junk(void **state)
{
	static const struct
	{
		const char *body;
		const char *why;
	} cases[] = {
		{"", "not JSON"},
		{"<html>502 Bad Gateway</html>", "not JSON"},
		{"{\"peers\":[", "not JSON"},
		{"{\"peers\":[]} trailing", "not JSON"},
		{"{\"peers\":[],}", "not JSON"},
		{"{'peers':[]}", "not JSON"},
		{"{\"peers\":[{\"id\":\"0x\\u0000\"}]}", "not JSON"},
		{"[]", "not a JSON object"},
		{"[{\"id\":\"0x1111111111111111111111111111111111111111\"}]", "not a JSON object"},
		/* jansson takes only an object or an array at the top. */
		{"\"peers\"", "not JSON"},
		{"42", "not JSON"},
		{"null", "not JSON"},
		{"{}", "no \"peers\" array"},
		{"{\"Peers\":[]}", "no \"peers\" array"},
		{"{\"peers\":null}", "no \"peers\" array"},
		{"{\"peers\":{}}", "no \"peers\" array"},
		{"{\"peers\":\"0x1111111111111111111111111111111111111111\"}", "no \"peers\" array"},
		{"{\"peers\":42}", "no \"peers\" array"},
	};
	Seen   s;
	size_t invalid;
	char   err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		if (parse(cases[i].body, &s, &invalid, err) != -1)
			fail_msg("\"%s\" accepted", cases[i].body);
		if (!strstr(err, cases[i].why))
			fail_msg("\"%s\": message \"%s\" lacks \"%s\"", cases[i].body, err, cases[i].why);
		assert_int_equal(s.n, 0);
		free(s.addr);
	}
	/* A NUL byte inside the body (len counts it) is not JSON either. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(
		archipelago_parse_peers("{\"peers\":[]}\0x", 14, collect, &s, &invalid, err, sizeof(err)),
		-1);
	/* Nesting far beyond any answer is refused by jansson's depth limit, not by the stack. */
	{
		size_t depth = 100000;
		char  *deep = malloc(2 * depth + 32);
		size_t n = 0;

		assert_non_null(deep);
		n += (size_t) sprintf(deep, "{\"peers\":");
		for (size_t i = 0; i < depth; i++)
			deep[n++] = '[';
		for (size_t i = 0; i < depth; i++)
			deep[n++] = ']';
		deep[n++] = '}';
		deep[n] = '\0';
		assert_int_equal(parse(deep, &s, &invalid, err), -1);
		assert_non_null(strstr(err, "not JSON"));
		free(deep);
	}
}

/* Builds {"peers":[{"id":"0x…"},…]} of about `bytes` bytes; returns its length. */
static size_t
build_body(char *buf, size_t bytes, size_t *peers)
{
	size_t n = (size_t) sprintf(buf, "{\"peers\":[");
	size_t count = 0;

	/* Each entry is 51 bytes with its comma; leave room for the closing "]}". */
	while (n + 51 + 3 <= bytes)
	{
		n += (size_t) sprintf(buf + n, "%s{\"id\":\"0x%040zx\"}", count ? "," : "", count);
		count++;
	}
	n += (size_t) sprintf(buf + n, "]}");
	*peers = count;
	return n;
}

/* The largest body read still parses, with every peer; one byte more is refused unread. */
static void
test_parse_huge(void **state)
{
	char  *buf = malloc(ARCHIPELAGO_BODY_MAX + 64);
	size_t peers;
	size_t len;
	size_t invalid;
	char   err[256];
	Seen   s;

	assert_non_null(buf);
	len = build_body(buf, ARCHIPELAGO_BODY_MAX, &peers);
	assert_true(len <= ARCHIPELAGO_BODY_MAX);
	assert_true(peers > 160000);
	memset(&s, 0, sizeof(s));
	assert_int_equal(archipelago_parse_peers(buf, len, collect, &s, &invalid, err, sizeof(err)),
					 (long) peers);
	assert_int_equal(invalid, 0);
	assert_int_equal(s.n, peers);
	{
		char want[43];

		snprintf(want, sizeof(want), "0x%040zx", peers - 1);
		assert_string_equal(s.addr[peers - 1], want);
	}
	free(s.addr);

	memset(&s, 0, sizeof(s));
	memset(buf, ' ', ARCHIPELAGO_BODY_MAX + 1);
	assert_int_equal(archipelago_parse_peers(buf, ARCHIPELAGO_BODY_MAX + 1, collect, &s, &invalid,
											 err, sizeof(err)),
					 -1);
	assert_non_null(strstr(err, "over"));
	assert_int_equal(s.n, 0);
	free(buf);
}

/* The callback can stop the walk (out of memory): the whole parse fails, nothing half-kept. */
static void
test_parse_stop(void **state)
{
	Seen		s;
	size_t		invalid;
	char		err[256];
	const char *body = "{\"peers\":[{\"id\":\"0x1111111111111111111111111111111111111111\"},"
					   "{\"id\":\"0x2222222222222222222222222222222222222222\"},"
					   "{\"id\":\"0x3333333333333333333333333333333333333333\"}]}";

	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	assert_int_equal(
		archipelago_parse_peers(body, strlen(body), collect, &s, &invalid, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "out of memory"));
	assert_int_equal(s.n, 1);
	free(s.addr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_valid),	cmocka_unit_test(test_url_invalid),
		cmocka_unit_test(test_address),		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_skips), cmocka_unit_test(test_parse_junk),
		cmocka_unit_test(test_parse_huge),	cmocka_unit_test(test_parse_stop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
