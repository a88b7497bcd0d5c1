/*
 * nats_source.h — the NATS presence source: comms servers announce peers on "peer.<address>.<event>".
 *
 * peer.<address>.heartbeat and peer.<address>.world.join vouch for a user (presence_seen, with
 * the parcel and desired room of a heartbeat's Heartbeat body when it has them);
 * peer.<address>.disconnect, .connect (deliberately: the reference service's mapping) and
 * .world.leave withdraw (presence_gone). Only the address in the subject counts; anything else
 * under peer.> is junk, counted and ignored. Every sociald instance joins one NATS queue group,
 * so each message is handled by exactly one instance (the state it feeds is shared in Redis).
 *
 * nats.c 3.4.1 runs on the daemon's libuv loop (doc/event-loop.md); messages are taken from a
 * synchronous queue subscription on the loop thread, a bounded batch per loop turn. nats.c
 * reconnects a lost connection by itself (its own thread, backoff with jitter); a connection
 * that cannot be made at all is retried from a timer, with the same backoff. NATS being down
 * never affects anything else.
 *
 * Everything declared here runs on the loop thread.
 */
#ifndef SOCIALD_NATS_SOURCE_H
#define SOCIALD_NATS_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "presence/presence.h"

/* Longest desired room kept from a heartbeat; a longer or non-printable one is dropped. */
#define NATS_SOURCE_ROOM_MAX 128

typedef struct NatsSource NatsSource;

/* Longest queue group name kept (NATS_QUEUE_GROUP); longer ones are cut. */
#define NATS_SOURCE_QUEUE_GROUP_MAX 128

typedef struct NatsSourceOptions
{
	const char *url;		 /* NATS_URL: servers separated by commas */
	const char *queue_group; /* NATS_QUEUE_GROUP */
} NatsSourceOptions;

/*
 * Starts connecting to opts->url (servers separated by commas) and subscribes to "peer.>" in
 * queue group opts->queue_group. Returns at once: the first attempt runs from the loop, and
 * failures are retried with backoff for as long as the NatsSource lives. NULL only when opts cannot
 * work at all (no URL, too many servers, out of memory), logged. opts is copied.
 * At most one NatsSource exists per process (nats.c's callbacks reach it through one static link).
 */
NatsSource *nats_source_create(uv_loop_t *loop, const NatsSourceOptions *opts)
	__attribute__((warn_unused_result));

/* Closes the NATS connection and every handle; the memory is freed once the loop has run the
 * close callbacks (run the loop after this, as the daemon's shutdown does). NULL is a no-op. */
void nats_source_destroy(NatsSource *p);

/* True while a NATS connection is established (false while nats.c reconnects). */
bool nats_source_connected(const NatsSource *p);

/* ---- Pure parts (no I/O; unit-tested) ---- */

typedef enum NatsSourceEvent
{
	NATS_SOURCE_JUNK = 0,	 /* not one of the subjects below, or a bad address */
	NATS_SOURCE_HEARTBEAT,	 /* peer.<address>.heartbeat: online, body is a Heartbeat */
	NATS_SOURCE_WORLD_JOIN,	 /* peer.<address>.world.join: online */
	NATS_SOURCE_DISCONNECT,	 /* peer.<address>.disconnect: offline */
	NATS_SOURCE_CONNECT,	 /* peer.<address>.connect: offline (the reference's mapping) */
	NATS_SOURCE_WORLD_LEAVE, /* peer.<address>.world.leave: offline */
} NatsSourceEvent;

/*
 * Classifies a NATS subject (NUL-terminated). For anything but NATS_SOURCE_JUNK, address
 * receives the address of the subject in lower case (it must match ^0x[0-9a-fA-F]{40}$); for
 * NATS_SOURCE_JUNK it is left untouched.
 */
NatsSourceEvent nats_source_parse_subject(const char *subject, char address[ADDRESS_LEN + 1]);

/* True for the events that mean online (heartbeat, world.join). */
bool nats_source_event_online(NatsSourceEvent ev);

/*
 * Reads a heartbeat body (protobuf decentraland.kernel.comms.v3.Heartbeat) into detail: the
 * parcel floor(x / 16), floor(z / 16) when a position is present and finite and the parcel fits
 * in int32; desired_room (copied into room, room_size > NATS_SOURCE_ROOM_MAX) when present, at most
 * NATS_SOURCE_ROOM_MAX bytes and printable ASCII. detail->desired_room points into room.
 * Returns 1 when detail holds something, 0 when the body is a valid Heartbeat with nothing
 * usable, -1 when it is not a Heartbeat (or over 4 KiB): then detail is cleared as well, and
 * the user is seen without detail.
 */
int nats_source_decode_heartbeat(const uint8_t *data, size_t len, PresenceDetail *detail,
								 char *room, size_t room_size);

/* floor(x / 16) as int32 for one coordinate in metres; -1 when not finite or out of range. */
int nats_source_parcel(float metres, int32_t *parcel);

#endif /* SOCIALD_NATS_SOURCE_H */
