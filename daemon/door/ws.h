/*
 * ws.h — the door: one libwebsockets server on the daemon's libuv loop, serving WebSocket
 * clients at path "/" and HTTP on the same port (GET /health/live, /status, /metrics).
 *
 * ws.c owns every client connection (conn.h): admission limits, the auth handshake on libuv's
 * thread pool, per-connection rate limit, bounded inbound and outbound queues, idle pings, and
 * exactly one log line per disconnect with a stable reason. There is one server per process
 * (conn_lookup is global). Everything runs on the loop thread.
 *
 * The door knows nothing of friendships or presence: the application hands it one WsApp at
 * start-up, its RPC module and the callbacks the door calls, and answers through conn.h and
 * rpc.h.
 */
#ifndef SOCIALD_WS_H
#define SOCIALD_WS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <jansson.h>

#include "door/conn.h"
#include "rpc/rpc.h"

/* The application, as the door sees it. Every callback runs on the loop thread; a Conn is
 * valid during the call only (keep conn_id and conn_lookup it later). */
typedef struct WsApp
{
	const RpcModule *module; /* served on every session; borrowed */
	/* c authenticated; its session exists and no call has arrived yet. */
	void (*ready)(Conn *c);
	/* A unary call (RpcHooks.call): answered later, exactly once, with rpc_respond*. */
	void (*call)(Conn *c, uint32_t msg_no, const RpcProcedure *proc, const uint8_t *payload,
				 size_t len);
	/* A server stream opened (RpcHooks.stream_open) / cancelled by the client. */
	void (*stream_open)(Conn *c, uint32_t msg_no, const RpcProcedure *proc);
	void (*stream_closed)(Conn *c, uint32_t msg_no, const RpcProcedure *proc);
	/* A connection that was ready is gone: drop everything kept for it. Its session still
	 * exists but sends nothing. */
	void (*closed)(Conn *c);
	/* GET /status: add the application's members to the door's object. -1 out of memory. */
	int (*status)(json_t *status);
} WsApp;

typedef struct WsOptions
{
	const char	*host; /* listen address; "0.0.0.0" / "::" for every interface */
	int			 port;
	int			 auth_timeout_ms;		  /* first frame sent and verified within this, else 3004 */
	int			 auth_window_ms;		  /* AuthOptions.timestamp_window_ms */
	int			 idle_timeout_s;		  /* silent this long: hang up; ping after half of it */
	size_t		 max_payload_bytes;		  /* one reassembled inbound message; beyond: 1009 */
	int			 max_connections;		  /* admitted connections; beyond: 1013 */
	int			 max_unauthenticated;	  /* admitted, not yet authenticated; beyond: 1013 */
	int			 outbound_queue_messages; /* beyond: 1011 queue_overflow */
	size_t		 outbound_queue_bytes;	  /* beyond: 1011 queue_overflow */
	int			 messages_per_second;	  /* inbound token bucket; beyond: 1008 rate_limited */
	int			 messages_burst;
	RpcLimits	 rpc; /* for every session */
	const WsApp *app; /* borrowed; must outlive the server */
} WsOptions;

typedef struct Ws Ws;

struct lws_context;

/* Creates the lws context on 'loop' and starts listening. opts is copied (host too). NULL on
 * failure (logged), also when a server already exists. */
Ws *ws_create(uv_loop_t *loop, const WsOptions *opts);

/* Graceful stop, step one: refuse new connections and close every client with 1001 "shutdown"
 * (deferred: the close frames go out as the loop runs). Idempotent. */
void ws_shutdown(Ws *ws);

/* WebSocket connections not yet fully closed (admitted or not); 0 once a shutdown drained. */
size_t ws_open_count(const Ws *ws);

/*
 * On a foreign loop lws frees its context in two steps. ws_destroy() closes everything (what is
 * still open is cut without a close frame; lws reports those closes now); the loop must then run
 * until it has no more handles; ws_release() then frees what lws kept until its handles had
 * closed, and the loop must run once more before uv_loop_close(). NULL is a no-op; ws_release()
 * is a no-op when there is nothing left to free.
 */
void ws_destroy(Ws *ws);
void ws_release(void);

/* The server's lws context, for other lws users on the same loop (archipelago.c's HTTP client
 * adds a vhost to it). Borrowed: valid from ws_create until ws_destroy; NULL outside. */
struct lws_context *ws_context(void);

#endif /* SOCIALD_WS_H */
