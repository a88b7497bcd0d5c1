-- The friend graph of the presence benchmark (bench/presence/run.sh), loaded straight into the
-- extension's tables (as bench/sql/load_social.sql does) and then into friend sets.
--
-- Input: the users on psql's standard input, lines "n<TAB>address" (from `loadclient keys`).
-- Variables (psql -v): connected (C), peers (P), friends (F), hubs (H), hub_friends.
--
-- Users 0 .. C-1 are connected during the benchmark (one WebSocket and one connectivity stream
-- each). Users C .. C+P-1 are the peers whose status changes (NATS heartbeat and disconnect):
-- each has F friends drawn pseudo-randomly among the connected users (a pair drawn twice is kept
-- once), so a connected user has F friends on average and a status change of a peer is F
-- notifications. Users C+P .. C+P+H-1 are hubs, each with hub_friends connected friends (a
-- window of the connected users, hub j starting at j * C / H). User C+P+H is the probe, friend
-- of every connected user: run.sh flips it once before measuring, and when all C notifications
-- have arrived every stream is live (its friends loaded and its snapshot sent). Deterministic:
-- the same variables give the same graph.
--
-- Every friendship is accepted and has one action (its accept); nothing in the benchmark reads
-- the history. session_replication_role = replica keeps the NOTIFY trigger from firing for each
-- of the rows: the daemon is not running yet anyway.

\set ON_ERROR_STOP 1
SET client_min_messages = warning;

DROP SCHEMA IF EXISTS bench_presence CASCADE;
CREATE SCHEMA bench_presence;

CREATE TABLE bench_presence.users (n int PRIMARY KEY, addr text NOT NULL UNIQUE);
\copy bench_presence.users FROM pstdin

-- A non-negative 31-bit hash of two numbers.
CREATE FUNCTION bench_presence.h(a bigint, b bigint) RETURNS int
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN ('x' || left(md5(a || ':' || b), 8))::bit(32)::int & 2147483647;

CREATE TABLE bench_presence.edges AS
SELECT DISTINCT p AS a, bench_presence.h(p, k) % :connected AS b, 'peer' AS kind
FROM generate_series(:connected, :connected + :peers - 1) AS p,
	 generate_series(1, :friends) AS k
UNION ALL
SELECT :connected + :peers + j, (c + j * (:connected / greatest(:hubs, 1))) % :connected, 'hub'
FROM generate_series(0, :hubs - 1) AS j, generate_series(0, :hub_friends - 1) AS c
UNION ALL
SELECT :connected + :peers + :hubs, c, 'probe' FROM generate_series(0, :connected - 1) AS c;

SET session_replication_role = replica;

CREATE TABLE bench_presence.pairs AS
SELECT md5('bench-presence-f:' || e.a || ':' || e.b)::uuid AS friendship_id,
	   md5('bench-presence-a:' || e.a || ':' || e.b)::uuid AS action_id,
	   ua.addr AS requester, ub.addr AS requested, e.kind
FROM bench_presence.edges e
JOIN bench_presence.users ua ON ua.n = e.a
JOIN bench_presence.users ub ON ub.n = e.b;

INSERT INTO social.friendships (id, address_requester, address_requested, is_active, created_at,
								updated_at, last_action, last_actor, last_action_id)
SELECT friendship_id, requester, requested, true, timestamptz '2024-01-01 00:00:00+00',
	   timestamptz '2024-01-01 01:00:00+00', 'accept', requested, action_id
FROM bench_presence.pairs;

INSERT INTO social.friendship_actions (id, friendship_id, action, acting_user, target_user,
									   "timestamp")
SELECT action_id, friendship_id, 'accept', requested, requester,
	   timestamptz '2024-01-01 01:00:00+00'
FROM bench_presence.pairs;

RESET session_replication_role;

SELECT social.rebuild_friend_sets();

-- Per peer and hub: how many connected friends it has, i.e. how many notifications one status
-- change of it must produce.
CREATE TABLE bench_presence.fanout AS
SELECT a AS n, count(*)::int AS notifications FROM bench_presence.edges GROUP BY a;

ANALYZE;
