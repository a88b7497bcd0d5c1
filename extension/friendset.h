/*-------------------------------------------------------------------------
 *
 * friendset.h
 *	  Per-user friend sets: sorted arrays of 20-byte addresses.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SOCIAL_FRIENDSET_H
#define SOCIAL_FRIENDSET_H

/*
 * All functions run inside an SPI connection.  The caller holds the user
 * locks of both addresses (userlock.h) when it changes a set.
 */
extern void	 FriendSetAdd(const char *owner, const char *friend_addr);
extern void	 FriendSetRemove(const char *owner, const char *friend_addr);
extern int64 FriendSetCount(const char *owner);

#endif /* SOCIAL_FRIENDSET_H */
