/*-------------------------------------------------------------------------
 *
 * block.c
 *	  block_user and unblock_user.
 *
 * social.blocks holds the current blocks, social.block_actions logs every
 * change (and feeds the NOTIFY trigger and catch-up).  A block:
 *	- is idempotent: blocking someone already blocked changes nothing, logs
 *	  nothing and sends no event;
 *	- ends a friendship: when the pair has a friendship row, a 'block'
 *	  friendship action is recorded through the state machine's choke point,
 *	  which also removes both friend-set entries;
 *	- makes every friendship action between the two fail with SC003 while
 *	  it lasts, in both directions.
 * An unblock removes the block, logs 'unblock', and, when the block had
 * ended the friendship (last action 'block'), records 'delete' tagged
 * {"reason": "unblock"}: the friendship is not restored.
 *
 * Both count against the rate limits like friendship actions, and take both
 * users' locks (userlock.c) first.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "address.h"
#include "catalog/pg_type.h"
#include "errors.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "friendship.h"
#include "funcapi.h"
#include "policy.h"
#include "spi_plan.h"
#include "userlock.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

static SpiPlan plan_find_block = {
	"SELECT blocked_at FROM social.blocks WHERE blocker_address = $1 AND blocked_address = $2",
	2,
	{TEXTOID, TEXTOID}};
static SpiPlan plan_insert_block = {
	"INSERT INTO social.blocks (blocker_address, blocked_address) VALUES ($1, $2) "
	"RETURNING blocked_at",
	2,
	{TEXTOID, TEXTOID}};
static SpiPlan plan_delete_block = {
	"DELETE FROM social.blocks WHERE blocker_address = $1 AND blocked_address = $2",
	2,
	{TEXTOID, TEXTOID}};
static SpiPlan plan_log_block = {
	"INSERT INTO social.block_actions (action, blocker_address, blocked_address) "
	"VALUES ($3, $1, $2)",
	3,
	{TEXTOID, TEXTOID, TEXTOID}};

static void
BlockArgs(FunctionCallInfo fcinfo, char *blocker, char *blocked, const char *verb)
{
	AddressFromArg(fcinfo, 0, "blocker", blocker);
	AddressFromArg(fcinfo, 1, "blocked", blocked);
	if (strcmp(blocker, blocked) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_SOCIAL_SELF_ACTION), errmsg("you cannot %s yourself", verb)));
}

static Datum
ReturnPair(FunctionCallInfo fcinfo, Datum first, Datum second)
{
	TupleDesc tupdesc;
	Datum	  values[2] = {first, second};
	bool	  nulls[2] = {false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}

PG_FUNCTION_INFO_V1(social_block_user);
Datum
social_block_user(PG_FUNCTION_ARGS)
{
	char		blocker[ADDRESS_LEN + 1];
	char		blocked[ADDRESS_LEN + 1];
	Datum		args[3];
	bool		isnull;
	TimestampTz blocked_at;

	BlockArgs(fcinfo, blocker, blocked, "block");

	SPI_connect();
	UserLockPair(blocker, blocked);
	args[0] = CStringGetTextDatum(blocker);
	args[1] = CStringGetTextDatum(blocked);
	if (SpiPlanExec(&plan_find_block, args, NULL, false, 1) == 1)
		blocked_at = DatumGetTimestampTz(SpiResultValue(0, 1, &isnull));
	else
	{
		FriendshipRow row;

		FriendshipLookup(blocker, blocked, &row);
		PolicyCheckRates(blocker, blocked, row.actor_actions, row.pair_actions);

		SpiPlanExec(&plan_insert_block, args, NULL, false, 0);
		blocked_at = DatumGetTimestampTz(SpiResultValue(0, 1, &isnull));
		args[2] = CStringGetTextDatum("block");
		SpiPlanExec(&plan_log_block, args, NULL, false, 0);

		if (row.found)
		{
			FriendshipResult result;

			FriendshipApply(&row, blocker, blocked, FA_BLOCK, NULL, NULL, &result);
		}
	}
	SPI_finish();

	PG_RETURN_DATUM(
		ReturnPair(fcinfo, CStringGetTextDatum(blocked), TimestampTzGetDatum(blocked_at)));
}

PG_FUNCTION_INFO_V1(social_unblock_user);
Datum
social_unblock_user(PG_FUNCTION_ARGS)
{
	char  blocker[ADDRESS_LEN + 1];
	char  blocked[ADDRESS_LEN + 1];
	Datum args[3];
	bool  was_blocked;

	BlockArgs(fcinfo, blocker, blocked, "unblock");

	SPI_connect();
	UserLockPair(blocker, blocked);
	args[0] = CStringGetTextDatum(blocker);
	args[1] = CStringGetTextDatum(blocked);
	was_blocked = SpiPlanExec(&plan_find_block, args, NULL, false, 1) == 1;
	if (was_blocked)
	{
		FriendshipRow row;

		FriendshipLookup(blocker, blocked, &row);
		PolicyCheckRates(blocker, blocked, row.actor_actions, row.pair_actions);

		SpiPlanExec(&plan_delete_block, args, NULL, false, 0);
		args[2] = CStringGetTextDatum("unblock");
		SpiPlanExec(&plan_log_block, args, NULL, false, 0);

		if (row.found && row.state == FS_BLOCK)
		{
			FriendshipResult result;

			FriendshipApply(&row, blocker, blocked, FA_DELETE, NULL, "unblock", &result);
		}
	}
	SPI_finish();

	PG_RETURN_DATUM(ReturnPair(fcinfo, CStringGetTextDatum(blocked), BoolGetDatum(was_blocked)));
}
