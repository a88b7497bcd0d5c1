/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  Definitions of every social.* setting, in one place.
 *
 * The settings are policies, so they are PGC_SUSET: the daemon's role cannot
 * SET its own rate limit away.  An operator sets them in postgresql.conf, or
 * with ALTER DATABASE / ALTER ROLE ... SET as a superuser.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "guc.h"

#include "utils/guc.h"

int social_actor_actions_per_minute = 30;
int social_pair_actions_per_minute = 10;
int social_max_message_length = 140;
int social_max_friends = 0;
int social_max_pending_requests = 0;

void
GucDefineAll(void)
{
	DefineCustomIntVariable("social.actor_actions_per_minute",
							"Friendship and block actions one user may take in any 60 seconds.",
							"0 turns the limit off.", &social_actor_actions_per_minute, 30, 0,
							1000000, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("social.pair_actions_per_minute",
							"Friendship and block actions on one pair of users in any 60 seconds.",
							"0 turns the limit off.", &social_pair_actions_per_minute, 10, 0,
							1000000, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("social.max_message_length",
							"Longest friendship request message, in characters.",
							"0 turns the limit off.", &social_max_message_length, 140, 0, 1000000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("social.max_friends", "Most friends one user may have.",
							"0 turns the limit off.", &social_max_friends, 0, 0, PG_INT32_MAX,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("social.max_pending_requests",
							"Most open outgoing friendship requests one user may have.",
							"0 turns the limit off.", &social_max_pending_requests, 0, 0,
							PG_INT32_MAX, PGC_SUSET, 0, NULL, NULL, NULL);

	MarkGUCPrefixReserved("social");
}
