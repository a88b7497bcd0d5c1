/*
 * backoff -- reconnect and retry delays: a table of delays in ms (the last one repeats), jitter,
 * and a small xorshift64 generator whose state the caller keeps.
 *
 * Two kinds of jitter are in use and both are kept as they were:
 *   BACKOFF_JITTER_EQUAL      between half and all of the entry (the store links, NATS), so
 *                             clients that failed together do not retry together;
 *   BACKOFF_JITTER_ADD_QUARTER the entry plus up to a quarter of it (the live-update reader).
 * The random number is the caller's: callers differ in where it comes from (a per-object or
 * per-thread xorshift64 state, the clock).
 */
#ifndef SOCIALD_BACKOFF_H
#define SOCIALD_BACKOFF_H

#include <stddef.h>
#include <stdint.h>

typedef enum BackoffJitter
{
	BACKOFF_JITTER_EQUAL = 0,
	BACKOFF_JITTER_ADD_QUARTER,
} BackoffJitter;

typedef struct BackoffTable
{
	const uint32_t *delays_ms; /* at least one entry; the last one repeats */
	size_t			steps;
	BackoffJitter	jitter;
} BackoffTable;

/* A BackoffTable over a static array. */
#define BACKOFF_TABLE(array, jitter)                          \
	{                                                         \
		(array), sizeof(array) / sizeof((array)[0]), (jitter) \
	}

/* The table's entry for a 0-based attempt: the last entry for every attempt past the end. */
uint32_t backoff_base_ms(const BackoffTable *t, size_t attempt);

/* The entry for attempt with the table's jitter applied, drawn from random. */
uint64_t backoff_delay_ms(const BackoffTable *t, size_t attempt, uint64_t random);

/* The attempt after attempt, stopping at the last entry (so a counter never grows unbounded). */
size_t backoff_next_attempt(const BackoffTable *t, size_t attempt);

/* A state for backoff_random from seed: any seed, 0 included, gives a usable (non-zero) state. */
uint64_t backoff_seed(uint64_t seed);

/* xorshift64 (13, 7, 17): jitter only, no need for quality or for touching rand()'s global
 * state. *state must be non-zero (backoff_seed) and stays so. */
uint64_t backoff_random(uint64_t *state);

#endif /* SOCIALD_BACKOFF_H */
