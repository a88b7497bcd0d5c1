/*-------------------------------------------------------------------------
 *
 * userlock.c
 *	  Per-user locks: the serialization point of every friendship change.
 *
 * Every write (upsert_friendship, block_user, unblock_user) takes the lock of
 * both users before it reads anything, and keeps both until the transaction
 * ends.  So:
 *
 *	- actions on one pair run one after the other: two users requesting each
 *	  other at the same instant, or an accept racing a cancel, are decided
 *	  against the state the first one committed;
 *	- everything a policy counts about a user (actions in the last minute,
 *	  friends, open requests) cannot change under the check, so limits hold
 *	  exactly under concurrency instead of "roughly";
 *	- the friend set of each user is rewritten by one transaction at a time.
 *
 * Lock order: the two locks are taken in ascending key order, so two
 * single-action transactions can never deadlock.  (A transaction that runs
 * several actions may; PostgreSQL detects that and aborts one with 40P01.)
 *
 * The locks are advisory locks in a key space of our own (locktag field4 =
 * 0x534f, which the SQL-level pg_advisory_* functions never use), keyed by a
 * 64-bit hash of the lower-case address.  A hash collision only makes two
 * users wait for each other; it cannot break a rule.  They show up in
 * pg_locks as locktype 'advisory' with objsubid 21327.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "userlock.h"

#include "address.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/lock.h"

#define USERLOCK_SPACE 0x534f

static uint64
UserLockKey(const char *addr)
{
	return hash_bytes_extended((const unsigned char *) addr, ADDRESS_LEN, 0);
}

static void
UserLockAcquire(uint64 key)
{
	LOCKTAG tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (key >> 32), (uint32) key, USERLOCK_SPACE);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

void
UserLockPair(const char *a, const char *b)
{
	uint64 ka = UserLockKey(a);
	uint64 kb = UserLockKey(b);

	UserLockAcquire(Min(ka, kb));
	if (ka != kb)
		UserLockAcquire(Max(ka, kb));
}
