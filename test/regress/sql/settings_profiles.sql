-- settings_profiles: privacy settings (get_settings, upsert_settings, private_messages_settings)
-- and display profiles (upsert_profile, get_profiles).
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

-- =============================================================================================
-- get_settings / upsert_settings
-- =============================================================================================
-- An address without a row reads as the defaults, and reading writes nothing.
SELECT * FROM social.get_settings(:alice);
SELECT count(*) AS settings_rows FROM social.settings;

-- Each call sets what it names and keeps the rest.
SELECT * FROM social.upsert_settings(:alice, 'only_friends');
SELECT * FROM social.upsert_settings(:alice, NULL, 'do_not_show_messages');
SELECT * FROM social.upsert_settings(:alice, NULL, NULL, 'hide');
SELECT * FROM social.get_settings(:alice);
SELECT * FROM social.upsert_settings(:alice, 'all');
SELECT * FROM social.upsert_settings(me => :alice, new_show_situation_reactions => 'show');
-- nothing named: nothing changes
SELECT * FROM social.upsert_settings(:alice);
SELECT * FROM social.get_settings(:alice);
-- a first call for a new address fills the unnamed settings with the defaults
SELECT * FROM social.upsert_settings(:bob, NULL, NULL, 'hide');
SELECT address, private_messages_privacy, blocked_users_messages_visibility,
	   show_situation_reactions
FROM social.settings ORDER BY address;

-- Invalid values: SC012, and nothing written (the valid values of the same call neither).
SELECT pg_temp.counts() AS before \gset
SELECT * FROM social.upsert_settings(:alice, 'nobody');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_settings(:alice, 'ONLY_FRIENDS');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_settings(:alice, 'only_friends', 'show');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_settings(:alice, 'only_friends', 'show_messages', 'show_messages');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.upsert_settings(:carol, '');
SELECT :'SQLSTATE' AS sqlstate, pg_temp.counts() = :'before' AS nothing_written;
SELECT address, private_messages_privacy, blocked_users_messages_visibility,
	   show_situation_reactions
FROM social.settings ORDER BY address;

-- =============================================================================================
-- private_messages_settings
-- =============================================================================================
-- alice is friends with bob and carol; bob only lets friends message him; dave blocks alice.
SELECT status FROM social.upsert_friendship(:alice, :bob, 'request');
SELECT status FROM social.upsert_friendship(:bob, :alice, 'accept');
SELECT status FROM social.upsert_friendship(:carol, :alice, 'request');
SELECT status FROM social.upsert_friendship(:alice, :carol, 'accept');
SELECT status FROM social.upsert_friendship(:alice, :dave, 'request');
SELECT address FROM social.block_user(:dave, :alice);
SELECT private_messages_privacy FROM social.upsert_settings(:bob, 'only_friends');
SELECT private_messages_privacy FROM social.upsert_settings(:dave, 'only_friends');

-- One row per distinct address (any spelling), in lower case, ordered by address; unknown
-- addresses have the default; is_friend is from me's point of view.
SELECT * FROM social.private_messages_settings(:alice,
	ARRAY[:erin, :bob, '0xB0B0000000000000000000000000000000000001', :carol, :dave, :bob, :alice])
ORDER BY address;
-- the other way round
SELECT * FROM social.private_messages_settings(:bob, ARRAY[:alice, :carol]) ORDER BY address;
-- nothing asked, nothing returned
SELECT count(*) AS rows FROM social.private_messages_settings(:alice, ARRAY[]::text[]);
-- 50 entries are allowed, duplicates included
SELECT count(*) AS rows, count(*) FILTER (WHERE is_friend) AS friends
FROM social.private_messages_settings(:alice, array_fill(:bob::text, ARRAY[50]));

-- =============================================================================================
-- upsert_profile / get_profiles
-- =============================================================================================
-- Every address asked for comes back; unknown ones with an empty name and picture.
SELECT * FROM social.get_profiles(ARRAY[:alice, :bob]) ORDER BY address;
SELECT count(*) AS profile_rows FROM social.profiles;

SELECT social.upsert_profile(:alice, 'Alice', true, 'https://example.com/a.png', '{1,0.5,0}');
SELECT social.upsert_profile(:bob, 'bob#b0b1');
SELECT * FROM social.get_profiles(ARRAY[:alice, :bob, :carol, :alice]) ORDER BY address;
SELECT address, name, has_claimed_name, profile_picture_url, name_color_r, name_color_g,
	   name_color_b
FROM social.profiles ORDER BY address;

-- An upsert replaces the whole profile: what it does not name is cleared.
SELECT social.upsert_profile(:alice, 'Alice2');
SELECT * FROM social.get_profiles(ARRAY[:alice]) ORDER BY address;
SELECT social.upsert_profile(address => :alice, name => 'Alice3', has_claimed_name => NULL,
							 name_color => '{0,0,1}');
SELECT * FROM social.get_profiles(ARRAY[:alice]) ORDER BY address;

-- Empty and NULL arrays ask for nothing.
SELECT count(*) AS rows FROM social.get_profiles(ARRAY[]::text[]);
SELECT count(*) AS rows FROM social.get_profiles(NULL);

-- A colour out of [0, 1], or with a missing component, is refused with SC012
-- and nothing is written.
SELECT pg_temp.counts() AS before \gset
\set VERBOSITY sqlstate
SELECT social.upsert_profile(:carol, 'carol', false, NULL, '{1.5,0,0}');
SELECT social.upsert_profile(:carol, 'carol', false, NULL, '{1,0}');
\set VERBOSITY default
SELECT pg_temp.counts() = :'before' AS nothing_written;
SELECT * FROM social.get_profiles(ARRAY[:carol]) ORDER BY address;
