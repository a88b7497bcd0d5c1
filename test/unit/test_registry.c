/*
 * test_registry.c — the pure parts of the profile registry client (daemon/social/registry.c):
 * REGISTRY_URL → the /profiles path, and /profiles answers → profiles, table-driven: the
 * reference's field choices (name, else unclaimedName; face256; nameColor), unusable profiles
 * skipped and counted, garbage of every shape refused, a callback that stops the walk.
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

#include "social/registry.h"

#define A1 "0x1111111111111111111111111111111111111111"
#define A2 "0x2222222222222222222222222222222222222222"
#define AU "0xABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCD"
#define PIC "https://profile-images.decentraland.org/entities/bafy/face.png"

static void
test_url(void **state)
{
	static const struct
	{
		const char *url;
		int			ok;
		const char *path;
		const char *host_header;
		int			port;
	} cases[] = {
		{"https://peer.decentraland.org", 1, "/profiles", "peer.decentraland.org", 443},
		{"https://peer.decentraland.org/lambdas/", 1, "/lambdas/profiles", "peer.decentraland.org",
		 443},
		{"http://127.0.0.1:5055", 1, "/profiles", "127.0.0.1:5055", 5055},
		{"ftp://x", 0, NULL, NULL, 0},
		{"http://u@h", 0, NULL, NULL, 0},
		{"", 0, NULL, NULL, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		char host[256], path[1024], hh[272], err[160];
		bool tls, numeric;
		int	 port;
		int	 rc = registry_url_parse(cases[i].url, &tls, host, sizeof(host), &numeric, &port, path,
									 sizeof(path), hh, sizeof(hh), err, sizeof(err));

		if (!cases[i].ok)
		{
			assert_int_equal(rc, -1);
			assert_true(err[0] != '\0');
			continue;
		}
		if (rc != 0)
			fail_msg("%s: refused: %s", cases[i].url, err);
		assert_string_equal(path, cases[i].path);
		assert_string_equal(hh, cases[i].host_header);
		assert_int_equal(port, cases[i].port);
	}
}

typedef struct Got
{
	int	   n;
	int	   stop_at;
	char   address[4][ADDRESS_LEN + 1];
	char   name[4][64];
	bool   claimed[4];
	char   picture[4][128];
	bool   has_color[4];
	double color[4][3];
} Got;

static int
collect(void *ud, const RegistryProfile *p)
{
	Got *g = ud;

	if (g->stop_at && g->n + 1 == g->stop_at)
		return -1;
	if (g->n == 4)
		return -1;
	snprintf(g->address[g->n], sizeof(g->address[0]), "%s", p->address);
	snprintf(g->name[g->n], sizeof(g->name[0]), "%s", p->name);
	g->claimed[g->n] = p->has_claimed_name;
	snprintf(g->picture[g->n], sizeof(g->picture[0]), "%s", p->picture);
	g->has_color[g->n] = p->has_color;
	memcpy(g->color[g->n], p->color, sizeof(p->color));
	g->n++;
	return 0;
}

/* One profile body per case: what comes out of it (or nothing, counted as unusable). */
typedef struct OneCase
{
	const char *what;
	const char *body;
	int			usable; /* 1: one profile; 0: skipped */
	const char *address;
	const char *name;
	bool		claimed;
	bool		has_color;
	double		r;
} OneCase;

#define AV(inner) "[{\"avatars\":[{" inner "}]}]"
#define SNAP "\"avatar\":{\"snapshots\":{\"face256\":\"" PIC "\",\"body\":\"x\"}}"

static void
test_parse_one(void **state)
{
	static const OneCase cases[] = {
		{"claimed name and colour",
		 AV("\"userId\":\"" A1 "\",\"name\":\"Alice\",\"hasClaimedName\":true,"
			"\"nameColor\":{\"r\":0.5,\"g\":0,\"b\":1}," SNAP),
		 1, A1, "Alice", true, true, 0.5},
		{"unclaimed name when name is missing",
		 AV("\"userId\":\"" A1 "\",\"unclaimedName\":\"alice#1111\"," SNAP), 1, A1, "alice#1111",
		 false, false, 0},
		{"unclaimed name when name is empty",
		 AV("\"userId\":\"" A1 "\",\"name\":\"\",\"unclaimedName\":\"u\"," SNAP), 1, A1, "u", false,
		 false, 0},
		{"user id lower-cased", AV("\"userId\":\"" AU "\",\"name\":\"B\"," SNAP), 1,
		 "0xabcdefabcdefabcdefabcdefabcdefabcdefabcd", "B", false, false, 0},
		{"colour out of range dropped, profile kept",
		 AV("\"userId\":\"" A1 "\",\"name\":\"C\",\"nameColor\":{\"r\":2,\"g\":0,\"b\":0}," SNAP),
		 1, A1, "C", false, false, 0},
		{"colour missing a component dropped",
		 AV("\"userId\":\"" A1 "\",\"name\":\"C\",\"nameColor\":{\"r\":0.1,\"g\":0}," SNAP), 1, A1,
		 "C", false, false, 0},
		{"hasClaimedName not a boolean is false",
		 AV("\"userId\":\"" A1 "\",\"name\":\"D\",\"hasClaimedName\":\"yes\"," SNAP), 1, A1, "D",
		 false, false, 0},
		{"no user id", AV("\"name\":\"E\"," SNAP), 0, NULL, NULL, false, false, 0},
		{"invalid user id", AV("\"userId\":\"0x12\",\"name\":\"E\"," SNAP), 0, NULL, NULL, false,
		 false, 0},
		{"user id not a string", AV("\"userId\":7,\"name\":\"E\"," SNAP), 0, NULL, NULL, false,
		 false, 0},
		{"no name at all", AV("\"userId\":\"" A1 "\"," SNAP), 0, NULL, NULL, false, false, 0},
		{"no picture", AV("\"userId\":\"" A1 "\",\"name\":\"F\""), 0, NULL, NULL, false, false, 0},
		{"empty picture",
		 AV("\"userId\":\"" A1 "\",\"name\":\"F\",\"avatar\":{\"snapshots\":{\"face256\":\"\"}}"),
		 0, NULL, NULL, false, false, 0},
		{"picture not a string",
		 AV("\"userId\":\"" A1 "\",\"name\":\"F\",\"avatar\":{\"snapshots\":{\"face256\":1}}"), 0,
		 NULL, NULL, false, false, 0},
		{"no avatars", "[{\"timerId\":1}]", 0, NULL, NULL, false, false, 0},
		{"avatars empty", "[{\"avatars\":[]}]", 0, NULL, NULL, false, false, 0},
		{"entry not an object", "[42]", 0, NULL, NULL, false, false, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		const OneCase *c = &cases[i];
		Got			   g;
		size_t		   unusable = 99;
		char		   err[200];
		long		   n;

		memset(&g, 0, sizeof(g));
		n = registry_parse_profiles(c->body, strlen(c->body), collect, &g, &unusable, err,
									sizeof(err));
		if (n != c->usable)
			fail_msg("%s: %ld usable (%s)", c->what, n, err);
		assert_int_equal(unusable, c->usable ? 0 : 1);
		if (!c->usable)
			continue;
		assert_string_equal(g.address[0], c->address);
		assert_string_equal(g.name[0], c->name);
		assert_string_equal(g.picture[0], PIC);
		assert_int_equal(g.claimed[0], c->claimed);
		assert_int_equal(g.has_color[0], c->has_color);
		if (c->has_color)
			assert_true(g.color[0][0] == c->r);
	}
}

static void
test_parse_many(void **state)
{
	const char *body = "["
					   "{\"avatars\":[{\"userId\":\"" A1 "\",\"name\":\"A\"," SNAP "}]},"
					   "{\"avatars\":[{\"name\":\"nobody\"," SNAP "}]},"
					   "{\"avatars\":[{\"userId\":\"" A2 "\",\"unclaimedName\":\"b\"," SNAP "}]}"
					   "]";
	Got			g;
	size_t		unusable;
	char		err[200];

	memset(&g, 0, sizeof(g));
	assert_int_equal(
		registry_parse_profiles(body, strlen(body), collect, &g, &unusable, err, sizeof(err)), 2);
	assert_int_equal(unusable, 1);
	assert_string_equal(g.address[0], A1);
	assert_string_equal(g.address[1], A2);
	assert_string_equal(g.name[1], "b");

	memset(&g, 0, sizeof(g));
	assert_int_equal(registry_parse_profiles("[]", 2, collect, &g, &unusable, err, sizeof(err)), 0);
	assert_int_equal(g.n, 0);

	memset(&g, 0, sizeof(g));
	g.stop_at = 2;
	assert_int_equal(
		registry_parse_profiles(body, strlen(body), collect, &g, &unusable, err, sizeof(err)), -1);
	assert_int_equal(g.n, 1);
}

static void
test_parse_garbage(void **state)
{
	static const char *const bodies[] = {
		"",
		"not json",
		"<html>502 Bad Gateway</html>",
		"{\"ids\":[]}",
		"\"text\"",
		"null",
		"[{\"avatars\":[{\"userId\":\"" A1 "\"}]}",
		"[1,2,",
	};

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
	{
		Got	   g;
		size_t unusable;
		char   err[200];

		memset(&g, 0, sizeof(g));
		if (registry_parse_profiles(bodies[i], strlen(bodies[i]), collect, &g, &unusable, err,
									sizeof(err)) != -1)
			fail_msg("accepted: %s", bodies[i]);
		assert_true(err[0] != '\0');
		assert_int_equal(g.n, 0);
	}
	{
		size_t unusable;
		char   err[200];

		assert_int_equal(registry_parse_profiles("[]", (size_t) REGISTRY_BODY_MAX + 1, collect,
												 NULL, &unusable, err, sizeof(err)),
						 -1);
		assert_non_null(strstr(err, "over"));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_parse_one),
		cmocka_unit_test(test_parse_many),
		cmocka_unit_test(test_parse_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
