/*
 * service.c — the SocialService module table.
 *
 * One row per rpc of decentraland.social_service.v2.SocialService, in the order of
 * proto/decentraland/social_service/v2/social_service_v2.proto: the row's position is its
 * procedure id (1..33), which is how the reference service numbers them, so a client that cached
 * ids from the reference still lands on the same procedure. The names are what clients look
 * procedures up by, so they must be the proto rpc names byte for byte.
 *
 * This server implements the friendship, block and settings core (1..16). The rest stay in the
 * list, because clients resolve every procedure of the module when they load it, but are marked
 * unsupported: a unary call answers a RemoteError and a stream ends at once.
 */
#include "social/service.h"

#define UNARY(id_, name_, supported_)                                                   \
	{                                                                                   \
		.id = (id_), .name = (name_), .server_stream = false, .supported = (supported_) \
	}
#define STREAM(id_, name_, supported_)                                                 \
	{                                                                                  \
		.id = (id_), .name = (name_), .server_stream = true, .supported = (supported_) \
	}

const ServiceProcedure service_procedures[] = {
	UNARY(PROC_GET_FRIENDS, "GetFriends", true),
	UNARY(PROC_GET_MUTUAL_FRIENDS, "GetMutualFriends", true),
	UNARY(PROC_GET_PENDING_FRIENDSHIP_REQUESTS, "GetPendingFriendshipRequests", true),
	UNARY(PROC_GET_SENT_FRIENDSHIP_REQUESTS, "GetSentFriendshipRequests", true),
	UNARY(PROC_UPSERT_FRIENDSHIP, "UpsertFriendship", true),
	STREAM(PROC_SUBSCRIBE_TO_FRIENDSHIP_UPDATES, "SubscribeToFriendshipUpdates", true),
	UNARY(PROC_GET_FRIENDSHIP_STATUS, "GetFriendshipStatus", true),
	STREAM(PROC_SUBSCRIBE_TO_FRIEND_CONNECTIVITY_UPDATES, "SubscribeToFriendConnectivityUpdates",
		   true),
	UNARY(PROC_BLOCK_USER, "BlockUser", true),
	UNARY(PROC_UNBLOCK_USER, "UnblockUser", true),
	UNARY(PROC_GET_BLOCKED_USERS, "GetBlockedUsers", true),
	UNARY(PROC_GET_BLOCKING_STATUS, "GetBlockingStatus", true),
	STREAM(PROC_SUBSCRIBE_TO_BLOCK_UPDATES, "SubscribeToBlockUpdates", true),
	UNARY(PROC_GET_SOCIAL_SETTINGS, "GetSocialSettings", true),
	UNARY(PROC_UPSERT_SOCIAL_SETTINGS, "UpsertSocialSettings", true),
	UNARY(PROC_GET_PRIVATE_MESSAGES_SETTINGS, "GetPrivateMessagesSettings", true),
	STREAM(PROC_SUBSCRIBE_TO_COMMUNITY_MEMBER_CONNECTIVITY_UPDATES,
		   "SubscribeToCommunityMemberConnectivityUpdates", false),
	UNARY(18, "StartPrivateVoiceChat", false),
	UNARY(19, "AcceptPrivateVoiceChat", false),
	UNARY(20, "RejectPrivateVoiceChat", false),
	UNARY(21, "EndPrivateVoiceChat", false),
	UNARY(22, "GetIncomingPrivateVoiceChatRequest", false),
	STREAM(23, "SubscribeToPrivateVoiceChatUpdates", false),
	UNARY(24, "StartCommunityVoiceChat", false),
	UNARY(25, "JoinCommunityVoiceChat", false),
	UNARY(26, "RequestToSpeakInCommunityVoiceChat", false),
	UNARY(27, "PromoteSpeakerInCommunityVoiceChat", false),
	UNARY(28, "DemoteSpeakerInCommunityVoiceChat", false),
	UNARY(29, "KickPlayerFromCommunityVoiceChat", false),
	UNARY(30, "RejectSpeakRequestInCommunityVoiceChat", false),
	UNARY(31, "EndCommunityVoiceChat", false),
	STREAM(32, "SubscribeToCommunityVoiceChatUpdates", false),
	UNARY(PROC_LAST, "MuteSpeakerFromCommunityVoiceChat", false),
};

const size_t service_procedure_count = sizeof(service_procedures) / sizeof(service_procedures[0]);

/* The table must cover exactly 1..PROC_LAST: ids are positions. */
_Static_assert(sizeof(service_procedures) / sizeof(service_procedures[0]) == PROC_LAST,
			   "service_procedures must list every procedure id 1..PROC_LAST");

const ServiceProcedure *
service_find(uint32_t id)
{
	if (id == 0 || id > service_procedure_count)
		return NULL;
	return &service_procedures[id - 1];
}
