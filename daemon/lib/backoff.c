/*
 * backoff -- delay tables with jitter, and the xorshift64 generator that draws the jitter.
 */
#include "lib/backoff.h"

uint32_t
backoff_base_ms(const BackoffTable *t, size_t attempt)
{
	return t->delays_ms[attempt < t->steps ? attempt : t->steps - 1];
}

uint64_t
backoff_delay_ms(const BackoffTable *t, size_t attempt, uint64_t random)
{
	uint64_t base = backoff_base_ms(t, attempt);

	if (t->jitter == BACKOFF_JITTER_ADD_QUARTER)
		return base + random % (base / 4 + 1);
	return base / 2 + random % (base / 2 + 1);
}

size_t
backoff_next_attempt(const BackoffTable *t, size_t attempt)
{
	return attempt + 1 < t->steps ? attempt + 1 : attempt;
}

uint64_t
backoff_seed(uint64_t seed)
{
	return seed != 0 ? seed : 0x9e3779b97f4a7c15ULL;
}

uint64_t
backoff_random(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}
