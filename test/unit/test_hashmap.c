/*
 * test_hashmap.c — daemon/lib/hashmap.c: the two hash functions against known values, and a
 * table driven through growth, lookups, removal, pop and reuse, checked against a plain array.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/hashmap.h"

typedef struct Item
{
	uint64_t	id;
	char		name[16];
	bool		in;
	HashmapLink by_id;
	HashmapLink by_name;
} Item;

static size_t
item_id_hash(const HashmapLink *l)
{
	return hashmap_hash_u64(HASHMAP_ENTRY(l, Item, by_id)->id);
}

static size_t
item_name_hash(const HashmapLink *l)
{
	return hashmap_hash_str(HASHMAP_ENTRY(l, Item, by_name)->name);
}

static Item *
find_id(const Hashmap *t, uint64_t id)
{
	for (HashmapLink *l = hashmap_chain(t, hashmap_hash_u64(id)); l; l = l->next)
		if (HASHMAP_ENTRY(l, Item, by_id)->id == id)
			return HASHMAP_ENTRY(l, Item, by_id);
	return NULL;
}

static size_t
count_name(const Hashmap *t, const char *name)
{
	size_t n = 0;

	for (HashmapLink *l = hashmap_chain(t, hashmap_hash_str(name)); l; l = l->next)
		n += strcmp(HASHMAP_ENTRY(l, Item, by_name)->name, name) == 0;
	return n;
}

static void
test_hash_values(void **state)
{
	static const struct
	{
		const char *s;
		uint64_t	h;
	} fnv[] = {
		{"", 0xcbf29ce484222325ULL},
		{"a", 0xaf63dc4c8601ec8cULL},
		{"foobar", 0x85944171f73967e8ULL},
	};
	static const struct
	{
		uint64_t v;
		uint64_t h;
	} mix[] = {
		{0, 0},
		{1, 0x5692161d100b05e5ULL},
	};

	for (size_t i = 0; i < sizeof(fnv) / sizeof(fnv[0]); i++)
		assert_int_equal(hashmap_hash_str(fnv[i].s), fnv[i].h);
	for (size_t i = 0; i < sizeof(mix) / sizeof(mix[0]); i++)
		assert_int_equal(hashmap_hash_u64(mix[i].v), mix[i].h);
	/* sequential ids spread: 64 ids into 64 buckets use most of them */
	{
		bool   used[64] = {false};
		size_t n = 0;

		for (uint64_t id = 1; id <= 64; id++)
			used[hashmap_hash_u64(id) & 63] = true;
		for (size_t i = 0; i < 64; i++)
			n += used[i];
		assert_true(n > 32);
	}
}

static void
test_table(void **state)
{
	static Item items[1000];
	Hashmap		ids = HASHMAP_INIT(4, item_id_hash);
	Hashmap		names;

	hashmap_init(&names, 8, item_name_hash);
	assert_null(hashmap_chain(&ids, 0));
	assert_null(find_id(&ids, 1));
	assert_null(hashmap_pop(&ids));

	for (size_t i = 0; i < 1000; i++)
	{
		items[i].id = i * 7 + 1;
		snprintf(items[i].name, sizeof(items[i].name), "n%zu", i % 10);
		assert_true(hashmap_reserve(&ids));
		assert_true(hashmap_reserve(&names));
		hashmap_insert(&ids, &items[i].by_id);
		hashmap_insert(&names, &items[i].by_name);
		items[i].in = true;
		/* never more entries than buckets after a reserve */
		assert_true(ids.count <= ids.nbuckets);
		assert_int_equal(ids.nbuckets & (ids.nbuckets - 1), 0);
	}
	assert_int_equal(ids.count, 1000);
	assert_int_equal(ids.nbuckets, 1024);
	assert_int_equal(names.nbuckets, 1024);
	for (size_t i = 0; i < 10; i++)
	{
		char name[16];

		snprintf(name, sizeof(name), "n%zu", i);
		assert_int_equal(count_name(&names, name), 100);
	}

	/* remove every third; removing twice is harmless */
	for (size_t i = 0; i < 1000; i += 3)
	{
		hashmap_remove(&ids, &items[i].by_id);
		hashmap_remove(&names, &items[i].by_name);
		items[i].in = false;
	}
	hashmap_remove(&ids, &items[0].by_id);
	assert_int_equal(ids.count, 1000 - 334);
	for (size_t i = 0; i < 1000; i++)
		assert_ptr_equal(find_id(&ids, items[i].id), items[i].in ? &items[i] : NULL);
	assert_null(find_id(&ids, 2));
	assert_int_equal(count_name(&names, "n0"), 66);

	/* a walk sees every entry once; freeing the one it holds after asking for the next is safe */
	{
		size_t b = 0, seen = 0;

		for (HashmapLink *l = hashmap_next(&ids, &b, NULL), *next; l; l = next)
		{
			Item *it = HASHMAP_ENTRY(l, Item, by_id);

			next = hashmap_next(&ids, &b, l);
			assert_true(it->in);
			seen++;
			if (it->id % 2 == 0)
			{
				hashmap_remove(&ids, &it->by_id);
				it->in = false;
			}
		}
		assert_int_equal(seen, 1000 - 334);
		assert_int_equal(b, ids.nbuckets);
		b = 0;
		seen = 0;
		for (HashmapLink *l = hashmap_next(&ids, &b, NULL); l; l = hashmap_next(&ids, &b, l))
		{
			assert_int_equal(HASHMAP_ENTRY(l, Item, by_id)->id % 2, 1);
			seen++;
		}
		assert_int_equal(seen, ids.count);
	}

	/* pop empties it */
	for (size_t n = ids.count; n > 0; n--)
	{
		HashmapLink *l = hashmap_pop(&ids);

		assert_non_null(l);
		assert_true(HASHMAP_ENTRY(l, Item, by_id)->in);
		HASHMAP_ENTRY(l, Item, by_id)->in = false;
	}
	assert_null(hashmap_pop(&ids));
	assert_int_equal(ids.count, 0);

	/* freed, then used again from its first size */
	hashmap_free(&ids);
	hashmap_free(&names);
	assert_null(hashmap_chain(&ids, 0));
	assert_true(hashmap_reserve(&ids));
	assert_int_equal(ids.nbuckets, 4);
	hashmap_insert(&ids, &items[5].by_id);
	assert_ptr_equal(find_id(&ids, items[5].id), &items[5]);
	hashmap_free(&ids);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_values),
		cmocka_unit_test(test_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
