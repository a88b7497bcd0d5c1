-- analyst_questions: the ten queries of the README's "Questions analysts ask", verbatim
-- (tools/check_guide_sql, run by `make check`, fails when a README query is not found here
-- character for character), over a small history with fixed times, run as social_analyst.
--
-- The history is written the only ways the extension lets times be chosen: a reference
-- deployment's tables imported with social.import_reference (friendships, actions, blocks, at
-- the reference's timestamps) and social.record_presence (sessions at given instants).  One
-- block is made live with social.block_user: it is dated now(), outside the queried period,
-- and only the query that reads every current block counts it.
DROP EXTENSION social;
CREATE EXTENSION social;
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';

\set alice '0xa11ce00000000000000000000000000000000001'
\set bob '0xb0b0000000000000000000000000000000000001'
\set carol '0xca40100000000000000000000000000000000001'
\set dave '0xda7e000000000000000000000000000000000001'
\set erin '0xe414000000000000000000000000000000000001'
\set frank '0xf4a4c00000000000000000000000000000000001'
\set gina '0x61a0000000000000000000000000000000000001'
\set hank '0x4a4c000000000000000000000000000000000001'

-- =============================================================================================
-- The reference's tables (the columns import_reference reads), filled with a week of history.
-- =============================================================================================
CREATE SCHEMA ref_week;
CREATE TABLE ref_week.friendships (
	id					uuid PRIMARY KEY,
	address_requester	varchar NOT NULL,
	address_requested	varchar NOT NULL,
	is_active			boolean NOT NULL DEFAULT false,
	created_at			timestamp NOT NULL
);
CREATE TABLE ref_week.friendship_actions (
	id				uuid PRIMARY KEY,
	friendship_id	uuid NOT NULL,
	action			varchar NOT NULL,
	acting_user		varchar NOT NULL,
	metadata		json,
	"timestamp"		timestamp NOT NULL
);
CREATE TABLE ref_week.blocks (
	id				uuid PRIMARY KEY,
	blocker_address	varchar NOT NULL,
	blocked_address	varchar NOT NULL,
	blocked_at		timestamp NOT NULL
);
CREATE TABLE ref_week.social_settings (
	address								varchar(42) PRIMARY KEY,
	private_messages_privacy			varchar NOT NULL,
	blocked_users_messages_visibility	varchar NOT NULL
);

-- pg_temp.pair(n, requester, requested, first action's time, then (action, actor, time)...):
-- one reference friendship and its history; is_active as the reference would leave it.
CREATE FUNCTION pg_temp.pair(n integer, requester text, requested text, VARIADIC steps text[])
	RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	k integer;
BEGIN
	INSERT INTO ref_week.friendships VALUES (md5('pair ' || n)::uuid, requester, requested,
		steps[cardinality(steps) - 2] = 'accept', steps[3]::timestamp);
	FOR k IN 0 .. cardinality(steps) / 3 - 1 LOOP
		INSERT INTO ref_week.friendship_actions VALUES (md5('pair ' || n || ' action ' || k)::uuid,
			md5('pair ' || n)::uuid, steps[3 * k + 1], steps[3 * k + 2], NULL,
			steps[3 * k + 3]::timestamp);
	END LOOP;
END
$$;

-- Friends at the end: alice-bob, alice-carol, alice-dave, bob-carol, carol-erin, dave-gina,
-- bob-erin.  Accepts after 30 min, 2 h, 24 h, 10 min, 6 h, 24 h and 30 min.
SELECT pg_temp.pair(1, :'alice', :'bob', 'request', :'alice', '2024-01-01 10:00',
					'accept', :'bob', '2024-01-01 10:30');
SELECT pg_temp.pair(2, :'alice', :'carol', 'request', :'alice', '2024-01-01 11:00',
					'accept', :'carol', '2024-01-01 13:00');
SELECT pg_temp.pair(3, :'dave', :'alice', 'request', :'dave', '2024-01-02 09:00',
					'accept', :'alice', '2024-01-03 09:00');
SELECT pg_temp.pair(4, :'bob', :'carol', 'request', :'bob', '2024-01-02 12:00',
					'accept', :'carol', '2024-01-02 12:10');
SELECT pg_temp.pair(5, :'erin', :'carol', 'request', :'erin', '2024-01-02 15:00',
					'accept', :'carol', '2024-01-02 21:00');
SELECT pg_temp.pair(6, :'dave', :'gina', 'request', :'dave', '2024-01-04 11:00',
					'accept', :'gina', '2024-01-05 11:00');
SELECT pg_temp.pair(7, :'bob', :'erin', 'request', :'bob', '2024-01-05 14:00',
					'accept', :'erin', '2024-01-05 14:30');
-- Answered otherwise: alice rejects frank; dave cancels his request to erin; bob blocks frank
-- while frank's request waits.
SELECT pg_temp.pair(8, :'frank', :'alice', 'request', :'frank', '2024-01-03 08:00',
					'reject', :'alice', '2024-01-03 09:00');
SELECT pg_temp.pair(9, :'dave', :'erin', 'request', :'dave', '2024-01-03 10:00',
					'cancel', :'dave', '2024-01-03 10:05');
SELECT pg_temp.pair(10, :'frank', :'bob', 'request', :'frank', '2024-01-04 10:00',
					'block', :'bob', '2024-01-04 10:30');
-- Still open: gina -> alice; hank asks alice, bob and carol within one minute; and hank's
-- request to dave from before the period.
SELECT pg_temp.pair(11, :'gina', :'alice', 'request', :'gina', '2024-01-03 12:00');
SELECT pg_temp.pair(12, :'hank', :'alice', 'request', :'hank', '2024-01-01 09:00:00');
SELECT pg_temp.pair(13, :'hank', :'bob', 'request', :'hank', '2024-01-01 09:00:20');
SELECT pg_temp.pair(14, :'hank', :'carol', 'request', :'hank', '2024-01-01 09:00:40');
SELECT pg_temp.pair(15, :'hank', :'dave', 'request', :'hank', '2023-12-20 18:00');
UPDATE ref_week.friendship_actions SET metadata = '{"message": "hi alice"}'
WHERE id = md5('pair 11 action 0')::uuid;
-- Blocks: bob and carol block frank, erin blocks hank.
INSERT INTO ref_week.blocks VALUES
	(md5('block 1')::uuid, :'bob', :'frank', '2024-01-04 10:30'),
	(md5('block 2')::uuid, :'carol', :'frank', '2024-01-04 12:00'),
	(md5('block 3')::uuid, :'erin', :'hank', '2024-01-05 08:00');

SELECT kind, outcome, count(*) FROM social.import_reference('ref_week') GROUP BY 1, 2 ORDER BY 1, 2;
-- One more block, live (dated now): gina blocks hank.
SELECT address FROM social.block_user(:'gina', :'hank');
SELECT count(*) AS inconsistent_friend_sets FROM social.check_friend_sets();

-- Presence sessions (ms since the epoch; 1704067200000 = 2024-01-01 00:00 UTC):
--   alice 01-01 10:00-11:00 and 01-02 10:00-10:30; bob 01-01 23:00-01-02 01:00 (over
--   midnight); carol 01-02 12:00-12:05 and 01-03 12:00-12:45; dave 01-03 09:00-09:10;
--   erin 01-04 20:00-21:30; and frank 2023-12-31 12:00-13:00, before the period.
\set d1 1704067200000
\set h 3600000
\set m 60000
SELECT social.record_presence(
	ARRAY[:'alice', :'alice', :'bob', :'carol', :'carol', :'dave', :'erin', :'frank'],
	ARRAY[:d1 + 10 * :h, :d1 + 34 * :h, :d1 + 23 * :h, :d1 + 36 * :h, :d1 + 60 * :h,
		  :d1 + 57 * :h, :d1 + 92 * :h, :d1 - 12 * :h]::bigint[],
	ARRAY[:d1 + 11 * :h, :d1 + 34 * :h + 30 * :m, :d1 + 25 * :h, :d1 + 36 * :h + 5 * :m,
		  :d1 + 60 * :h + 45 * :m, :d1 + 57 * :h + 10 * :m, :d1 + 93 * :h + 30 * :m,
		  :d1 - 11 * :h]::bigint[],
	ARRAY[NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL]::integer[],
	ARRAY[NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL]::integer[],
	'analyst-test') AS sessions_written;

-- =============================================================================================
-- The questions, as the analyst role, in a session whose time zone is not UTC (the answers are
-- by the UTC calendar whatever the session's zone).  The period: the first week of 2024.
-- =============================================================================================
SET ROLE social_analyst;
SET TimeZone = 'Pacific/Kiritimati';
\set from '2024-01-01 00:00+00'
\set to '2024-01-08 00:00+00'

-- 1. How are friend counts distributed?
SELECT CASE WHEN friends < 5 THEN friends::text
            WHEN friends < 10 THEN '5-9'
            WHEN friends < 50 THEN '10-49'
            WHEN friends < 100 THEN '50-99'
            WHEN friends < 1000 THEN '100-999'
            ELSE '1000+' END AS friends,
       count(*) AS users
FROM social.friend_counts
GROUP BY 1
ORDER BY min(friends);

-- 2. What share of the period's requests was accepted?
SELECT count(*) AS requests,
       count(*) FILTER (WHERE outcome = 'accept') AS accepted,
       count(*) FILTER (WHERE outcome = 'reject') AS rejected,
       count(*) FILTER (WHERE outcome IS NULL) AS open,
       round(count(*) FILTER (WHERE outcome = 'accept')::numeric
             / nullif(count(*) FILTER (WHERE outcome IN ('accept', 'reject')), 0), 2)
           AS acceptance_rate
FROM social.friendship_actions r
LEFT JOIN LATERAL (
    SELECT n.action AS outcome
    FROM social.friendship_actions n
    WHERE n.friendship_id = r.friendship_id AND n.seq > r.seq
    ORDER BY n.seq
    LIMIT 1
) o ON true
WHERE r.action = 'request'
  AND r."timestamp" >= :'from' AND r."timestamp" < :'to';

-- 3. How long does an accepted request wait for its accept?
SELECT count(*) AS accepted,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY a."timestamp" - r."timestamp") AS median,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY a."timestamp" - r."timestamp") AS p90
FROM social.friendship_actions r
JOIN LATERAL (
    SELECT n.action, n."timestamp"
    FROM social.friendship_actions n
    WHERE n.friendship_id = r.friendship_id AND n.seq > r.seq
    ORDER BY n.seq
    LIMIT 1
) a ON a.action = 'accept'
WHERE r.action = 'request'
  AND r."timestamp" >= :'from' AND r."timestamp" < :'to';

-- 4. Who is blocked by the most users?
SELECT blocked_address AS address,
       count(*) AS blocked_by,
       count(*) FILTER (WHERE blocked_at >= :'from' AND blocked_at < :'to') AS in_period
FROM social.blocks
GROUP BY blocked_address
ORDER BY blocked_by DESC, address
LIMIT 10;

-- 5. How many users were online each day?
SELECT day, users
FROM social.daily_active_users
WHERE day >= :'from'::date AND day < :'to'::date
ORDER BY day;

-- 6. How long are sessions?
SELECT count(*) AS sessions,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) / 60)::numeric, 1)
           AS median_minutes,
       round((percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds) / 60)::numeric, 1)
           AS p90_minutes,
       round((max(seconds) / 60)::numeric, 1) AS longest_minutes
FROM social.session_lengths
WHERE online_from >= :'from' AND online_from < :'to';

-- 7. How were each day's requests answered?
SELECT (r."timestamp" AT TIME ZONE 'UTC')::date AS day,
       count(*) AS requests,
       count(*) FILTER (WHERE o.outcome = 'accept') AS accepted,
       count(*) FILTER (WHERE o.outcome = 'reject') AS rejected,
       count(*) FILTER (WHERE o.outcome = 'cancel') AS canceled,
       count(*) FILTER (WHERE o.outcome = 'block') AS blocked,
       count(*) FILTER (WHERE o.outcome IS NULL) AS open
FROM social.friendship_actions r
LEFT JOIN LATERAL (
    SELECT n.action AS outcome
    FROM social.friendship_actions n
    WHERE n.friendship_id = r.friendship_id AND n.seq > r.seq
    ORDER BY n.seq
    LIMIT 1
) o ON true
WHERE r.action = 'request'
  AND r."timestamp" >= :'from' AND r."timestamp" < :'to'
GROUP BY 1
ORDER BY 1;

-- 8. Who came closest to the per-user rate limit?
SELECT actor AS address, max(in_60s) AS busiest_minute, count(*) AS actions
FROM (
    SELECT actor,
           count(*) OVER (PARTITION BY actor ORDER BY ts
                          RANGE BETWEEN interval '60 seconds' PRECEDING AND CURRENT ROW)
               AS in_60s
    FROM (
        SELECT acting_user::text AS actor, "timestamp" AS ts
        FROM social.friendship_actions
        WHERE action <> 'block' AND metadata IS DISTINCT FROM '{"reason": "unblock"}'
        UNION ALL
        SELECT blocker_address::text, "timestamp"
        FROM social.block_actions
    ) actions
    WHERE ts >= :'from' AND ts < :'to'
) w
GROUP BY actor
ORDER BY busiest_minute DESC, actions DESC, address
LIMIT 10;

-- 9. Who leaves requests unanswered?
SELECT requested AS address,
       count(*) AS waiting,
       count(*) FILTER (WHERE requested_at < :'to'::timestamptz - interval '7 days')
           AS waiting_over_a_week,
       :'to'::date - min((requested_at AT TIME ZONE 'UTC')::date) AS oldest_days
FROM social.open_requests
WHERE requested_at < :'to'
GROUP BY requested
ORDER BY waiting_over_a_week DESC, waiting DESC, address
LIMIT 10;

-- 10. Which users who are not friends share the most friends?
SELECT a.address AS user_a, b.address AS user_b, count(*) AS mutual_friends
FROM social.friends_view a
JOIN social.friends_view b ON b.friend = a.friend AND b.address > a.address
WHERE NOT EXISTS (SELECT FROM social.friends_view f
                  WHERE f.address = a.address AND f.friend = b.address)
  AND NOT EXISTS (SELECT FROM social.blocks k
                  WHERE (k.blocker_address = a.address AND k.blocked_address = b.address)
                     OR (k.blocker_address = b.address AND k.blocked_address = a.address))
GROUP BY a.address, b.address
ORDER BY mutual_friends DESC, user_a, user_b
LIMIT 10;

RESET TimeZone;
RESET ROLE;
-- Tests that follow in this database build a reference schema of their own.
DROP SCHEMA ref_week CASCADE;
