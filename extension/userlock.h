/*-------------------------------------------------------------------------
 *
 * userlock.h
 *	  Per-user transaction locks that serialize every change a user is part of.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SOCIAL_USERLOCK_H
#define SOCIAL_USERLOCK_H

/*
 * Takes the transaction-scoped locks of both users, always in the same
 * global order, and holds them until commit or abort.
 */
extern void UserLockPair(const char *a, const char *b);

#endif /* SOCIAL_USERLOCK_H */
