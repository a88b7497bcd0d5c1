-- The benchmark graph, built in schema bench; load_social.sql and load_reference.sql then copy it
-- into social.* and ref.* (in parallel), so both strategies read the same data.
--
-- Shape (fixed, so every run measures the same data):
--   * 4 hubs (users 1..4), each with exactly 5,000 active friends and 500 ended friendships
--     (deleted or rejected).  Hub 1 and hub 2 share 2,500 friends: mutual(hub 1, hub 2) = 2,500.
--   * 20,000 ordinary users (101..20100) with ~60 friendship rows each, ~86 % of them active
--     (~50 friends), the rest deleted, rejected or cancelled; 2 % re-friended after a delete.
--   * Open requests: 1,500 to hub 1 (a fifth of them after an earlier reject), 500 to hub 2,
--     100 sent by hub 1, 2,000 between ordinary users.
--   * 300 blocks: hub 1 blocks 50 users, 50 users block hub 1, 200 between ordinary users; no
--     blocked pair has a friendship row.
--
-- Deterministic: addresses, ids, timestamps and edges come from md5 of fixed strings.  The
-- invariants the state machine keeps hold: one row per unordered pair, every action row belongs
-- to its friendship, last_action / last_actor / last_action_id describe the newest action,
-- is_active iff that action is an accept, timestamps (and seq) increase along each history.

\set ON_ERROR_STOP 1

CREATE SCHEMA bench;

-- A non-negative 60-bit hash of the arguments.
CREATE FUNCTION bench.h(VARIADIC k bigint[]) RETURNS bigint
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN ('x' || left(md5(array_to_string(k, ':')), 15))::bit(60)::bigint;

-- The address of user n: '0x' + 40 pseudo-random lower-case hex digits.
CREATE FUNCTION bench.addr(n bigint) RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN '0x' || left(md5('social-bench-a:' || n) || md5('social-bench-b:' || n), 40);

-- Users.  p is a pseudo-random permutation of the ordinary users; hubs pick friends by p range.
CREATE TABLE bench.users (n bigint PRIMARY KEY, addr text NOT NULL UNIQUE, p int);
INSERT INTO bench.users SELECT n, bench.addr(n), NULL FROM generate_series(1, 4) AS n;
INSERT INTO bench.users
SELECT 101 + i, bench.addr(101 + i), (row_number() OVER (ORDER BY bench.h(7, i), i) - 1)::int
FROM generate_series(0, 19999) AS i;

-- The histories a pair can have; 'a' is the user who sent the first request.
CREATE TABLE bench.kinds (kind text, k int, action text, by_a boolean, PRIMARY KEY (kind, k));
INSERT INTO bench.kinds VALUES
	('accepted', 0, 'request', true), ('accepted', 1, 'accept', false),
	('deleted', 0, 'request', true), ('deleted', 1, 'accept', false), ('deleted', 2, 'delete', true),
	('rejected', 0, 'request', true), ('rejected', 1, 'reject', false),
	('canceled', 0, 'request', true), ('canceled', 1, 'cancel', true),
	('refriended', 0, 'request', true), ('refriended', 1, 'accept', false),
	('refriended', 2, 'delete', false), ('refriended', 3, 'request', false),
	('refriended', 4, 'accept', true),
	('pending', 0, 'request', true),
	('pending_hist', 0, 'request', true), ('pending_hist', 1, 'reject', false),
	('pending_hist', 2, 'request', true);

-- Pairs: a = first requester, b = the other user.
CREATE TABLE bench.edges (a bigint NOT NULL, b bigint NOT NULL, kind text NOT NULL);

-- Ordinary users: 30 partners each at a ring distance in [1, 9999] (of 20,000), so that
-- distance 10,000 stays free for the open requests and blocks below.  A pair drawn twice (by
-- the same user) is kept once.
INSERT INTO bench.edges
SELECT DISTINCT ON (lo, hi)
	CASE WHEN flip THEN v ELSE u END,
	CASE WHEN flip THEN u ELSE v END,
	CASE WHEN r < 84 THEN 'accepted'
		 WHEN r < 92 THEN 'deleted'
		 WHEN r < 96 THEN 'rejected'
		 WHEN r < 98 THEN 'canceled'
		 ELSE 'refriended' END
FROM (
	SELECT u, v, flip, least(u, v) AS lo, greatest(u, v) AS hi,
		   bench.h(3, least(u, v), greatest(u, v)) % 100 AS r
	FROM (
		SELECT 101 + i AS u, 101 + (i + 1 + hk % 9999) % 20000 AS v, hk / 9999 % 2 = 1 AS flip
		FROM generate_series(0, 19999) AS i, generate_series(1, 30) AS j,
			 LATERAL (SELECT bench.h(1, i, j) AS hk) x
	) e
) e
ORDER BY lo, hi, flip;

-- Hubs: 5,000 friends from a p range (hub 1 and hub 2 overlap by 2,500), then 500 ended ones.
INSERT INTO bench.edges
SELECT CASE WHEN hh % 2 = 0 THEN hub ELSE n END,
	   CASE WHEN hh % 2 = 0 THEN n ELSE hub END,
	   CASE WHEN p < start + 5000 THEN 'accepted'
			WHEN hh / 2 % 2 = 0 THEN 'deleted' ELSE 'rejected' END
FROM (
	SELECT s.hub, s.start, u.n, u.p, bench.h(4, s.hub, u.n) AS hh
	FROM (VALUES (1, 0), (2, 2500), (3, 7500), (4, 12500)) AS s(hub, start)
	JOIN bench.users u ON u.p >= s.start AND u.p < s.start + 5500
) x;

-- Open requests.
INSERT INTO bench.edges
SELECT u.n, 1, CASE WHEN bench.h(6, u.n) % 5 = 0 THEN 'pending_hist' ELSE 'pending' END
FROM bench.users u WHERE u.p >= 17500 AND u.p < 19000;
INSERT INTO bench.edges
SELECT u.n, 2, CASE WHEN bench.h(6, u.n) % 5 = 0 THEN 'pending_hist' ELSE 'pending' END
FROM bench.users u WHERE u.p >= 19000 AND u.p < 19500;
INSERT INTO bench.edges
SELECT 1, u.n, 'pending' FROM bench.users u WHERE u.p >= 19500 AND u.p < 19600;
INSERT INTO bench.edges
SELECT CASE WHEN flip THEN 101 + i + 10000 ELSE 101 + i END,
	   CASE WHEN flip THEN 101 + i ELSE 101 + i + 10000 END,
	   CASE WHEN bench.h(6, i) % 5 = 0 THEN 'pending_hist' ELSE 'pending' END
FROM (SELECT 5 * m AS i, bench.h(8, m) % 2 = 1 AS flip FROM generate_series(0, 1999) AS m) x;

CREATE TABLE bench.block_pairs (blocker bigint NOT NULL, blocked bigint NOT NULL);
INSERT INTO bench.block_pairs SELECT 1, u.n FROM bench.users u WHERE u.p >= 19600 AND u.p < 19650;
INSERT INTO bench.block_pairs SELECT u.n, 1 FROM bench.users u WHERE u.p >= 19650 AND u.p < 19700;
INSERT INTO bench.block_pairs
SELECT 101 + i, 101 + i + 10000 FROM (SELECT 5 * m + 1 AS i FROM generate_series(0, 199) AS m) x;

-- Per pair: ids and the time of the first action, a pseudo-random moment of 2024 (microsecond
-- resolution); each later action follows 1 to 2 hours after the previous one.
CREATE TABLE bench.pairs AS
SELECT e.a, e.b, e.kind,
	   md5('social-bench-fs:' || e.a || ':' || e.b)::uuid AS friendship_id,
	   timestamptz '2024-01-01 00:00:00+00'
		   + (bench.h(9, e.a, e.b) % 25920000000000) * interval '1 microsecond' AS t0,
	   bench.h(10, e.a, e.b) AS hp
FROM bench.edges e;

CREATE TABLE bench.actions AS
SELECT p.a, p.b, k.k, k.action, p.friendship_id,
	   CASE WHEN k.by_a THEN p.a ELSE p.b END AS actor,
	   CASE WHEN k.by_a THEN p.b ELSE p.a END AS target,
	   md5('social-bench-fa:' || p.friendship_id || ':' || k.k)::uuid AS id,
	   p.t0 + k.k * interval '1 hour'
		   + CASE WHEN k.k > 0 THEN p.hp / k.k % 3600000000 ELSE 0 END
			 * interval '1 microsecond' AS ts,
	   CASE WHEN k.action = 'request' AND (p.hp / 7 + k.k) % 3 = 0
			THEN jsonb_build_object('message', 'hi, shall we be friends? #' || k.k) END AS metadata
FROM bench.pairs p JOIN bench.kinds k USING (kind);

-- The newest action of each pair, with the addresses resolved: the rows of social.friendships.
CREATE TABLE bench.friendships AS
SELECT l.friendship_id AS id, ua.addr AS address_requester, ub.addr AS address_requested,
	   l.action = 'accept' AS is_active, p.t0 AS created_at, l.ts AS updated_at,
	   l.action AS last_action, uc.addr AS last_actor, l.id AS last_action_id
FROM (SELECT DISTINCT ON (a, b) * FROM bench.actions ORDER BY a, b, k DESC) l
JOIN bench.pairs p ON p.a = l.a AND p.b = l.b
JOIN bench.users ua ON ua.n = l.a
JOIN bench.users ub ON ub.n = l.b
JOIN bench.users uc ON uc.n = l.actor;

CREATE TABLE bench.blocks AS
SELECT md5('social-bench-b:' || bp.blocker || ':' || bp.blocked)::uuid AS id,
	   ua.addr AS blocker_address, ub.addr AS blocked_address,
	   timestamptz '2024-06-01 00:00:00+00'
		   + bench.h(12, bp.blocker, bp.blocked) % 1000000 * interval '1 second' AS blocked_at
FROM bench.block_pairs bp
JOIN bench.users ua ON ua.n = bp.blocker
JOIN bench.users ub ON ub.n = bp.blocked;

-- Fresh pairs for the write benchmark: an actor and a target that appear nowhere in the graph,
-- each used once, so no rate limit or request cap is ever reached.
CREATE TABLE bench.write_pairs (n bigint PRIMARY KEY, actor text NOT NULL, target text NOT NULL);
INSERT INTO bench.write_pairs
SELECT n, bench.addr(1000000000 + 2 * n), bench.addr(1000000001 + 2 * n)
FROM generate_series(1, :write_pairs) AS n;

ANALYZE bench.actions;
ANALYZE bench.friendships;
ANALYZE bench.users;
