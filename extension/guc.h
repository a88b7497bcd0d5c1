/*-------------------------------------------------------------------------
 *
 * guc.h
 *	  The social.* settings: anti-spam policies and limits.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SOCIAL_GUC_H
#define SOCIAL_GUC_H

/* 0 switches a policy off; every value is superuser-only (PGC_SUSET). */
extern int social_actor_actions_per_minute;
extern int social_pair_actions_per_minute;
extern int social_max_message_length;
extern int social_max_friends;
extern int social_max_pending_requests;

extern void GucDefineAll(void);

#endif /* SOCIAL_GUC_H */
