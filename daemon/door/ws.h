/*
 * ws.h — the door: one libwebsockets server on the daemon's libuv loop, serving WebSocket
 * clients at path "/" and HTTP on the same port (GET /health/live, /status, /metrics, and the
 * application's routes), and optionally the same HTTP, without WebSocket, on a second port.
 *
 * ws.c owns the lws context and routes its callbacks: to the client connections (conn.c:
 * admission limits, the auth handshake, rate limit, bounded queues, idle pings, one log line per
 * disconnect with a stable reason) and to the HTTP endpoints (http.c). There is one server per
 * process (conn_lookup is global). Everything runs on the loop thread.
 *
 * The door knows nothing of friendships or presence: the application hands it one DoorApp at
 * start-up, its RPC module and the callbacks the door calls, and answers through conn.h and
 * rpc.h.
 */
#ifndef SOCIALD_WS_H
#define SOCIALD_WS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "door/app.h"
#include "door/conn.h"
#include "rpc/rpc.h"

typedef struct WsOptions
{
	const char *host; /* listen address; "0.0.0.0" / "::" for every interface */
	int			port;
	int			http_port; /* also the HTTP routes only (no WebSocket) here; 0 or port: none */
	ConnOptions conn;	   /* for every connection, and the application */
} WsOptions;

typedef struct Ws Ws;

struct lws_context;

/* Creates the lws context on 'loop' and starts listening (on both ports). opts is copied (host
 * too). NULL on failure (logged: a port that cannot be bound is one), also when a server already
 * exists; after a failure the loop must still run and ws_release() be called, as after
 * ws_destroy. */
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
