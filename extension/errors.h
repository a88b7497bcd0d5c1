/*-------------------------------------------------------------------------
 *
 * errors.h
 *	  Every SQLSTATE the social extension raises, in one table.
 *
 * Clients (sociald above all) branch on the SQLSTATE, never on message
 * text.  Class "SC" is ours; no standard class starts with S.  The README
 * carries the same table, and the daemon maps each code to a typed error of
 * the client protocol (the third column).
 *
 *	code	 macro							   meaning							  client error
 *	SC001	 ERRCODE_SOCIAL_INVALID_TRANSITION action not allowed from the		  invalid_friendship_action
 *											   pair's current state, or not by
 *											   this user
 *	SC002	 ERRCODE_SOCIAL_SELF_ACTION		   a user acting on themselves		  invalid_friendship_action
 *	SC003	 ERRCODE_SOCIAL_BLOCKED			   either user blocks the other		  invalid_friendship_action
 *	SC004	 ERRCODE_SOCIAL_RATE_LIMITED	   too many actions in the last		  invalid_request
 *											   minute (per actor or per pair)
 *	SC005	 ERRCODE_SOCIAL_MESSAGE_TOO_LONG   request message over the limit	  invalid_request
 *	SC006	 ERRCODE_SOCIAL_FRIEND_LIMIT	   a side would exceed max friends	  invalid_friendship_action
 *	SC007	 ERRCODE_SOCIAL_PENDING_LIMIT	   actor has too many open requests	  invalid_friendship_action
 *	SC008	 ERRCODE_SOCIAL_MESSAGE_NOT_ALLOWED message given with a non-request   invalid_request
 *	SC010	 ERRCODE_SOCIAL_INVALID_ADDRESS	   not 0x + 40 hex digits, or NULL	  invalid_request
 *	SC011	 ERRCODE_SOCIAL_INVALID_ACTION	   unknown action name				  invalid_request
 *	SC012	 ERRCODE_SOCIAL_INVALID_SETTING	   unknown settings value			  invalid_request
 *	SC013	 ERRCODE_SOCIAL_TOO_MANY_ADDRESSES more than 50 addresses, or NULL	  invalid_request
 *	SC014	 ERRCODE_SOCIAL_INVALID_LIST	   unknown or NULL paged list name	  (not reachable by clients)
 *	SC015	 ERRCODE_SOCIAL_IMPORT_SOURCE	   import source schema missing, or	  (not reachable by clients)
 *											   without the reference's tables
 *	SC016	 ERRCODE_SOCIAL_INVALID_OUTBOX_ARG bad argument to an outbox_*		  (not reachable by clients)
 *											   function (NULL id, count outside
 *											   1..1000, negative interval)
 *	SC020	 ERRCODE_SOCIAL_APPEND_ONLY		   UPDATE/DELETE/TRUNCATE of a log	  (not reachable by clients)
 *
 * Anything else (42501 permission denied, 40P01 deadlock, 53xxx resources,
 * ...) is not the user's fault and maps to internal_server_error.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SOCIAL_ERRORS_H
#define SOCIAL_ERRORS_H

#include "utils/elog.h"

#define ERRCODE_SOCIAL_INVALID_TRANSITION MAKE_SQLSTATE('S', 'C', '0', '0', '1')
#define ERRCODE_SOCIAL_SELF_ACTION MAKE_SQLSTATE('S', 'C', '0', '0', '2')
#define ERRCODE_SOCIAL_BLOCKED MAKE_SQLSTATE('S', 'C', '0', '0', '3')
#define ERRCODE_SOCIAL_RATE_LIMITED MAKE_SQLSTATE('S', 'C', '0', '0', '4')
#define ERRCODE_SOCIAL_MESSAGE_TOO_LONG MAKE_SQLSTATE('S', 'C', '0', '0', '5')
#define ERRCODE_SOCIAL_FRIEND_LIMIT MAKE_SQLSTATE('S', 'C', '0', '0', '6')
#define ERRCODE_SOCIAL_PENDING_LIMIT MAKE_SQLSTATE('S', 'C', '0', '0', '7')
#define ERRCODE_SOCIAL_MESSAGE_NOT_ALLOWED MAKE_SQLSTATE('S', 'C', '0', '0', '8')
#define ERRCODE_SOCIAL_INVALID_ADDRESS MAKE_SQLSTATE('S', 'C', '0', '1', '0')
#define ERRCODE_SOCIAL_INVALID_ACTION MAKE_SQLSTATE('S', 'C', '0', '1', '1')
#define ERRCODE_SOCIAL_INVALID_SETTING MAKE_SQLSTATE('S', 'C', '0', '1', '2')
#define ERRCODE_SOCIAL_TOO_MANY_ADDRESSES MAKE_SQLSTATE('S', 'C', '0', '1', '3')
#define ERRCODE_SOCIAL_INVALID_LIST MAKE_SQLSTATE('S', 'C', '0', '1', '4')
#define ERRCODE_SOCIAL_IMPORT_SOURCE MAKE_SQLSTATE('S', 'C', '0', '1', '5')
#define ERRCODE_SOCIAL_INVALID_OUTBOX_ARG MAKE_SQLSTATE('S', 'C', '0', '1', '6')
#define ERRCODE_SOCIAL_APPEND_ONLY MAKE_SQLSTATE('S', 'C', '0', '2', '0')

#endif /* SOCIAL_ERRORS_H */
