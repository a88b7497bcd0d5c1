/*
 * updates.h — live friendship and block updates.
 *
 * Listens on social_events through pg_pool; every notification (and every LISTEN (re)start) is a
 * doorbell that runs social.events_since(cursor): events are read from the log, in seq order,
 * exactly once, also across reconnects and late commits (extension/notify.c). Each event is
 * delivered to the streams of its target user on this instance: SubscribeToFriendshipUpdates
 * (FriendshipUpdate) and SubscribeToBlockUpdates (BlockUpdate). The actor gets no echo; a user
 * with several connections gets it on each.
 */
#ifndef SOCIALD_UPDATES_H
#define SOCIALD_UPDATES_H

#include <stdint.h>

#include "door/conn.h"
#include "social/protocol.h"
#include "store/pg_pool.h"

/* Told of every event read from the log, after it was delivered (presence keeps its fan-out
 * index current with it). kind is "friendship" or "block"; strings valid during the call. */
typedef void (*UpdatesEventFn)(const char *kind, const char *action, const char *actor,
							   const char *target);

/* Installs the listener hooks on pg (call before the loop runs); on_event may be NULL. -1
 * (logged) without a pool. */
int updates_init(PgPool *pg, UpdatesEventFn on_event) __attribute__((warn_unused_result));

/* The service table's handlers of SubscribeToFriendshipUpdates and SubscribeToBlockUpdates. A
 * second subscription to the same procedure on one connection gets one element with
 * stream_closed{DUPLICATE_SUBSCRIPTION} and ends. */
extern const ServiceStream updates_friendship_stream;
extern const ServiceStream updates_block_stream;

/* The connection is going away: drop all its subscriptions. */
void updates_conn_closed(Conn *c);

/* For /status: subscriptions held. */
uint64_t updates_subscription_count(void);

void updates_shutdown(void);

#endif /* SOCIALD_UPDATES_H */
