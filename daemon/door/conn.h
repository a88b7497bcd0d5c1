/*
 * conn.h — one client WebSocket connection: what the application may do with it, and how the
 * door's server (ws.c) drives it.
 *
 * Owned by conn.c. The application never keeps a Conn pointer across a callback: it keeps the
 * id and looks it up again (conn_lookup), because a connection can close while a query is in
 * flight. Everything runs on the loop thread.
 */
#ifndef SOCIALD_CONN_H
#define SOCIALD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "door/app.h"
#include "rpc/rpc.h"

/*
 * Why a connection ends. Each reason has one row in conn.c's table: its stable name (logged in
 * the one disconnect line as reason=), the close code the client sees and the counter it feeds.
 */
typedef enum ConnCloseReason
{
	CONN_CLOSE_SHUTDOWN = 0,	/* 1001 the daemon is stopping */
	CONN_CLOSE_IDLE_TIMEOUT,	/* 1001 silent for the idle timeout, pong included */
	CONN_CLOSE_AUTH_FAILED,		/* 3003 the auth chain was refused */
	CONN_CLOSE_AUTH_TIMEOUT,	/* 3004 no verified auth chain in time */
	CONN_CLOSE_RATE_LIMITED,	/* 1008 over the message rate, or too much before auth */
	CONN_CLOSE_FRAME_TOO_LARGE, /* 1009 a message over the payload limit */
	CONN_CLOSE_TEXT_FRAME,		/* 1003 a text frame after auth (protocol_error) */
	CONN_CLOSE_MALFORMED_FRAME, /* 1002 not an @dcl/rpc frame (protocol_error) */
	CONN_CLOSE_QUEUE_OVERFLOW,	/* 1011 the outbound queue is full: a client that does not read */
	CONN_CLOSE_STREAM_OVERFLOW, /* 1011 a stream's buffer is full: updates are not read */
	CONN_CLOSE_TOO_MANY,		/* 1013 the connection caps are reached */
	CONN_CLOSE_INTERNAL,		/* 1011 out of memory, the auth job could not run */
	CONN_CLOSE_WRITE_FAILED,	/* 1011 a write failed (client_closed) */
	CONN_CLOSE_PEER,			/* the client's own close frame and code (client_closed) */
	CONN_CLOSE_LOST,			/* 1006 the socket went away (client_closed) */
	CONN_CLOSE_REASON_COUNT
} ConnCloseReason;

/* ---- For the application */

/* Process-unique, never reused. */
uint64_t conn_id(const Conn *c);
/* Lower-case 0x address of the authenticated user; "" before authentication. */
const char *conn_address(const Conn *c);
/* The connection's RPC session; NULL before authentication. */
RpcSession *conn_rpc(Conn *c);
/* The live connection with this id, or NULL once it is closing or closed. */
Conn *conn_lookup(uint64_t id);
/* Starts closing for 'reason': no more frames are accepted or delivered; the socket is closed
 * from the loop (deferred: safe to call from any callback, also twice; the first reason wins).
 * detail (may be NULL) refines the reason in the disconnect line. NULL c is a no-op. */
void conn_close(Conn *c, ConnCloseReason reason, const char *detail);

/* ---- For the door's server (ws.c) */

struct lws;

typedef struct ConnOptions
{
	int			   auth_timeout_ms;		/* first frame sent and verified within this, else 3004 */
	int			   auth_window_ms;		/* AuthOptions.timestamp_window_ms */
	int			   idle_timeout_s;		/* silent this long: hang up; ping after half of it */
	size_t		   max_payload_bytes;	/* one reassembled inbound message; beyond: 1009 */
	int			   max_connections;		/* admitted connections; beyond: 1013 */
	int			   max_unauthenticated; /* admitted, not yet authenticated; beyond: 1013 */
	int			   outbound_queue_messages; /* beyond: 1011 queue_overflow */
	size_t		   outbound_queue_bytes;	/* beyond: 1011 queue_overflow */
	int			   messages_per_second;		/* inbound token bucket; beyond: 1008 rate_limited */
	int			   messages_burst;
	RpcLimits	   rpc; /* for every session */
	const DoorApp *app; /* borrowed; must outlive the connections */
} ConnOptions;

/* The connection table: opts (and the DoorApp it names) are borrowed and must outlive it; starts
 * the auth-deadline and keepalive timers on loop. -1 out of memory. */
int conn_table_create(uv_loop_t *loop, const ConnOptions *opts) __attribute__((warn_unused_result));
/* Stops the timers (closed on the loop) and frees the id table; connections still open are
 * freed as lws reports their close. */
void conn_table_destroy(void);
/* Close every listed connection with 'reason'; later connections are refused with it too. */
void conn_close_all(ConnCloseReason reason);

/* Counts for /status and the drain. */
size_t	 conn_open_count(void);		/* Conn objects alive, admitted or not */
size_t	 conn_admitted_count(void); /* == G_CONNECTIONS */
size_t	 conn_unauthenticated_count(void);
uint32_t conn_stream_count(void); /* open server streams over every session */

/* lws callbacks, routed by ws.c. conn_open: LWS_CALLBACK_ESTABLISHED, NULL out of memory (the
 * connection is then refused). The others return what the lws callback returns. */
Conn *conn_open(struct lws *wsi);
void  conn_receive(Conn *c, const uint8_t *in, size_t len);		/* RECEIVE */
void  conn_pong(Conn *c);										/* RECEIVE_PONG */
int	  conn_writable(Conn *c);									/* SERVER_WRITEABLE */
int	  conn_timer(Conn *c);										/* TIMER */
void  conn_peer_closed(Conn *c, const uint8_t *in, size_t len); /* WS_PEER_INITIATED_CLOSE */
void  conn_finish(Conn *c); /* CLOSED: the disconnect line; frees c */

#endif /* SOCIALD_CONN_H */
