/*
 * social_pb.h — helpers shared by procedures.c and updates.c: SocialService protobuf messages built
 * from the extension's result rows, SQLSTATE → typed error, and small value conversions.
 *
 * Messages built here borrow their strings from the PGresult they were read from: pack them
 * before the result callback returns and never free them with protobuf-c's free_unpacked. All
 * functions but social_pb_refuse_duplicate (and the profile hook's calls) are pure (no I/O); all run on the loop thread.
 */
#ifndef SOCIALD_SOCIAL_PB_H
#define SOCIALD_SOCIAL_PB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decentraland/social_service/v2/social_service_v2.pb-c.h"
#include "rpc/rpc.h"

typedef Decentraland__Common__Color3						PbColor3;
typedef Decentraland__SocialService__V2__FriendProfile		PbFriendProfile;
typedef Decentraland__SocialService__V2__BlockedUserProfile PbBlockedUserProfile;

/*
 * Profile columns. Every query that returns a profile puts these seven columns side by side,
 * starting at some column c: address, name, has_claimed_name, profile_picture_url and the three
 * name colour components (NULL when the profile has no colour). Only the address must be non-NULL:
 * a user without a profile row is shown by the address alone.
 */
#define SOCIAL_PB_PROFILE_COLUMNS 7

/* A FriendProfile with room for its colour. */
typedef struct SocialProfile
{
	PbFriendProfile msg;
	PbColor3		color;
} SocialProfile;

/* A BlockedUserProfile with room for its colour. */
typedef struct SocialBlockedProfile
{
	PbBlockedUserProfile msg;
	PbColor3			 color;
} SocialBlockedProfile;

/* Fills p from the profile columns at col of row (strings borrowed from res). */
void social_pb_profile(SocialProfile *p, const PGresult *res, int row, int col);
/* The same for a blocked user; blocked_at is left unset. */
void social_pb_blocked_profile(SocialBlockedProfile *p, const PGresult *res, int row, int col);

/*
 * Every profile the two functions above fill is also told to fn (the address, valid during the
 * call): the one place every profile the protocol carries passes through, so the profile registry
 * (registry.h) learns which addresses are being shown and refreshes them in the background. fn
 * must not block; NULL (the default) turns it off. Set before the loop runs.
 */
typedef void (*SocialPbProfileHook)(void *ud, const char *address);
void social_pb_set_profile_hook(SocialPbProfileHook fn, void *ud);

/* The client-facing class of a failed query, from its SQLSTATE (README: Errors). */
typedef enum SocialErrorKind
{
	SOCIAL_ERROR_INVALID_ACTION = 0, /* invalid_friendship_action */
	SOCIAL_ERROR_INVALID_REQUEST,	 /* invalid_request */
	SOCIAL_ERROR_INTERNAL			 /* internal_server_error: not the user's fault */
} SocialErrorKind;

SocialErrorKind social_pb_error_kind(const char *sqlstate);
/* The stable text clients see for an extension SQLSTATE; never the server's message, which is
 * logged instead. Internal errors all read "Internal server error". */
const char *social_pb_error_message(const char *sqlstate);

#define SOCIAL_PB_INTERNAL_ERROR "Internal server error"

/*
 * Packs the response of procedure proc_id (service.h) carrying a typed error of class kind with
 * message, into a malloc'd buffer owned by the caller. A response without that case gets the
 * nearest one it has: invalid_friendship_action → invalid_request → internal_server_error. The
 * list responses have no error case at all: then NULL with *remote = true (answer a RemoteError
 * with message). NULL with *remote = false: out of memory.
 */
uint8_t *social_pb_pack_error(uint32_t proc_id, SocialErrorKind kind, const char *message,
							  size_t *len, bool *remote);

/* Column values; NULL reads as 0 / false / "". */
int64_t social_pb_int64(const PGresult *res, int row, int col);
bool	social_pb_bool(const PGresult *res, int row, int col);
char   *social_pb_text(const PGresult *res, int row, int col);
/* The extension's words for the protocol's enums. */

/* FriendshipStatus of social.friendship_status's text; -1 for an unknown word. */
int social_pb_friendship_status(const char *text);

typedef enum SocialSetting
{
	SOCIAL_SETTING_PRIVACY =
		0, /* PrivateMessagePrivacySetting: ALL 'all', ONLY_FRIENDS 'only_friends' */
	SOCIAL_SETTING_VISIBILITY, /* BlockedUsersMessagesVisibilitySetting: SHOW_MESSAGES, DO_NOT_SHOW_MESSAGES */
	SOCIAL_SETTING_REACTIONS /* SituationReactionsVisibility: SHOW 'show', HIDE 'hide' */
} SocialSetting;

/* The text of enum value 'value' of a setting; NULL for a number the protocol does not define
 * (proto3 enums are open: any number decodes). */
const char *social_pb_setting_text(SocialSetting setting, int value);
/* The enum value of a setting's text; -1 for an unknown word. */
int social_pb_setting_value(SocialSetting setting, const char *text);
/* The three settings from the one row of res (columns private_messages_privacy,
 * blocked_users_messages_visibility, show_situation_reactions); -1 if res is not that. */
int social_pb_settings(Decentraland__SocialService__V2__SocialSettings *out, const PGresult *res);

/* Splits a copy of a comma-joined list ("" is the empty list): *items[i] point into *copy. Both
 * malloc'd and owned by the caller, also on failure (-1, out of memory). */
int social_pb_split_list(const char *joined, char **copy, char ***items, size_t *n);

/* Clamps to the int32 range of the protocol's counters. */
int32_t social_pb_int32(int64_t v);

/*
 * A PostgreSQL array literal ("{\"a\",\"b\"}") holding items, for a text[] query parameter: every
 * element is quoted and '"' and '\' are escaped, so any string arrives unchanged. malloc'd, owned
 * by the caller; NULL when out of memory.
 */
char *social_pb_text_array(char *const *items, size_t n);

/* Packs m into a malloc'd buffer (owned by the caller); NULL when out of memory. A message that
 * packs to zero bytes gets a one-byte allocation and *len = 0. */
uint8_t *social_pb_pack(const ProtobufCMessage *m, size_t *len);

/* Sets m's singular message field named field to value (borrowed), and its oneof case when it is
 * in one; -1 when m has no such field. */
int social_pb_set_message(ProtobufCMessage *m, const char *field, const ProtobufCMessage *value);

/* m's singular message field named field: NULL when it is unset (a oneof or proto3 optional
 * field whose case is another), NULL, or not a message field of m. */
const ProtobufCMessage *social_pb_get_message(const ProtobufCMessage *m, const char *field);

/* Sets m's repeated field named field to the n items (borrowed: an array of n pointers for a
 * message or string field); -1 when m has no such repeated field. */
int social_pb_set_repeated(ProtobufCMessage *m, const char *field, size_t n, void *items);

/* Packs a message of type desc whose only set field is the message field named field, pointing
 * at value (its oneof case set too when it is in one), into a malloc'd buffer owned by the
 * caller. NULL when out of memory or when desc has no such singular message field. */
uint8_t *social_pb_pack_field(const ProtobufCMessageDescriptor *desc, const char *field,
							  const ProtobufCMessage *value, size_t *len);

/* Refuses a second subscription of a connection to one stream: pushes one element of type update
 * (FriendshipUpdate, BlockUpdate, FriendConnectivityUpdate) that is stream_closed with reason
 * DUPLICATE_SUBSCRIPTION, then ends the stream. who prefixes the debug log lines. */
void social_pb_refuse_duplicate(RpcSession *rpc, uint32_t msg_no,
								const ProtobufCMessageDescriptor *update, const char *who);

#endif /* SOCIALD_SOCIAL_PB_H */
