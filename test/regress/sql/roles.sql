-- roles: what social_service (the daemon) and social_analyst may do, and what nobody else may.
--
-- social_service executes the API functions and touches no table; social_analyst reads the
-- tables and views and calls the read functions, never the writes.  Test roles are granted
-- the two roles and used with SET ROLE.
DROP EXTENSION social;
CREATE EXTENSION social;
SET social.actor_actions_per_minute = 0;
SET social.pair_actions_per_minute = 0;
\set SHOW_CONTEXT never

\set alice '''0xa11ce00000000000000000000000000000000001'''
\set bob '''0xb0b0000000000000000000000000000000000001'''
\set carol '''0xca40100000000000000000000000000000000001'''

-- Leftovers of an interrupted run.
SET client_min_messages = warning;
DROP ROLE IF EXISTS social_regress_daemon;
DROP ROLE IF EXISTS social_regress_analyst;
DROP ROLE IF EXISTS social_regress_nobody;
RESET client_min_messages;

CREATE ROLE social_regress_daemon NOLOGIN;
GRANT social_service TO social_regress_daemon;
CREATE ROLE social_regress_analyst NOLOGIN;
GRANT social_analyst TO social_regress_analyst;
CREATE ROLE social_regress_nobody NOLOGIN;

-- The roles the extension creates are not superusers and cannot log in.
SELECT rolname, rolsuper, rolcanlogin, rolcreaterole, rolcreatedb, rolbypassrls
FROM pg_roles WHERE rolname IN ('social_service', 'social_analyst') ORDER BY rolname;

-- =============================================================================================
-- social_service: the API functions, nothing else.
-- =============================================================================================
SET ROLE social_regress_daemon;
SELECT current_user, current_setting('is_superuser') AS is_superuser;
-- writes
SELECT status FROM social.upsert_friendship(:alice, :bob, 'request', 'hello');
SELECT status FROM social.upsert_friendship(:bob, :alice, 'accept');
SELECT status FROM social.upsert_friendship(:carol, :alice, 'request');
SELECT address FROM social.block_user(:carol, :bob);
SELECT address, was_blocked FROM social.unblock_user(:carol, :bob);
SELECT private_messages_privacy FROM social.upsert_settings(:alice, 'only_friends');
SELECT social.upsert_profile(:alice, 'alice');
-- reads
SELECT address, total FROM social.friends(:alice) ORDER BY address;
SELECT count(*) AS mutual FROM social.mutual_friends(:alice, :bob);
SELECT social.friend_count(:alice) AS friend_count, social.is_friend(:alice, :bob) AS is_friend,
	   social.friendship_status(:alice, :carol) AS status;
SELECT a AS friend_address FROM social.friend_addresses(:bob) AS a ORDER BY a;
SELECT address, message FROM social.pending_requests(:alice) ORDER BY address;
SELECT address, message FROM social.sent_requests(:carol) ORDER BY address;
SELECT count(*) AS blocked FROM social.blocked_users(:carol);
SELECT * FROM social.blocking_status(:carol);
SELECT * FROM social.get_settings(:alice);
SELECT * FROM social.private_messages_settings(:bob, ARRAY[:alice]) ORDER BY address;
SELECT address, name FROM social.get_profiles(ARRAY[:alice]) ORDER BY address;
SELECT action, message FROM social.friendship_history(:alice, :bob) ORDER BY seq;
SELECT count(*) AS suggestions FROM social.friend_suggestions(:carol);
SELECT social.normalize_address('0xA11CE00000000000000000000000000000000001') AS normalized;
SELECT count(*) AS transitions FROM social.transition_table();
SELECT social.events_cursor() IS NOT NULL AS has_cursor;
SELECT kind, action FROM social.events_since(social.events_cursor()) ORDER BY seq;
SELECT social.clamp_limit(NULL, 1, 2) AS clamp_limit, social.clamp_offset(-1) AS clamp_offset;
SELECT social.page_limit('friends', NULL) AS page_limit,
	   social.page_number('pending_requests', 10, 15) AS page_number;

-- ... but no table, view or sequence directly
SELECT count(*) FROM social.friendships;
SELECT :'SQLSTATE' AS sqlstate;
SELECT count(*) FROM social.friendship_actions;
SELECT :'SQLSTATE' AS sqlstate;
SELECT count(*) FROM social.friend_sets;
SELECT :'SQLSTATE' AS sqlstate;
SELECT count(*) FROM social.friends_view;
SELECT :'SQLSTATE' AS sqlstate;
INSERT INTO social.blocks (blocker_address, blocked_address) VALUES (:alice, :carol);
SELECT :'SQLSTATE' AS sqlstate;
INSERT INTO social.friendship_actions (friendship_id, action, acting_user, target_user)
VALUES (gen_random_uuid(), 'accept', :carol, :alice);
SELECT :'SQLSTATE' AS sqlstate;
UPDATE social.settings SET private_messages_privacy = 'all';
SELECT :'SQLSTATE' AS sqlstate;
UPDATE social.friendships SET is_active = true;
SELECT :'SQLSTATE' AS sqlstate;
DELETE FROM social.blocks;
SELECT :'SQLSTATE' AS sqlstate;
DELETE FROM social.profiles;
SELECT :'SQLSTATE' AS sqlstate;
TRUNCATE social.friend_sets;
SELECT :'SQLSTATE' AS sqlstate;
SELECT nextval('social.event_seq');
SELECT :'SQLSTATE' AS sqlstate;
-- ... and none of the maintenance functions
SELECT social.rebuild_friend_sets();
SELECT :'SQLSTATE' AS sqlstate;
SELECT count(*) FROM social.check_friend_sets();
SELECT :'SQLSTATE' AS sqlstate;
SELECT count(*) FROM social.expected_friend_sets();
SELECT :'SQLSTATE' AS sqlstate;
RESET ROLE;

-- =============================================================================================
-- social_analyst: reads everything, writes nothing.
-- =============================================================================================
SET ROLE social_regress_analyst;
SELECT current_user, current_setting('is_superuser') AS is_superuser;
-- every table and view
SELECT (SELECT count(*) FROM social.friendships) AS friendships,
	   (SELECT count(*) FROM social.friendship_actions) AS friendship_actions,
	   (SELECT count(*) FROM social.blocks) AS blocks,
	   (SELECT count(*) FROM social.block_actions) AS block_actions,
	   (SELECT count(*) FROM social.settings) AS settings,
	   (SELECT count(*) FROM social.profiles) AS profiles,
	   (SELECT count(*) FROM social.friend_sets) AS friend_sets;
SELECT address, friend FROM social.friends_view ORDER BY address, friend;
SELECT requester, requested, message FROM social.open_requests ORDER BY requester, requested;
SELECT action, sum(actions) AS actions FROM social.daily_actions GROUP BY action ORDER BY action;
SELECT address, friends FROM social.friend_counts ORDER BY address;
-- the read functions
SELECT address, total FROM social.friends(:alice) ORDER BY address;
SELECT social.friendship_status(:alice, :bob) AS status;
SELECT * FROM social.get_settings(:alice);
SELECT action FROM social.friendship_history(:alice, :bob) ORDER BY seq;
SELECT kind, action FROM social.events_since(social.events_cursor()) ORDER BY seq;
SELECT social.page_limit('blocked_users', 500) AS page_limit,
	   social.page_number('friends', NULL, 0) AS page_number;
-- no write function
SELECT * FROM social.upsert_friendship(:alice, :carol, 'accept');
SELECT :'SQLSTATE' AS sqlstate;
SELECT * FROM social.block_user(:alice, :carol);
SELECT :'SQLSTATE' AS sqlstate;
SELECT * FROM social.unblock_user(:alice, :carol);
SELECT :'SQLSTATE' AS sqlstate;
SELECT * FROM social.upsert_settings(:alice, 'all');
SELECT :'SQLSTATE' AS sqlstate;
SELECT social.upsert_profile(:alice, 'mallory');
SELECT :'SQLSTATE' AS sqlstate;
SELECT social.rebuild_friend_sets();
SELECT :'SQLSTATE' AS sqlstate;
-- no write to a table
INSERT INTO social.blocks (blocker_address, blocked_address) VALUES (:alice, :carol);
SELECT :'SQLSTATE' AS sqlstate;
INSERT INTO social.settings (address) VALUES (:carol);
SELECT :'SQLSTATE' AS sqlstate;
UPDATE social.friendships SET is_active = false;
SELECT :'SQLSTATE' AS sqlstate;
DELETE FROM social.friend_sets;
SELECT :'SQLSTATE' AS sqlstate;
TRUNCATE social.profiles;
SELECT :'SQLSTATE' AS sqlstate;
RESET ROLE;

-- =============================================================================================
-- Anybody else: nothing at all.
-- =============================================================================================
SET ROLE social_regress_nobody;
SELECT count(*) FROM social.friends(:alice);
SELECT :'SQLSTATE' AS sqlstate;
SELECT social.normalize_address(:alice);
SELECT :'SQLSTATE' AS sqlstate;
SELECT count(*) FROM social.friendships;
SELECT :'SQLSTATE' AS sqlstate;
RESET ROLE;

-- Nothing the refused statements tried was written.
SELECT (SELECT count(*) FROM social.friendships) AS friendships,
	   (SELECT count(*) FROM social.friendship_actions) AS friendship_actions,
	   (SELECT count(*) FROM social.blocks) AS blocks,
	   (SELECT count(*) FROM social.block_actions) AS block_actions,
	   (SELECT count(*) FROM social.settings) AS settings,
	   (SELECT count(*) FROM social.profiles) AS profiles,
	   (SELECT count(*) FROM social.friend_sets) AS friend_sets;
SELECT * FROM social.get_settings(:alice);
SELECT address, name FROM social.get_profiles(ARRAY[:alice]) ORDER BY address;
SELECT count(*) AS inconsistent_friend_sets FROM social.check_friend_sets();

SELECT current_user = session_user AS back_to_session_user;
DROP ROLE social_regress_daemon;
DROP ROLE social_regress_analyst;
DROP ROLE social_regress_nobody;
