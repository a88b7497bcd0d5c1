/*
 * service.h — the SocialService module: every procedure of
 * decentraland.social_service.v2.SocialService in proto order, with its id and kind.
 *
 * Procedure ids are 1..33 in declaration order, as the reference service numbers them. Clients
 * look procedures up by name; ids are opaque to them.
 */
#ifndef SOCIALD_SERVICE_H
#define SOCIALD_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

typedef struct ServiceProcedure
{
	uint32_t	id;			   /* 1..33 */
	const char *name;		   /* proto rpc name, e.g. "GetFriends" */
	bool		server_stream; /* a Subscribe... procedure */
	bool		supported;	   /* false: unary answers a RemoteError, stream ends at once */
} ServiceProcedure;

/* All procedures, index i holds id i + 1. */
extern const ServiceProcedure service_procedures[];
extern const size_t			  service_procedure_count;

/* NULL when id is not a procedure of the module. */
const ServiceProcedure *service_find(uint32_t id);

#endif /* SOCIALD_SERVICE_H */
