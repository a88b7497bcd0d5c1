/*-------------------------------------------------------------------------
 *
 * policy.h
 *	  Anti-spam policies, enforced in the transaction that writes.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SOCIAL_POLICY_H
#define SOCIAL_POLICY_H

/*
 * Each raises its SQLSTATE (errors.h) when the policy refuses.  All run
 * inside an SPI connection with both users' locks held.  friendship_id may
 * be NULL when the pair has no friendship row yet.
 */
/* Raises SC004 when the actor or the pair is over its rate; returns whether either user blocks
 * the other (one statement answers both). */
extern bool PolicyCheckRates(const char *actor, const char *target, Datum *friendship_id);
extern void PolicyCheckMessage(const char *message);
extern void PolicyCheckFriendLimit(const char *actor, const char *target);
extern void PolicyCheckPendingLimit(const char *actor);

#endif /* SOCIAL_POLICY_H */
