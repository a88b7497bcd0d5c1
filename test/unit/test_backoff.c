/*
 * test_backoff.c — daemon/lib/backoff.c: which entry an attempt takes, the two jitters' bounds
 * and exact values, where attempts stop, and the xorshift64 sequence the callers draw from.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/backoff.h"

static const uint32_t store_ms[] = {100, 200, 500, 1000, 2000, 5000};
static const uint32_t nats_ms[] = {250, 500, 1000, 2000, 5000, 10000, 30000};

static const BackoffTable store = BACKOFF_TABLE(store_ms, BACKOFF_JITTER_EQUAL);
static const BackoffTable nats = BACKOFF_TABLE(nats_ms, BACKOFF_JITTER_EQUAL);
static const BackoffTable updates = BACKOFF_TABLE(nats_ms, BACKOFF_JITTER_ADD_QUARTER);

static void
test_table_steps(void **state)
{
	assert_int_equal(store.steps, 6);
	assert_int_equal(nats.steps, 7);
	assert_ptr_equal(store.delays_ms, store_ms);
}

static void
test_delay_cases(void **state)
{
	static const struct
	{
		const BackoffTable *t;
		size_t				attempt;
		uint64_t			random;
		uint64_t			delay;
	} cases[] = {
		/* equal jitter: base / 2 + random % (base / 2 + 1) */
		{&store, 0, 0, 50},
		{&store, 0, 50, 100},
		{&store, 0, 51, 50},
		{&store, 0, UINT64_MAX, 50 + UINT64_MAX % 51},
		{&store, 2, 7, 257},
		{&store, 5, 0, 2500},
		{&store, 6, 0, 2500}, /* past the end: the last entry repeats */
		{&store, 1000, 2500, 5000},
		{&nats, 6, 15000, 30000},
		{&nats, 99, 1, 15001},
		/* added quarter: base + random % (base / 4 + 1) */
		{&updates, 0, 0, 250},
		{&updates, 0, 62, 312},
		{&updates, 0, 63, 250},
		{&updates, 3, 500, 2500},
		{&updates, 50, 7500, 37500},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(backoff_delay_ms(cases[i].t, cases[i].attempt, cases[i].random),
						 cases[i].delay);
}

static void
test_delay_bounds(void **state)
{
	uint64_t rng = backoff_seed(42);

	for (size_t attempt = 0; attempt < 10; attempt++)
		for (int i = 0; i < 1000; i++)
		{
			uint64_t base = backoff_base_ms(&nats, attempt);
			uint64_t equal = backoff_delay_ms(&nats, attempt, backoff_random(&rng));
			uint64_t added = backoff_delay_ms(&updates, attempt, backoff_random(&rng));

			assert_in_range(equal, base / 2, base);
			assert_in_range(added, base, base + base / 4);
		}
}

static void
test_next_attempt(void **state)
{
	static const struct
	{
		size_t attempt;
		size_t next;
	} cases[] = {{0, 1}, {1, 2}, {4, 5}, {5, 5}, {9, 9}};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(backoff_next_attempt(&store, cases[i].attempt), cases[i].next);
	assert_int_equal(backoff_next_attempt(&nats, 5), 6);
	assert_int_equal(backoff_next_attempt(&nats, 6), 6);
}

static void
test_random(void **state)
{
	uint64_t s = backoff_seed(0);
	uint64_t one = backoff_seed(1);

	assert_int_equal(s, 0x9e3779b97f4a7c15ULL);
	assert_int_equal(backoff_seed(7), 7);
	/* xorshift64 (13, 7, 17) from 1 */
	assert_int_equal(backoff_random(&one), 0x40822041ULL);
	assert_int_equal(one, 0x40822041ULL);
	for (int i = 0; i < 100000; i++)
		assert_int_not_equal(backoff_random(&s), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_steps),	 cmocka_unit_test(test_delay_cases),
		cmocka_unit_test(test_delay_bounds), cmocka_unit_test(test_next_attempt),
		cmocka_unit_test(test_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
