/*-------------------------------------------------------------------------
 *
 * policy.h
 *	  Anti-spam policies, enforced in the transaction that writes.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SOCIAL_POLICY_H
#define SOCIAL_POLICY_H

#include "datatype/timestamp.h"

/*
 * Each raises its SQLSTATE (errors.h) when the policy refuses.  All run
 * inside an SPI connection with both users' locks held.  friendship_id may
 * be NULL when the pair has no friendship row yet.
 */
/* The rate window: mutations counted are those of the last 60 seconds. */
#define POLICY_RATE_WINDOW_USECS (60 * USECS_PER_SEC)

/* Raises SC004 when the actor's or the pair's count (FriendshipLookup) is at its limit. */
extern void PolicyCheckRates(const char *actor, const char *target, int64 actor_actions,
							 int64 pair_actions);
extern void PolicyCheckMessage(const char *message);
extern void PolicyCheckFriendLimit(const char *actor, const char *target);
extern void PolicyCheckPendingLimit(const char *actor);

#endif /* SOCIAL_POLICY_H */
