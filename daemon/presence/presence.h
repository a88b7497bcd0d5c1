/*
 * presence.h — who is online, and telling their friends, with no SQL per status change.
 *
 * State lives in Redis (redis_client.h), shared by every sociald instance:
 *   presence:<address>   hash: one "until" field per source that vouches for the user (nats,
 *                        archipelago, and socket:<instance id> per instance holding a socket),
 *                        plus status, since, last_seen, parcel, room;
 *   presence:expiry      sorted set: address -> the latest "until" of its sources.
 * Every change goes through one Lua script, so exactly one instance sees each online<->offline
 * flip; that instance publishes it on the presence channel, which every instance subscribes to.
 * Silence expires: a sweeper (a Lua script, safe to run on every instance) flips users whose
 * sources all lapsed (default TTL 90 s) and publishes the flip.
 *
 * Fan-out is local and SQL-free: for the users connected to this instance with an open
 * SubscribeToFriendConnectivityUpdates stream, an in-memory index maps an address to the local
 * streams of its friends. It is loaded when a stream opens (one query: the friends with their
 * profiles) and kept current from the social_events stream (accept adds, delete/block removes).
 *
 * Everything runs on the loop thread.
 */
#ifndef SOCIALD_PRESENCE_H
#define SOCIALD_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "door/conn.h"
#include "lib/address.h"
#include "store/redis_client.h"
#include "store/pg_pool.h"


typedef enum PresenceSource
{
	PRESENCE_SOURCE_NATS = 0,	 /* peer.<address>.heartbeat / world.join / disconnect / ... */
	PRESENCE_SOURCE_ARCHIPELAGO, /* GET {ARCHIPELAGO_STATS_URL}/peers */
	PRESENCE_SOURCE_SOCKET,		 /* an authenticated social WebSocket on this instance */
	PRESENCE_SOURCE_COUNT
} PresenceSource;

/* Optional rich presence carried by a heartbeat. */
typedef struct PresenceDetail
{
	bool		has_parcel;
	int32_t		parcel_x;	  /* floor(x / 16) of the heartbeat position, in parcels */
	int32_t		parcel_y;	  /* floor(z / 16) */
	const char *desired_room; /* NULL when absent; borrowed for the call */
} PresenceDetail;

typedef struct PresenceOptions
{
	int64_t		ttl_ms; /* PRESENCE_TTL: a source's word lasts this long (90 s) */
	bool		sources[PRESENCE_SOURCE_COUNT]; /* PRESENCE_SOURCES */
	bool		record_sessions; /* PRESENCE_SESSIONS: batch sessions into social (0.2.0) */
	const char *instance_id;	 /* unique per process (e.g. host:pid:random) */
} PresenceOptions;

/* pg and redis are borrowed and must outlive presence. -1 (logged) when it cannot start: no
 * client, the scripts or the channel cannot be registered, out of memory. */
int presence_init(uv_loop_t *loop, PgPool *pg, RedisClient *redis, const PresenceOptions *opts)
	__attribute__((warn_unused_result));
/* Stops timers, flushes nothing more, frees the index (call before redis/pg_pool are destroyed). */
void presence_shutdown(void);

/* A source vouches for address (a lower-case 0x address, validated by the caller) until
 * now + ttl; detail may be NULL. One Redis round trip at most; an unchanged status publishes
 * nothing. */
void presence_seen(PresenceSource source, const char *address, const PresenceDetail *detail);
/* A source withdraws at once (NATS disconnect/connect/world.leave, last local socket closed).
 * The user goes offline only when no other source still vouches. */
void presence_gone(PresenceSource source, const char *address);

/* Socket source, from the door (sociald.c wires it): a connection finished authenticating / is
 * closing. */
void presence_conn_ready(Conn *c);
void presence_conn_closed(Conn *c);


/* For /status. */
uint64_t presence_stream_count(void);
bool	 presence_redis_up(void);

#endif /* SOCIALD_PRESENCE_H */
