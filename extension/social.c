/*-------------------------------------------------------------------------
 *
 * social.c
 *	  Module entry point of the social extension.
 *
 * Where things are:
 *	friendship.c  the state machine: transition table and its one choke point
 *	block.c		  block_user / unblock_user
 *	policy.c	  anti-spam policies (rate limits, limits)
 *	friendset.c	  per-user sorted friend sets: friends, mutual friends
 *	notify.c	  NOTIFY trigger and the catch-up design
 *	userlock.c	  per-user locks that serialize every change
 *	address.c	  address validation and normalization
 *	guc.c		  every social.* setting
 *	errors.h	  every SQLSTATE raised
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "guc.h"

PG_MODULE_MAGIC;

void _PG_init(void);

void
_PG_init(void)
{
	GucDefineAll();
}
