-- blocks: block_user / unblock_user, what a block does to a friendship, and how every read
-- hides a blocked pair.
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
-- Makes two users friends.
CREATE FUNCTION pg_temp.befriend(a text, b text) RETURNS text LANGUAGE sql AS $$
	SELECT status FROM social.upsert_friendship(a, b, 'request');
	SELECT status FROM social.upsert_friendship(b, a, 'accept');
$$;
-- Friends of a user, as one line.
CREATE FUNCTION pg_temp.friends_of(me text) RETURNS text LANGUAGE sql AS $$
	SELECT coalesce(string_agg(address, ' ' ORDER BY address), '-') FROM social.friends(me)
$$;

\set alice '''0xa11ce00000000000000000000000000000000001'''
\set bob '''0xb0b0000000000000000000000000000000000001'''
\set carol '''0xca40100000000000000000000000000000000001'''
\set dave '''0xda7e000000000000000000000000000000000001'''
\set erin '''0xe414000000000000000000000000000000000001'''
\set frank '''0xf4a4c00000000000000000000000000000000001'''

-- alice, bob and carol are all friends with each other; dave is friends with alice.
SELECT pg_temp.befriend(:alice, :bob) AS ab, pg_temp.befriend(:alice, :carol) AS ac,
	   pg_temp.befriend(:bob, :carol) AS bc, pg_temp.befriend(:dave, :alice) AS da;
SELECT u.name, pg_temp.friends_of(u.address) AS friends
FROM (VALUES (1, 'alice', :alice), (2, 'bob', :bob), (3, 'carol', :carol), (4, 'dave', :dave))
	 AS u(n, name, address)
ORDER BY u.n;
SELECT address FROM social.mutual_friends(:alice, :bob) ORDER BY address;

-- =============================================================================================
-- A block ends the friendship.
-- =============================================================================================
SELECT address FROM social.block_user(:alice, :bob);
SELECT social.friendship_status(:alice, :bob) AS alice_sees,
	   social.friendship_status(:bob, :alice) AS bob_sees,
	   social.is_friend(:alice, :bob) AS alice_bob, social.is_friend(:bob, :alice) AS bob_alice;
-- Both friend lists lose each other; the rest stays.
SELECT u.name, pg_temp.friends_of(u.address) AS friends, social.friend_count(u.address) AS n
FROM (VALUES (1, 'alice', :alice), (2, 'bob', :bob), (3, 'carol', :carol)) AS u(n, name, address)
ORDER BY u.n;
SELECT count(*) AS inconsistent_friend_sets FROM social.check_friend_sets();
-- The friendship records a 'block' by alice; the block log records the block.
SELECT action, acting_user = :alice AS by_alice, message
FROM social.friendship_history(:bob, :alice) ORDER BY seq;
SELECT address_requester = :alice AS alice_requested, is_active, last_action, last_actor = :alice AS by_alice
FROM social.friendships WHERE address_requester IN (:alice, :bob) AND address_requested IN (:alice, :bob)
ORDER BY address_requester;
SELECT action, blocker_address, blocked_address FROM social.block_actions ORDER BY seq;
SELECT blocker_address, blocked_address FROM social.blocks ORDER BY blocker_address, blocked_address;

-- =============================================================================================
-- A second block changes nothing: same blocked_at, no new log row of either kind.
-- =============================================================================================
SELECT pg_temp.counts() AS before \gset
SELECT b.address, b.blocked_at = (SELECT blocked_at FROM social.blocks
								  WHERE blocker_address = :alice AND blocked_address = :bob)
		   AS same_blocked_at
FROM social.block_user(:alice, :bob) b;
SELECT pg_temp.counts() = :'before' AS nothing_written;

-- =============================================================================================
-- A block without a friendship writes no friendship row.
-- =============================================================================================
SELECT pg_temp.counts() AS before \gset
SELECT address FROM social.block_user(:alice, :erin);
SELECT :'before' AS before, pg_temp.counts() AS after;
SELECT social.friendship_status(:alice, :erin) AS alice_sees,
	   social.friendship_status(:erin, :alice) AS erin_sees;
SELECT count(*) AS history FROM social.friendship_history(:alice, :erin);

-- =============================================================================================
-- Unblock: logs 'unblock', records 'delete' on the friendship the block ended, does not restore
-- the friendship.
-- =============================================================================================
SELECT address, was_blocked FROM social.unblock_user(:alice, :bob);
SELECT social.friendship_status(:alice, :bob) AS alice_sees,
	   social.friendship_status(:bob, :alice) AS bob_sees,
	   social.is_friend(:alice, :bob) AS friends;
SELECT action, acting_user = :alice AS by_alice, message
FROM social.friendship_history(:alice, :bob) ORDER BY seq;
-- the delete is tagged as the unblock's
SELECT a.action, a.metadata
FROM social.friendship_actions a
WHERE (a.acting_user, a.target_user) IN ((:alice, :bob), (:bob, :alice))
ORDER BY a.seq;
SELECT action, blocker_address, blocked_address FROM social.block_actions ORDER BY seq;
SELECT pg_temp.friends_of(:alice) AS alice_friends, pg_temp.friends_of(:bob) AS bob_friends;
SELECT count(*) AS inconsistent_friend_sets FROM social.check_friend_sets();
-- After the unblock they may become friends again, through a new request.
SELECT status FROM social.upsert_friendship(:bob, :alice, 'request');
SELECT social.friendship_status(:alice, :bob) AS alice_sees;

-- Unblocking a user without a friendship row only logs the unblock.
SELECT pg_temp.counts() AS before \gset
SELECT address, was_blocked FROM social.unblock_user(:alice, :erin);
SELECT :'before' AS before, pg_temp.counts() AS after;
SELECT social.friendship_status(:alice, :erin) AS alice_sees;

-- Unblock when not blocked: was_blocked = false and nothing is written, whether the pair was
-- blocked before (alice, erin), never was (alice, frank) or is blocked the other way round.
SELECT pg_temp.counts() AS before \gset
SELECT address, was_blocked FROM social.unblock_user(:alice, :erin);
SELECT address, was_blocked FROM social.unblock_user(:alice, :frank);
SELECT address FROM social.block_user(:frank, :alice);
SELECT pg_temp.counts() AS before \gset
SELECT address, was_blocked FROM social.unblock_user(:alice, :frank);
SELECT pg_temp.counts() = :'before' AS nothing_written;
SELECT social.friendship_status(:alice, :frank) AS alice_sees;
SELECT address, was_blocked FROM social.unblock_user(:frank, :alice);

-- =============================================================================================
-- Mutual block: both block each other; one unblocks; the other block still holds.
-- =============================================================================================
SELECT pg_temp.befriend(:carol, :dave);
SELECT address FROM social.block_user(:carol, :dave);
SELECT address FROM social.block_user(:dave, :carol);
SELECT social.friendship_status(:carol, :dave) AS carol_sees,
	   social.friendship_status(:dave, :carol) AS dave_sees;
SELECT * FROM social.blocking_status(:carol);
SELECT address, was_blocked FROM social.unblock_user(:carol, :dave);
SELECT social.friendship_status(:carol, :dave) AS carol_sees,
	   social.friendship_status(:dave, :carol) AS dave_sees;
SELECT * FROM social.blocking_status(:carol);
-- still refused, both ways
\set VERBOSITY sqlstate
SELECT status FROM social.upsert_friendship(:carol, :dave, 'request');
SELECT status FROM social.upsert_friendship(:dave, :carol, 'request');
\set VERBOSITY default
SELECT address, was_blocked FROM social.unblock_user(:dave, :carol);
SELECT social.friendship_status(:carol, :dave) AS carol_sees,
	   social.friendship_status(:dave, :carol) AS dave_sees;
SELECT action, acting_user = :carol AS by_carol, message
FROM social.friendship_history(:carol, :dave) ORDER BY seq;
SELECT a.action, a.acting_user = :carol AS by_carol, a.metadata
FROM social.friendship_actions a
WHERE (a.acting_user, a.target_user) IN ((:carol, :dave), (:dave, :carol))
ORDER BY a.seq;
SELECT action, blocker_address = :carol AS by_carol
FROM social.block_actions
WHERE (blocker_address, blocked_address) IN ((:carol, :dave), (:dave, :carol))
ORDER BY seq;
SELECT count(*) AS inconsistent_friend_sets FROM social.check_friend_sets();

-- =============================================================================================
-- Every read hides a blocked pair.
-- =============================================================================================
DROP EXTENSION social;
CREATE EXTENSION social;
-- alice, bob, carol and dave are all friends with each other; erin is friends with bob.
SELECT pg_temp.befriend(:alice, :bob) AS ab, pg_temp.befriend(:alice, :carol) AS ac,
	   pg_temp.befriend(:alice, :dave) AS ad, pg_temp.befriend(:bob, :carol) AS bc,
	   pg_temp.befriend(:bob, :dave) AS bd, pg_temp.befriend(:carol, :dave) AS cd,
	   pg_temp.befriend(:bob, :erin) AS be;
-- open requests: frank -> alice, erin -> carol, frank -> dave.
SELECT status FROM social.upsert_friendship(:frank, :alice, 'request', 'hi alice');
SELECT status FROM social.upsert_friendship(:erin, :carol, 'request', 'hi carol');
SELECT status FROM social.upsert_friendship(:frank, :dave, 'request', 'hi dave');

-- Before any block.
SELECT pg_temp.friends_of(:alice) AS alice_friends;
SELECT string_agg(address, ' ' ORDER BY address) AS mutual_alice_bob
FROM social.mutual_friends(:alice, :bob);
SELECT address, message FROM social.pending_requests(:alice) ORDER BY address;
SELECT address, message FROM social.sent_requests(:frank) ORDER BY address;
SELECT address, mutual_friends FROM social.friend_suggestions(:alice)
ORDER BY mutual_friends DESC, address;
SELECT address, private_messages_privacy, is_friend
FROM social.private_messages_settings(:alice, ARRAY[:bob, :carol, :dave, :erin, :frank])
ORDER BY address;

-- alice blocks bob; frank blocks alice (ending his own request); carol blocks erin (ending
-- erin's request to her); dave blocks frank (ending frank's request to him).
SELECT address FROM social.block_user(:alice, :bob);
SELECT address FROM social.block_user(:frank, :alice);
SELECT address FROM social.block_user(:carol, :erin);
SELECT address FROM social.block_user(:dave, :frank);

-- friends: alice and bob lose each other.
SELECT u.name, pg_temp.friends_of(u.address) AS friends
FROM (VALUES (1, 'alice', :alice), (2, 'bob', :bob), (3, 'carol', :carol), (4, 'dave', :dave),
			 (5, 'erin', :erin), (6, 'frank', :frank)) AS u(n, name, address)
ORDER BY u.n;
-- mutual friends of a blocked pair: empty, whoever asks, though carol and dave are friends of both.
SELECT count(*) AS mutual_alice_bob FROM social.mutual_friends(:alice, :bob);
SELECT count(*) AS mutual_bob_alice FROM social.mutual_friends(:bob, :alice);
-- mutual friends with a third user leave out the blocked one.
SELECT string_agg(address, ' ' ORDER BY address) AS mutual_alice_carol
FROM social.mutual_friends(:alice, :carol);
SELECT string_agg(address, ' ' ORDER BY address) AS mutual_bob_carol
FROM social.mutual_friends(:bob, :carol);
-- pending and sent requests: the requests ended by the blocks are gone from both lists.
SELECT count(*) AS alice_pending FROM social.pending_requests(:alice);
SELECT count(*) AS carol_pending FROM social.pending_requests(:carol);
SELECT count(*) AS dave_pending FROM social.pending_requests(:dave);
SELECT count(*) AS frank_sent FROM social.sent_requests(:frank);
SELECT count(*) AS erin_sent FROM social.sent_requests(:erin);
SELECT count(*) AS open_requests FROM social.open_requests;
-- suggestions: never a user I block or who blocks me.
SELECT address, mutual_friends FROM social.friend_suggestions(:alice)
ORDER BY mutual_friends DESC, address;
SELECT address, mutual_friends FROM social.friend_suggestions(:bob)
ORDER BY mutual_friends DESC, address;
SELECT address, mutual_friends FROM social.friend_suggestions(:erin)
ORDER BY mutual_friends DESC, address;
-- private_messages_settings: a blocked pair is not friends.
SELECT address, private_messages_privacy, is_friend
FROM social.private_messages_settings(:alice, ARRAY[:bob, :carol, :dave, :erin, :frank])
ORDER BY address;
-- friendship_status from both sides.
SELECT u.name, social.friendship_status(:alice, u.address) AS alice_sees,
	   social.friendship_status(u.address, :alice) AS they_see
FROM (VALUES (2, 'bob', :bob), (3, 'carol', :carol), (6, 'frank', :frank)) AS u(n, name, address)
ORDER BY u.n;
-- blocking_status lists both ways.
SELECT u.name, s.blocked_users, s.blocked_by_users
FROM (VALUES (1, 'alice', :alice), (2, 'bob', :bob), (3, 'carol', :carol), (4, 'dave', :dave),
			 (5, 'erin', :erin), (6, 'frank', :frank)) AS u(n, name, address),
	 social.blocking_status(u.address) s
ORDER BY u.n;
SELECT count(*) AS inconsistent_friend_sets FROM social.check_friend_sets();

-- =============================================================================================
-- blocked_users: newest first, paged, total = all blocks of the user.
-- =============================================================================================
-- one statement (and so one timestamp) per block, oldest first: erin, carol, dave, frank.
SELECT address FROM social.block_user(:alice, :erin);
SELECT address FROM social.block_user(:alice, :carol);
SELECT address FROM social.block_user(:alice, :dave);
SELECT address FROM social.block_user(:alice, :frank);
SELECT address, total FROM social.blocked_users(:alice) ORDER BY blocked_at DESC, address;
SELECT address, total FROM social.blocked_users(:alice, 2) ORDER BY blocked_at DESC, address;
SELECT address, total FROM social.blocked_users(:alice, 2, 2) ORDER BY blocked_at DESC, address;
SELECT address, total FROM social.blocked_users(:alice, 2, 4) ORDER BY blocked_at DESC, address;
SELECT address, total FROM social.blocked_users(:alice, 3, 3) ORDER BY blocked_at DESC, address;
-- blocking someone who already blocks me is a block of my own: both lists show it.
SELECT b.address, b.total FROM social.blocked_users(:frank) b ORDER BY b.blocked_at DESC, b.address;
SELECT * FROM social.blocking_status(:alice);
SELECT count(*) AS nobody_blocked FROM social.blocked_users(:bob);
SELECT count(*) AS inconsistent_friend_sets FROM social.check_friend_sets();
