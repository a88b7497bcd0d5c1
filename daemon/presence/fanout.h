/*
 * fanout.h — the two halves of presence talk through this header, and nothing else
 * includes it.
 *
 * presence.c owns the Redis side (scripts, channel, sweeper, sources, sessions);
 * fanout.c owns the local side: which local streams watch which addresses, what each
 * stream was told, loading a stream's friends and fanning a status change out. Everything runs
 * on the loop thread.
 */
#ifndef SOCIALD_FANOUT_H
#define SOCIALD_FANOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/pg_pool.h"

/* "0x" + 40 lower-case hex digits. */
#define PRESENCE_ADDRESS_LEN 42

/* ---- Provided by presence.c */

/* True for "0x" + 40 lower-case hex digits and nothing after. */
bool presence_address_valid(const char *s);

/* ok: every status was read and applied (fanout_apply) before this runs. */
typedef void (*PresenceReadDone)(void *ud, bool ok);
/*
 * Reads the status and version of n addresses (copied) with one script call and applies them,
 * then calls done exactly once, never from inside this call. -1 (done not called) when Redis is
 * not up or out of memory.
 */
int presence_read(const char *const *addresses, size_t n, PresenceReadDone done, void *ud)
	__attribute__((warn_unused_result));

/* ---- Provided by fanout.c */

/* pg is borrowed. -1 when out of memory. */
int fanout_init(PgPool *pg) __attribute__((warn_unused_result));
/* Frees every stream, user and edge; later calls are no-ops until the next init. */
void fanout_shutdown(void);

/*
 * News about an address: from the channel or a read. Applied when newer than what is known (or
 * when nothing current is known); then every live local stream watching the address is told
 * what it was not told yet.
 */
void fanout_apply(const char *address, bool online, uint64_t version);
/* Redis went down: nothing known is current any more (the streams stay open). */
void fanout_stale(void);
/* Redis is up: read every watched address afresh, so each stream gets only the differences. */
void fanout_resync(void);
/* About once a second: retries of failed friend loads and, when can_read (Redis is up and
 * statuses may be read), of reads. */
void fanout_tick(bool can_read);

/* The connection is closing: drop its connectivity stream. */
void fanout_conn_closed(uint64_t conn_id);

/* Authenticated local sockets per address (the socket source): the count after the change;
 * socket_close answers -1 for an address that had none counted. */
int fanout_socket_open(const char *address);
int fanout_socket_close(const char *address);

/* Walks the addresses with at least one local socket. Do not change the index while walking. */
typedef struct FanoutIter
{
	size_t		bucket;
	const void *node;
	const char *address; /* valid after fanout_socket_next returned true */
} FanoutIter;

FanoutIter fanout_socket_iter(void);
bool	   fanout_socket_next(FanoutIter *it);

uint64_t fanout_stream_count(void);

#endif /* SOCIALD_FANOUT_H */
