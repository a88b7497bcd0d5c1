/*-------------------------------------------------------------------------
 *
 * policy.c
 *	  Anti-spam policies: rate limits, message length, friend and request caps.
 *
 * Every policy is checked inside the writing transaction, after both users'
 * locks are taken (userlock.c), against the durable log itself.  There is no
 * separate counter that could be down, stale or raced: a policy can refuse,
 * it can never fail open.  A refusal is an ERROR, so the transaction writes
 * nothing.
 *
 * Rate limits count the mutations a user asked for in the last 60 seconds
 * (a sliding window, stricter than the reference's fixed window): friendship
 * actions plus block and unblock actions.  Rows written as a side effect of
 * a block (the 'block' friendship action, and the 'delete' an unblock
 * records, tagged {"reason": "unblock"}) are not counted twice.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "policy.h"

#include "catalog/pg_type.h"
#include "errors.h"
#include "friendset.h"
#include "guc.h"
#include "mb/pg_wchar.h"
#include "spi_plan.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#define RATE_WINDOW_USECS (60 * USECS_PER_SEC)

/*
 * One statement for everything a write needs to know about the pair before it decides: the
 * actor's and the pair's actions in the window, and whether either user blocks the other.
 * $3 (friendship id) is NULL for a pair without a friendship row.
 */
static SpiPlan plan_pair_facts = {
	"SELECT (SELECT count(*) FROM social.friendship_actions "
	"        WHERE acting_user = $1 AND \"timestamp\" > $2 AND action <> 'block' "
	"          AND metadata IS DISTINCT FROM '{\"reason\": \"unblock\"}'::jsonb)"
	"     + (SELECT count(*) FROM social.block_actions "
	"        WHERE blocker_address = $1 AND \"timestamp\" > $2), "
	"       (SELECT count(*) FROM social.friendship_actions "
	"        WHERE friendship_id = $3 AND \"timestamp\" > $2 AND action <> 'block' "
	"          AND metadata IS DISTINCT FROM '{\"reason\": \"unblock\"}'::jsonb)"
	"     + (SELECT count(*) FROM social.block_actions "
	"        WHERE blocker_address IN ($1, $4) AND blocked_address IN ($1, $4) "
	"          AND \"timestamp\" > $2), "
	"       EXISTS (SELECT FROM social.blocks WHERE blocker_address = $1 AND blocked_address = $4) "
	"       OR EXISTS (SELECT FROM social.blocks WHERE blocker_address = $4 AND blocked_address = $1)",
	4,
	{TEXTOID, TIMESTAMPTZOID, UUIDOID, TEXTOID}};
static SpiPlan plan_pending = {
	"SELECT count(*) FROM social.friendships WHERE last_action = 'request' AND last_actor = $1",
	1,
	{TEXTOID}};

static int64
CountOf(SpiPlan *plan, Datum *args, const char *nulls)
{
	bool isnull;

	SpiPlanExec(plan, args, nulls, false, 1);
	return DatumGetInt64(SpiResultValue(0, 1, &isnull));
}

bool
PolicyCheckRates(const char *actor, const char *target, Datum *friendship_id)
{
	Datum args[4];
	char  nulls[4] = {' ', ' ', friendship_id ? ' ' : 'n', ' '};
	bool  isnull;
	int64 actor_n;
	int64 pair_n;

	args[0] = CStringGetTextDatum(actor);
	args[1] = TimestampTzGetDatum(GetCurrentTimestamp() - RATE_WINDOW_USECS);
	args[2] = friendship_id ? *friendship_id : (Datum) 0;
	args[3] = CStringGetTextDatum(target);
	SpiPlanExec(&plan_pair_facts, args, nulls, false, 1);
	actor_n = DatumGetInt64(SpiResultValue(0, 1, &isnull));
	pair_n = DatumGetInt64(SpiResultValue(0, 2, &isnull));

	if (social_actor_actions_per_minute > 0 && actor_n >= social_actor_actions_per_minute)
		ereport(ERROR, (errcode(ERRCODE_SOCIAL_RATE_LIMITED),
						errmsg("too many friendship or block actions, please try again later"),
						errdetail("%s took %lld actions in the last 60 seconds; the limit is %d.",
								  actor, (long long) actor_n, social_actor_actions_per_minute),
						errhint("The limit is the setting social.actor_actions_per_minute.")));
	if (social_pair_actions_per_minute > 0 && pair_n >= social_pair_actions_per_minute)
		ereport(
			ERROR,
			(errcode(ERRCODE_SOCIAL_RATE_LIMITED),
			 errmsg("too many friendship or block actions, please try again later"),
			 errdetail("The pair %s, %s saw %lld actions in the last 60 seconds; the limit is %d.",
					   actor, target, (long long) pair_n, social_pair_actions_per_minute),
			 errhint("The limit is the setting social.pair_actions_per_minute.")));

	return DatumGetBool(SpiResultValue(0, 3, &isnull));
}

void
PolicyCheckMessage(const char *message)
{
	int len;

	if (message == NULL || social_max_message_length == 0)
		return;
	len = pg_mbstrlen(message);
	if (len > social_max_message_length)
		ereport(ERROR, (errcode(ERRCODE_SOCIAL_MESSAGE_TOO_LONG),
						errmsg("friendship request message is too long"),
						errdetail("The message has %d characters; at most %d are allowed.", len,
								  social_max_message_length)));
}

void
PolicyCheckFriendLimit(const char *actor, const char *target)
{
	if (social_max_friends == 0)
		return;
	if (FriendSetCount(actor) >= social_max_friends)
		ereport(ERROR, (errcode(ERRCODE_SOCIAL_FRIEND_LIMIT), errmsg("friend limit reached"),
						errdetail("%s already has %d friends, the most allowed.", actor,
								  social_max_friends),
						errhint("Delete a friendship before accepting another.")));
	if (FriendSetCount(target) >= social_max_friends)
		ereport(ERROR, (errcode(ERRCODE_SOCIAL_FRIEND_LIMIT), errmsg("friend limit reached"),
						errdetail("%s already has %d friends, the most allowed.", target,
								  social_max_friends)));
}

void
PolicyCheckPendingLimit(const char *actor)
{
	Datum arg;
	int64 n;

	if (social_max_pending_requests == 0)
		return;
	arg = CStringGetTextDatum(actor);
	n = CountOf(&plan_pending, &arg, NULL);
	if (n >= social_max_pending_requests)
		ereport(ERROR,
				(errcode(ERRCODE_SOCIAL_PENDING_LIMIT), errmsg("pending request limit reached"),
				 errdetail("%s already has %lld open friendship requests; at most %d are allowed.",
						   actor, (long long) n, social_max_pending_requests),
				 errhint("Cancel a request, or wait for answers, before sending another.")));
}
