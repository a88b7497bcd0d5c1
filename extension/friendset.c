/*-------------------------------------------------------------------------
 *
 * friendset.c
 *	  Friend lists and mutual friends from per-user sorted friend sets.
 *
 * social.friend_sets holds, for every user with friends, one bytea: the
 * friends' addresses as 20 raw bytes each, sorted by memcmp (which is also
 * the order of the lower-case hex text).  It is derived data, written only
 * by the state machine's choke point (friendship.c) in the same transaction
 * as the friendship change, under both users' locks, so it is never stale
 * and never written by two transactions at once.  rebuild_friend_sets()
 * recomputes it from social.friendships after a bulk import.
 *
 * Why not just query social.friendships?  The reads that matter are a hub's
 * 5,000-friend list and the intersection of two such lists.  From the pair
 * table each is thousands of index probes on two address columns; from the
 * sets it is one tuple read each (stored EXTERNAL: no compression to undo)
 * and a linear merge.  A change rewrites two sets: 1 KB for a user with 50
 * friends, 100 KB for a hub, which is paid on accept/delete, far rarer than
 * reads.
 *
 * Blocks: a block ends a friendship (friendship.c records a block action and
 * removes both set entries), and a blocked pair cannot become friends, so a
 * set never holds a blocked pair.  Mutual friends of two users that block
 * each other are empty, checked here.
 *
 * Order: lists are ordered by address, which keeps pages stable while other
 * friendships change.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "friendset.h"

#include "address.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "paging.h"
#include "spi_plan.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

static SpiPlan plan_load = {
	"SELECT friends FROM social.friend_sets WHERE address = $1", 1, {TEXTOID}};
static SpiPlan plan_store = {"INSERT INTO social.friend_sets (address, friends) VALUES ($1, $2) "
							 "ON CONFLICT (address) DO UPDATE SET friends = EXCLUDED.friends",
							 2,
							 {TEXTOID, BYTEAOID}};
static SpiPlan plan_delete = {"DELETE FROM social.friend_sets WHERE address = $1", 1, {TEXTOID}};
static SpiPlan plan_blocked_pair = {
	"SELECT EXISTS (SELECT FROM social.blocks WHERE blocker_address = $1 AND blocked_address = $2) "
	"    OR EXISTS (SELECT FROM social.blocks WHERE blocker_address = $2 AND blocked_address = $1)",
	2,
	{TEXTOID, TEXTOID}};

/* A detoasted set: n entries of ADDRESS_RAW_LEN bytes. */
typedef struct FriendSet
{
	const uint8 *data;
	int64		 n;
} FriendSet;

/*
 * Loads the set of 'owner' into memory context 'cxt' (must outlive the SPI
 * connection if the caller uses the set after SPI_finish).  Missing row =
 * empty set.
 */
static FriendSet
FriendSetLoad(const char *owner, MemoryContext cxt, bool read_only)
{
	Datum	  arg = CStringGetTextDatum(owner);
	FriendSet set = {NULL, 0};

	if (SpiPlanExec(&plan_load, &arg, NULL, read_only, 1) == 1)
	{
		bool		  isnull;
		Datum		  d = SpiResultValue(0, 1, &isnull);
		MemoryContext old = MemoryContextSwitchTo(cxt);
		bytea		 *b = DatumGetByteaPCopy(d);

		MemoryContextSwitchTo(old);
		set.data = (const uint8 *) VARDATA(b);
		set.n = VARSIZE(b) - VARHDRSZ;
		if (set.n % ADDRESS_RAW_LEN != 0)
			elog(ERROR, "friend set of %s is corrupt (%lld bytes)", owner, (long long) set.n);
		set.n /= ADDRESS_RAW_LEN;
	}
	return set;
}

/* Index of the first entry >= raw; set.n when none. */
static int64
FriendSetLowerBound(FriendSet set, const uint8 *raw)
{
	int64 lo = 0, hi = set.n;

	while (lo < hi)
	{
		int64 mid = lo + (hi - lo) / 2;

		if (memcmp(set.data + mid * ADDRESS_RAW_LEN, raw, ADDRESS_RAW_LEN) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool
FriendSetContains(FriendSet set, const uint8 *raw)
{
	int64 i = FriendSetLowerBound(set, raw);

	return i < set.n && memcmp(set.data + i * ADDRESS_RAW_LEN, raw, ADDRESS_RAW_LEN) == 0;
}

/* Writes 'n' entries as the set of 'owner'; an empty set deletes the row. */
static void
FriendSetStore(const char *owner, const uint8 *data, int64 n)
{
	Datum args[2];

	args[0] = CStringGetTextDatum(owner);
	if (n == 0)
	{
		SpiPlanExec(&plan_delete, args, NULL, false, 0);
		return;
	}
	{
		bytea *b = palloc(VARHDRSZ + n * ADDRESS_RAW_LEN);

		SET_VARSIZE(b, VARHDRSZ + n * ADDRESS_RAW_LEN);
		memcpy(VARDATA(b), data, n * ADDRESS_RAW_LEN);
		args[1] = PointerGetDatum(b);
		SpiPlanExec(&plan_store, args, NULL, false, 0);
	}
}

void
FriendSetAdd(const char *owner, const char *friend_addr)
{
	FriendSet set = FriendSetLoad(owner, CurrentMemoryContext, false);
	uint8	  raw[ADDRESS_RAW_LEN];
	int64	  at;
	uint8	 *data;

	AddressToRaw(friend_addr, raw);
	at = FriendSetLowerBound(set, raw);
	if (at < set.n && memcmp(set.data + at * ADDRESS_RAW_LEN, raw, ADDRESS_RAW_LEN) == 0)
		return;

	data = palloc((set.n + 1) * ADDRESS_RAW_LEN);
	if (at > 0)
		memcpy(data, set.data, at * ADDRESS_RAW_LEN);
	memcpy(data + at * ADDRESS_RAW_LEN, raw, ADDRESS_RAW_LEN);
	if (set.n > at)
		memcpy(data + (at + 1) * ADDRESS_RAW_LEN, set.data + at * ADDRESS_RAW_LEN,
			   (set.n - at) * ADDRESS_RAW_LEN);
	FriendSetStore(owner, data, set.n + 1);
}

void
FriendSetRemove(const char *owner, const char *friend_addr)
{
	FriendSet set = FriendSetLoad(owner, CurrentMemoryContext, false);
	uint8	  raw[ADDRESS_RAW_LEN];
	int64	  at;
	uint8	 *data;

	AddressToRaw(friend_addr, raw);
	at = FriendSetLowerBound(set, raw);
	if (at >= set.n || memcmp(set.data + at * ADDRESS_RAW_LEN, raw, ADDRESS_RAW_LEN) != 0)
		return;

	data = palloc(Max(set.n - 1, 1) * ADDRESS_RAW_LEN);
	if (at > 0)
		memcpy(data, set.data, at * ADDRESS_RAW_LEN);
	if (set.n - at - 1 > 0)
		memcpy(data + at * ADDRESS_RAW_LEN, set.data + (at + 1) * ADDRESS_RAW_LEN,
			   (set.n - at - 1) * ADDRESS_RAW_LEN);
	FriendSetStore(owner, data, set.n - 1);
}

int64
FriendSetCount(const char *owner)
{
	return FriendSetLoad(owner, CurrentMemoryContext, false).n;
}

/* The limit and offset arguments of a list, clamped as paging.c says. */
static int64
ClampLimit(FunctionCallInfo fcinfo, int argno, PageList list)
{
	return PageLimit(list, PG_ARGISNULL(argno), PG_ARGISNULL(argno) ? 0 : PG_GETARG_INT32(argno));
}

static int64
ClampOffset(FunctionCallInfo fcinfo, int argno)
{
	return PageOffset(PG_ARGISNULL(argno), PG_ARGISNULL(argno) ? 0 : PG_GETARG_INT32(argno));
}

/* Emits rows (address, total) for entries [offset, offset+limit) of 'idx' over 'set'. */
static void
EmitPage(FunctionCallInfo fcinfo, FriendSet set, const int64 *idx, int64 total, int64 limit,
		 int64 offset)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	for (int64 i = offset; i < total && i < offset + limit; i++)
	{
		char  addr[ADDRESS_LEN + 1];
		Datum values[2];
		bool  nulls[2] = {false, false};

		AddressFromRaw(set.data + (idx ? idx[i] : i) * ADDRESS_RAW_LEN, addr);
		values[0] = PointerGetDatum(cstring_to_text_with_len(addr, ADDRESS_LEN));
		values[1] = Int64GetDatum(total);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

PG_FUNCTION_INFO_V1(social_friends);
Datum
social_friends(PG_FUNCTION_ARGS)
{
	char	  me[ADDRESS_LEN + 1];
	int64	  limit = ClampLimit(fcinfo, 1, PAGE_FRIENDS);
	int64	  offset = ClampOffset(fcinfo, 2);
	FriendSet set;

	AddressFromArg(fcinfo, 0, "me", me);
	InitMaterializedSRF(fcinfo, 0);

	SPI_connect();
	set = FriendSetLoad(me, CurrentMemoryContext, true);
	EmitPage(fcinfo, set, NULL, set.n, limit, offset);
	SPI_finish();
	return (Datum) 0;
}

/* Whether either of args[0], args[1] blocks the other. */
static bool
PairBlocked(Datum *args)
{
	bool isnull;

	SpiPlanExec(&plan_blocked_pair, args, NULL, true, 1);
	return DatumGetBool(SpiResultValue(0, 1, &isnull));
}

PG_FUNCTION_INFO_V1(social_mutual_friends);
Datum
social_mutual_friends(PG_FUNCTION_ARGS)
{
	char  me[ADDRESS_LEN + 1];
	char  other[ADDRESS_LEN + 1];
	int64 limit = ClampLimit(fcinfo, 2, PAGE_MUTUAL_FRIENDS);
	int64 offset = ClampOffset(fcinfo, 3);
	Datum args[2];

	AddressFromArg(fcinfo, 0, "me", me);
	AddressFromArg(fcinfo, 1, "other", other);
	InitMaterializedSRF(fcinfo, 0);

	SPI_connect();
	args[0] = CStringGetTextDatum(me);
	args[1] = CStringGetTextDatum(other);
	if (strcmp(me, other) != 0 && !PairBlocked(args))
	{
		FriendSet a = FriendSetLoad(me, CurrentMemoryContext, true);
		FriendSet b = FriendSetLoad(other, CurrentMemoryContext, true);
		int64	 *idx = palloc(sizeof(int64) * Max(Min(a.n, b.n), 1));
		int64	  n = 0, i = 0, j = 0;

		/* Both sets are sorted: one linear merge finds the intersection. */
		while (i < a.n && j < b.n)
		{
			int c =
				memcmp(a.data + i * ADDRESS_RAW_LEN, b.data + j * ADDRESS_RAW_LEN, ADDRESS_RAW_LEN);

			if (c == 0)
			{
				idx[n++] = i;
				i++;
				j++;
			}
			else if (c < 0)
				i++;
			else
				j++;
		}
		EmitPage(fcinfo, a, idx, n, limit, offset);
	}
	SPI_finish();
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(social_friend_count);
Datum
social_friend_count(PG_FUNCTION_ARGS)
{
	char  me[ADDRESS_LEN + 1];
	int64 n;

	AddressFromArg(fcinfo, 0, "me", me);
	SPI_connect();
	n = FriendSetLoad(me, CurrentMemoryContext, true).n;
	SPI_finish();
	PG_RETURN_INT64(n);
}

PG_FUNCTION_INFO_V1(social_is_friend);
Datum
social_is_friend(PG_FUNCTION_ARGS)
{
	char  me[ADDRESS_LEN + 1];
	char  other[ADDRESS_LEN + 1];
	uint8 raw[ADDRESS_RAW_LEN];
	bool  found;

	AddressFromArg(fcinfo, 0, "me", me);
	AddressFromArg(fcinfo, 1, "other", other);
	AddressToRaw(other, raw);
	SPI_connect();
	found = FriendSetContains(FriendSetLoad(me, CurrentMemoryContext, true), raw);
	SPI_finish();
	PG_RETURN_BOOL(found);
}

PG_FUNCTION_INFO_V1(social_friend_addresses);
Datum
social_friend_addresses(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char		   me[ADDRESS_LEN + 1];
	FriendSet	   set;

	AddressFromArg(fcinfo, 0, "me", me);
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	SPI_connect();
	set = FriendSetLoad(me, CurrentMemoryContext, true);
	for (int64 i = 0; i < set.n; i++)
	{
		char  addr[ADDRESS_LEN + 1];
		Datum value;
		bool  isnull = false;

		AddressFromRaw(set.data + i * ADDRESS_RAW_LEN, addr);
		value = CStringGetTextDatum(addr);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
	}
	SPI_finish();
	return (Datum) 0;
}
