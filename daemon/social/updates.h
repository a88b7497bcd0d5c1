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
#include "store/pg_pool.h"
#include "social/service.h"

/* Installs the listener hooks on pg (call before the loop runs). */
void updates_init(PgPool *pg);

/* A Subscribe... stream opened on c (the offer is sent). A second subscription to the same
 * procedure on one connection gets one element with stream_closed{DUPLICATE_SUBSCRIPTION} and
 * ends. Unsupported streams end at once. */
void updates_stream_open(Conn *c, uint32_t msg_no, const ServiceProcedure *proc);
/* The client cancelled a stream. */
void updates_stream_closed(Conn *c, uint32_t msg_no);
/* The connection is going away: drop all its subscriptions. */
void updates_conn_closed(Conn *c);

/* For /status: subscriptions held, last delivered seq. */
uint64_t updates_subscription_count(void);

void updates_shutdown(void);

#endif /* SOCIALD_UPDATES_H */
