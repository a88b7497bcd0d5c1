/*
 * service.c — the SocialService table, the one place that decides where a procedure goes.
 *
 * One row per rpc of decentraland.social_service.v2.SocialService, in the order of
 * proto/decentraland/social_service/v2/social_service_v2.proto: the row's position is its
 * procedure id (1..33), which is how the reference service numbers them, so a client that cached
 * ids from the reference still lands on the same procedure. The names are what clients look
 * procedures up by, so they must be the proto rpc names byte for byte (test_service checks both
 * against the generated descriptor).
 *
 * This server implements the friendship, block and settings core (1..16). The rest stay in the
 * list without a handler, because clients resolve every procedure of the module when they load
 * it: a unary call answers a RemoteError and a stream ends at once.
 */
#include "social/service.h"

#include "main/log.h"
#include "presence/fanout.h"
#include "social/procedures.h"
#include "social/updates.h"

#define UNARY(id_, name_, handler_)                                            \
	{                                                                          \
		.id = (id_), .name = (name_), .kind = RPC_UNARY, .handler = (handler_) \
	}
#define STREAM(id_, name_, handler_)                                                   \
	{                                                                                  \
		.id = (id_), .name = (name_), .kind = RPC_SERVER_STREAM, .handler = (handler_) \
	}

const RpcProcedure service_procedures[] = {
	UNARY(PROC_GET_FRIENDS, "GetFriends", &procedures_get_friends),
	UNARY(PROC_GET_MUTUAL_FRIENDS, "GetMutualFriends", &procedures_get_mutual_friends),
	UNARY(PROC_GET_PENDING_FRIENDSHIP_REQUESTS, "GetPendingFriendshipRequests",
		  &procedures_get_pending_requests),
	UNARY(PROC_GET_SENT_FRIENDSHIP_REQUESTS, "GetSentFriendshipRequests",
		  &procedures_get_sent_requests),
	UNARY(PROC_UPSERT_FRIENDSHIP, "UpsertFriendship", &procedures_upsert_friendship),
	STREAM(PROC_SUBSCRIBE_TO_FRIENDSHIP_UPDATES, "SubscribeToFriendshipUpdates",
		   &updates_friendship_stream),
	UNARY(PROC_GET_FRIENDSHIP_STATUS, "GetFriendshipStatus", &procedures_get_friendship_status),
	STREAM(PROC_SUBSCRIBE_TO_FRIEND_CONNECTIVITY_UPDATES, "SubscribeToFriendConnectivityUpdates",
		   &fanout_connectivity_stream),
	UNARY(PROC_BLOCK_USER, "BlockUser", &procedures_block_user),
	UNARY(PROC_UNBLOCK_USER, "UnblockUser", &procedures_unblock_user),
	UNARY(PROC_GET_BLOCKED_USERS, "GetBlockedUsers", &procedures_get_blocked_users),
	UNARY(PROC_GET_BLOCKING_STATUS, "GetBlockingStatus", &procedures_get_blocking_status),
	STREAM(PROC_SUBSCRIBE_TO_BLOCK_UPDATES, "SubscribeToBlockUpdates", &updates_block_stream),
	UNARY(PROC_GET_SOCIAL_SETTINGS, "GetSocialSettings", &procedures_get_social_settings),
	UNARY(PROC_UPSERT_SOCIAL_SETTINGS, "UpsertSocialSettings", &procedures_upsert_social_settings),
	UNARY(PROC_GET_PRIVATE_MESSAGES_SETTINGS, "GetPrivateMessagesSettings",
		  &procedures_get_private_messages_settings),
	STREAM(PROC_SUBSCRIBE_TO_COMMUNITY_MEMBER_CONNECTIVITY_UPDATES,
		   "SubscribeToCommunityMemberConnectivityUpdates", NULL),
	UNARY(18, "StartPrivateVoiceChat", NULL),
	UNARY(19, "AcceptPrivateVoiceChat", NULL),
	UNARY(20, "RejectPrivateVoiceChat", NULL),
	UNARY(21, "EndPrivateVoiceChat", NULL),
	UNARY(22, "GetIncomingPrivateVoiceChatRequest", NULL),
	STREAM(23, "SubscribeToPrivateVoiceChatUpdates", NULL),
	UNARY(24, "StartCommunityVoiceChat", NULL),
	UNARY(25, "JoinCommunityVoiceChat", NULL),
	UNARY(26, "RequestToSpeakInCommunityVoiceChat", NULL),
	UNARY(27, "PromoteSpeakerInCommunityVoiceChat", NULL),
	UNARY(28, "DemoteSpeakerInCommunityVoiceChat", NULL),
	UNARY(29, "KickPlayerFromCommunityVoiceChat", NULL),
	UNARY(30, "RejectSpeakRequestInCommunityVoiceChat", NULL),
	UNARY(31, "EndCommunityVoiceChat", NULL),
	STREAM(32, "SubscribeToCommunityVoiceChatUpdates", NULL),
	UNARY(PROC_LAST, "MuteSpeakerFromCommunityVoiceChat", NULL),
};

/* The table must cover exactly 1..PROC_LAST: ids are positions. */
_Static_assert(sizeof(service_procedures) / sizeof(service_procedures[0]) == PROC_LAST,
			   "service_procedures must list every procedure id 1..PROC_LAST");

const RpcModule service_module = {
	.name = SERVICE_MODULE_NAME,
	.procedures = service_procedures,
	.count = sizeof(service_procedures) / sizeof(service_procedures[0]),
};

void
service_call(Conn *c, uint32_t msg_no, const RpcProcedure *proc, const uint8_t *payload, size_t len)
{
	/* procedures.c also answers the rows without a handler: it owns the answer's format. */
	procedures_call(c, msg_no, proc, payload, len);
}

void
service_stream_open(Conn *c, uint32_t msg_no, const RpcProcedure *proc)
{
	const ServiceStream *stream = proc->handler;

	if (stream != NULL)
	{
		stream->open(c, msg_no, proc);
		return;
	}
	log_conn(LOG_LEVEL_DEBUG, conn_id(c), conn_address(c), "%s: not served here, stream ended",
			 proc->name);
	if (rpc_stream_end(conn_rpc(c), msg_no) != 0)
		log_conn(LOG_LEVEL_DEBUG, conn_id(c), conn_address(c), "%s: stream %u already ended",
				 proc->name, msg_no);
}

void
service_stream_closed(Conn *c, uint32_t msg_no, const RpcProcedure *proc)
{
	const ServiceStream *stream = proc->handler;

	if (stream != NULL)
		stream->closed(c, msg_no);
}
