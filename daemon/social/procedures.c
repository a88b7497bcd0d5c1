/*
 * procedures.c — the unary SocialService procedures, one SQL statement each.
 *
 * Every decision is the extension's: this file decodes a payload, passes the session user
 * (conn_address) and the request's values to one social.* function as text parameters, and turns
 * the rows or the SQLSTATE into the procedure's response. Nothing here knows a friendship rule;
 * the only checks made before SQL are about the payload's shape (a missing user, an action case
 * that is not set, an enum value that names no setting, a string that is not UTF-8, payloads and
 * parameters too large to be anything the extension would accept), which the extension cannot
 * see or should not have to read.
 *
 * One round trip per call. Display profiles are joined in the same statement through
 * social.get_profiles (the daemon's role may only execute the API functions, never read a table),
 * and a missing profile never drops an entry: get_profiles returns every address asked for.
 * Paged lists return their total on every row; when a page is empty (an offset past the end) the
 * statement still returns one row, with a NULL address, that carries the total read from the same
 * function called again with limit 1 and offset 0 (its window over the unpaged set, same snapshot).
 *
 * Pagination follows the reference service: the limit and offset go to the extension as the
 * client sent them (NULL when the payload has no pagination) and it clamps them silently. The
 * page number, ceil(offset / limit) + 1 of the limit and offset the read actually used, is the
 * extension's too: every row of a list statement, the empty page's included, carries
 * social.page_number(list, limit, offset) of the same parameters, and the reply reads it from
 * the first row. This file knows no page size (extension/paging.c holds them).
 *
 * Errors. A refusal travels as the response's typed oneof case, picked from the SQLSTATE alone
 * (social_pb.c). A response without the case for the refusal's class falls back to the nearest
 * one it has (invalid_friendship_action → invalid_request → internal_server_error). The list
 * responses have no error case at all: they answer a RemoteError (the reference answers an empty
 * page there, which a client cannot tell from "no friends"). Internal failures show the client a
 * generic text; the real one is logged with the SQLSTATE.
 *
 * Lifetime. A FriendsCall (malloc'd) lives from the request to the query's callback. The
 * connection can close meanwhile, so the call keeps the connection's id, not its pointer, and the
 * answer is dropped when conn_lookup no longer finds it. Everything runs on the loop thread.
 */
#include "social/procedures.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "lib/address.h"
#include "main/log.h"
#include "main/metrics.h"
#include "rpc/pb_wire.h"
#include "social/protocol.h"
#include "social/social_pb.h"

typedef Decentraland__SocialService__V2__User						 PbUser;
typedef Decentraland__SocialService__V2__Pagination					 PbPagination;
typedef Decentraland__SocialService__V2__PaginatedResponse			 PbPaginatedResponse;
typedef Decentraland__SocialService__V2__FriendshipRequestResponse	 PbRequestEntry;
typedef Decentraland__SocialService__V2__FriendshipRequests			 PbRequests;
typedef Decentraland__SocialService__V2__SocialSettings				 PbSocialSettings;
typedef Decentraland__SocialService__V2__GetMutualFriendsPayload	 PbGetMutualFriendsPayload;
typedef Decentraland__SocialService__V2__UpsertFriendshipPayload	 PbUpsertPayload;
typedef Decentraland__SocialService__V2__GetFriendshipStatusPayload	 PbStatusPayload;
typedef Decentraland__SocialService__V2__BlockUserPayload			 PbBlockPayload;
typedef Decentraland__SocialService__V2__UnblockUserPayload			 PbUnblockPayload;
typedef Decentraland__SocialService__V2__UpsertSocialSettingsPayload PbUpsertSettingsPayload;
typedef Decentraland__SocialService__V2__GetPrivateMessagesSettingsPayload PbPmPayload;
typedef Decentraland__SocialService__V2__GetPrivateMessagesSettingsResponse__PrivateMessagesSettings
	PbPmEntry;

/* Borrowed at procedures_init; outlives every call. */
static PgPool *procedures_pg;

/* GetPrivateMessagesSettings: the extension refuses more addresses (SC013). */
#define PM_MAX_ADDRESSES 50
#define PM_TOO_MANY_FORMAT "Too many user addresses: %zu, at most 50 are allowed"

/* ---- One call in flight */

typedef struct FriendsCall
{
	uint64_t conn_id;
	char	 address[ADDRESS_LEN + 1]; /* the session user, for log lines after a close */
	uint32_t msg_no;
	const RpcProcedure *proc;
	const Procedure	   *fp;
	uint64_t			started_ns;
	size_t				n_addresses; /* GetPrivateMessagesSettings: how many were asked for */
} FriendsCall;

/* What a procedure's start function hands back: a statement, or an answer without SQL. */
typedef enum StartStatus
{
	START_QUERY = 0, /* run sql with params */
	START_MALFORMED, /* payload is not the procedure's message: RemoteError(error) */
	START_INVALID,	 /* the payload lacks something: typed invalid_request(error) */
	START_NOMEM
} StartStatus;

#define QUERY_MAX_PARAMS 5

/* Parameters of one call, in bytes, beyond which the payload is refused without SQL. */
#define FRIENDS_MAX_PARAMS_BYTES (64 * 1024)

/*
 * protobuf-c allocates for every element and every unknown field it unpacks, on the loop
 * thread: a megabyte of two-byte fields held the loop for a quarter of a second, so one client
 * at its message rate could stall every other. The largest real payload is 50 addresses (about
 * 2.4 KB), so payloads are refused beyond FRIENDS_MAX_PAYLOAD_BYTES before unpacking, and an
 * unpack may allocate FRIENDS_UNPACK_ALLOCS times at most (50 addresses take about 110).
 */
#define FRIENDS_MAX_PAYLOAD_BYTES (16 * 1024)
#define FRIENDS_UNPACK_ALLOCS 512
#define FRIENDS_TOO_LARGE "The request payload is too large"

typedef struct UnpackBudget
{
	ProtobufCAllocator allocator; /* allocator_data points at this budget */
	unsigned		   left;
	bool			   exhausted;
} UnpackBudget;

typedef struct FriendsQuery
{
	const char		 *sql;
	int				  nparams;
	const char		 *params[QUERY_MAX_PARAMS];
	char			  numbuf[2][16]; /* limit and offset as text */
	char			 *owned;		 /* malloc'd parameter text (an array literal) */
	ProtobufCMessage *payload;		 /* unpacked request; params may point into it */
	UnpackBudget	  budget;		 /* payload's allocator, also to free it */
	char			  error[160];	 /* START_MALFORMED / START_INVALID text */
} FriendsQuery;

typedef StartStatus (*StartFn)(FriendsCall *call, FriendsQuery *q, const uint8_t *payload,
							   size_t len, const char *me);
/* Packs the success response from the rows into *out (malloc'd); -1 when the rows are not what
 * the statement returns (or out of memory): the caller answers internal_server_error. */
typedef int (*ReplyFn)(FriendsCall *call, const PGresult *res, uint8_t **out, size_t *len);

struct Procedure
{
	StartFn		start;
	ReplyFn		reply;
	const char *self_message; /* SC002 text for this procedure, NULL: the default */
};

/* ---- Answering */

static double
elapsed_seconds(const FriendsCall *call)
{
	return (double) (uv_hrtime() - call->started_ns) / 1e9;
}

/* Sends either payload (rpc_respond) or remote_error (rpc_respond_error), records the call and
 * frees it. The connection may be gone: then the answer is dropped. */
static void
call_finish(FriendsCall *call, const char *outcome, const uint8_t *payload, size_t len,
			const char *remote_error)
{
	Conn	   *c = conn_lookup(call->conn_id);
	RpcSession *rpc = c ? conn_rpc(c) : NULL;
	int			rc = 0;

	metrics_rpc(call->proc->name, outcome, elapsed_seconds(call));
	if (rpc == NULL)
		log_conn(LOG_LEVEL_DEBUG, call->conn_id, call->address,
				 "%s answer dropped: connection closed", call->proc->name);
	else if (remote_error)
		rc = rpc_respond_error(rpc, call->msg_no, remote_error);
	else
		rc = rpc_respond(rpc, call->msg_no, payload, len);
	if (rc != 0)
		log_conn(LOG_LEVEL_DEBUG, call->conn_id, call->address,
				 "%s answer not sent: call %u is no longer pending", call->proc->name,
				 call->msg_no);
	free(call);
}

/* Answers with the response's typed error of class kind (social_pb_pack_error picks the case),
 * or a RemoteError with the same text when the response has no error case. */
static void
call_fail(FriendsCall *call, SocialErrorKind kind, const char *message)
{
	const char *outcome = kind == SOCIAL_ERROR_INTERNAL ? "error" : "invalid";
	bool		remote = false;
	size_t		len = 0;
	uint8_t	   *buf = social_pb_pack_error(call->proc->id, kind, message, &len, &remote);

	if (buf == NULL)
	{
		call_finish(call, remote ? outcome : "error", NULL, 0,
					remote ? message : SOCIAL_PB_INTERNAL_ERROR);
		return;
	}
	call_finish(call, outcome, buf, len, NULL);
	free(buf);
}

/* ---- Payload helpers */

/* $first and $first+1 = the request's limit and offset as sent (NULL when absent: the
 * extension's default). The extension clamps them, for the page and for its number. */
static void
list_params(FriendsQuery *q, int first)
{
	/* Every list payload has an optional Pagination pagination. */
	const PbPagination *p = (const PbPagination *) social_pb_get_message(q->payload, "pagination");

	q->params[first] = NULL;
	q->params[first + 1] = NULL;
	if (p == NULL)
		return;
	snprintf(q->numbuf[0], sizeof(q->numbuf[0]), "%d", (int) p->limit);
	snprintf(q->numbuf[1], sizeof(q->numbuf[1]), "%d", (int) p->offset);
	q->params[first] = q->numbuf[0];
	q->params[first + 1] = q->numbuf[1];
}

static void *
budget_alloc(void *data, size_t size)
{
	UnpackBudget *b = data;

	if (b->left == 0)
	{
		b->exhausted = true;
		return NULL;
	}
	b->left--;
	return malloc(size);
}

static void
budget_free(void *data, void *pointer)
{
	free(pointer);
}

/* Unpacks payload as desc's message into q->payload; START_MALFORMED with a message if not
 * (q->budget.exhausted tells a payload too large to unpack from one that is not protobuf). */
static StartStatus
unpack(FriendsCall *call, FriendsQuery *q, const ProtobufCMessageDescriptor *desc,
	   const uint8_t *payload, size_t len)
{
	q->payload = protobuf_c_message_unpack(desc, &q->budget.allocator, len, payload);
	if (q->payload == NULL)
	{
		if (q->budget.exhausted)
			snprintf(q->error, sizeof(q->error), FRIENDS_TOO_LARGE);
		else
			snprintf(q->error, sizeof(q->error), "Invalid %s payload: not a valid %s message",
					 call->proc->name, desc->short_name);
		return START_MALFORMED;
	}
	return START_QUERY;
}

/* What is refused before protobuf-c sees the payload (see FRIENDS_MAX_PAYLOAD_BYTES). */
static StartStatus
payload_check(FriendsCall *call, FriendsQuery *q, const uint8_t *payload, size_t len)
{
	if (call->proc->id == PROC_GET_PRIVATE_MESSAGES_SETTINGS)
	{
		/* Counted first, so a long list is answered like the extension would: SC013. */
		long n = pb_wire_count(payload, len, 1);

		if (n > PM_MAX_ADDRESSES)
		{
			call->n_addresses = (size_t) n;
			snprintf(q->error, sizeof(q->error), PM_TOO_MANY_FORMAT, call->n_addresses);
			return START_INVALID;
		}
	}
	if (len > FRIENDS_MAX_PAYLOAD_BYTES)
	{
		snprintf(q->error, sizeof(q->error), FRIENDS_TOO_LARGE);
		return START_INVALID;
	}
	return START_QUERY;
}

static bool
user_missing(const PbUser *user)
{
	return user == NULL || user->address == NULL || user->address[0] == '\0';
}

static StartStatus
missing_user(FriendsQuery *q)
{
	snprintf(q->error, sizeof(q->error), "User address is missing in the request payload");
	return START_INVALID;
}

/* ---- Profile lists: friends, mutual friends, requests, blocked users
 *
 * Columns: 0..6 the profile (social_pb.h), 7 total, 8 the page number (social.page_number of
 * the statement's limit and offset), then per list: requests 9 id, 10 created_at (ms),
 * 11 message; blocked users 9 blocked_at (ms). A row with a NULL address is the empty page's
 * carrier of the total and the page number.
 */
#define COL_TOTAL 7
#define COL_PAGE 8
#define COL_EXTRA 9

#define PROFILE_FROM                                                        \
	" FROM (VALUES (1)) AS one(x) LEFT JOIN page ON true "                  \
	"LEFT JOIN social.get_profiles(ARRAY(SELECT q.address FROM page q)) p " \
	"ON p.address = page.address ORDER BY page.n"

static const char sql_friends[] =
	"WITH page AS (SELECT f.address, f.total, f.n FROM "
	"social.friends($1, $2::integer, $3::integer) WITH ORDINALITY AS f(address, total, n)) "
	"SELECT page.address, p.name, p.has_claimed_name, p.profile_picture_url, "
	"p.name_color[1], p.name_color[2], p.name_color[3], "
	"COALESCE((SELECT max(q.total) FROM page q), "
	"(SELECT t.total FROM social.friends($1, 1, 0) t), 0)::bigint, "
	"social.page_number('friends', $2::integer, $3::integer)" PROFILE_FROM;

static const char sql_mutual_friends[] =
	"WITH page AS (SELECT f.address, f.total, f.n FROM "
	"social.mutual_friends($1, $2, $3::integer, $4::integer) "
	"WITH ORDINALITY AS f(address, total, n)) "
	"SELECT page.address, p.name, p.has_claimed_name, p.profile_picture_url, "
	"p.name_color[1], p.name_color[2], p.name_color[3], "
	"COALESCE((SELECT max(q.total) FROM page q), "
	"(SELECT t.total FROM social.mutual_friends($1, $2, 1, 0) t), 0)::bigint, "
	"social.page_number('mutual_friends', $3::integer, $4::integer)" PROFILE_FROM;

/* list: the function's name, which is also its list's name for social.page_number. */
#define REQUESTS_SQL(list)                                                                          \
	"WITH page AS (SELECT r.id, r.address, r.created_at, r.message, r.total, r.n FROM social." list \
	"($1, $2::integer, $3::integer) "                                                               \
	"WITH ORDINALITY AS r(id, address, created_at, message, total, n)) "                            \
	"SELECT page.address, p.name, p.has_claimed_name, p.profile_picture_url, "                      \
	"p.name_color[1], p.name_color[2], p.name_color[3], "                                           \
	"COALESCE((SELECT max(q.total) FROM page q), (SELECT t.total FROM social." list                 \
	"($1, 1, 0) t), 0)::bigint, social.page_number('" list "', $2::integer, $3::integer), "         \
	"page.id::text, floor(extract(epoch FROM page.created_at) * 1000)::bigint, "                    \
	"page.message" PROFILE_FROM

static const char sql_pending_requests[] = REQUESTS_SQL("pending_requests");
static const char sql_sent_requests[] = REQUESTS_SQL("sent_requests");

static const char sql_blocked_users[] =
	"WITH page AS (SELECT b.address, b.blocked_at, b.total, b.n FROM "
	"social.blocked_users($1, $2::integer, $3::integer) "
	"WITH ORDINALITY AS b(address, blocked_at, total, n)) "
	"SELECT page.address, p.name, p.has_claimed_name, p.profile_picture_url, "
	"p.name_color[1], p.name_color[2], p.name_color[3], "
	"COALESCE((SELECT max(q.total) FROM page q), "
	"(SELECT t.total FROM social.blocked_users($1, 1, 0) t), 0)::bigint, "
	"social.page_number('blocked_users', $2::integer, $3::integer), "
	"floor(extract(epoch FROM page.blocked_at) * 1000)::bigint" PROFILE_FROM;

/* Rows of a list statement that are entries (not the empty page's carrier); -1 if the result
 * does not have the list's columns. */
static int
list_rows(const PGresult *res, int ncols, int64_t *total)
{
	int n = PQntuples(res);

	if (PQnfields(res) < ncols || n < 1)
		return -1;
	*total = social_pb_int64(res, 0, COL_TOTAL);
	if (n == 1 && PQgetisnull(res, 0, 0))
		return 0;
	for (int i = 0; i < n; i++)
		if (PQgetisnull(res, i, 0))
			return -1;
	return n;
}

/* n entries of size bytes each (zeroed) and n pointers to them, for a repeated field; both NULL
 * when n is 0. -1 when out of memory (what was allocated is in *items and *ptrs, to free). */
static int
list_arrays(int n, size_t size, void **items, void ***ptrs)
{
	*items = NULL;
	*ptrs = NULL;
	if (n <= 0)
		return 0;
	*items = calloc((size_t) n, size);
	*ptrs = calloc((size_t) n, sizeof(**ptrs));
	if (*items == NULL || *ptrs == NULL)
		return -1;
	for (int i = 0; i < n; i++)
		(*ptrs)[i] = (char *) *items + (size_t) i * size;
	return 0;
}

/* The pagination of a list reply: the total, and the page number the extension computed (the
 * same on every row; list_rows made sure there is one). */
static void
list_pagination(PbPaginatedResponse *p, const PGresult *res, int64_t total)
{
	p->total = social_pb_int32(total);
	p->page = social_pb_int32(social_pb_int64(res, 0, COL_PAGE));
}

/* A paginated list reply (of type desc): its repeated field holds the n entries at ptrs, and
 * pagination_data the page. */
static int
reply_list(const ProtobufCMessageDescriptor *desc, const char *field, int n, void *ptrs,
		   PbPaginatedResponse *pagination, uint8_t **out, size_t *len)
{
	ProtobufCMessage *m = calloc(1, desc->sizeof_message);

	*out = NULL;
	if (m == NULL)
		return -1;
	desc->message_init(m);
	if (social_pb_set_repeated(m, field, (size_t) n, ptrs) == 0 &&
		social_pb_set_message(m, "pagination_data", &pagination->base) == 0)
		*out = social_pb_pack(m, len);
	free(m);
	return *out ? 0 : -1;
}

/* A reply whose response (of type desc) has one field set: field, to value. */
static int
reply_one(const ProtobufCMessageDescriptor *desc, const char *field, const ProtobufCMessage *value,
		  uint8_t **out, size_t *len)
{
	*out = social_pb_pack_field(desc, field, value, len);
	return *out ? 0 : -1;
}

static StartStatus
start_get_friends(FriendsCall *call, FriendsQuery *q, const uint8_t *payload, size_t len,
				  const char *me)
{
	if (unpack(call, q, &decentraland__social_service__v2__get_friends_payload__descriptor, payload,
			   len) != START_QUERY)
		return START_MALFORMED;
	q->sql = sql_friends;
	q->nparams = 3;
	q->params[0] = me;
	list_params(q, 1);
	return START_QUERY;
}

static StartStatus
start_get_mutual_friends(FriendsCall *call, FriendsQuery *q, const uint8_t *payload, size_t len,
						 const char *me)
{
	PbGetMutualFriendsPayload *m;

	if (unpack(call, q, &decentraland__social_service__v2__get_mutual_friends_payload__descriptor,
			   payload, len) != START_QUERY)
		return START_MALFORMED;
	m = (PbGetMutualFriendsPayload *) q->payload;
	if (user_missing(m->user))
		return missing_user(q);
	q->sql = sql_mutual_friends;
	q->nparams = 4;
	q->params[0] = me;
	q->params[1] = m->user->address;
	list_params(q, 2);
	return START_QUERY;
}

/* GetFriends, GetMutualFriends and GetBlockedUsers: a page of profiles, a blocked user's with
 * blocked_at (column COL_EXTRA). */
static int
reply_profile_list(FriendsCall *call, const PGresult *res, uint8_t **out, size_t *len)
{
	bool				blocked = call->proc->id == PROC_GET_BLOCKED_USERS;
	size_t				size = blocked ? sizeof(SocialBlockedProfile) : sizeof(SocialProfile);
	PbPaginatedResponse pagination = DECENTRALAND__SOCIAL_SERVICE__V2__PAGINATED_RESPONSE__INIT;
	void			   *profiles;
	void			  **ptrs; /* to each profile's msg, its first member */
	int64_t				total = 0;
	int					n = list_rows(res, blocked ? COL_EXTRA + 1 : COL_PAGE + 1, &total);
	int					rc = -1;

	if (n < 0)
		return -1;
	if (list_arrays(n, size, &profiles, &ptrs) != 0)
		goto done;
	for (int i = 0; i < n; i++)
	{
		SocialBlockedProfile *b = ptrs[i];

		if (!blocked)
		{
			social_pb_profile(ptrs[i], res, i, 0);
			continue;
		}
		social_pb_blocked_profile(b, res, i, 0);
		b->msg._blocked_at_case =
			DECENTRALAND__SOCIAL_SERVICE__V2__BLOCKED_USER_PROFILE___BLOCKED_AT_BLOCKED_AT;
		b->msg.blocked_at = social_pb_int64(res, i, COL_EXTRA);
	}
	list_pagination(&pagination, res, total);
	rc = reply_list(
		blocked
			? &decentraland__social_service__v2__get_blocked_users_response__descriptor
			: &decentraland__social_service__v2__paginated_friends_profiles_response__descriptor,
		blocked ? "profiles" : "friends", n, ptrs, &pagination, out, len);
done:
	free(ptrs);
	free(profiles);
	return rc;
}

static StartStatus
start_requests(FriendsCall *call, FriendsQuery *q, const uint8_t *payload, size_t len,
			   const char *me)
{
	if (unpack(call, q,
			   &decentraland__social_service__v2__get_friendship_requests_payload__descriptor,
			   payload, len) != START_QUERY)
		return START_MALFORMED;
	q->sql = call->proc->id == PROC_GET_PENDING_FRIENDSHIP_REQUESTS ? sql_pending_requests
																	: sql_sent_requests;
	q->nparams = 3;
	q->params[0] = me;
	list_params(q, 1);
	return START_QUERY;
}

static int
reply_requests(FriendsCall *call, const PGresult *res, uint8_t **out, size_t *len)
{
	Decentraland__SocialService__V2__PaginatedFriendshipRequestsResponse r =
		DECENTRALAND__SOCIAL_SERVICE__V2__PAGINATED_FRIENDSHIP_REQUESTS_RESPONSE__INIT;
	PbRequests			requests = DECENTRALAND__SOCIAL_SERVICE__V2__FRIENDSHIP_REQUESTS__INIT;
	PbPaginatedResponse pagination = DECENTRALAND__SOCIAL_SERVICE__V2__PAGINATED_RESPONSE__INIT;
	static const PbRequestEntry entry_init =
		DECENTRALAND__SOCIAL_SERVICE__V2__FRIENDSHIP_REQUEST_RESPONSE__INIT;
	SocialProfile	*profiles = NULL;
	PbRequestEntry	*entries;
	PbRequestEntry **ptrs;
	int64_t			 total = 0;
	int				 n = list_rows(res, COL_EXTRA + 3, &total);
	int				 rc = -1;

	if (n < 0)
		return -1;
	if (list_arrays(n, sizeof(*entries), (void **) &entries, (void ***) &ptrs) != 0)
		goto done;
	if (n > 0 && (profiles = calloc((size_t) n, sizeof(*profiles))) == NULL)
		goto done;
	for (int i = 0; i < n; i++)
	{
		social_pb_profile(&profiles[i], res, i, 0);
		entries[i] = entry_init;
		entries[i].friend_ = &profiles[i].msg;
		entries[i].id = social_pb_text(res, i, COL_EXTRA);
		entries[i].created_at = social_pb_int64(res, i, COL_EXTRA + 1);
		/* The reference always sends the message, "" when the request had none. */
		entries[i]._message_case =
			DECENTRALAND__SOCIAL_SERVICE__V2__FRIENDSHIP_REQUEST_RESPONSE___MESSAGE_MESSAGE;
		entries[i].message = social_pb_text(res, i, COL_EXTRA + 2);
	}
	requests.n_requests = (size_t) n;
	requests.requests = ptrs;
	list_pagination(&pagination, res, total);
	r.response_case =
		DECENTRALAND__SOCIAL_SERVICE__V2__PAGINATED_FRIENDSHIP_REQUESTS_RESPONSE__RESPONSE_REQUESTS;
	r.requests = &requests;
	r._pagination_data_case =
		DECENTRALAND__SOCIAL_SERVICE__V2__PAGINATED_FRIENDSHIP_REQUESTS_RESPONSE___PAGINATION_DATA_PAGINATION_DATA;
	r.pagination_data = &pagination;
	*out = social_pb_pack(&r.base, len);
	rc = *out ? 0 : -1;
done:
	free(ptrs);
	free(entries);
	free(profiles);
	return rc;
}

static StartStatus
start_get_blocked_users(FriendsCall *call, FriendsQuery *q, const uint8_t *payload, size_t len,
						const char *me)
{
	if (unpack(call, q, &decentraland__social_service__v2__get_blocked_users_payload__descriptor,
			   payload, len) != START_QUERY)
		return START_MALFORMED;
	q->sql = sql_blocked_users;
	q->nparams = 3;
	q->params[0] = me;
	list_params(q, 1);
	return START_QUERY;
}

/* ---- UpsertFriendship */

/* Columns: 0..6 the other user's profile, 7 friendship id, 8 created_at (ms), 9 message. */
static const char sql_upsert_friendship[] =
	"SELECT p.address, p.name, p.has_claimed_name, p.profile_picture_url, "
	"p.name_color[1], p.name_color[2], p.name_color[3], u.friendship_id::text, "
	"floor(extract(epoch FROM u.created_at) * 1000)::bigint, COALESCE($4, '') "
	"FROM social.upsert_friendship($1, $2, $3, $4) u "
	"CROSS JOIN social.get_profiles(ARRAY[$2]) p";

static StartStatus
start_upsert_friendship(FriendsCall *call, FriendsQuery *q, const uint8_t *payload, size_t len,
						const char *me)
{
	PbUpsertPayload *m;
	const PbUser	*user = NULL;
	const char		*action = NULL;
	const char		*message = NULL;

	if (unpack(call, q, &decentraland__social_service__v2__upsert_friendship_payload__descriptor,
			   payload, len) != START_QUERY)
		return START_MALFORMED;
	m = (PbUpsertPayload *) q->payload;
	switch (m->action_case)
	{
		case DECENTRALAND__SOCIAL_SERVICE__V2__UPSERT_FRIENDSHIP_PAYLOAD__ACTION_REQUEST:
			action = "request";
			user = m->request->user;
			/* An empty message is no message (the extension agrees). */
			if (m->request->_message_case ==
					DECENTRALAND__SOCIAL_SERVICE__V2__UPSERT_FRIENDSHIP_PAYLOAD__REQUEST_PAYLOAD___MESSAGE_MESSAGE &&
				m->request->message[0] != '\0')
				message = m->request->message;
			break;
		case DECENTRALAND__SOCIAL_SERVICE__V2__UPSERT_FRIENDSHIP_PAYLOAD__ACTION_ACCEPT:
			action = "accept";
			user = m->accept->user;
			break;
		case DECENTRALAND__SOCIAL_SERVICE__V2__UPSERT_FRIENDSHIP_PAYLOAD__ACTION_REJECT:
			action = "reject";
			user = m->reject->user;
			break;
		case DECENTRALAND__SOCIAL_SERVICE__V2__UPSERT_FRIENDSHIP_PAYLOAD__ACTION_DELETE:
			action = "delete";
			user = m->delete_->user;
			break;
		case DECENTRALAND__SOCIAL_SERVICE__V2__UPSERT_FRIENDSHIP_PAYLOAD__ACTION_CANCEL:
			action = "cancel";
			user = m->cancel->user;
			break;
		default:
			snprintf(q->error, sizeof(q->error),
					 "The request payload has no friendship action (request, accept, reject, "
					 "cancel or delete)");
			return START_INVALID;
	}
	if (user_missing(user))
		return missing_user(q);
	q->sql = sql_upsert_friendship;
	q->nparams = 4;
	q->params[0] = me;
	q->params[1] = user->address;
	q->params[2] = action;
	q->params[3] = message;
	return START_QUERY;
}

static int
reply_upsert_friendship(FriendsCall *call, const PGresult *res, uint8_t **out, size_t *len)
{
	Decentraland__SocialService__V2__UpsertFriendshipResponse__Accepted accepted =
		DECENTRALAND__SOCIAL_SERVICE__V2__UPSERT_FRIENDSHIP_RESPONSE__ACCEPTED__INIT;
	SocialProfile profile;

	if (PQntuples(res) != 1 || PQnfields(res) < 10)
		return -1;
	social_pb_profile(&profile, res, 0, 0);
	accepted.id = social_pb_text(res, 0, 7);
	accepted.created_at = social_pb_int64(res, 0, 8);
	accepted.friend_ = &profile.msg;
	/* The reference always sends the message: the request's, or "". */
	accepted._message_case =
		DECENTRALAND__SOCIAL_SERVICE__V2__UPSERT_FRIENDSHIP_RESPONSE__ACCEPTED___MESSAGE_MESSAGE;
	accepted.message = social_pb_text(res, 0, 9);
	return reply_one(&decentraland__social_service__v2__upsert_friendship_response__descriptor,
					 "accepted", &accepted.base, out, len);
}

/* ---- GetFriendshipStatus */

static const char sql_friendship_status[] = "SELECT social.friendship_status($1, $2)";

static StartStatus
start_friendship_status(FriendsCall *call, FriendsQuery *q, const uint8_t *payload, size_t len,
						const char *me)
{
	PbStatusPayload *m;

	if (unpack(call, q,
			   &decentraland__social_service__v2__get_friendship_status_payload__descriptor,
			   payload, len) != START_QUERY)
		return START_MALFORMED;
	m = (PbStatusPayload *) q->payload;
	if (user_missing(m->user))
		return missing_user(q);
	q->sql = sql_friendship_status;
	q->nparams = 2;
	q->params[0] = me;
	q->params[1] = m->user->address;
	return START_QUERY;
}

static int
reply_friendship_status(FriendsCall *call, const PGresult *res, uint8_t **out, size_t *len)
{
	Decentraland__SocialService__V2__GetFriendshipStatusResponse__Ok ok =
		DECENTRALAND__SOCIAL_SERVICE__V2__GET_FRIENDSHIP_STATUS_RESPONSE__OK__INIT;
	int status;

	if (PQntuples(res) != 1 || PQnfields(res) < 1)
		return -1;
	status = social_pb_friendship_status(social_pb_text(res, 0, 0));
	if (status < 0)
		return -1;
	ok.status = (Decentraland__SocialService__V2__FriendshipStatus) status;
	return reply_one(&decentraland__social_service__v2__get_friendship_status_response__descriptor,
					 "accepted", &ok.base, out, len);
}

/* ---- BlockUser, UnblockUser */

/* Columns: 0..6 the blocked user's profile, 7 blocked_at (ms) or was_blocked. */
static const char sql_block_user[] =
	"SELECT b.address, p.name, p.has_claimed_name, p.profile_picture_url, "
	"p.name_color[1], p.name_color[2], p.name_color[3], "
	"floor(extract(epoch FROM b.blocked_at) * 1000)::bigint "
	"FROM social.block_user($1, $2) b "
	"LEFT JOIN LATERAL social.get_profiles(ARRAY[b.address]) p ON true";

static const char sql_unblock_user[] =
	"SELECT b.address, p.name, p.has_claimed_name, p.profile_picture_url, "
	"p.name_color[1], p.name_color[2], p.name_color[3], b.was_blocked "
	"FROM social.unblock_user($1, $2) b "
	"LEFT JOIN LATERAL social.get_profiles(ARRAY[b.address]) p ON true";

static StartStatus
start_block(FriendsCall *call, FriendsQuery *q, const uint8_t *payload, size_t len, const char *me)
{
	const PbUser *user;

	/* BlockUserPayload and UnblockUserPayload are the same message (User user = 1), but each
	 * is decoded as itself so an error names the right one. */
	if (call->proc->id == PROC_BLOCK_USER)
	{
		if (unpack(call, q, &decentraland__social_service__v2__block_user_payload__descriptor,
				   payload, len) != START_QUERY)
			return START_MALFORMED;
		user = ((PbBlockPayload *) q->payload)->user;
		q->sql = sql_block_user;
	}
	else
	{
		if (unpack(call, q, &decentraland__social_service__v2__unblock_user_payload__descriptor,
				   payload, len) != START_QUERY)
			return START_MALFORMED;
		user = ((PbUnblockPayload *) q->payload)->user;
		q->sql = sql_unblock_user;
	}
	if (user_missing(user))
		return missing_user(q);
	q->nparams = 2;
	q->params[0] = me;
	q->params[1] = user->address;
	return START_QUERY;
}

static int
reply_block(FriendsCall *call, const PGresult *res, uint8_t **out, size_t *len)
{
	SocialBlockedProfile profile;

	if (PQntuples(res) != 1 || PQnfields(res) < 8 || PQgetisnull(res, 0, 0))
		return -1;
	social_pb_blocked_profile(&profile, res, 0, 0);
	if (call->proc->id == PROC_BLOCK_USER)
	{
		Decentraland__SocialService__V2__BlockUserResponse__Ok ok =
			DECENTRALAND__SOCIAL_SERVICE__V2__BLOCK_USER_RESPONSE__OK__INIT;

		profile.msg._blocked_at_case =
			DECENTRALAND__SOCIAL_SERVICE__V2__BLOCKED_USER_PROFILE___BLOCKED_AT_BLOCKED_AT;
		profile.msg.blocked_at = social_pb_int64(res, 0, 7);
		ok.profile = &profile.msg;
		return reply_one(&decentraland__social_service__v2__block_user_response__descriptor, "ok",
						 &ok.base, out, len);
	}
	else
	{
		/* Unblocked: no blocked_at, as the reference answers. */
		Decentraland__SocialService__V2__UnblockUserResponse__Ok ok =
			DECENTRALAND__SOCIAL_SERVICE__V2__UNBLOCK_USER_RESPONSE__OK__INIT;

		ok.profile = &profile.msg;
		return reply_one(&decentraland__social_service__v2__unblock_user_response__descriptor, "ok",
						 &ok.base, out, len);
	}
}

/* ---- GetBlockingStatus */

/* Addresses never contain a comma, so the complete lists travel as two joined strings. */
static const char sql_blocking_status[] =
	"SELECT array_to_string(s.blocked_users, ','), array_to_string(s.blocked_by_users, ',') "
	"FROM social.blocking_status($1) s";

static StartStatus
start_empty(FriendsCall *call, FriendsQuery *q, const uint8_t *payload, size_t len, const char *me)
{
	if (unpack(call, q, &decentraland__social_service__v2__empty__descriptor, payload, len) !=
		START_QUERY)
		return START_MALFORMED;
	q->nparams = 1;
	q->params[0] = me;
	return START_QUERY;
}

static StartStatus
start_blocking_status(FriendsCall *call, FriendsQuery *q, const uint8_t *payload, size_t len,
					  const char *me)
{
	q->sql = sql_blocking_status;
	return start_empty(call, q, payload, len, me);
}

static int
reply_blocking_status(FriendsCall *call, const PGresult *res, uint8_t **out, size_t *len)
{
	Decentraland__SocialService__V2__GetBlockingStatusResponse r =
		DECENTRALAND__SOCIAL_SERVICE__V2__GET_BLOCKING_STATUS_RESPONSE__INIT;
	char *blocked_copy = NULL;
	char *by_copy = NULL;
	int	  rc = -1;

	if (PQntuples(res) != 1 || PQnfields(res) < 2)
		return -1;
	if (social_pb_split_list(social_pb_text(res, 0, 0), &blocked_copy, &r.blocked_users,
							 &r.n_blocked_users) != 0 ||
		social_pb_split_list(social_pb_text(res, 0, 1), &by_copy, &r.blocked_by_users,
							 &r.n_blocked_by_users) != 0)
		goto done;
	*out = social_pb_pack(&r.base, len);
	rc = *out ? 0 : -1;
done:
	free(r.blocked_users);
	free(r.blocked_by_users);
	free(blocked_copy);
	free(by_copy);
	return rc;
}

/* ---- Settings */

/* Columns: private_messages_privacy, blocked_users_messages_visibility, show_situation_reactions */
static const char sql_get_settings[] =
	"SELECT s.private_messages_privacy, s.blocked_users_messages_visibility, "
	"s.show_situation_reactions FROM social.get_settings($1) s";

static const char sql_upsert_settings[] =
	"SELECT s.private_messages_privacy, s.blocked_users_messages_visibility, "
	"s.show_situation_reactions FROM social.upsert_settings($1, $2, $3, $4) s";

static StartStatus
start_get_settings(FriendsCall *call, FriendsQuery *q, const uint8_t *payload, size_t len,
				   const char *me)
{
	q->sql = sql_get_settings;
	return start_empty(call, q, payload, len, me);
}

static int
reply_get_settings(FriendsCall *call, const PGresult *res, uint8_t **out, size_t *len)
{
	Decentraland__SocialService__V2__GetSocialSettingsResponse__Ok ok =
		DECENTRALAND__SOCIAL_SERVICE__V2__GET_SOCIAL_SETTINGS_RESPONSE__OK__INIT;
	PbSocialSettings settings = DECENTRALAND__SOCIAL_SERVICE__V2__SOCIAL_SETTINGS__INIT;

	if (social_pb_settings(&settings, res) != 0)
		return -1;
	ok.settings = &settings;
	return reply_one(&decentraland__social_service__v2__get_social_settings_response__descriptor,
					 "ok", &ok.base, out, len);
}

/* The text of a set enum field, NULL (keep) when unset; START_INVALID for a value the protocol
 * does not define (proto3 enums are open: any number decodes). */
static StartStatus
setting_param(FriendsQuery *q, int index, bool has, int value, SocialSetting setting,
			  const char *field)
{
	q->params[index] = NULL;
	if (!has)
		return START_QUERY;
	q->params[index] = social_pb_setting_text(setting, value);
	if (q->params[index] == NULL)
	{
		snprintf(q->error, sizeof(q->error), "Invalid value %d for %s", value, field);
		return START_INVALID;
	}
	return START_QUERY;
}

static StartStatus
start_upsert_settings(FriendsCall *call, FriendsQuery *q, const uint8_t *payload, size_t len,
					  const char *me)
{
	PbUpsertSettingsPayload *m;

	if (unpack(call, q,
			   &decentraland__social_service__v2__upsert_social_settings_payload__descriptor,
			   payload, len) != START_QUERY)
		return START_MALFORMED;
	m = (PbUpsertSettingsPayload *) q->payload;
	q->sql = sql_upsert_settings;
	q->nparams = 4;
	q->params[0] = me;
	if (setting_param(
			q, 1,
			m->_private_messages_privacy_case ==
				DECENTRALAND__SOCIAL_SERVICE__V2__UPSERT_SOCIAL_SETTINGS_PAYLOAD___PRIVATE_MESSAGES_PRIVACY_PRIVATE_MESSAGES_PRIVACY,
			(int) m->private_messages_privacy, SOCIAL_SETTING_PRIVACY,
			"private_messages_privacy") != START_QUERY ||
		setting_param(
			q, 2,
			m->_blocked_users_messages_visibility_case ==
				DECENTRALAND__SOCIAL_SERVICE__V2__UPSERT_SOCIAL_SETTINGS_PAYLOAD___BLOCKED_USERS_MESSAGES_VISIBILITY_BLOCKED_USERS_MESSAGES_VISIBILITY,
			(int) m->blocked_users_messages_visibility, SOCIAL_SETTING_VISIBILITY,
			"blocked_users_messages_visibility") != START_QUERY ||
		setting_param(
			q, 3,
			m->_show_situation_reactions_case ==
				DECENTRALAND__SOCIAL_SERVICE__V2__UPSERT_SOCIAL_SETTINGS_PAYLOAD___SHOW_SITUATION_REACTIONS_SHOW_SITUATION_REACTIONS,
			(int) m->show_situation_reactions, SOCIAL_SETTING_REACTIONS,
			"show_situation_reactions") != START_QUERY)
		return START_INVALID;
	return START_QUERY;
}

static int
reply_upsert_settings(FriendsCall *call, const PGresult *res, uint8_t **out, size_t *len)
{
	PbSocialSettings settings = DECENTRALAND__SOCIAL_SERVICE__V2__SOCIAL_SETTINGS__INIT;

	if (social_pb_settings(&settings, res) != 0)
		return -1;
	return reply_one(&decentraland__social_service__v2__upsert_social_settings_response__descriptor,
					 "ok", &settings.base, out, len);
}

/* ---- GetPrivateMessagesSettings */

/* Columns: address, private_messages_privacy, is_friend; one row per distinct address. */
static const char sql_private_messages_settings[] =
	"SELECT s.address, s.private_messages_privacy, s.is_friend "
	"FROM social.private_messages_settings($1, $2::text[]) s";

static StartStatus
start_private_messages_settings(FriendsCall *call, FriendsQuery *q, const uint8_t *payload,
								size_t len, const char *me)
{
	PbPmPayload *m;
	char	   **addresses;

	if (unpack(call, q,
			   &decentraland__social_service__v2__get_private_messages_settings_payload__descriptor,
			   payload, len) != START_QUERY)
		return START_MALFORMED;
	m = (PbPmPayload *) q->payload;
	call->n_addresses = m->n_user;
	addresses = calloc(m->n_user > 0 ? m->n_user : 1, sizeof(*addresses));
	if (addresses == NULL)
		return START_NOMEM;
	for (size_t i = 0; i < m->n_user; i++)
		addresses[i] = m->user[i]->address;
	/* The limit of 50 is the extension's (SC013); the array goes as one text[] parameter. */
	q->owned = social_pb_text_array(addresses, m->n_user);
	free(addresses);
	if (q->owned == NULL)
		return START_NOMEM;
	q->sql = sql_private_messages_settings;
	q->nparams = 2;
	q->params[0] = me;
	q->params[1] = q->owned;
	return START_QUERY;
}

static int
reply_private_messages_settings(FriendsCall *call, const PGresult *res, uint8_t **out, size_t *len)
{
	Decentraland__SocialService__V2__GetPrivateMessagesSettingsResponse__Ok ok =
		DECENTRALAND__SOCIAL_SERVICE__V2__GET_PRIVATE_MESSAGES_SETTINGS_RESPONSE__OK__INIT;
	static const PbPmEntry entry_init =
		DECENTRALAND__SOCIAL_SERVICE__V2__GET_PRIVATE_MESSAGES_SETTINGS_RESPONSE__PRIVATE_MESSAGES_SETTINGS__INIT;
	static const PbUser user_init = DECENTRALAND__SOCIAL_SERVICE__V2__USER__INIT;
	int					n = PQntuples(res);
	PbPmEntry		   *entries;
	PbPmEntry		  **ptrs;
	PbUser			   *users = NULL;
	int					rc = -1;

	if (PQnfields(res) < 3)
		return -1;
	if (list_arrays(n, sizeof(*entries), (void **) &entries, (void ***) &ptrs) != 0)
		goto done;
	if (n > 0 && (users = calloc((size_t) n, sizeof(*users))) == NULL)
		goto done;
	for (int i = 0; i < n; i++)
	{
		int privacy = social_pb_setting_value(SOCIAL_SETTING_PRIVACY, social_pb_text(res, i, 1));

		if (privacy < 0)
			goto done;
		users[i] = user_init;
		users[i].address = social_pb_text(res, i, 0);
		entries[i] = entry_init;
		entries[i].user = &users[i];
		entries[i].private_messages_privacy =
			(Decentraland__SocialService__V2__PrivateMessagePrivacySetting) privacy;
		entries[i].is_friend = social_pb_bool(res, i, 2);
	}
	ok.n_settings = (size_t) n;
	ok.settings = ptrs;
	rc = reply_one(
		&decentraland__social_service__v2__get_private_messages_settings_response__descriptor, "ok",
		&ok.base, out, len);
done:
	free(users);
	free(ptrs);
	free(entries);
	return rc;
}

/* ---- The procedure table */

/* ---- The procedures (service.c's table points its unary rows here) */

const Procedure procedures_get_friends = {start_get_friends, reply_profile_list, NULL};
const Procedure procedures_get_mutual_friends = {start_get_mutual_friends, reply_profile_list,
												 NULL};
const Procedure procedures_get_pending_requests = {start_requests, reply_requests, NULL};
const Procedure procedures_get_sent_requests = {start_requests, reply_requests, NULL};
const Procedure procedures_upsert_friendship = {start_upsert_friendship, reply_upsert_friendship,
												NULL};
const Procedure procedures_get_friendship_status = {start_friendship_status,
													reply_friendship_status, NULL};
const Procedure procedures_block_user = {start_block, reply_block, "Cannot block yourself"};
const Procedure procedures_unblock_user = {start_block, reply_block, "Cannot unblock yourself"};
const Procedure procedures_get_blocked_users = {start_get_blocked_users, reply_profile_list, NULL};
const Procedure procedures_get_blocking_status = {start_blocking_status, reply_blocking_status,
												  NULL};
const Procedure procedures_get_social_settings = {start_get_settings, reply_get_settings, NULL};
const Procedure procedures_upsert_social_settings = {start_upsert_settings, reply_upsert_settings,
													 NULL};
const Procedure procedures_get_private_messages_settings = {start_private_messages_settings,
															reply_private_messages_settings, NULL};

/* ---- Results */

static void
on_query_error(FriendsCall *call, const Procedure *fp, const char *sqlstate, const char *message)
{
	SocialErrorKind kind = social_pb_error_kind(sqlstate);
	const char	   *text = social_pb_error_message(sqlstate);
	char			buf[96];

	if (kind == SOCIAL_ERROR_INTERNAL)
	{
		/* counted in M_PG_QUERY_ERRORS by pg_pool when it is a connection or resource failure */
		log_conn(LOG_LEVEL_WARN, call->conn_id, call->address, "%s failed: %s %s", call->proc->name,
				 sqlstate, message ? message : "");
	}
	else
		log_conn(LOG_LEVEL_DEBUG, call->conn_id, call->address, "%s refused: %s %s",
				 call->proc->name, sqlstate, message ? message : "");

	if (strcmp(sqlstate, "SC002") == 0 && fp->self_message)
		text = fp->self_message;
	else if (strcmp(sqlstate, "SC013") == 0)
	{
		snprintf(buf, sizeof(buf), PM_TOO_MANY_FORMAT, call->n_addresses);
		text = buf;
	}
	call_fail(call, kind, text);
}

/* pg_pool callback, loop thread; res and strings valid during the call only. */
static void
on_query_result(void *ud, const PGresult *res, const char *sqlstate, const char *message)
{
	FriendsCall		*call = ud;
	const Procedure *fp = call->fp;
	uint8_t			*buf = NULL;
	size_t			 len = 0;

	if (sqlstate != NULL)
	{
		on_query_error(call, fp, sqlstate, message);
		return;
	}
	if (conn_lookup(call->conn_id) == NULL)
	{
		/* Nobody to answer: skip building the response. */
		call_finish(call, "ok", NULL, 0, NULL);
		return;
	}
	if (res == NULL || fp->reply(call, res, &buf, &len) != 0)
	{
		metrics_count(M_PG_QUERY_ERRORS, 1);
		log_conn(LOG_LEVEL_ERROR, call->conn_id, call->address,
				 "%s: unexpected result from the database (%d rows, %d columns)", call->proc->name,
				 res ? PQntuples(res) : -1, res ? PQnfields(res) : -1);
		call_fail(call, SOCIAL_ERROR_INTERNAL, SOCIAL_PB_INTERNAL_ERROR);
		return;
	}
	call_finish(call, "ok", buf, len, NULL);
	free(buf);
}

/* ---- Entry points */

static size_t
params_bytes(const FriendsQuery *q)
{
	size_t n = 0;

	for (int i = 0; i < q->nparams; i++)
		if (q->params[i] != NULL)
			n += strlen(q->params[i]);
	return n;
}

/* protobuf-c hands strings over unchecked; PostgreSQL would refuse invalid UTF-8 with an
 * encoding error that reads as a server failure, so the client's fault is named here. */
static bool
params_utf8(const FriendsQuery *q)
{
	for (int i = 0; i < q->nparams; i++)
		if (q->params[i] != NULL && !rpc_utf8_valid(q->params[i], strlen(q->params[i])))
			return false;
	return true;
}

int
procedures_init(PgPool *pg)
{
	if (pg == NULL)
	{
		log_error("procedures: no PostgreSQL pool");
		return -1;
	}
	procedures_pg = pg;
	return 0;
}

void
procedures_shutdown(void)
{
	/* Calls that arrive after this answer internal_server_error (procedures_call). */
	procedures_pg = NULL;
}

void
procedures_call(Conn *c, uint32_t msg_no, const RpcProcedure *proc, const uint8_t *payload,
				size_t len)
{
	const Procedure *fp = proc->handler;
	FriendsCall		*call;
	FriendsQuery	 q;
	StartStatus		 status;
	char			 text[160];

	call = calloc(1, sizeof(*call));
	if (call == NULL)
	{
		RpcSession *rpc = conn_rpc(c);

		log_conn(LOG_LEVEL_ERROR, conn_id(c), conn_address(c), "%s: out of memory", proc->name);
		metrics_rpc(proc->name, "error", 0);
		if (rpc && rpc_respond_error(rpc, msg_no, SOCIAL_PB_INTERNAL_ERROR) != 0)
			log_conn(LOG_LEVEL_DEBUG, conn_id(c), conn_address(c), "%s: answer not sent",
					 proc->name);
		return;
	}
	call->conn_id = conn_id(c);
	snprintf(call->address, sizeof(call->address), "%s", conn_address(c));
	call->msg_no = msg_no;
	call->proc = proc;
	call->fp = fp;
	call->started_ns = uv_hrtime();

	if (fp == NULL || proc->kind != RPC_UNARY)
	{
		/* The voice chat and community procedures, listed so clients can load the module. */
		snprintf(text, sizeof(text), "%s is not supported by this server", proc->name);
		call_finish(call, "unsupported", NULL, 0, text);
		return;
	}

	memset(&q, 0, sizeof(q));
	q.budget.allocator = (ProtobufCAllocator){budget_alloc, budget_free, &q.budget};
	q.budget.left = FRIENDS_UNPACK_ALLOCS;
	status = payload_check(call, &q, payload, len);
	if (status == START_QUERY)
		status = fp->start(call, &q, payload, len, conn_address(c));
	if (status == START_MALFORMED && q.budget.exhausted)
		status = START_INVALID; /* well-formed as far as it was read, but too large */
	switch (status)
	{
		case START_QUERY:
			if (params_bytes(&q) > FRIENDS_MAX_PARAMS_BYTES)
			{
				/* Far beyond any value the extension accepts (a 140-character message, 50
				 * addresses); refused here so it never counts against pg_pool's query size. */
				log_conn(LOG_LEVEL_DEBUG, call->conn_id, call->address,
						 "%s: %zu bytes of parameters refused", proc->name, params_bytes(&q));
				call_fail(call, SOCIAL_ERROR_INVALID_REQUEST, FRIENDS_TOO_LARGE);
			}
			else if (!params_utf8(&q))
			{
				log_conn(LOG_LEVEL_DEBUG, call->conn_id, call->address,
						 "%s: a string parameter is not UTF-8", proc->name);
				call_fail(call, SOCIAL_ERROR_INVALID_REQUEST,
						  "The request payload holds a string that is not valid UTF-8");
			}
			else if (procedures_pg == NULL || pg_pool_query(procedures_pg, q.sql, q.nparams,
															q.params, on_query_result, call) != 0)
			{
				metrics_count(M_PG_QUERY_ERRORS, 1);
				log_conn(LOG_LEVEL_WARN, call->conn_id, call->address,
						 "%s: the query could not be queued", proc->name);
				call_fail(call, SOCIAL_ERROR_INTERNAL, SOCIAL_PB_INTERNAL_ERROR);
			}
			break;
		case START_MALFORMED:
			log_conn(LOG_LEVEL_DEBUG, call->conn_id, call->address, "%s", q.error);
			call_finish(call, "malformed", NULL, 0, q.error);
			break;
		case START_INVALID:
			call_fail(call, SOCIAL_ERROR_INVALID_REQUEST, q.error);
			break;
		case START_NOMEM:
			log_conn(LOG_LEVEL_ERROR, call->conn_id, call->address, "%s: out of memory",
					 proc->name);
			call_fail(call, SOCIAL_ERROR_INTERNAL, SOCIAL_PB_INTERNAL_ERROR);
			break;
	}
	/* pg_pool_query copied the parameters, which may point into these. */
	if (q.payload)
		protobuf_c_message_free_unpacked(q.payload, &q.budget.allocator);
	free(q.owned);
}
