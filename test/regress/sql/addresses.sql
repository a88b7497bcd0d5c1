-- addresses: validation and normalization of wallet addresses.
--
-- An address is '0x' + 40 hex digits in any case; it is stored and returned in lower case.
-- Anything else is refused with SC010, and every API function validates and normalizes every
-- address it takes.
DROP EXTENSION social;
CREATE EXTENSION social;
SET social.actor_actions_per_minute = 0;
SET social.pair_actions_per_minute = 0;
\set SHOW_CONTEXT never

-- Runs one statement; returns its first column as text, or 'SQLSTATE: message' if it fails.
CREATE FUNCTION pg_temp.attempt(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	result text;
BEGIN
	EXECUTE stmt INTO result;
	RETURN coalesce(result, '(null)');
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- The same address with every hex digit in upper case ('0x' stays lower case).
CREATE FUNCTION pg_temp.shout(address text) RETURNS text LANGUAGE sql
	RETURN '0x' || upper(substr(address, 3));

-- Checksummed (EIP-55) addresses, as clients send them.
\set alice '''0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed'''
\set bob '''0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359'''
\set carol '''0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB'''
\set dave '''0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb'''

-- ---------------------------------------------------------------------------------------------
-- normalize_address
-- ---------------------------------------------------------------------------------------------
SELECT social.normalize_address(:alice) AS alice, social.normalize_address(:dave) AS dave;
SELECT social.normalize_address('0xABCDEF0123456789ABCDEF0123456789ABCDEF01') AS upper_digits,
	   social.normalize_address('0xabcdef0123456789abcdef0123456789abcdef01') AS lower_digits;
-- Idempotent.
SELECT social.normalize_address(social.normalize_address(:bob)) = lower(:bob) AS idempotent;

-- Everything that is not exactly '0x' + 40 hex digits is refused with SC010.
SELECT label, length(input) AS len,
	   pg_temp.attempt(format('SELECT social.normalize_address(%L)', input)) AS result
FROM (VALUES
	(1, 'null', NULL),
	(2, 'empty', ''),
	(3, 'prefix only', '0x'),
	(4, '39 digits', '0x5aaeb6053f3e94c9b9a09f33669435e7ef1beae'),
	(5, '41 digits', '0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed0'),
	(6, 'no 0x, 40 digits', '5aaeb6053f3e94c9b9a09f33669435e7ef1beaed'),
	(7, 'no 0x, 42 digits', '005aaeb6053f3e94c9b9a09f33669435e7ef1beaed'),
	(8, '0X prefix', '0X5aaeb6053f3e94c9b9a09f33669435e7ef1beaed'),
	(9, 'non-hex digit g', '0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaeg'),
	(10, 'non-hex digit x', '0xx5aeb6053f3e94c9b9a09f33669435e7ef1beaed'),
	(11, 'leading space', ' 0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed'),
	(12, 'trailing space', '0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed '),
	(13, 'inner space', '0x5aaeb6053f3e94c9b9a09f3366 435e7ef1beaed'),
	(14, 'leading space, 41', ' 0x5aaeb6053f3e94c9b9a09f33669435e7ef1beae'),
	(15, 'multibyte digit', '0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaé'),
	(16, 'newline', E'0x5aaeb6053f3e94c9b9a09f33669435e7ef1beae\n')
) AS t(n, label, input)
ORDER BY n;

-- The full error, as a client sees it.
SELECT social.normalize_address('0X5aaeb6053f3e94c9b9a09f33669435e7ef1beaed');
SELECT :'SQLSTATE' AS sqlstate;
SELECT social.normalize_address(NULL);
SELECT :'SQLSTATE' AS sqlstate;

-- ---------------------------------------------------------------------------------------------
-- Every API function refuses an invalid address in every address argument, with SC010.
-- ---------------------------------------------------------------------------------------------
\set good '''0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed'''
\set bad '''0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaeZ'''
SELECT label, pg_temp.attempt(stmt) AS result
FROM (VALUES
	(1, 'upsert_friendship(bad, good, ''request'')',
		format('SELECT status FROM social.upsert_friendship(%L, %L, %L)', :bad, :good, 'request')),
	(2, 'upsert_friendship(good, bad, ''request'')',
		format('SELECT status FROM social.upsert_friendship(%L, %L, %L)', :good, :bad, 'request')),
	(3, 'upsert_friendship(NULL, good, ''request'')',
		format('SELECT status FROM social.upsert_friendship(NULL, %L, %L)', :good, 'request')),
	(4, 'upsert_friendship(good, NULL, ''request'')',
		format('SELECT status FROM social.upsert_friendship(%L, NULL, %L)', :good, 'request')),
	(5, 'block_user(bad, good)',
		format('SELECT address FROM social.block_user(%L, %L)', :bad, :good)),
	(6, 'block_user(good, bad)',
		format('SELECT address FROM social.block_user(%L, %L)', :good, :bad)),
	(7, 'block_user(NULL, good)',
		format('SELECT address FROM social.block_user(NULL, %L)', :good)),
	(8, 'unblock_user(bad, good)',
		format('SELECT address FROM social.unblock_user(%L, %L)', :bad, :good)),
	(9, 'unblock_user(good, bad)',
		format('SELECT address FROM social.unblock_user(%L, %L)', :good, :bad)),
	(10, 'unblock_user(good, NULL)',
		format('SELECT address FROM social.unblock_user(%L, NULL)', :good)),
	(11, 'friends(bad)',
		format('SELECT count(*) FROM social.friends(%L)', :bad)),
	(12, 'friends(NULL)',
		format('SELECT count(*) FROM social.friends(NULL)')),
	(13, 'mutual_friends(bad, good)',
		format('SELECT count(*) FROM social.mutual_friends(%L, %L)', :bad, :good)),
	(14, 'mutual_friends(good, bad)',
		format('SELECT count(*) FROM social.mutual_friends(%L, %L)', :good, :bad)),
	(15, 'friend_count(bad)',
		format('SELECT social.friend_count(%L)', :bad)),
	(16, 'is_friend(bad, good)',
		format('SELECT social.is_friend(%L, %L)', :bad, :good)),
	(17, 'is_friend(good, bad)',
		format('SELECT social.is_friend(%L, %L)', :good, :bad)),
	(18, 'friend_addresses(bad)',
		format('SELECT count(*) FROM social.friend_addresses(%L)', :bad)),
	(19, 'friendship_status(bad, good)',
		format('SELECT social.friendship_status(%L, %L)', :bad, :good)),
	(20, 'friendship_status(good, bad)',
		format('SELECT social.friendship_status(%L, %L)', :good, :bad)),
	(21, 'pending_requests(bad)',
		format('SELECT count(*) FROM social.pending_requests(%L)', :bad)),
	(22, 'sent_requests(bad)',
		format('SELECT count(*) FROM social.sent_requests(%L)', :bad)),
	(23, 'blocked_users(bad)',
		format('SELECT count(*) FROM social.blocked_users(%L)', :bad)),
	(24, 'blocking_status(bad)',
		format('SELECT blocked_users::text FROM social.blocking_status(%L)', :bad)),
	(25, 'get_settings(bad)',
		format('SELECT address FROM social.get_settings(%L)', :bad)),
	(26, 'upsert_settings(bad, ''all'')',
		format('SELECT address FROM social.upsert_settings(%L, %L)', :bad, 'all')),
	(27, 'private_messages_settings(bad, ARRAY[good])',
		format('SELECT count(*) FROM social.private_messages_settings(%L, ARRAY[%L])', :bad, :good)),
	(28, 'private_messages_settings(good, ARRAY[bad])',
		format('SELECT count(*) FROM social.private_messages_settings(%L, ARRAY[%L])', :good, :bad)),
	(29, 'private_messages_settings(good, ARRAY[NULL])',
		format('SELECT count(*) FROM social.private_messages_settings(%L, ARRAY[NULL])', :good)),
	(30, 'upsert_profile(bad, ''name'')',
		format('SELECT social.upsert_profile(%L, %L)', :bad, 'name')),
	(31, 'get_profiles(ARRAY[good, bad])',
		format('SELECT count(*) FROM social.get_profiles(ARRAY[%L, %L])', :good, :bad)),
	(32, 'get_profiles(ARRAY[NULL])',
		format('SELECT count(*) FROM social.get_profiles(ARRAY[NULL])')),
	(33, 'friendship_history(bad, good)',
		format('SELECT count(*) FROM social.friendship_history(%L, %L)', :bad, :good)),
	(34, 'friendship_history(good, bad)',
		format('SELECT count(*) FROM social.friendship_history(%L, %L)', :good, :bad)),
	(35, 'friend_suggestions(bad)',
		format('SELECT count(*) FROM social.friend_suggestions(%L)', :bad))
) AS t(n, label, stmt)
ORDER BY n;

-- Nothing was written by any of those calls.
SELECT (SELECT count(*) FROM social.friendships) AS friendships,
	   (SELECT count(*) FROM social.friendship_actions) AS friendship_actions,
	   (SELECT count(*) FROM social.blocks) AS blocks,
	   (SELECT count(*) FROM social.block_actions) AS block_actions,
	   (SELECT count(*) FROM social.settings) AS settings,
	   (SELECT count(*) FROM social.profiles) AS profiles,
	   (SELECT count(*) FROM social.friend_sets) AS friend_sets;

-- ---------------------------------------------------------------------------------------------
-- Every API function normalizes: write with checksummed addresses, read with any spelling.
-- ---------------------------------------------------------------------------------------------
-- alice and bob are friends, both are friends with carol; dave sent alice a request.
SELECT status FROM social.upsert_friendship(:alice, pg_temp.shout(:bob), 'request');
SELECT status FROM social.upsert_friendship(lower(:bob), :alice, 'accept');
SELECT status FROM social.upsert_friendship(:alice, :carol, 'request');
SELECT status FROM social.upsert_friendship(:carol, :alice, 'accept');
SELECT status FROM social.upsert_friendship(:bob, :carol, 'request');
SELECT status FROM social.upsert_friendship(:carol, lower(:bob), 'accept');
SELECT status FROM social.upsert_friendship(:dave, :alice, 'request', 'hi alice');
-- An action spelled with another case of the same pair hits the same friendship.
SELECT status FROM social.upsert_friendship(lower(:dave), lower(:alice), 'request');
SELECT status FROM social.upsert_friendship(lower(:alice), lower(:dave), 'request');

-- Everything is stored in lower case.
SELECT address_requester, address_requested, last_action, last_actor
FROM social.friendships ORDER BY address_requester, address_requested;
SELECT action, acting_user, target_user FROM social.friendship_actions ORDER BY seq;

-- The reads, each called with the lower-case, checksummed and upper-case spelling of alice.
CREATE TEMP TABLE spellings AS
	SELECT * FROM (VALUES
		(1, 'lower', lower(:alice)),
		(2, 'checksummed', :alice),
		(3, 'upper digits', pg_temp.shout(:alice))
	) AS t(n, spelling, me);

SELECT s.spelling,
	   (SELECT string_agg(f.address || ' total ' || f.total, ', ' ORDER BY f.address)
		FROM social.friends(s.me) f) AS friends,
	   social.friend_count(s.me) AS friend_count,
	   (SELECT string_agg(a, ', ' ORDER BY a) FROM social.friend_addresses(s.me) a) AS friend_addresses
FROM spellings s ORDER BY s.n;

SELECT s.spelling,
	   (SELECT string_agg(m.address, ', ' ORDER BY m.address)
		FROM social.mutual_friends(s.me, pg_temp.shout(:bob)) m) AS mutual_with_bob,
	   social.is_friend(s.me, pg_temp.shout(:bob)) AS is_friend_bob,
	   social.is_friend(pg_temp.shout(:bob), s.me) AS bob_is_friend,
	   social.friendship_status(s.me, :dave) AS status_dave,
	   social.friendship_status(lower(:dave), s.me) AS dave_sees
FROM spellings s ORDER BY s.n;

SELECT s.spelling,
	   (SELECT string_agg(p.address || ' "' || p.message || '"', ', ' ORDER BY p.address)
		FROM social.pending_requests(s.me) p) AS pending,
	   (SELECT count(*) FROM social.sent_requests(s.me)) AS sent,
	   (SELECT string_agg(h.action || ' by ' || h.acting_user, ', ' ORDER BY h.seq)
		FROM social.friendship_history(s.me, :dave) h) AS history_with_dave
FROM spellings s ORDER BY s.n;

SELECT s.spelling,
	   (SELECT string_agg(r.address, ', ' ORDER BY r.address)
		FROM social.sent_requests(:dave) r) AS dave_sent_to
FROM spellings s ORDER BY s.n;

-- Suggestions for dave once he is friends with bob: carol and alice are friends of bob.
SELECT status FROM social.upsert_friendship(pg_temp.shout(:bob), pg_temp.shout(:dave), 'request');
SELECT status FROM social.upsert_friendship(:dave, :bob, 'accept');
SELECT (SELECT string_agg(g.address || ' (' || g.mutual_friends || ')', ', '
						  ORDER BY g.mutual_friends DESC, g.address)
		FROM social.friend_suggestions(:dave) g) AS checksummed,
	   (SELECT string_agg(g.address || ' (' || g.mutual_friends || ')', ', '
						  ORDER BY g.mutual_friends DESC, g.address)
		FROM social.friend_suggestions(pg_temp.shout(:dave)) g) AS upper_digits;

-- Settings: written with one spelling, read with another; one row per address.
SELECT * FROM social.upsert_settings(:alice, 'only_friends');
SELECT * FROM social.upsert_settings(pg_temp.shout(:alice), NULL, 'do_not_show_messages');
SELECT s.spelling, g.* FROM spellings s, social.get_settings(s.me) g ORDER BY s.n;
SELECT address, private_messages_privacy FROM social.settings ORDER BY address;

-- private_messages_settings: duplicates in different spellings come back once, lower case.
SELECT * FROM social.private_messages_settings(pg_temp.shout(:bob),
	ARRAY[:alice, lower(:alice), pg_temp.shout(:alice), :dave, lower(:carol)])
ORDER BY address;

-- Profiles.
SELECT social.upsert_profile(:alice, 'alice', true, 'https://example.com/alice.png', '{1,0.5,0}');
SELECT social.upsert_profile(lower(:alice), 'alice2', true, NULL, NULL);
SELECT address, name, has_claimed_name FROM social.profiles ORDER BY address;
SELECT * FROM social.get_profiles(ARRAY[pg_temp.shout(:alice), lower(:alice), :alice, :bob])
ORDER BY address;

-- Blocks: block with one spelling, unblock with another.
SELECT address FROM social.block_user(:alice, pg_temp.shout(:dave));
SELECT address FROM social.block_user(lower(:alice), lower(:dave));
SELECT blocker_address, blocked_address FROM social.blocks ORDER BY blocker_address;
SELECT s.spelling,
	   (SELECT string_agg(b.address || ' total ' || b.total, ', ' ORDER BY b.address)
		FROM social.blocked_users(s.me) b) AS blocked_users,
	   (SELECT bs.blocked_users FROM social.blocking_status(s.me) bs) AS blocks,
	   (SELECT bs.blocked_by_users FROM social.blocking_status(:dave) bs) AS dave_blocked_by,
	   social.friendship_status(:dave, s.me) AS dave_sees
FROM spellings s ORDER BY s.n;
SELECT address, was_blocked FROM social.unblock_user(pg_temp.shout(:alice), :dave);
SELECT address, was_blocked FROM social.unblock_user(:alice, lower(:dave));
SELECT action, blocker_address, blocked_address FROM social.block_actions ORDER BY seq;
SELECT social.friendship_status(:alice, :dave) AS alice_sees,
	   social.friendship_status(pg_temp.shout(:dave), lower(:alice)) AS dave_sees;
SELECT action, acting_user, message
FROM social.friendship_history(pg_temp.shout(:dave), lower(:alice)) ORDER BY seq;

SELECT count(*) AS inconsistent_friend_sets FROM social.check_friend_sets();
