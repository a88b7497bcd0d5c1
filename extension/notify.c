/*-------------------------------------------------------------------------
 *
 * notify.c
 *	  The social_events doorbell, and why listeners catch up from the log.
 *
 * Events.  Every row appended to social.friendship_actions or
 * social.block_actions fires social_notify_event() (AFTER INSERT, FOR EACH
 * ROW), which queues one NOTIFY on channel "social_events".  PostgreSQL
 * delivers queued notifications at commit and drops them on abort, so a
 * listener never hears of a change that did not happen.  The payload is a
 * small JSON object, built with a JSON encoder (never by pasting values
 * into a format string), versioned by "v":
 *
 *	{"v":1,"seq":42,"kind":"friendship","action":"request",
 *	 "actor":"0x...","target":"0x..."}
 *
 * kind is "friendship" (action request/accept/reject/cancel/delete/block)
 * or "block" (action block/unblock; actor = blocker, target = blocked).
 * That is enough to route the event and to update a friend index; the
 * request message, the ids and the time are read from the log.  Payloads
 * stay around 160 bytes, far below NOTIFY's 8000-byte limit, whatever a
 * user writes in a message.
 *
 * NOTIFY is a doorbell, not the log.  A listener that loses its connection
 * misses notifications, so the log tables are the truth and the listener
 * catches up from them with social.events_since(cursor).  The hard part is
 * ordering: seq values are drawn when a row is inserted, but transactions
 * commit in any order, so a transaction holding seq 7 may commit after one
 * holding seq 9.  A cursor "last seq seen" would skip 7 forever.
 *
 * The design: every log row records the id of the transaction that wrote it
 * (xid, a full 64-bit xid8), and a cursor is a snapshot (pg_snapshot), not a
 * number.  events_since(c) returns exactly the rows that are committed now
 * and were not visible in c: "committed after c was taken".
 *	- A late commit is never skipped: a transaction still running when c was
 *	  taken is in c's in-progress list, so its rows are invisible in c and
 *	  are returned by the first call after it commits.
 *	- Nothing is returned twice: every returned row carries next_cursor, the
 *	  snapshot the query itself ran with (a STABLE SQL function shares its
 *	  caller's snapshot), and each returned row is visible in it.
 *	- Aborted transactions are invisible everywhere, so never returned.
 *	- When nothing is returned the listener keeps its old cursor; that is
 *	  still exact.
 * Rows with xid < xmin(c) were all finished when c was taken, so an index on
 * xid bounds the scan to the rows of transactions at or after xmin(c).
 *
 * A listener's loop: LISTEN social_events; c := events_cursor() (or its
 * saved cursor); on every notification (or after a reconnect):
 * rows := events_since(c); deliver rows in seq order; if rows, c :=
 * next_cursor.  Several notifications can be answered by one call.
 *
 * Cost: NOTIFY serializes commits on a cluster-wide lock.  One small
 * notification per logged row keeps that short; when one database's NOTIFY
 * becomes the limit, the same rows can be read by logical decoding instead,
 * with the same cursor idea (an LSN).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/async.h"
#include "commands/trigger.h"
#include "errors.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/rel.h"

#define EVENTS_CHANNEL "social_events"
#define PAYLOAD_VERSION 1

/* Column value as a C string; these columns are NOT NULL. */
static char *
ColumnText(HeapTuple tuple, TupleDesc desc, const char *column)
{
	int	  attno = SPI_fnumber(desc, column);
	char *value;

	if (attno <= 0)
		elog(ERROR, "social_notify_event: column \"%s\" not found", column);
	value = SPI_getvalue(tuple, desc, attno);
	if (value == NULL)
		elog(ERROR, "social_notify_event: column \"%s\" is null", column);
	return value;
}

PG_FUNCTION_INFO_V1(social_notify_event);
Datum
social_notify_event(PG_FUNCTION_ARGS)
{
	TriggerData	  *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	   desc;
	HeapTuple	   tuple;
	const char	  *relname;
	bool		   is_block;
	StringInfoData payload;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "social_notify_event: not called by trigger manager");
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		elog(ERROR, "social_notify_event: must be fired AFTER INSERT FOR EACH ROW");

	relname = RelationGetRelationName(trigdata->tg_relation);
	if (strcmp(relname, "block_actions") == 0)
		is_block = true;
	else if (strcmp(relname, "friendship_actions") == 0)
		is_block = false;
	else
		elog(ERROR, "social_notify_event: unexpected table \"%s\"", relname);

	desc = RelationGetDescr(trigdata->tg_relation);
	tuple = trigdata->tg_trigtuple;

	initStringInfo(&payload);
	appendStringInfo(&payload, "{\"v\":%d,\"seq\":%s,\"kind\":", PAYLOAD_VERSION,
					 ColumnText(tuple, desc, "seq"));
	escape_json(&payload, is_block ? "block" : "friendship");
	appendStringInfoString(&payload, ",\"action\":");
	escape_json(&payload, ColumnText(tuple, desc, "action"));
	appendStringInfoString(&payload, ",\"actor\":");
	escape_json(&payload, ColumnText(tuple, desc, is_block ? "blocker_address" : "acting_user"));
	appendStringInfoString(&payload, ",\"target\":");
	escape_json(&payload, ColumnText(tuple, desc, is_block ? "blocked_address" : "target_user"));
	appendStringInfoChar(&payload, '}');

	Async_Notify(EVENTS_CHANNEL, payload.data);
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(social_refuse_log_change);
Datum
social_refuse_log_change(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "social_refuse_log_change: not called by trigger manager");
	ereport(
		ERROR,
		(errcode(ERRCODE_SOCIAL_APPEND_ONLY),
		 errmsg("social.%s is append-only", RelationGetRelationName(trigdata->tg_relation)),
		 errdetail(
			 "The action log is the history listeners catch up from; rows are never changed or removed."),
		 errhint("To discard everything, drop and re-create the extension.")));
	return PointerGetDatum(NULL);
}
