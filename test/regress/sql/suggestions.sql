-- suggestions: friend_suggestions ranks friends of friends by mutual friends (most first), then
-- by address; it leaves out me, my friends, users with an open request either way and users
-- blocked either way.
DROP EXTENSION social;
CREATE EXTENSION social;
SET social.actor_actions_per_minute = 0;
SET social.pair_actions_per_minute = 0;
\set SHOW_CONTEXT never

\set alice '''0xa11ce00000000000000000000000000000000001'''
\set bob '''0xb0b0000000000000000000000000000000000001'''
\set carol '''0xca40100000000000000000000000000000000001'''
\set dave '''0xda7e000000000000000000000000000000000001'''
\set erin '''0xe414000000000000000000000000000000000001'''
\set frank '''0xf4a4c00000000000000000000000000000000001'''
\set grace '''0x64ace00000000000000000000000000000000001'''
\set heidi '''0x4e1d100000000000000000000000000000000001'''
\set ivan '''0x1fa4000000000000000000000000000000000001'''
\set judy '''0x10d1000000000000000000000000000000000001'''
\set mallory '''0x3a11000000000000000000000000000000000001'''
\set oscar '''0x05ca000000000000000000000000000000000001'''
\set peggy '''0x9e99000000000000000000000000000000000001'''

CREATE TEMP TABLE people (name text PRIMARY KEY, address text UNIQUE);
INSERT INTO people VALUES
	('alice', :alice), ('bob', :bob), ('carol', :carol), ('dave', :dave), ('erin', :erin),
	('frank', :frank), ('grace', :grace), ('heidi', :heidi), ('ivan', :ivan), ('judy', :judy),
	('mallory', :mallory), ('oscar', :oscar), ('peggy', :peggy);
-- Address order of the names (ties in the ranking are broken by address).
SELECT name, address FROM people ORDER BY address;

CREATE FUNCTION pg_temp.befriend(a text, b text) RETURNS text LANGUAGE sql AS $$
	SELECT status FROM social.upsert_friendship(a, b, 'request');
	SELECT status FROM social.upsert_friendship(b, a, 'accept');
$$;
-- Suggestions for a user, by name, in the order the function returns them.
CREATE FUNCTION pg_temp.suggest(who text, lim integer DEFAULT NULL)
	RETURNS TABLE (rank bigint, name text, mutual_friends bigint) LANGUAGE sql AS $$
	SELECT s.pos, coalesce(p.name, s.address), s.mutual_friends
	FROM social.friend_suggestions((SELECT address FROM pg_temp.people WHERE name = who), lim)
		 WITH ORDINALITY AS s(address, mutual_friends, pos)
	LEFT JOIN pg_temp.people p ON p.address = s.address
	ORDER BY s.pos
$$;

-- alice's friends: bob, carol, dave (bob and carol are friends too).
-- Their friends: erin (of bob, carol, dave), frank (of bob, carol), grace (of bob),
-- heidi (of dave).
SELECT pg_temp.befriend(:alice, :bob) AS ab, pg_temp.befriend(:alice, :carol) AS ac,
	   pg_temp.befriend(:dave, :alice) AS da, pg_temp.befriend(:bob, :carol) AS bc;
SELECT pg_temp.befriend(:bob, :erin) AS be, pg_temp.befriend(:carol, :erin) AS ce,
	   pg_temp.befriend(:erin, :dave) AS ed, pg_temp.befriend(:frank, :bob) AS fb,
	   pg_temp.befriend(:carol, :frank) AS cf, pg_temp.befriend(:bob, :grace) AS bg,
	   pg_temp.befriend(:dave, :heidi) AS dh;

-- erin 3, frank 2, then grace and heidi with 1 each, heidi first by address.  Not alice herself
-- (a friend of all her friends), not bob or carol (friends of friends, but her friends).
SELECT * FROM pg_temp.suggest('alice') ORDER BY rank;
SELECT * FROM pg_temp.suggest('alice', 2) ORDER BY rank;
SELECT * FROM pg_temp.suggest('alice', 0) ORDER BY rank;
-- the function's own order is mutual friends desc, address
SELECT bool_and(prev_mutual IS NULL OR mutual_friends < prev_mutual
				OR (mutual_friends = prev_mutual AND address > prev_address)) AS ordered
FROM (
	SELECT address, mutual_friends, lag(mutual_friends) OVER w AS prev_mutual,
		   lag(address) OVER w AS prev_address
	FROM social.friend_suggestions(:alice) WITH ORDINALITY AS s(address, mutual_friends, pos)
	WINDOW w AS (ORDER BY pos)
) t;
-- frank's view: alice (via bob, carol), erin (via bob, carol), grace (via bob).
SELECT * FROM pg_temp.suggest('frank') ORDER BY rank;
-- no friends, no suggestions
SELECT count(*) AS none FROM social.friend_suggestions(:peggy);

-- =============================================================================================
-- Open requests, either way, leave a user out; an answered request does not.
-- =============================================================================================
-- ivan is a friend of bob, judy of carol.
SELECT pg_temp.befriend(:bob, :ivan) AS bi, pg_temp.befriend(:judy, :carol) AS jc;
SELECT * FROM pg_temp.suggest('alice') ORDER BY rank;
-- alice sends ivan a request, judy sends alice one: both leave alice's suggestions (and alice
-- leaves theirs).
SELECT status FROM social.upsert_friendship(:alice, :ivan, 'request');
SELECT status FROM social.upsert_friendship(:judy, :alice, 'request', 'hi');
SELECT * FROM pg_temp.suggest('alice') ORDER BY rank;
SELECT * FROM pg_temp.suggest('ivan') ORDER BY rank;
SELECT * FROM pg_temp.suggest('judy') ORDER BY rank;
-- ivan rejects, judy cancels: suggested again.
SELECT status FROM social.upsert_friendship(:ivan, :alice, 'reject');
SELECT status FROM social.upsert_friendship(:judy, :alice, 'cancel');
SELECT * FROM pg_temp.suggest('alice') ORDER BY rank;

-- =============================================================================================
-- Blocks, either way, leave a user out.
-- =============================================================================================
-- mallory is a friend of dave, oscar of bob.
SELECT pg_temp.befriend(:dave, :mallory) AS dm, pg_temp.befriend(:oscar, :bob) AS ob;
SELECT * FROM pg_temp.suggest('alice') ORDER BY rank;
-- alice blocks mallory; oscar blocks alice.
SELECT address FROM social.block_user(:alice, :mallory);
SELECT address FROM social.block_user(:oscar, :alice);
SELECT * FROM pg_temp.suggest('alice') ORDER BY rank;
SELECT * FROM pg_temp.suggest('mallory') ORDER BY rank;
SELECT * FROM pg_temp.suggest('oscar') ORDER BY rank;

-- A blocked friend is no longer a friend: alice blocks bob, and bob's friends lose the mutual
-- friend they had through him (grace and ivan were suggested through bob only); bob himself is
-- not suggested, though carol is a friend of both.
SELECT address FROM social.block_user(:alice, :bob);
SELECT * FROM pg_temp.suggest('alice') ORDER BY rank;
SELECT * FROM pg_temp.suggest('bob') ORDER BY rank;

-- A deleted friendship too: carol deletes alice.
SELECT status FROM social.upsert_friendship(:carol, :alice, 'delete');
SELECT * FROM pg_temp.suggest('alice') ORDER BY rank;
-- carol and dave (alice's last friend) become friends: carol is a friend of a friend now.
SELECT pg_temp.befriend(:carol, :dave);
SELECT * FROM pg_temp.suggest('alice') ORDER BY rank;
