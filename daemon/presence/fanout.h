/*
 * fanout.h — presence's local side: which local connectivity streams watch which addresses,
 * what each stream was told, loading a stream's friends and fanning a status change out.
 *
 * presence.c owns the Redis side (scripts, channel, sweeper, sources, sessions) and calls in
 * here with what Redis says; fanout.c reads statuses through presence.h. Everything runs on the
 * loop thread.
 */
#ifndef SOCIALD_FANOUT_H
#define SOCIALD_FANOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "door/conn.h"
#include "social/protocol.h"
#include "store/pg_pool.h"

/* ok: every status was read and applied (fanout_apply) before this runs. */
typedef void (*FanoutReadDone)(void *ud, bool ok);
/* Reads the status and version of n addresses (copied) and applies them with fanout_apply, then
 * calls done exactly once, never from inside this call; -1 (done not called) when it cannot. */
typedef int (*FanoutReadFn)(const char *const *addresses, size_t n, FanoutReadDone done, void *ud);

/* pg is borrowed; read is how statuses are read (presence.c's Redis script). -1 when out of
 * memory. */
int fanout_init(PgPool *pg, FanoutReadFn read) __attribute__((warn_unused_result));
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

/* The service table's handler of SubscribeToFriendConnectivityUpdates (procedure 8): first
 * ONLINE for every online friend, then live ONLINE/OFFLINE, with no gap between snapshot and live
 * updates. */
extern const ServiceStream fanout_connectivity_stream;

/* A friendship event read from the log (updates.c's observer, after delivery): accept adds both
 * directions to the index and tells each side whether the other is online; delete and block
 * remove them. kind is "friendship" or "block". */
void fanout_friendship_event(const char *kind, const char *action, const char *actor,
							 const char *target);

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
