/*
 * conn.h — one client WebSocket connection, as the rest of the daemon sees it.
 *
 * Owned by ws.c. Other modules never keep a Conn pointer across a callback: they keep its id and
 * look it up again (conn_lookup), because a connection can close while a query is in flight.
 * Everything runs on the loop thread.
 */
#ifndef SOCIALD_CONN_H
#define SOCIALD_CONN_H

#include <stdint.h>

#include "rpc/rpc.h"

typedef struct Conn Conn;

/* Close codes the daemon uses. */
#define CONN_CLOSE_GOING_AWAY 1001	 /* server shutting down */
#define CONN_CLOSE_INTERNAL 1011	 /* outbound queue overflow, internal failure */
#define CONN_CLOSE_TRY_AGAIN 1013	 /* connection cap reached */
#define CONN_CLOSE_UNAUTHORIZED 3003 /* bad auth chain */
#define CONN_CLOSE_AUTH_TIMEOUT 3004 /* no auth in time */

/* Process-unique, never reused. */
uint64_t conn_id(const Conn *c);
/* Lower-case 0x address of the authenticated user; "" before authentication. */
const char *conn_address(const Conn *c);
/* The connection's RPC session; NULL before authentication. */
RpcSession *conn_rpc(Conn *c);
/* The live connection with this id, or NULL once it is closing or closed. */
Conn *conn_lookup(uint64_t id);
/* Starts closing: no more frames are accepted or delivered; the socket is closed with 'code'
 * from the loop (deferred: safe to call from any callback, also twice). 'reason' is a stable
 * identifier (e.g. "queue_overflow") logged once and counted. */
void conn_close(Conn *c, int code, const char *reason);

#endif /* SOCIALD_CONN_H */
