-- policies: rate limits per actor and per pair, message length, max friends, max pending
-- requests; 0 turns each off; only a superuser may change them; a refusal writes nothing.
--
-- Every scenario uses users that have taken no action yet, because the rate limits count the
-- actions of the last 60 seconds, including those taken while a limit was off.
DROP EXTENSION social;
CREATE EXTENSION social;
SET social.actor_actions_per_minute = 0;
SET social.pair_actions_per_minute = 0;
\set SHOW_CONTEXT never

CREATE FUNCTION pg_temp.counts() RETURNS text LANGUAGE sql AS $$
	SELECT format('friendships=%s friendship_actions=%s blocks=%s block_actions=%s '
				  'friend_sets=%s settings=%s profiles=%s',
				  (SELECT count(*) FROM social.friendships),
				  (SELECT count(*) FROM social.friendship_actions),
				  (SELECT count(*) FROM social.blocks),
				  (SELECT count(*) FROM social.block_actions),
				  (SELECT count(*) FROM social.friend_sets),
				  (SELECT count(*) FROM social.settings),
				  (SELECT count(*) FROM social.profiles))
$$;
-- User number i of group g: '0x' + g (2 hex digits) + i, padded.
CREATE FUNCTION pg_temp.u(g integer, i integer) RETURNS text LANGUAGE sql IMMUTABLE
	RETURN '0x' || lpad(to_hex(g), 2, '0') || lpad(to_hex(i), 38, '0');

-- The defaults.
SELECT name, boot_val AS "default", context, short_desc FROM pg_settings WHERE name LIKE 'social.%' ORDER BY name;

-- =============================================================================================
-- social.actor_actions_per_minute
-- =============================================================================================
SET social.actor_actions_per_minute = 3;
-- Group 1: user 1 acts; users 2..6 are targets.
SELECT status FROM social.upsert_friendship(pg_temp.u(1, 1), pg_temp.u(1, 2), 'request');
SELECT status FROM social.upsert_friendship(pg_temp.u(1, 1), pg_temp.u(1, 3), 'request');
SELECT status FROM social.upsert_friendship(pg_temp.u(1, 1), pg_temp.u(1, 4), 'request');
SELECT pg_temp.counts() AS before \gset
-- the 4th action of the minute is refused, whatever it is
SELECT status FROM social.upsert_friendship(pg_temp.u(1, 1), pg_temp.u(1, 5), 'request');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT status FROM social.upsert_friendship(pg_temp.u(1, 1), pg_temp.u(1, 2), 'cancel');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT address FROM social.block_user(pg_temp.u(1, 1), pg_temp.u(1, 6));
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- refused actions are not counted: still 3 (see DETAIL)
SELECT status FROM social.upsert_friendship(pg_temp.u(1, 1), pg_temp.u(1, 5), 'request');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- other actors are not affected, even on the same pairs
SELECT status FROM social.upsert_friendship(pg_temp.u(1, 2), pg_temp.u(1, 1), 'accept');
SELECT status FROM social.upsert_friendship(pg_temp.u(1, 5), pg_temp.u(1, 1), 'request');
-- a higher limit lets the actor go on at once
SET social.actor_actions_per_minute = 4;
SELECT status FROM social.upsert_friendship(pg_temp.u(1, 1), pg_temp.u(1, 5), 'accept');
SET social.actor_actions_per_minute = 3;

-- Blocks and unblocks count too.  Group 2: user 1 blocks, unblocks, requests: 3 actions.
SELECT address FROM social.block_user(pg_temp.u(2, 1), pg_temp.u(2, 2));
SELECT address, was_blocked FROM social.unblock_user(pg_temp.u(2, 1), pg_temp.u(2, 2));
SELECT status FROM social.upsert_friendship(pg_temp.u(2, 1), pg_temp.u(2, 3), 'request');
SELECT pg_temp.counts() AS before \gset
SELECT address FROM social.block_user(pg_temp.u(2, 1), pg_temp.u(2, 4));
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT address FROM social.block_user(pg_temp.u(2, 1), pg_temp.u(2, 2));
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;

-- Rows written as a side effect are not counted twice.  Group 3: users 1 and 2 become friends
-- (one action each), then user 1 blocks user 2 (a block_actions row plus a 'block' friendship
-- action) and unblocks (an 'unblock' row plus a 'delete' friendship action): 3 actions, not 5.
SET social.actor_actions_per_minute = 0;
SELECT status FROM social.upsert_friendship(pg_temp.u(3, 1), pg_temp.u(3, 2), 'request');
SELECT status FROM social.upsert_friendship(pg_temp.u(3, 2), pg_temp.u(3, 1), 'accept');
SET social.actor_actions_per_minute = 3;
SELECT address FROM social.block_user(pg_temp.u(3, 1), pg_temp.u(3, 2));
SELECT address, was_blocked FROM social.unblock_user(pg_temp.u(3, 1), pg_temp.u(3, 2));
SELECT action, acting_user = pg_temp.u(3, 1) AS by_user_1
FROM social.friendship_history(pg_temp.u(3, 1), pg_temp.u(3, 2)) ORDER BY seq;
SELECT pg_temp.counts() AS before \gset
SELECT status FROM social.upsert_friendship(pg_temp.u(3, 1), pg_temp.u(3, 2), 'request');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- the 'block' and 'delete' written for user 1 did not count for user 2 either: user 2 has taken
-- one action (the accept)
SELECT status FROM social.upsert_friendship(pg_temp.u(3, 2), pg_temp.u(3, 1), 'request');
SELECT status FROM social.upsert_friendship(pg_temp.u(3, 2), pg_temp.u(3, 1), 'cancel');
SELECT pg_temp.counts() AS before \gset
SELECT status FROM social.upsert_friendship(pg_temp.u(3, 2), pg_temp.u(3, 1), 'request');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;

-- Calls that change nothing are not refused and not counted: blocking a user already blocked,
-- unblocking a user who is not blocked.  Group 4: user 1 blocks 2 and 3 and requests 4.
SELECT address FROM social.block_user(pg_temp.u(4, 1), pg_temp.u(4, 2));
SELECT address FROM social.block_user(pg_temp.u(4, 1), pg_temp.u(4, 3));
SELECT status FROM social.upsert_friendship(pg_temp.u(4, 1), pg_temp.u(4, 4), 'request');
SELECT pg_temp.counts() AS before \gset
SELECT address FROM social.block_user(pg_temp.u(4, 1), pg_temp.u(4, 2));
SELECT address, was_blocked FROM social.unblock_user(pg_temp.u(4, 1), pg_temp.u(4, 5));
SELECT pg_temp.counts() = :'before' AS nothing_written;
SELECT address, was_blocked FROM social.unblock_user(pg_temp.u(4, 1), pg_temp.u(4, 2));
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SET social.actor_actions_per_minute = 0;

-- =============================================================================================
-- social.pair_actions_per_minute: actions of both users on one pair.
-- =============================================================================================
SET social.pair_actions_per_minute = 2;
-- Group 5: 1 requests 2, 2 rejects; a new request is the pair's 3rd action.
SELECT status FROM social.upsert_friendship(pg_temp.u(5, 1), pg_temp.u(5, 2), 'request');
SELECT status FROM social.upsert_friendship(pg_temp.u(5, 2), pg_temp.u(5, 1), 'reject');
SELECT pg_temp.counts() AS before \gset
SELECT status FROM social.upsert_friendship(pg_temp.u(5, 1), pg_temp.u(5, 2), 'request');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT status FROM social.upsert_friendship(pg_temp.u(5, 2), pg_temp.u(5, 1), 'request');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT address FROM social.block_user(pg_temp.u(5, 2), pg_temp.u(5, 1));
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- other pairs of the same users are not affected
SELECT status FROM social.upsert_friendship(pg_temp.u(5, 1), pg_temp.u(5, 3), 'request');
SELECT status FROM social.upsert_friendship(pg_temp.u(5, 3), pg_temp.u(5, 1), 'accept');
SELECT status FROM social.upsert_friendship(pg_temp.u(5, 2), pg_temp.u(5, 3), 'request');

-- Blocks count for the pair, in both directions, with or without a friendship row.
-- Group 6: 1 blocks 2, 2 blocks 1: the pair's 2 actions.
SELECT address FROM social.block_user(pg_temp.u(6, 1), pg_temp.u(6, 2));
SELECT address FROM social.block_user(pg_temp.u(6, 2), pg_temp.u(6, 1));
SELECT pg_temp.counts() AS before \gset
SELECT address, was_blocked FROM social.unblock_user(pg_temp.u(6, 1), pg_temp.u(6, 2));
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;

-- Side effects are not counted twice for the pair either.  Group 7, limit 3: request, accept,
-- block (a block_actions row and a 'block' friendship action) are 3 actions, not 4.
SET social.pair_actions_per_minute = 3;
SELECT status FROM social.upsert_friendship(pg_temp.u(7, 1), pg_temp.u(7, 2), 'request');
SELECT status FROM social.upsert_friendship(pg_temp.u(7, 2), pg_temp.u(7, 1), 'accept');
SELECT address FROM social.block_user(pg_temp.u(7, 1), pg_temp.u(7, 2));
SELECT pg_temp.counts() AS before \gset
SELECT address, was_blocked FROM social.unblock_user(pg_temp.u(7, 1), pg_temp.u(7, 2));
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SET social.pair_actions_per_minute = 0;
SELECT address, was_blocked FROM social.unblock_user(pg_temp.u(7, 1), pg_temp.u(7, 2));

-- =============================================================================================
-- social.max_message_length: characters, not bytes; 0 = no limit.
-- =============================================================================================
SHOW social.max_message_length;
SELECT getdatabaseencoding() AS encoding;
SELECT status FROM social.upsert_friendship(pg_temp.u(8, 1), pg_temp.u(8, 2), 'request', repeat('x', 140));
SELECT pg_temp.counts() AS before \gset
SELECT status FROM social.upsert_friendship(pg_temp.u(8, 1), pg_temp.u(8, 3), 'request', repeat('x', 141));
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- 140 two-byte and 140 four-byte characters are 140 characters
SELECT status FROM social.upsert_friendship(pg_temp.u(8, 1), pg_temp.u(8, 3), 'request', repeat('é', 140));
SELECT status FROM social.upsert_friendship(pg_temp.u(8, 1), pg_temp.u(8, 4), 'request', repeat('😀', 140));
SELECT pg_temp.counts() AS before \gset
SELECT status FROM social.upsert_friendship(pg_temp.u(8, 1), pg_temp.u(8, 5), 'request', repeat('é', 141));
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT status FROM social.upsert_friendship(pg_temp.u(8, 1), pg_temp.u(8, 5), 'request', repeat('😀', 139) || 'xy');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- the messages are stored whole
SELECT right(address, 1) AS to_user, length(message) AS characters, octet_length(message) AS bytes
FROM social.sent_requests(pg_temp.u(8, 1)) ORDER BY address;
-- an empty message is no message
SELECT status FROM social.upsert_friendship(pg_temp.u(8, 1), pg_temp.u(8, 6), 'request', '');
SELECT metadata IS NULL AS no_metadata FROM social.friendship_actions
WHERE acting_user = pg_temp.u(8, 1) AND target_user = pg_temp.u(8, 6) ORDER BY seq;
SELECT message IS NULL AS no_message FROM social.pending_requests(pg_temp.u(8, 6)) ORDER BY address;
-- another limit
SET social.max_message_length = 5;
SELECT status FROM social.upsert_friendship(pg_temp.u(8, 7), pg_temp.u(8, 8), 'request', 'héllo');
SELECT pg_temp.counts() AS before \gset
SELECT status FROM social.upsert_friendship(pg_temp.u(8, 7), pg_temp.u(8, 9), 'request', 'héllo!');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- 0 turns the limit off
SET social.max_message_length = 0;
SELECT status FROM social.upsert_friendship(pg_temp.u(8, 7), pg_temp.u(8, 9), 'request', repeat('long ', 2000));
SELECT length(message) AS characters FROM social.pending_requests(pg_temp.u(8, 9)) ORDER BY address;
RESET social.max_message_length;

-- =============================================================================================
-- social.max_friends: an accept is refused when either side is at the limit.
-- =============================================================================================
SET social.max_friends = 2;
-- Group 9: user 1 has 2 friends (2, 3); user 4 has 2 friends (5, 6).
SELECT status FROM social.upsert_friendship(pg_temp.u(9, 2), pg_temp.u(9, 1), 'request');
SELECT status FROM social.upsert_friendship(pg_temp.u(9, 1), pg_temp.u(9, 2), 'accept');
SELECT status FROM social.upsert_friendship(pg_temp.u(9, 3), pg_temp.u(9, 1), 'request');
SELECT status FROM social.upsert_friendship(pg_temp.u(9, 1), pg_temp.u(9, 3), 'accept');
SELECT status FROM social.upsert_friendship(pg_temp.u(9, 4), pg_temp.u(9, 5), 'request');
SELECT status FROM social.upsert_friendship(pg_temp.u(9, 5), pg_temp.u(9, 4), 'accept');
SELECT status FROM social.upsert_friendship(pg_temp.u(9, 4), pg_temp.u(9, 6), 'request');
SELECT status FROM social.upsert_friendship(pg_temp.u(9, 6), pg_temp.u(9, 4), 'accept');
-- requests are still allowed at the limit
SELECT status FROM social.upsert_friendship(pg_temp.u(9, 7), pg_temp.u(9, 1), 'request');
SELECT status FROM social.upsert_friendship(pg_temp.u(9, 4), pg_temp.u(9, 7), 'request');
SELECT pg_temp.counts() AS before \gset
-- the accepting user is at the limit
SELECT status FROM social.upsert_friendship(pg_temp.u(9, 1), pg_temp.u(9, 7), 'accept');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- the requesting user is at the limit
SELECT status FROM social.upsert_friendship(pg_temp.u(9, 7), pg_temp.u(9, 4), 'accept');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- after a delete there is room again
SELECT status FROM social.upsert_friendship(pg_temp.u(9, 1), pg_temp.u(9, 3), 'delete');
SELECT status FROM social.upsert_friendship(pg_temp.u(9, 1), pg_temp.u(9, 7), 'accept');
SELECT social.friend_count(pg_temp.u(9, 1)) AS user_1, social.friend_count(pg_temp.u(9, 7)) AS user_7;
-- a lower limit than a user's friends refuses new friends, keeps the old ones
SET social.max_friends = 1;
SELECT status FROM social.upsert_friendship(pg_temp.u(9, 8), pg_temp.u(9, 2), 'request');
SELECT pg_temp.counts() AS before \gset
SELECT status FROM social.upsert_friendship(pg_temp.u(9, 2), pg_temp.u(9, 8), 'accept');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT social.friend_count(pg_temp.u(9, 4)) AS user_4;
-- 0 turns the limit off
SET social.max_friends = 0;
SELECT status FROM social.upsert_friendship(pg_temp.u(9, 7), pg_temp.u(9, 4), 'accept');
SELECT status FROM social.upsert_friendship(pg_temp.u(9, 2), pg_temp.u(9, 8), 'accept');
SELECT social.friend_count(pg_temp.u(9, 4)) AS user_4, social.friend_count(pg_temp.u(9, 7)) AS user_7;
SELECT count(*) AS inconsistent_friend_sets FROM social.check_friend_sets();

-- =============================================================================================
-- social.max_pending_requests: open requests sent by the actor.
-- =============================================================================================
SET social.max_pending_requests = 2;
-- Group 10: user 1 requests 2 and 3; user 4 requests user 1 (received requests do not count).
SELECT status FROM social.upsert_friendship(pg_temp.u(10, 1), pg_temp.u(10, 2), 'request');
SELECT status FROM social.upsert_friendship(pg_temp.u(10, 1), pg_temp.u(10, 3), 'request');
SELECT status FROM social.upsert_friendship(pg_temp.u(10, 4), pg_temp.u(10, 1), 'request');
SELECT pg_temp.counts() AS before \gset
SELECT status FROM social.upsert_friendship(pg_temp.u(10, 1), pg_temp.u(10, 5), 'request');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- answering a request is not sending one
SELECT status FROM social.upsert_friendship(pg_temp.u(10, 1), pg_temp.u(10, 4), 'accept');
-- a request that was accepted, rejected or canceled is no longer open
SELECT status FROM social.upsert_friendship(pg_temp.u(10, 2), pg_temp.u(10, 1), 'accept');
SELECT status FROM social.upsert_friendship(pg_temp.u(10, 1), pg_temp.u(10, 5), 'request');
SELECT status FROM social.upsert_friendship(pg_temp.u(10, 1), pg_temp.u(10, 3), 'cancel');
SELECT status FROM social.upsert_friendship(pg_temp.u(10, 1), pg_temp.u(10, 6), 'request');
SELECT pg_temp.counts() AS before \gset
SELECT status FROM social.upsert_friendship(pg_temp.u(10, 1), pg_temp.u(10, 7), 'request');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- a request ended by a block is no longer open
SELECT address FROM social.block_user(pg_temp.u(10, 6), pg_temp.u(10, 1));
SELECT status FROM social.upsert_friendship(pg_temp.u(10, 1), pg_temp.u(10, 7), 'request');
SELECT right(address, 1) AS to_user FROM social.sent_requests(pg_temp.u(10, 1)) ORDER BY address;
-- 0 turns the limit off
SET social.max_pending_requests = 0;
SELECT status FROM social.upsert_friendship(pg_temp.u(10, 1), pg_temp.u(10, 8), 'request');
SELECT status FROM social.upsert_friendship(pg_temp.u(10, 1), pg_temp.u(10, 9), 'request');
SELECT count(*) AS open_requests FROM social.sent_requests(pg_temp.u(10, 1));

-- =============================================================================================
-- The policies are PGC_SUSET: a role that is not superuser cannot change them.
-- =============================================================================================
CREATE ROLE social_regress_policy_user NOLOGIN;
GRANT social_service TO social_regress_policy_user;
SET ROLE social_regress_policy_user;
SELECT current_setting('is_superuser') AS is_superuser;
SET social.actor_actions_per_minute = 0;
SELECT :'SQLSTATE' AS sqlstate;
SET social.pair_actions_per_minute = 0;
SELECT :'SQLSTATE' AS sqlstate;
SET social.max_message_length = 0;
SELECT :'SQLSTATE' AS sqlstate;
SET social.max_friends = 0;
SELECT :'SQLSTATE' AS sqlstate;
SET social.max_pending_requests = 0;
SELECT :'SQLSTATE' AS sqlstate;
SELECT set_config('social.max_friends', '1000000', false);
SELECT :'SQLSTATE' AS sqlstate;
-- reading them is allowed
SHOW social.max_message_length;
RESET ROLE;
DROP ROLE social_regress_policy_user;
-- nor can a new name be invented under the reserved prefix
SET social.no_such_setting = 1;
SELECT :'SQLSTATE' AS sqlstate;

SELECT count(*) AS inconsistent_friend_sets FROM social.check_friend_sets();
