/*-------------------------------------------------------------------------
 *
 * friendship.c
 *	  The friendship state machine: one transition table, one choke point.
 *
 * A friendship is one row per unordered pair (social.friendships, guarded by
 * a unique index on the unordered pair) plus its append-only action log.  Its state is
 * its last action, or "none" when the pair never acted.  Which action may
 * follow which, and by whom, is the table 'transitions' below and nothing
 * else; FriendshipApply() is the only code that changes a state, and it
 * consults the table again before it writes.  social.transition_table()
 * prints the table, and a regression test keeps that print as its expected
 * output, so any change to a rule shows up as a diff.
 *
 * The rules (the reference service's, exactly):
 *	request <- none | cancel | reject | delete		by either user
 *	accept	<- request								by the user who did not request
 *	reject	<- request								by the user who did not request
 *	cancel	<- request								by the user who requested
 *	delete	<- accept | block						by either user
 *	block	<- any recorded state					by either user (block_user only)
 * A request to oneself is refused before the table is consulted (SC002), a
 * pair where either user blocks the other refuses every asked-for action
 * (SC003), and the policies (policy.c) may refuse an allowed action.
 *
 * Concurrency: callers take both users' locks (userlock.c) before
 * FriendshipLookup, which also locks the row FOR UPDATE.  Under READ
 * COMMITTED each SPI statement sees everything committed before the lock was
 * granted, so the decision is made on the latest state; two users requesting
 * each other at once end with one row and one request (the second is refused
 * as an invalid transition).  Under REPEATABLE READ or SERIALIZABLE the
 * FOR UPDATE raises a serialization failure instead of acting on a stale
 * state.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "friendship.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "errors.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "friendset.h"
#include "funcapi.h"
#include "policy.h"
#include "spi_plan.h"
#include "userlock.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

/* Who may take an action, relative to the user who took the last one. */
typedef enum ActorRule
{
	AR_NOBODY = 0,
	AR_ANYONE,
	AR_LAST_ACTOR,
	AR_OTHER_USER
} ActorRule;

static const ActorRule transitions[FS_COUNT][FA_COUNT] = {
	/*				request		accept			reject			cancel			delete		block */
	[FS_NONE] = {AR_ANYONE, AR_NOBODY, AR_NOBODY, AR_NOBODY, AR_NOBODY, AR_NOBODY},
	[FS_REQUEST] = {AR_NOBODY, AR_OTHER_USER, AR_OTHER_USER, AR_LAST_ACTOR, AR_NOBODY, AR_ANYONE},
	[FS_ACCEPT] = {AR_NOBODY, AR_NOBODY, AR_NOBODY, AR_NOBODY, AR_ANYONE, AR_ANYONE},
	[FS_REJECT] = {AR_ANYONE, AR_NOBODY, AR_NOBODY, AR_NOBODY, AR_NOBODY, AR_ANYONE},
	[FS_CANCEL] = {AR_ANYONE, AR_NOBODY, AR_NOBODY, AR_NOBODY, AR_NOBODY, AR_ANYONE},
	[FS_DELETE] = {AR_ANYONE, AR_NOBODY, AR_NOBODY, AR_NOBODY, AR_NOBODY, AR_ANYONE},
	[FS_BLOCK] = {AR_NOBODY, AR_NOBODY, AR_NOBODY, AR_NOBODY, AR_ANYONE, AR_ANYONE},
};

/* Names as stored in the log; a state is named after the action that led to it. */
static const char *const action_names[FA_COUNT] = {
	[FA_REQUEST] = "request", [FA_ACCEPT] = "accept", [FA_REJECT] = "reject",
	[FA_CANCEL] = "cancel",	  [FA_DELETE] = "delete", [FA_BLOCK] = "block",
};
static const char *const state_names[FS_COUNT] = {
	[FS_NONE] = "none",		[FS_REQUEST] = "request", [FS_ACCEPT] = "accept",
	[FS_REJECT] = "reject", [FS_CANCEL] = "cancel",	  [FS_DELETE] = "delete",
	[FS_BLOCK] = "block",
};
/* The state an action leads to. */
static const FriendshipState action_result[FA_COUNT] = {
	[FA_REQUEST] = FS_REQUEST, [FA_ACCEPT] = FS_ACCEPT, [FA_REJECT] = FS_REJECT,
	[FA_CANCEL] = FS_CANCEL,   [FA_DELETE] = FS_DELETE, [FA_BLOCK] = FS_BLOCK,
};
/* The status the actor sees after the action (social.friendship_status). */
static const char *const actor_status[FA_COUNT] = {
	[FA_REQUEST] = "request_sent", [FA_ACCEPT] = "accepted", [FA_REJECT] = "rejected",
	[FA_CANCEL] = "canceled",	   [FA_DELETE] = "deleted",	 [FA_BLOCK] = "blocked",
};

/*
 * Everything a write decides on, in one statement: the pair's row, locked (a LATERAL subquery
 * may lock; the outer row exists even when the pair has none), the actor's and the pair's
 * mutations in the rate window, and the blocks both ways.  Side effects of blocks (the 'block'
 * friendship action, the 'delete' an unblock records) are not counted twice (policy.c).
 * $1 = actor, $2 = target, $3/$4 = the pair in address order, $5 = start of the window.
 */
static SpiPlan plan_lookup = {
	"SELECT f.id, f.last_action, f.last_actor::text, f.created_at, "
	"  (SELECT count(*) FROM social.friendship_actions a "
	"    WHERE a.acting_user = $1 AND a.\"timestamp\" > $5 AND a.action <> 'block' "
	"      AND a.metadata IS DISTINCT FROM '{\"reason\": \"unblock\"}'::jsonb) "
	"  + (SELECT count(*) FROM social.block_actions b "
	"    WHERE b.blocker_address = $1 AND b.\"timestamp\" > $5), "
	"  (SELECT count(*) FROM social.friendship_actions a "
	"    WHERE a.friendship_id = f.id AND a.\"timestamp\" > $5 AND a.action <> 'block' "
	"      AND a.metadata IS DISTINCT FROM '{\"reason\": \"unblock\"}'::jsonb) "
	"  + (SELECT count(*) FROM social.block_actions b "
	"    WHERE b.blocker_address IN ($1, $2) AND b.blocked_address IN ($1, $2) "
	"      AND b.\"timestamp\" > $5), "
	"  EXISTS (SELECT FROM social.blocks WHERE blocker_address = $1 AND blocked_address = $2) "
	"  OR EXISTS (SELECT FROM social.blocks WHERE blocker_address = $2 AND blocked_address = $1) "
	"FROM (SELECT) AS one "
	"LEFT JOIN LATERAL ("
	"  SELECT id, last_action, last_actor, created_at FROM social.friendships "
	"  WHERE LEAST(address_requester::text, address_requested::text) = $3 "
	"    AND GREATEST(address_requester::text, address_requested::text) = $4 "
	"  FOR UPDATE) f ON true",
	5,
	{TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID}};

/*
 * The write, in one statement each way: the friendship row (new, or its last action moved on)
 * and the action appended to the log.  The action's metadata is built by jsonb_build_object,
 * never by formatting text.
 */
#define ACTION_INSERT                                                                              \
	"INSERT INTO social.friendship_actions (id, friendship_id, action, acting_user, target_user, " \
	"                                       metadata) "                                            \
	"VALUES ($6, $1, $5, $2, $3, CASE WHEN $7::text IS NOT NULL "                                  \
	"                                 THEN jsonb_build_object('message', $7::text) "               \
	"                                 WHEN $8::text IS NOT NULL "                                  \
	"                                 THEN jsonb_build_object('reason', $8::text) END)"
static SpiPlan plan_insert = {
	"WITH f AS (INSERT INTO social.friendships (id, address_requester, address_requested, "
	"                                           is_active, last_action, last_actor, last_action_id) "
	"           VALUES ($1, $2, $3, $4, $5, $2, $6)) " ACTION_INSERT,
	8,
	{UUIDOID, TEXTOID, TEXTOID, BOOLOID, TEXTOID, UUIDOID, TEXTOID, TEXTOID}};
static SpiPlan plan_update = {
	"WITH f AS (UPDATE social.friendships SET is_active = $4, last_action = $5, last_actor = $2, "
	"                  last_action_id = $6, updated_at = now() "
	"           WHERE id = $1) " ACTION_INSERT,
	8,
	{UUIDOID, TEXTOID, TEXTOID, BOOLOID, TEXTOID, UUIDOID, TEXTOID, TEXTOID}};

/*
 * The notification outbox (0.5.0): a request or an accept enqueues its notification in the
 * statement after the action's, so in the same transaction -- both commit or neither does.  Here,
 * in the write path, rather than in a trigger on the log: social.import_reference and pg_restore
 * append to the log directly and must not announce the past again.  A database not yet updated
 * to 0.5.0 has no outbox table, and this library serves it too: then nothing is enqueued.
 */
static SpiPlan plan_outbox = {
	"INSERT INTO social.notification_outbox (action_id, kind) VALUES ($1, $2)",
	2,
	{UUIDOID, TEXTOID}};

static void
OutboxEnqueue(FriendshipAction action, Datum action_id)
{
	Oid	  nsp;
	Datum args[2];

	if (action != FA_REQUEST && action != FA_ACCEPT)
		return;
	nsp = get_namespace_oid("social", true);
	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("notification_outbox", nsp)))
		return;
	args[0] = action_id;
	args[1] =
		CStringGetTextDatum(action == FA_REQUEST ? "friendship-request" : "friendship-accepted");
	SpiPlanExec(&plan_outbox, args, NULL, false, 0);
}

/* A random uuid that survives SPI_finish. */
static Datum
NewUuid(void)
{
	return SPI_datumTransfer(DirectFunctionCall1(gen_random_uuid, (Datum) 0), false, UUID_LEN);
}

static FriendshipState
StateFromName(const char *name)
{
	for (int s = 0; s < FS_COUNT; s++)
		if (strcmp(state_names[s], name) == 0)
			return (FriendshipState) s;
	elog(ERROR, "unknown friendship state \"%s\"", name);
	return FS_NONE; /* keep compiler quiet */
}

void
FriendshipLookup(const char *actor, const char *target, FriendshipRow *row)
{
	bool  ordered = strcmp(actor, target) < 0;
	Datum args[5];
	bool  isnull;

	args[0] = CStringGetTextDatum(actor);
	args[1] = CStringGetTextDatum(target);
	args[2] = ordered ? args[0] : args[1];
	args[3] = ordered ? args[1] : args[0];
	args[4] = TimestampTzGetDatum(GetCurrentTimestamp() - POLICY_RATE_WINDOW_USECS);

	memset(row, 0, sizeof(*row));
	row->state = FS_NONE;
	if (SpiPlanExec(&plan_lookup, args, NULL, false, 2) != 1)
		elog(ERROR, "pair %s, %s: lookup returned %llu rows", actor, target,
			 (unsigned long long) SPI_processed);

	row->actor_actions = DatumGetInt64(SpiResultValue(0, 5, &isnull));
	row->pair_actions = DatumGetInt64(SpiResultValue(0, 6, &isnull));
	row->blocked = DatumGetBool(SpiResultValue(0, 7, &isnull));

	(void) SpiResultValue(0, 1, &isnull);
	if (isnull)
		return;
	row->found = true;
	row->id = SPI_datumTransfer(SpiResultValue(0, 1, &isnull), false, UUID_LEN);
	row->state = StateFromName(TextDatumGetCString(SpiResultValue(0, 2, &isnull)));
	strlcpy(row->last_actor, TextDatumGetCString(SpiResultValue(0, 3, &isnull)),
			sizeof(row->last_actor));
	row->created_at = DatumGetTimestampTz(SpiResultValue(0, 4, &isnull));
}

static bool
FriendshipAllowed(const FriendshipRow *row, const char *actor, FriendshipAction action)
{
	switch (transitions[row->state][action])
	{
		case AR_NOBODY:
			return false;
		case AR_ANYONE:
			return true;
		case AR_LAST_ACTOR:
			return strcmp(row->last_actor, actor) == 0;
		case AR_OTHER_USER:
			return strcmp(row->last_actor, actor) != 0;
	}
	return false;
}

void
FriendshipCheck(const FriendshipRow *row, const char *actor, FriendshipAction action)
{
	if (FriendshipAllowed(row, actor, action))
		return;

	if (row->state == FS_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_SOCIAL_INVALID_TRANSITION),
				 errmsg("the friendship action is not valid for the current friendship status"),
				 errdetail("There is no friendship between these users; \"%s\" needs one.",
						   action_names[action]),
				 errhint("Only \"request\" can start a friendship.")));
	ereport(ERROR,
			(errcode(ERRCODE_SOCIAL_INVALID_TRANSITION),
			 errmsg("the friendship action is not valid for the current friendship status"),
			 errdetail("The last action was \"%s\" by %s; \"%s\" by %s cannot follow it.",
					   state_names[row->state],
					   strcmp(row->last_actor, actor) == 0 ? "the same user" : "the other user",
					   action_names[action], actor)));
}

void
FriendshipApply(FriendshipRow *row, const char *actor, const char *target, FriendshipAction action,
				const char *message, const char *reason, FriendshipResult *result)
{
	FriendshipState from = row->state;
	FriendshipState to = action_result[action];
	Datum			action_id = NewUuid();
	Datum			args[8];
	char			nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

	FriendshipCheck(row, actor, action);

	if (!row->found)
	{
		row->id = NewUuid();
		/* The row's created_at defaults to now(), the transaction's start. */
		row->created_at = GetCurrentTransactionStartTimestamp();
	}
	args[0] = row->id;
	args[1] = CStringGetTextDatum(actor);
	args[2] = CStringGetTextDatum(target);
	args[3] = BoolGetDatum(to == FS_ACCEPT);
	args[4] = CStringGetTextDatum(action_names[action]);
	args[5] = action_id;
	args[6] = message ? CStringGetTextDatum(message) : (Datum) 0;
	nulls[6] = message ? ' ' : 'n';
	args[7] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	nulls[7] = reason ? ' ' : 'n';
	SpiPlanExec(row->found ? &plan_update : &plan_insert, args, nulls, false, 0);
	OutboxEnqueue(action, action_id);
	row->found = true;

	/* Friend sets follow the friends relation: entering or leaving accept. */
	if (to == FS_ACCEPT && from != FS_ACCEPT)
	{
		FriendSetAdd(actor, target);
		FriendSetAdd(target, actor);
	}
	else if (from == FS_ACCEPT && to != FS_ACCEPT)
	{
		FriendSetRemove(actor, target);
		FriendSetRemove(target, actor);
	}

	row->state = to;
	strlcpy(row->last_actor, actor, sizeof(row->last_actor));
	result->action_id = action_id;
	result->friendship_id = row->id;
	result->created_at = row->created_at;
	result->state = to;
}

static FriendshipAction
ActionFromArg(FunctionCallInfo fcinfo, int argno)
{
	char *name;

	if (PG_ARGISNULL(argno))
		ereport(ERROR, (errcode(ERRCODE_SOCIAL_INVALID_ACTION),
						errmsg("friendship action must not be null"),
						errhint("Use request, accept, reject, cancel or delete.")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	for (int a = 0; a < FA_COUNT; a++)
		if (a != FA_BLOCK && pg_strcasecmp(name, action_names[a]) == 0)
			return (FriendshipAction) a;
	ereport(ERROR, (errcode(ERRCODE_SOCIAL_INVALID_ACTION),
					errmsg("invalid friendship action: \"%s\"", name),
					errhint(pg_strcasecmp(name, "block") == 0
								? "Blocks are made with social.block_user."
								: "Use request, accept, reject, cancel or delete.")));
	return FA_REQUEST; /* keep compiler quiet */
}

PG_FUNCTION_INFO_V1(social_upsert_friendship);
Datum
social_upsert_friendship(PG_FUNCTION_ARGS)
{
	char			 actor[ADDRESS_LEN + 1];
	char			 target[ADDRESS_LEN + 1];
	FriendshipAction action;
	char			*message = NULL;
	FriendshipRow	 row;
	FriendshipResult result;
	TupleDesc		 tupdesc;
	Datum			 values[4];
	bool			 nulls[4] = {false, false, false, false};

	AddressFromArg(fcinfo, 0, "actor", actor);
	AddressFromArg(fcinfo, 1, "target", target);
	action = ActionFromArg(fcinfo, 2);
	if (!PG_ARGISNULL(3))
		message = text_to_cstring(PG_GETARG_TEXT_PP(3));

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	if (strcmp(actor, target) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_SOCIAL_SELF_ACTION),
				 errmsg(action == FA_REQUEST ? "you cannot send a friendship request to yourself"
											 : "you cannot act on a friendship with yourself")));
	/* An empty message is no message. */
	if (message != NULL && message[0] == '\0')
		message = NULL;
	if (message != NULL && action != FA_REQUEST)
		ereport(ERROR, (errcode(ERRCODE_SOCIAL_MESSAGE_NOT_ALLOWED),
						errmsg("a message can only be sent with a friendship request"),
						errdetail("The action was \"%s\".", action_names[action])));
	PolicyCheckMessage(message);

	SPI_connect();
	UserLockPair(actor, target);
	FriendshipLookup(actor, target, &row);
	PolicyCheckRates(actor, target, row.actor_actions, row.pair_actions);
	if (row.blocked)
		ereport(
			ERROR,
			(errcode(ERRCODE_SOCIAL_BLOCKED),
			 errmsg(
				 "this action is not allowed because either you blocked this user or this user blocked you"),
			 errdetail("%s and %s have a block between them.", actor, target)));
	FriendshipCheck(&row, actor, action);
	if (action == FA_ACCEPT)
		PolicyCheckFriendLimit(actor, target);
	else if (action == FA_REQUEST)
		PolicyCheckPendingLimit(actor);
	FriendshipApply(&row, actor, target, action, message, NULL, &result);
	SPI_finish();

	values[0] = result.action_id;
	values[1] = result.friendship_id;
	values[2] = TimestampTzGetDatum(result.created_at);
	values[3] = CStringGetTextDatum(actor_status[action]);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

PG_FUNCTION_INFO_V1(social_transition_table);
Datum
social_transition_table(PG_FUNCTION_ARGS)
{
	static const char *const actors[] = {"last actor", "other user"};
	ReturnSetInfo			*rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int s = 0; s < FS_COUNT; s++)
	{
		for (int a = 0; a < FA_COUNT; a++)
		{
			/* With no friendship there is no last actor: one row, "anyone". */
			int nactors = (s == FS_NONE) ? 1 : 2;

			for (int who = 0; who < nactors; who++)
			{
				ActorRule rule = transitions[s][a];
				bool	  allowed;
				Datum	  values[5];
				bool	  nulls[5] = {false, false, false, false, false};

				if (s == FS_NONE)
					allowed = (rule == AR_ANYONE);
				else
					allowed = rule == AR_ANYONE || (rule == AR_LAST_ACTOR && who == 0) ||
							  (rule == AR_OTHER_USER && who == 1);

				values[0] = CStringGetTextDatum(state_names[s]);
				values[1] = CStringGetTextDatum(action_names[a]);
				values[2] = CStringGetTextDatum(s == FS_NONE ? "anyone" : actors[who]);
				values[3] = BoolGetDatum(allowed);
				if (allowed)
					values[4] = CStringGetTextDatum(state_names[action_result[a]]);
				else
					nulls[4] = true;
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			}
		}
	}
	return (Datum) 0;
}
