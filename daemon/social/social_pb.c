/*
 * social_pb.c — SocialService messages from the extension's rows, and SQLSTATE → typed error.
 *
 * The daemon holds no friendship rule, so the only judgement made here is which oneof case a
 * refusal travels in. That comes from the SQLSTATE alone (extension/errors.h, README "Errors"):
 * clients branch on the case, never on the text, and the server's own message (which may quote
 * user input) stays in our log. Anything outside class SC — permission, deadlock, resources, a
 * lost connection — is not the user's fault and reads as internal_server_error.
 */
#include "social/social_pb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "main/log.h"
#include "social/protocol.h"

typedef Decentraland__SocialService__InternalServerError		  PbInternalError;
typedef Decentraland__SocialService__V2__SubscriptionStreamClosed PbStreamClosed;
typedef Decentraland__SocialService__InvalidRequest				  PbInvalidRequest;
typedef Decentraland__SocialService__InvalidFriendshipAction	  PbInvalidAction;

typedef struct SqlstateRow
{
	const char	   *sqlstate;
	SocialErrorKind kind;
	const char	   *message; /* what the client reads; the reference's wording where it has one */
} SqlstateRow;

static const SqlstateRow sqlstate_rows[] = {
	{"SC001", SOCIAL_ERROR_INVALID_ACTION,
	 "The friendship action is not valid for the current friendship status"},
	{"SC002", SOCIAL_ERROR_INVALID_ACTION, "You cannot send a friendship request to yourself"},
	{"SC003", SOCIAL_ERROR_INVALID_ACTION,
	 "This action is not allowed because either you blocked this user or this user blocked you"},
	{"SC004", SOCIAL_ERROR_INVALID_REQUEST,
	 "Too many friendship or block actions. Please try again later"},
	{"SC005", SOCIAL_ERROR_INVALID_REQUEST, "The friendship request message is too long"},
	{"SC006", SOCIAL_ERROR_INVALID_ACTION, "The maximum number of friends has been reached"},
	{"SC007", SOCIAL_ERROR_INVALID_ACTION, "Too many pending friendship requests"},
	{"SC008", SOCIAL_ERROR_INVALID_REQUEST, "A message can only be sent with a friendship request"},
	{"SC010", SOCIAL_ERROR_INVALID_REQUEST, "Invalid user address in the request payload"},
	{"SC011", SOCIAL_ERROR_INVALID_REQUEST, "Unknown friendship action"},
	{"SC012", SOCIAL_ERROR_INVALID_REQUEST, "Invalid social settings value"},
	{"SC013", SOCIAL_ERROR_INVALID_REQUEST, "Too many user addresses"},
};

static const SqlstateRow *
sqlstate_find(const char *sqlstate)
{
	if (sqlstate == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(sqlstate_rows) / sizeof(sqlstate_rows[0]); i++)
		if (strcmp(sqlstate_rows[i].sqlstate, sqlstate) == 0)
			return &sqlstate_rows[i];
	return NULL;
}

SocialErrorKind
social_pb_error_kind(const char *sqlstate)
{
	const SqlstateRow *row = sqlstate_find(sqlstate);

	return row ? row->kind : SOCIAL_ERROR_INTERNAL;
}

const char *
social_pb_error_message(const char *sqlstate)
{
	const SqlstateRow *row = sqlstate_find(sqlstate);

	return row ? row->message : SOCIAL_PB_INTERNAL_ERROR;
}

char *
social_pb_text(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return (char *) "";
	return PQgetvalue(res, row, col);
}

int64_t
social_pb_int64(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return 0;
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

bool
social_pb_bool(const PGresult *res, int row, int col)
{
	return !PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't';
}

int32_t
social_pb_int32(int64_t v)
{
	if (v > INT32_MAX)
		return INT32_MAX;
	if (v < INT32_MIN)
		return INT32_MIN;
	return (int32_t) v;
}

/* The colour is sent only when the profile has one: proto3 optional, absent otherwise. */
static bool
read_color(PbColor3 *color, const PGresult *res, int row, int col)
{
	static const PbColor3 init = DECENTRALAND__COMMON__COLOR3__INIT;

	if (PQgetisnull(res, row, col) || PQgetisnull(res, row, col + 1) ||
		PQgetisnull(res, row, col + 2))
		return false;
	*color = init;
	color->r = strtof(PQgetvalue(res, row, col), NULL);
	color->g = strtof(PQgetvalue(res, row, col + 1), NULL);
	color->b = strtof(PQgetvalue(res, row, col + 2), NULL);
	return true;
}

/* The member of m for its singular field named field of type type, its oneof case set when it is
 * in one; NULL when m has no such field. */
static void *
member(ProtobufCMessage *m, const char *field, ProtobufCType type)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(m->descriptor, field);

	if (f == NULL || f->type != type || f->label == PROTOBUF_C_LABEL_REPEATED)
		return NULL;
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		*(uint32_t *) ((char *) m + f->quantifier_offset) = f->id;
	return (char *) m + f->offset;
}

int
social_pb_set_message(ProtobufCMessage *m, const char *field, const ProtobufCMessage *value)
{
	const ProtobufCMessage **p = member(m, field, PROTOBUF_C_TYPE_MESSAGE);

	if (p == NULL)
		return -1;
	*p = value;
	return 0;
}

const ProtobufCMessage *
social_pb_get_message(const ProtobufCMessage *m, const char *field)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(m->descriptor, field);

	if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED)
		return NULL;
	if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		*(const uint32_t *) ((const char *) m + f->quantifier_offset) != f->id)
		return NULL;
	return *(const ProtobufCMessage *const *) ((const char *) m + f->offset);
}

int
social_pb_set_repeated(ProtobufCMessage *m, const char *field, size_t n, void *items)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(m->descriptor, field);

	if (f == NULL || f->label != PROTOBUF_C_LABEL_REPEATED)
		return -1;
	*(size_t *) ((char *) m + f->quantifier_offset) = n;
	*(void **) ((char *) m + f->offset) = items;
	return 0;
}

/* FriendProfile and BlockedUserProfile have the profile's fields under the same names but not at
 * the same places (blocked_at comes before name_color): one filler for both, by name. */
/* Who hears of every profile served (social_pb_set_profile_hook); NULL: nobody. */
static SocialPbProfileHook profile_hook;
static void				  *profile_hook_ud;

void
social_pb_set_profile_hook(SocialPbProfileHook fn, void *ud)
{
	profile_hook = fn;
	profile_hook_ud = ud;
}

static void
fill_profile(ProtobufCMessage *m, PbColor3 *color, const PGresult *res, int row, int col)
{
	*(char **) member(m, "address", PROTOBUF_C_TYPE_STRING) = social_pb_text(res, row, col);
	*(char **) member(m, "name", PROTOBUF_C_TYPE_STRING) = social_pb_text(res, row, col + 1);
	*(protobuf_c_boolean *) member(m, "has_claimed_name", PROTOBUF_C_TYPE_BOOL) =
		social_pb_bool(res, row, col + 2);
	*(char **) member(m, "profile_picture_url", PROTOBUF_C_TYPE_STRING) =
		social_pb_text(res, row, col + 3);
	if (read_color(color, res, row, col + 4))
		(void) social_pb_set_message(m, "name_color", &color->base);
	if (profile_hook)
		profile_hook(profile_hook_ud, social_pb_text(res, row, col));
}

void
social_pb_profile(SocialProfile *p, const PGresult *res, int row, int col)
{
	static const PbFriendProfile init = DECENTRALAND__SOCIAL_SERVICE__V2__FRIEND_PROFILE__INIT;

	p->msg = init;
	fill_profile(&p->msg.base, &p->color, res, row, col);
}

void
social_pb_blocked_profile(SocialBlockedProfile *p, const PGresult *res, int row, int col)
{
	static const PbBlockedUserProfile init =
		DECENTRALAND__SOCIAL_SERVICE__V2__BLOCKED_USER_PROFILE__INIT;

	p->msg = init;
	fill_profile(&p->msg.base, &p->color, res, row, col);
}

static const struct
{
	const char										 *text;
	Decentraland__SocialService__V2__FriendshipStatus status;
} status_names[] = {
	{"request_sent", DECENTRALAND__SOCIAL_SERVICE__V2__FRIENDSHIP_STATUS__REQUEST_SENT},
	{"request_received", DECENTRALAND__SOCIAL_SERVICE__V2__FRIENDSHIP_STATUS__REQUEST_RECEIVED},
	{"canceled", DECENTRALAND__SOCIAL_SERVICE__V2__FRIENDSHIP_STATUS__CANCELED},
	{"accepted", DECENTRALAND__SOCIAL_SERVICE__V2__FRIENDSHIP_STATUS__ACCEPTED},
	{"rejected", DECENTRALAND__SOCIAL_SERVICE__V2__FRIENDSHIP_STATUS__REJECTED},
	{"deleted", DECENTRALAND__SOCIAL_SERVICE__V2__FRIENDSHIP_STATUS__DELETED},
	{"blocked", DECENTRALAND__SOCIAL_SERVICE__V2__FRIENDSHIP_STATUS__BLOCKED},
	{"none", DECENTRALAND__SOCIAL_SERVICE__V2__FRIENDSHIP_STATUS__NONE},
	{"blocked_by", DECENTRALAND__SOCIAL_SERVICE__V2__FRIENDSHIP_STATUS__BLOCKED_BY},
};

int
social_pb_friendship_status(const char *text)
{
	for (size_t i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++)
		if (strcmp(status_names[i].text, text) == 0)
			return (int) status_names[i].status;
	return -1;
}

/* Each setting's words, indexed by the protocol's enum value. */
static const char *const setting_names[][2] = {
	[SOCIAL_SETTING_PRIVACY] = {"all", "only_friends"},
	[SOCIAL_SETTING_VISIBILITY] = {"show_messages", "do_not_show_messages"},
	[SOCIAL_SETTING_REACTIONS] = {"show", "hide"},
};

const char *
social_pb_setting_text(SocialSetting setting, int value)
{
	if (value < 0 || value > 1)
		return NULL;
	return setting_names[setting][value];
}

int
social_pb_setting_value(SocialSetting setting, const char *text)
{
	for (int i = 0; i < 2; i++)
		if (strcmp(setting_names[setting][i], text) == 0)
			return i;
	return -1;
}

int
social_pb_settings(Decentraland__SocialService__V2__SocialSettings *out, const PGresult *res)
{
	int privacy;
	int visibility;
	int reactions;

	if (PQntuples(res) != 1 || PQnfields(res) < 3)
		return -1;
	privacy = social_pb_setting_value(SOCIAL_SETTING_PRIVACY, social_pb_text(res, 0, 0));
	visibility = social_pb_setting_value(SOCIAL_SETTING_VISIBILITY, social_pb_text(res, 0, 1));
	reactions = social_pb_setting_value(SOCIAL_SETTING_REACTIONS, social_pb_text(res, 0, 2));
	if (privacy < 0 || visibility < 0 || reactions < 0)
		return -1;
	out->private_messages_privacy =
		(Decentraland__SocialService__V2__PrivateMessagePrivacySetting) privacy;
	out->blocked_users_messages_visibility =
		(Decentraland__SocialService__V2__BlockedUsersMessagesVisibilitySetting) visibility;
	out->show_situation_reactions =
		(Decentraland__SocialService__V2__SituationReactionsVisibility) reactions;
	return 0;
}

int
social_pb_split_list(const char *joined, char **copy, char ***items, size_t *n)
{
	size_t count = 1;

	*copy = NULL;
	*items = NULL;
	*n = 0;
	if (joined[0] == '\0')
		return 0;
	for (const char *s = joined; *s; s++)
		count += *s == ',';
	*copy = strdup(joined);
	*items = calloc(count, sizeof(**items));
	if (*copy == NULL || *items == NULL)
		return -1;
	for (char *s = *copy, *next; s != NULL; s = next)
	{
		next = strchr(s, ',');
		if (next)
			*next++ = '\0';
		(*items)[(*n)++] = s;
	}
	return 0;
}

char *
social_pb_text_array(char *const *items, size_t n)
{
	size_t size = 3; /* "{", "}", NUL */
	char  *out;
	char  *w;

	for (size_t i = 0; i < n; i++)
	{
		size += 3; /* two quotes and a comma */
		for (const char *s = items[i]; *s; s++)
			size += (*s == '"' || *s == '\\') ? 2 : 1;
	}
	out = malloc(size);
	if (out == NULL)
		return NULL;
	w = out;
	*w++ = '{';
	for (size_t i = 0; i < n; i++)
	{
		if (i > 0)
			*w++ = ',';
		*w++ = '"';
		for (const char *s = items[i]; *s; s++)
		{
			if (*s == '"' || *s == '\\')
				*w++ = '\\';
			*w++ = *s;
		}
		*w++ = '"';
	}
	*w++ = '}';
	*w = '\0';
	return out;
}

uint8_t *
social_pb_pack(const ProtobufCMessage *m, size_t *len)
{
	size_t	 size = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(size > 0 ? size : 1);

	if (buf == NULL)
		return NULL;
	*len = protobuf_c_message_pack(m, buf);
	return buf;
}

uint8_t *
social_pb_pack_field(const ProtobufCMessageDescriptor *desc, const char *field,
					 const ProtobufCMessage *value, size_t *len)
{
	ProtobufCMessage *m = calloc(1, desc->sizeof_message);
	uint8_t			 *buf = NULL;

	if (m == NULL)
		return NULL;
	desc->message_init(m);
	if (social_pb_set_message(m, field, value) == 0)
		buf = social_pb_pack(m, len);
	free(m);
	return buf;
}

void
social_pb_refuse_duplicate(RpcSession *rpc, uint32_t msg_no,
						   const ProtobufCMessageDescriptor *update, const char *who)
{
	PbStreamClosed closed = DECENTRALAND__SOCIAL_SERVICE__V2__SUBSCRIPTION_STREAM_CLOSED__INIT;
	uint8_t		  *buf;
	size_t		   len = 0;

	closed.reason =
		DECENTRALAND__SOCIAL_SERVICE__V2__SUBSCRIPTION_STREAM_CLOSED_REASON__STREAM_CLOSED_DUPLICATE_SUBSCRIPTION;
	buf = social_pb_pack_field(update, "stream_closed", &closed.base, &len);
	if (buf != NULL && rpc_stream_push(rpc, msg_no, buf, len) != 0)
		log_debug("%s: stream %u: the duplicate notice was not queued", who, msg_no);
	free(buf);
	if (rpc_stream_end(rpc, msg_no) != 0)
		log_debug("%s: stream %u already ended", who, msg_no);
}

/* ---- Typed error responses */

/* The typed error cases each procedure's response has. */
enum
{
	CASE_INVALID_ACTION = 1 << 0,
	CASE_INVALID_REQUEST = 1 << 1,
	CASE_INTERNAL = 1 << 2
};

static unsigned
error_cases(uint32_t proc_id)
{
	switch (proc_id)
	{
		case PROC_UPSERT_FRIENDSHIP:
			return CASE_INVALID_ACTION | CASE_INVALID_REQUEST | CASE_INTERNAL;
		case PROC_GET_FRIENDSHIP_STATUS:
		case PROC_BLOCK_USER:
		case PROC_UNBLOCK_USER:
		case PROC_UPSERT_SOCIAL_SETTINGS:
		case PROC_GET_PRIVATE_MESSAGES_SETTINGS:
			return CASE_INVALID_REQUEST | CASE_INTERNAL;
		case PROC_GET_PENDING_FRIENDSHIP_REQUESTS:
		case PROC_GET_SENT_FRIENDSHIP_REQUESTS:
		case PROC_GET_SOCIAL_SETTINGS:
			return CASE_INTERNAL;
		default:
			/* GetFriends, GetMutualFriends, GetBlockedUsers, GetBlockingStatus: a list and its
			 * pagination, no error case */
			return 0;
	}
}

static void
set_internal(PbInternalError *e, const char *message)
{
	static const PbInternalError init = DECENTRALAND__SOCIAL_SERVICE__INTERNAL_SERVER_ERROR__INIT;

	*e = init;
	e->_message_case = DECENTRALAND__SOCIAL_SERVICE__INTERNAL_SERVER_ERROR___MESSAGE_MESSAGE;
	e->message = (char *) message;
}

static void
set_invalid_request(PbInvalidRequest *e, const char *message)
{
	static const PbInvalidRequest init = DECENTRALAND__SOCIAL_SERVICE__INVALID_REQUEST__INIT;

	*e = init;
	e->_message_case = DECENTRALAND__SOCIAL_SERVICE__INVALID_REQUEST___MESSAGE_MESSAGE;
	e->message = (char *) message;
}

static void
set_invalid_action(PbInvalidAction *e, const char *message)
{
	static const PbInvalidAction init =
		DECENTRALAND__SOCIAL_SERVICE__INVALID_FRIENDSHIP_ACTION__INIT;

	*e = init;
	e->_message_case = DECENTRALAND__SOCIAL_SERVICE__INVALID_FRIENDSHIP_ACTION___MESSAGE_MESSAGE;
	e->message = (char *) message;
}

/* Procedure proc_id's response with the typed error case 'kind' (which it has): the response
 * type is the method's output in the service descriptor (service.c keeps ids and methods in
 * step), the case is the field of that name. */
static uint8_t *
pack_case(uint32_t proc_id, SocialErrorKind kind, const char *message, size_t *len)
{
	const ProtobufCServiceDescriptor *sd =
		&decentraland__social_service__v2__social_service__descriptor;
	PbInternalError	 internal;
	PbInvalidRequest invalid;
	PbInvalidAction	 action;

	if (proc_id < 1 || proc_id > sd->n_methods)
		return NULL;
	switch (kind)
	{
		case SOCIAL_ERROR_INVALID_ACTION:
			set_invalid_action(&action, message);
			return social_pb_pack_field(sd->methods[proc_id - 1].output,
										"invalid_friendship_action", &action.base, len);
		case SOCIAL_ERROR_INVALID_REQUEST:
			set_invalid_request(&invalid, message);
			return social_pb_pack_field(sd->methods[proc_id - 1].output, "invalid_request",
										&invalid.base, len);
		default:
			set_internal(&internal, message);
			return social_pb_pack_field(sd->methods[proc_id - 1].output, "internal_server_error",
										&internal.base, len);
	}
}

uint8_t *
social_pb_pack_error(uint32_t proc_id, SocialErrorKind kind, const char *message, size_t *len,
					 bool *remote)
{
	unsigned cases = error_cases(proc_id);

	*remote = false;
	if (kind == SOCIAL_ERROR_INVALID_ACTION && !(cases & CASE_INVALID_ACTION))
		kind = SOCIAL_ERROR_INVALID_REQUEST;
	if (kind == SOCIAL_ERROR_INVALID_REQUEST && !(cases & CASE_INVALID_REQUEST))
		kind = SOCIAL_ERROR_INTERNAL;
	if (kind == SOCIAL_ERROR_INTERNAL && !(cases & CASE_INTERNAL))
	{
		*remote = true;
		return NULL;
	}
	return pack_case(proc_id, kind, message, len);
}
