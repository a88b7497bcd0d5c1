/*
 * app.h — the application as the door sees it: one table of callbacks handed over at start-up,
 * the way libwebsockets takes its protocols. The door (ws.c, conn.c, http.c) calls these and
 * nothing else of the application; the application answers through conn.h and rpc.h.
 */
#ifndef SOCIALD_APP_H
#define SOCIALD_APP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc/rpc.h"

typedef struct Conn		  Conn;
typedef struct HttpAnswer HttpAnswer; /* http.h: http_answer_send */

/* The application, as the door sees it. Every callback runs on the loop thread; a Conn is
 * valid during the call only (keep conn_id and conn_lookup it later). */
typedef struct DoorApp
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
	/* Optional. A GET or HEAD (method) of a path the door does not serve itself. False: not
	 * the application's either (404). True: the application answers it exactly once with
	 * http_answer_send, now or later (a client gone meanwhile costs nothing). path is the
	 * request path without the query string, valid during the call. */
	bool (*http)(const char *method, const char *path, HttpAnswer *answer);
} DoorApp;

#endif /* SOCIALD_APP_H */
