/*
 * service.h — decentraland.social_service.v2.SocialService: the one table that says, for every
 * procedure, its id, its name, its kind and who handles it, and the door callbacks that dispatch
 * through it.
 *
 * Procedure ids are 1..33 in declaration order, as the reference service numbers them. Clients
 * look procedures up by name; ids are opaque to them.
 */
#ifndef SOCIALD_SERVICE_H
#define SOCIALD_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "door/conn.h"
#include "rpc/rpc.h"

#define SERVICE_MODULE_NAME "SocialService"

typedef enum ServiceProcId
{
	PROC_GET_FRIENDS = 1,
	PROC_GET_MUTUAL_FRIENDS,
	PROC_GET_PENDING_FRIENDSHIP_REQUESTS,
	PROC_GET_SENT_FRIENDSHIP_REQUESTS,
	PROC_UPSERT_FRIENDSHIP,
	PROC_SUBSCRIBE_TO_FRIENDSHIP_UPDATES,
	PROC_GET_FRIENDSHIP_STATUS,
	PROC_SUBSCRIBE_TO_FRIEND_CONNECTIVITY_UPDATES,
	PROC_BLOCK_USER,
	PROC_UNBLOCK_USER,
	PROC_GET_BLOCKED_USERS,
	PROC_GET_BLOCKING_STATUS,
	PROC_SUBSCRIBE_TO_BLOCK_UPDATES,
	PROC_GET_SOCIAL_SETTINGS,
	PROC_UPSERT_SOCIAL_SETTINGS,
	PROC_GET_PRIVATE_MESSAGES_SETTINGS,
	PROC_SUBSCRIBE_TO_COMMUNITY_MEMBER_CONNECTIVITY_UPDATES,
	/* 18..33: voice chat, listed but not supported by this server */
	PROC_LAST = 33
} ServiceProcId;

/*
 * What the handler of a server-stream row points at. A unary row's handler is a Procedure of
 * procedures.h. A row without a handler is listed for clients that load the whole module but
 * not served: a unary call answers a RemoteError, a stream ends at once.
 */
typedef struct ServiceStream
{
	/* The stream is open on c (its offer is sent): the handler pushes elements with
	 * rpc_stream_push() and may end it. Loop thread. */
	void (*open)(Conn *c, uint32_t msg_no, const RpcProcedure *proc);
	/* The client cancelled the stream or destroyed its port. Loop thread. */
	void (*closed)(Conn *c, uint32_t msg_no);
} ServiceStream;

/* The module every session serves; its rows are service_procedures. */
extern const RpcModule	  service_module;
extern const RpcProcedure service_procedures[];

/* The door's call, stream open and stream closed callbacks (WsApp), dispatching by the row's
 * kind and handler. Loop thread. */
void service_call(Conn *c, uint32_t msg_no, const RpcProcedure *proc, const uint8_t *payload,
				  size_t len);
void service_stream_open(Conn *c, uint32_t msg_no, const RpcProcedure *proc);
void service_stream_closed(Conn *c, uint32_t msg_no, const RpcProcedure *proc);

#endif /* SOCIALD_SERVICE_H */
