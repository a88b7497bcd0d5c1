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

void
PolicyCheckRates(const char *actor, const char *target, int64 actor_actions, int64 pair_actions)
{
	if (social_actor_actions_per_minute > 0 && actor_actions >= social_actor_actions_per_minute)
		ereport(ERROR,
				(errcode(ERRCODE_SOCIAL_RATE_LIMITED),
				 errmsg("too many friendship or block actions, please try again later"),
				 errdetail("%s took %lld actions in the last 60 seconds; the limit is %d.", actor,
						   (long long) actor_actions, social_actor_actions_per_minute),
				 errhint("The limit is the setting social.actor_actions_per_minute.")));
	if (social_pair_actions_per_minute > 0 && pair_actions >= social_pair_actions_per_minute)
		ereport(
			ERROR,
			(errcode(ERRCODE_SOCIAL_RATE_LIMITED),
			 errmsg("too many friendship or block actions, please try again later"),
			 errdetail("The pair %s, %s saw %lld actions in the last 60 seconds; the limit is %d.",
					   actor, target, (long long) pair_actions, social_pair_actions_per_minute),
			 errhint("The limit is the setting social.pair_actions_per_minute.")));
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
