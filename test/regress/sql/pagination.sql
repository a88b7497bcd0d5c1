-- pagination: defaults and clamps of every paged read, and the total column.
--
--   friends, mutual_friends          limit default 1000, max 1000
--   pending_requests, sent_requests  limit default 100, max 200
--   blocked_users                    limit default 200, max 200
--   friend_suggestions               limit default 20, max 100
--   every offset                     negative or NULL -> 0, at most 100000
-- A NULL, zero or negative limit means the default.  total is always the full count.
DROP EXTENSION social;
CREATE EXTENSION social;
SET social.actor_actions_per_minute = 0;
SET social.pair_actions_per_minute = 0;
\set SHOW_CONTEXT never

-- User number i: '0x' + i in hex, padded to 40 digits, so address order is number order.
CREATE FUNCTION pg_temp.u(i integer) RETURNS text LANGUAGE sql IMMUTABLE
	RETURN '0x' || lpad(to_hex(i), 40, '0');
-- The number of a user address made by pg_temp.u (for readable first/last columns).
CREATE FUNCTION pg_temp.n(address text) RETURNS bigint LANGUAGE sql IMMUTABLE
	RETURN ('x' || substr(address, 27))::bit(64)::bigint;

\set hub '''0xf000000000000000000000000000000000000001'''
\set hub2 '''0xf000000000000000000000000000000000000002'''
\set inbox '''0xf000000000000000000000000000000000000003'''
\set outbox '''0xf000000000000000000000000000000000000004'''
\set blocker '''0xf000000000000000000000000000000000000005'''
\set me '''0xf000000000000000000000000000000000000006'''

SELECT pg_temp.u(1) AS u1, pg_temp.u(1205) AS u1205, pg_temp.n(pg_temp.u(1205)) AS n;

-- hub and hub2 each have 1,205 friends: users 1..1205.
DO $$
BEGIN
	FOR i IN 1..1205 LOOP
		PERFORM social.upsert_friendship(pg_temp.u(i), '0xf000000000000000000000000000000000000001', 'request');
		PERFORM social.upsert_friendship('0xf000000000000000000000000000000000000001', pg_temp.u(i), 'accept');
		PERFORM social.upsert_friendship('0xf000000000000000000000000000000000000002', pg_temp.u(i), 'request');
		PERFORM social.upsert_friendship(pg_temp.u(i), '0xf000000000000000000000000000000000000002', 'accept');
	END LOOP;
END
$$;
SELECT social.friend_count(:hub) AS hub, social.friend_count(:hub2) AS hub2;
SELECT count(*) AS inconsistent_friend_sets FROM social.check_friend_sets();

-- =============================================================================================
-- friends: default and max 1000.
-- =============================================================================================
SELECT p.label, count(f.address) AS rows, min(f.total) AS min_total, max(f.total) AS max_total,
	   pg_temp.n(min(f.address) FILTER (WHERE f.pos = 1)) AS first,
	   pg_temp.n(min(f.address) FILTER (WHERE f.pos = f.rows)) AS last,
	   bool_and(f.address > coalesce(f.prev, '')) AS ascending
FROM (VALUES
	(1, 'default', NULL, NULL),
	(2, 'limit 0', 0, NULL),
	(3, 'limit -5', -5, NULL),
	(4, 'limit 10', 10, NULL),
	(5, 'limit 1000', 1000, NULL),
	(6, 'limit 1001', 1001, NULL),
	(7, 'limit 2147483647', 2147483647, NULL),
	(8, 'offset -3', 10, -3),
	(9, 'offset 0', 10, 0),
	(10, 'offset 995', 10, 995),
	(11, 'offset 1000', NULL, 1000),
	(12, 'offset 1200', 10, 1200),
	(13, 'offset 1205', 10, 1205),
	(14, 'offset 100000', 10, 100000),
	(15, 'offset 2147483647', 2147483647, 2147483647)
) AS p(n, label, lim, off)
LEFT JOIN LATERAL (
	SELECT x.address, x.total, x.pos, count(*) OVER () AS rows,
		   lag(x.address) OVER (ORDER BY x.pos) AS prev
	FROM social.friends(:hub, p.lim, p.off) WITH ORDINALITY AS x(address, total, pos)
) f ON true
GROUP BY p.n, p.label
ORDER BY p.n;

-- Named arguments, as the daemon calls it.
SELECT count(*) AS rows, min(total) AS total
FROM social.friends(me => :hub, "limit" => 3, "offset" => 1202);

-- =============================================================================================
-- mutual_friends: the same clamps over the 1,205 friends hub and hub2 share.
-- =============================================================================================
SELECT p.label, count(f.address) AS rows, min(f.total) AS min_total, max(f.total) AS max_total,
	   pg_temp.n(min(f.address) FILTER (WHERE f.pos = 1)) AS first,
	   pg_temp.n(min(f.address) FILTER (WHERE f.pos = f.rows)) AS last,
	   bool_and(f.address > coalesce(f.prev, '')) AS ascending
FROM (VALUES
	(1, 'default', NULL, NULL),
	(2, 'limit 0', 0, NULL),
	(3, 'limit -1', -1, NULL),
	(4, 'limit 7', 7, NULL),
	(5, 'limit 1001', 1001, NULL),
	(6, 'offset -1', 5, -1),
	(7, 'offset 1000', 1000, 1000),
	(8, 'offset 1204', NULL, 1204),
	(9, 'offset 100001', 10, 100001)
) AS p(n, label, lim, off)
LEFT JOIN LATERAL (
	SELECT x.address, x.total, x.pos, count(*) OVER () AS rows,
		   lag(x.address) OVER (ORDER BY x.pos) AS prev
	FROM social.mutual_friends(:hub, :hub2, p.lim, p.off) WITH ORDINALITY AS x(address, total, pos)
) f ON true
GROUP BY p.n, p.label
ORDER BY p.n;

-- =============================================================================================
-- The offset clamp at 100000, seen through a friend set of 100,010 entries.  Only the reads are
-- exercised, so the test writes the two sets directly (as a bulk import would) and lets
-- rebuild_friend_sets remove them afterwards.
-- =============================================================================================
\set big1 '''0xb160000000000000000000000000000000000001'''
\set big2 '''0xb160000000000000000000000000000000000002'''
INSERT INTO social.friend_sets (address, friends)
SELECT b.address, string_agg(decode(substr(pg_temp.u(i), 3), 'hex'), ''::bytea ORDER BY i)
FROM (VALUES (:big1), (:big2)) AS b(address), generate_series(1, 100010) AS i
GROUP BY b.address;
SELECT social.friend_count(:big1) AS big1, social.friend_count(:big2) AS big2;
SELECT p.label, count(f.address) AS rows, min(f.total) AS total,
	   pg_temp.n(min(f.address)) AS first, pg_temp.n(max(f.address)) AS last
FROM (VALUES
	(1, 'friends offset 99999', 'friends', 5, 99999),
	(2, 'friends offset 100000', 'friends', 5, 100000),
	(3, 'friends offset 100001', 'friends', 5, 100001),
	(4, 'friends offset 2147483647', 'friends', 20, 2147483647),
	(5, 'mutual offset 99999', 'mutual', 5, 99999),
	(6, 'mutual offset 100000', 'mutual', 5, 100000),
	(7, 'mutual offset 200000', 'mutual', 20, 200000)
) AS p(n, label, fn, lim, off)
LEFT JOIN LATERAL (
	SELECT x.address, x.total FROM social.friends(:big1, p.lim, p.off) x WHERE p.fn = 'friends'
	UNION ALL
	SELECT x.address, x.total FROM social.mutual_friends(:big1, :big2, p.lim, p.off) x
	WHERE p.fn = 'mutual'
) f ON true
GROUP BY p.n, p.label
ORDER BY p.n;
SELECT address, length(expected) AS expected_bytes, length(actual) AS actual_bytes
FROM social.check_friend_sets() ORDER BY address;
-- hub, hub2 and users 1..1205 have friends
SELECT social.rebuild_friend_sets() AS users_written;
SELECT social.friend_count(:big1) AS big1, social.friend_count(:hub) AS hub;
SELECT count(*) AS inconsistent_friend_sets FROM social.check_friend_sets();

-- The clamps the SQL reads use.
SELECT requested, social.clamp_limit(requested, 100, 200) AS "limit(100, 200)",
	   social.clamp_offset(requested) AS "offset"
FROM (VALUES (1, NULL), (2, -2147483648), (3, -1), (4, 0), (5, 1), (6, 199), (7, 200), (8, 201),
			 (9, 99999), (10, 100000), (11, 100001), (12, 2147483647)) AS t(n, requested)
ORDER BY n;

-- =============================================================================================
-- pending_requests and sent_requests: newest first, default 100, max 200.
-- =============================================================================================
-- Two batches, one transaction (and so one timestamp) each: users 1..105 first, then 106..205.
-- Within a batch the order is by address.
DO $$
BEGIN
	FOR i IN 1..105 LOOP
		PERFORM social.upsert_friendship(pg_temp.u(i), '0xf000000000000000000000000000000000000003', 'request', 'm' || i);
		PERFORM social.upsert_friendship('0xf000000000000000000000000000000000000004', pg_temp.u(i), 'request', 'm' || i);
	END LOOP;
END
$$;
DO $$
BEGIN
	FOR i IN 106..205 LOOP
		PERFORM social.upsert_friendship(pg_temp.u(i), '0xf000000000000000000000000000000000000003', 'request', 'm' || i);
		PERFORM social.upsert_friendship('0xf000000000000000000000000000000000000004', pg_temp.u(i), 'request', 'm' || i);
	END LOOP;
END
$$;

SELECT p.label, count(r.address) AS rows, min(r.total) AS min_total, max(r.total) AS max_total,
	   pg_temp.n(min(r.address) FILTER (WHERE r.pos = 1)) AS first,
	   pg_temp.n(min(r.address) FILTER (WHERE r.pos = 100)) AS "100th",
	   pg_temp.n(min(r.address) FILTER (WHERE r.pos = 101)) AS "101st",
	   pg_temp.n(min(r.address) FILTER (WHERE r.pos = r.rows)) AS last,
	   bool_and(r.message = 'm' || pg_temp.n(r.address)) AS messages_match
FROM (VALUES
	(1, 'default', NULL, NULL),
	(2, 'limit 0', 0, NULL),
	(3, 'limit -1', -1, NULL),
	(4, 'limit 150', 150, NULL),
	(5, 'limit 200', 200, NULL),
	(6, 'limit 201', 201, NULL),
	(7, 'limit 1000', 1000, NULL),
	(8, 'offset -7', 10, -7),
	(9, 'offset 99', 5, 99),
	(10, 'offset 200', NULL, 200),
	(11, 'offset 205', NULL, 205),
	(12, 'offset 2147483647', 200, 2147483647)
) AS p(n, label, lim, off)
LEFT JOIN LATERAL (
	SELECT x.address, x.total, x.message, x.pos, count(*) OVER () AS rows
	FROM social.pending_requests(:inbox, p.lim, p.off) WITH ORDINALITY
		 AS x(id, address, created_at, message, total, pos)
) r ON true
GROUP BY p.n, p.label
ORDER BY p.n;

SELECT p.label, count(r.address) AS rows, min(r.total) AS min_total, max(r.total) AS max_total,
	   pg_temp.n(min(r.address) FILTER (WHERE r.pos = 1)) AS first,
	   pg_temp.n(min(r.address) FILTER (WHERE r.pos = 100)) AS "100th",
	   pg_temp.n(min(r.address) FILTER (WHERE r.pos = 101)) AS "101st",
	   pg_temp.n(min(r.address) FILTER (WHERE r.pos = r.rows)) AS last,
	   bool_and(r.message = 'm' || pg_temp.n(r.address)) AS messages_match
FROM (VALUES
	(1, 'default', NULL, NULL),
	(2, 'limit 0', 0, NULL),
	(3, 'limit -1', -1, NULL),
	(4, 'limit 150', 150, NULL),
	(5, 'limit 200', 200, NULL),
	(6, 'limit 201', 201, NULL),
	(7, 'limit 1000', 1000, NULL),
	(8, 'offset -7', 10, -7),
	(9, 'offset 99', 5, 99),
	(10, 'offset 200', NULL, 200),
	(11, 'offset 205', NULL, 205),
	(12, 'offset 2147483647', 200, 2147483647)
) AS p(n, label, lim, off)
LEFT JOIN LATERAL (
	SELECT x.address, x.total, x.message, x.pos, count(*) OVER () AS rows
	FROM social.sent_requests(:outbox, p.lim, p.off) WITH ORDINALITY
		 AS x(id, address, created_at, message, total, pos)
) r ON true
GROUP BY p.n, p.label
ORDER BY p.n;

-- =============================================================================================
-- blocked_users: newest first, default and max 200.
-- =============================================================================================
DO $$
BEGIN
	FOR i IN 1..105 LOOP
		PERFORM social.block_user('0xf000000000000000000000000000000000000005', pg_temp.u(i));
	END LOOP;
END
$$;
DO $$
BEGIN
	FOR i IN 106..205 LOOP
		PERFORM social.block_user('0xf000000000000000000000000000000000000005', pg_temp.u(i));
	END LOOP;
END
$$;
SELECT p.label, count(b.address) AS rows, min(b.total) AS min_total, max(b.total) AS max_total,
	   pg_temp.n(min(b.address) FILTER (WHERE b.pos = 1)) AS first,
	   pg_temp.n(min(b.address) FILTER (WHERE b.pos = 100)) AS "100th",
	   pg_temp.n(min(b.address) FILTER (WHERE b.pos = 101)) AS "101st",
	   pg_temp.n(min(b.address) FILTER (WHERE b.pos = b.rows)) AS last
FROM (VALUES
	(1, 'default', NULL, NULL),
	(2, 'limit 0', 0, NULL),
	(3, 'limit -1', -1, NULL),
	(4, 'limit 50', 50, NULL),
	(5, 'limit 201', 201, NULL),
	(6, 'offset -1', 3, -1),
	(7, 'offset 200', NULL, 200),
	(8, 'offset 100000', NULL, 100000)
) AS p(n, label, lim, off)
LEFT JOIN LATERAL (
	SELECT x.address, x.total, x.pos, count(*) OVER () AS rows
	FROM social.blocked_users(:blocker, p.lim, p.off) WITH ORDINALITY
		 AS x(address, blocked_at, total, pos)
) b ON true
GROUP BY p.n, p.label
ORDER BY p.n;

-- =============================================================================================
-- friend_suggestions: default 20, max 100.  me befriends hub: hub's other 1,205 friends are
-- suggestions with one mutual friend each (hub2 is not a friend of hub).
-- =============================================================================================
SELECT status FROM social.upsert_friendship(:me, :hub, 'request');
SELECT status FROM social.upsert_friendship(:hub, :me, 'accept');
SELECT p.label, count(s.address) AS rows, min(s.mutual_friends) AS min_mutual,
	   max(s.mutual_friends) AS max_mutual,
	   pg_temp.n(min(s.address) FILTER (WHERE s.pos = 1)) AS first,
	   pg_temp.n(min(s.address) FILTER (WHERE s.pos = s.rows)) AS last
FROM (VALUES
	(1, 'default', NULL),
	(2, 'limit 0', 0),
	(3, 'limit -1', -1),
	(4, 'limit 50', 50),
	(5, 'limit 100', 100),
	(6, 'limit 101', 101),
	(7, 'limit 2147483647', 2147483647)
) AS p(n, label, lim)
LEFT JOIN LATERAL (
	SELECT x.address, x.mutual_friends, x.pos, count(*) OVER () AS rows
	FROM social.friend_suggestions(:me, p.lim) WITH ORDINALITY AS x(address, mutual_friends, pos)
) s ON true
GROUP BY p.n, p.label
ORDER BY p.n;

SELECT count(*) AS inconsistent_friend_sets FROM social.check_friend_sets();
