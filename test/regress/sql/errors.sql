-- errors: every SQLSTATE of extension/errors.h that SQL can reach, with its message, and proof
-- that a refused call writes nothing.
--
-- Pattern: "SELECT pg_temp.counts() AS before \gset" stores the row counts of every social table;
-- after each refused call, "SELECT :'SQLSTATE' ..., pg_temp.counts() = :'before'" prints the
-- error's SQLSTATE (psql's variable; 00000 would mean the call succeeded) and whether the tables
-- are unchanged.
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

\set alice '''0xa11ce00000000000000000000000000000000001'''
\set bob '''0xb0b0000000000000000000000000000000000001'''
\set carol '''0xca40100000000000000000000000000000000001'''
\set dave '''0xda7e000000000000000000000000000000000001'''
\set erin '''0xe414000000000000000000000000000000000001'''
\set frank '''0xf4a4c00000000000000000000000000000000001'''
\set grace '''0x64ace00000000000000000000000000000000001'''
\set heidi '''0x4e1d100000000000000000000000000000000001'''

-- Starting point: alice and bob are friends, carol sent dave a request, erin rejected frank.
SELECT status FROM social.upsert_friendship(:alice, :bob, 'request');
SELECT status FROM social.upsert_friendship(:bob, :alice, 'accept');
SELECT status FROM social.upsert_friendship(:carol, :dave, 'request');
SELECT status FROM social.upsert_friendship(:frank, :erin, 'request');
SELECT status FROM social.upsert_friendship(:erin, :frank, 'reject');
SELECT pg_temp.counts();
SELECT pg_temp.counts() AS before \gset

-- =============================================================================================
-- SC001: the action is not allowed from the pair's current state, or not by this user.
-- =============================================================================================
-- accept / reject / cancel / delete with no friendship at all
SELECT * FROM social.upsert_friendship(:alice, :carol, 'accept');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:alice, :carol, 'reject');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:alice, :carol, 'cancel');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:alice, :carol, 'delete');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- carol requested dave: carol cannot accept or reject her own request
SELECT * FROM social.upsert_friendship(:carol, :dave, 'accept');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:carol, :dave, 'reject');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- ... dave cannot cancel carol's request
SELECT * FROM social.upsert_friendship(:dave, :carol, 'cancel');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- ... neither can request again while it is pending, in either direction
SELECT * FROM social.upsert_friendship(:carol, :dave, 'request');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:dave, :carol, 'request');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- ... and a pending request cannot be deleted (it is not a friendship yet)
SELECT * FROM social.upsert_friendship(:carol, :dave, 'delete');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:dave, :carol, 'delete');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- friends: no request, accept, reject or cancel, by either side
SELECT * FROM social.upsert_friendship(:alice, :bob, 'request');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:alice, :bob, 'accept');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:bob, :alice, 'reject');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:bob, :alice, 'cancel');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- rejected: only a new request is allowed
SELECT * FROM social.upsert_friendship(:frank, :erin, 'accept');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:erin, :frank, 'delete');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:frank, :erin, 'cancel');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- deleted: deleting again is refused
SELECT status FROM social.upsert_friendship(:alice, :bob, 'delete');
SELECT pg_temp.counts() AS before \gset
SELECT * FROM social.upsert_friendship(:bob, :alice, 'delete');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:alice, :bob, 'accept');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- canceled: accepting a canceled request is refused
SELECT status FROM social.upsert_friendship(:carol, :dave, 'cancel');
SELECT pg_temp.counts() AS before \gset
SELECT * FROM social.upsert_friendship(:dave, :carol, 'accept');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:carol, :dave, 'cancel');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;

-- =============================================================================================
-- SC002: a user acting on themselves.
-- =============================================================================================
SELECT * FROM social.upsert_friendship(:alice, :alice, 'request');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- the same user in two spellings is still the same user
SELECT * FROM social.upsert_friendship(:alice, '0x' || upper(substr(:alice, 3)), 'request');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:alice, :alice, 'accept');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:alice, :alice, 'delete');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.block_user(:alice, :alice);
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.unblock_user(:alice, :alice);
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;

-- =============================================================================================
-- SC003: either user blocks the other; every action is refused, in both directions.
-- =============================================================================================
-- alice and bob are friends again, then alice blocks bob.
SELECT status FROM social.upsert_friendship(:bob, :alice, 'request');
SELECT status FROM social.upsert_friendship(:alice, :bob, 'accept');
SELECT address FROM social.block_user(:alice, :bob);
-- carol requests dave again, then dave blocks carol (the request is ended by the block).
SELECT status FROM social.upsert_friendship(:carol, :dave, 'request');
SELECT address FROM social.block_user(:dave, :carol);
-- erin blocks frank, with whom she has no open friendship.
SELECT address FROM social.block_user(:erin, :frank);
SELECT pg_temp.counts();
SELECT pg_temp.counts() AS before \gset
-- the blocker
SELECT * FROM social.upsert_friendship(:alice, :bob, 'request');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:alice, :bob, 'delete');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- the blocked user
SELECT * FROM social.upsert_friendship(:bob, :alice, 'request');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:bob, :alice, 'delete');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- the request that was open when dave blocked carol can no longer be answered or canceled
SELECT * FROM social.upsert_friendship(:dave, :carol, 'accept');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:dave, :carol, 'reject');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:carol, :dave, 'cancel');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:carol, :dave, 'request', 'please?');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- a block without any friendship row refuses too, both ways
SELECT * FROM social.upsert_friendship(:frank, :erin, 'request');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:erin, :frank, 'request');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- SC003 wins over SC001: the state machine is not consulted for a blocked pair
SELECT * FROM social.upsert_friendship(:frank, :erin, 'accept');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;

-- =============================================================================================
-- SC004: rate limited (details in the policies test).
-- =============================================================================================
-- grace has taken no action yet; with a limit of one action per minute, her second is refused.
SET social.actor_actions_per_minute = 1;
SELECT status FROM social.upsert_friendship(:grace, :heidi, 'request');
SELECT pg_temp.counts() AS before \gset
SELECT * FROM social.upsert_friendship(:grace, :alice, 'request');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.block_user(:grace, :alice);
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- with a limit of one action per pair and minute, heidi cannot answer grace's request yet.
SET social.actor_actions_per_minute = 0;
SET social.pair_actions_per_minute = 1;
SELECT * FROM social.upsert_friendship(:heidi, :grace, 'accept');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SET social.pair_actions_per_minute = 0;

-- =============================================================================================
-- SC005: request message over social.max_message_length (140 characters by default).
-- =============================================================================================
SHOW social.max_message_length;
SELECT * FROM social.upsert_friendship(:bob, :carol, 'request', repeat('x', 141));
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;

-- =============================================================================================
-- SC006: a side would exceed social.max_friends.
-- =============================================================================================
SET social.max_friends = 1;
-- bob has no friends (alice blocked him); carol has none; bob requests carol, carol accepts.
SELECT status FROM social.upsert_friendship(:bob, :carol, 'request');
SELECT status FROM social.upsert_friendship(:carol, :bob, 'accept');
SELECT status FROM social.upsert_friendship(:erin, :bob, 'request');
SELECT pg_temp.counts() AS before \gset
SELECT * FROM social.upsert_friendship(:bob, :erin, 'accept');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
RESET social.max_friends;

-- =============================================================================================
-- SC007: the actor has social.max_pending_requests open requests.
-- =============================================================================================
SET social.max_pending_requests = 1;
-- erin's request to bob is open
SELECT * FROM social.upsert_friendship(:erin, :dave, 'request');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
RESET social.max_pending_requests;

-- =============================================================================================
-- SC008: a message with anything but a request.
-- =============================================================================================
SELECT * FROM social.upsert_friendship(:bob, :erin, 'accept', 'welcome');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:bob, :erin, 'reject', 'no thanks');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:erin, :bob, 'cancel', 'oops');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:bob, :carol, 'delete', 'bye');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;

-- =============================================================================================
-- SC010: invalid address (every case in the addresses test).
-- =============================================================================================
SELECT * FROM social.upsert_friendship(:alice, '0xb0b', 'request');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.block_user(NULL, :bob);
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;

-- =============================================================================================
-- SC011: unknown action.
-- =============================================================================================
SELECT * FROM social.upsert_friendship(:bob, :erin, 'befriend');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:bob, :erin, NULL);
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:bob, :erin, '');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:bob, :erin, ' accept');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- 'block' is an action of the log, but blocks are made with block_user
SELECT * FROM social.upsert_friendship(:bob, :erin, 'block');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_friendship(:bob, :erin, 'Block');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- action names are case-insensitive
SELECT status FROM social.upsert_friendship(:bob, :erin, 'Reject');
SELECT action FROM social.friendship_actions ORDER BY seq DESC LIMIT 1;
SELECT pg_temp.counts() AS before \gset

-- =============================================================================================
-- SC012: unknown settings value.
-- =============================================================================================
SELECT * FROM social.upsert_settings(:alice, 'friends_only');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_settings(:alice, NULL, 'hide');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_settings(:alice, NULL, NULL, 'SHOW');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- one bad value refuses the whole call, the good ones included
SELECT * FROM social.upsert_settings(:alice, 'only_friends', 'show_messages', '');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;

-- =============================================================================================
-- SC013: more than 50 addresses, or NULL.
-- =============================================================================================
SELECT count(*) AS fifty_is_fine FROM social.private_messages_settings(:alice,
	ARRAY(SELECT '0x' || lpad(to_hex(i), 40, '0') FROM generate_series(1, 50) i));
SELECT * FROM social.private_messages_settings(:alice,
	ARRAY(SELECT '0x' || lpad(to_hex(i), 40, '0') FROM generate_series(1, 51) i));
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- duplicates count: 51 entries are refused even though they name one address
SELECT * FROM social.private_messages_settings(:alice, array_fill(:bob::text, ARRAY[51]));
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.private_messages_settings(:alice, NULL);
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;

-- =============================================================================================
-- SC014: a paged list name that is no list (0.3.0), or NULL.  sociald only ever sends the five
-- names, so no client reaches it.
-- =============================================================================================
SELECT social.page_limit('friend_requests', 10);
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT social.page_number(NULL, 10, 0);
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;

-- =============================================================================================
-- SC020: the logs are append-only, for the superuser too.
-- =============================================================================================
SELECT current_setting('is_superuser') AS is_superuser;
UPDATE social.friendship_actions SET action = 'accept' WHERE action = 'reject';
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
DELETE FROM social.friendship_actions;
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- the trigger is per statement: even a statement that matches no row is refused
DELETE FROM social.friendship_actions WHERE false;
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
TRUNCATE social.friendship_actions;
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
-- truncating the friendships with CASCADE would empty the log: refused too
TRUNCATE social.friendships CASCADE;
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
UPDATE social.block_actions SET action = 'unblock';
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
DELETE FROM social.block_actions WHERE action = 'block';
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
TRUNCATE social.block_actions;
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;

SELECT pg_temp.counts();
SELECT count(*) AS inconsistent_friend_sets FROM social.check_friend_sets();
