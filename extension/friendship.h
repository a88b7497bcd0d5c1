/*-------------------------------------------------------------------------
 *
 * friendship.h
 *	  The friendship state machine.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SOCIAL_FRIENDSHIP_H
#define SOCIAL_FRIENDSHIP_H

#include "address.h"
#include "datatype/timestamp.h"

/* A pair's state is its last action, or none. */
typedef enum FriendshipState
{
	FS_NONE,
	FS_REQUEST,
	FS_ACCEPT,
	FS_REJECT,
	FS_CANCEL,
	FS_DELETE,
	FS_BLOCK,
	FS_COUNT
} FriendshipState;

typedef enum FriendshipAction
{
	FA_REQUEST,
	FA_ACCEPT,
	FA_REJECT,
	FA_CANCEL,
	FA_DELETE,
	FA_BLOCK, /* recorded by block_user, never asked for */
	FA_COUNT
} FriendshipAction;

/*
 * What a write needs to know about a pair, read by FriendshipLookup in one statement: the
 * friendship row (locked), what the policies count, and whether a block stands between them.
 */
typedef struct FriendshipRow
{
	bool			found;
	Datum			id; /* uuid; valid when found */
	FriendshipState state;
	char			last_actor[ADDRESS_LEN + 1];
	TimestampTz		created_at;
	int64			actor_actions; /* by the actor in the rate window */
	int64			pair_actions;  /* on the pair in the rate window */
	bool			blocked;	   /* either user blocks the other */
} FriendshipRow;

typedef struct FriendshipResult
{
	Datum			action_id;	   /* uuid */
	Datum			friendship_id; /* uuid */
	TimestampTz		created_at;	   /* of the friendship */
	FriendshipState state;
} FriendshipResult;

/*
 * All of these run inside an SPI connection with both users' locks held
 * (UserLockPair).
 */
extern void FriendshipLookup(const char *actor, const char *target, FriendshipRow *row);

/* Raises SC001 unless the transition table allows 'action' by 'actor'. */
extern void FriendshipCheck(const FriendshipRow *row, const char *actor, FriendshipAction action);

/*
 * The choke point: the only code that changes a friendship's state.  Checks
 * the transition again, writes the friendship row, the action log row and
 * both friend sets.  'message' (request text) and 'reason' go into the
 * action's metadata; either may be NULL.
 */
extern void FriendshipApply(FriendshipRow *row, const char *actor, const char *target,
							FriendshipAction action, const char *message, const char *reason,
							FriendshipResult *result);

#endif /* SOCIAL_FRIENDSHIP_H */
