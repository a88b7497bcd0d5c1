/*
 * protocol.h — facts of decentraland.social_service.v2.SocialService that every part of the
 * application shares: the module's name, the procedure ids, and what a server stream's handler
 * looks like. Types only: it has no .c, so the procedures, the live updates and presence can all
 * include it while the service table (service.c) includes them.
 */
#ifndef SOCIALD_PROTOCOL_H
#define SOCIALD_PROTOCOL_H

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

#endif /* SOCIALD_PROTOCOL_H */
