-- outbox: social.notification_outbox (0.5.0), the notifications of friend requests and accepts
-- that sociald will relay to AWS SNS.  Each request and accept enqueues one row in its own
-- transaction, nothing else does, a rollback leaves nothing; outbox_claim leases rows and builds
-- the reference's SNS event; outbox_delivered, outbox_failed and outbox_prune; bad arguments are
-- SC016; the grants.  Ids, times and uuids are not printed: the event is shown without its key
-- and timestamp, which are compared with the action they come from.
DROP EXTENSION social;
CREATE EXTENSION social;
SET social.actor_actions_per_minute = 0;
SET social.pair_actions_per_minute = 0;
\set SHOW_CONTEXT never

\set alice '0xa11ce00000000000000000000000000000000001'
\set bob '0xb0b0000000000000000000000000000000000001'
\set carol '0xca40100000000000000000000000000000000001'
\set dave '0xda7e000000000000000000000000000000000001'
\set erin '0xe414000000000000000000000000000000000001'

-- A view of the outbox without times and uuids; n numbers the rows in id order.
CREATE FUNCTION pg_temp.outbox() RETURNS TABLE(n bigint, action text, actor text, kind text,
		attempts integer, delivered boolean, last_error text, due boolean)
	LANGUAGE sql AS $$
	SELECT row_number() OVER (ORDER BY o.id), a.action, a.acting_user::text, o.kind, o.attempts,
		   o.delivered_at IS NOT NULL, o.last_error, o.next_attempt_at <= now()
	FROM social.notification_outbox o JOIN social.friendship_actions a ON a.id = o.action_id
	ORDER BY o.id
$$;
-- A claim's events without key and timestamp, each checked against its action.
CREATE FUNCTION pg_temp.claim(k integer, lease interval DEFAULT interval '60 seconds')
	RETURNS TABLE(actor text, kind text, attempts integer, key_is_action boolean,
				  timestamp_is_action boolean, event jsonb)
	LANGUAGE sql AS $$
	SELECT a.acting_user::text, c.kind, c.attempts,
		   c.payload->>'key' = a.id::text AND c.payload->'metadata'->>'requestId' = a.id::text
		   AND c.action_id = a.id,
		   (c.payload->>'timestamp')::bigint = floor(extract(epoch FROM a."timestamp") * 1000),
		   c.payload - 'key' - 'timestamp' #- '{metadata,requestId}'
	FROM social.outbox_claim(k, lease) c JOIN social.friendship_actions a ON a.id = c.action_id
	ORDER BY c.id
$$;

-- Display data for alice (complete) and carol (a name, no picture); bob and dave have none.
SELECT social.upsert_profile(:'alice', 'Alice', true, 'https://profile.example/alice.png');
SELECT social.upsert_profile(:'carol', 'Carol', false, NULL);

-- =============================================================================================
-- Enqueue: one row per request and accept, nothing for the other actions.
-- =============================================================================================
SELECT status FROM social.upsert_friendship(:'alice', :'bob', 'request', 'hi "bob" ✓');
SELECT status FROM social.upsert_friendship(:'bob', :'alice', 'accept');
SELECT * FROM pg_temp.outbox();

-- reject, cancel, delete, block and the delete of an unblock enqueue nothing (their requests do).
SELECT status FROM social.upsert_friendship(:'carol', :'dave', 'request');
SELECT status FROM social.upsert_friendship(:'carol', :'dave', 'cancel');
SELECT status FROM social.upsert_friendship(:'dave', :'carol', 'request');
SELECT status FROM social.upsert_friendship(:'carol', :'dave', 'reject');
SELECT status FROM social.upsert_friendship(:'alice', :'bob', 'delete');
SELECT status FROM social.upsert_friendship(:'carol', :'bob', 'request');
SELECT status FROM social.upsert_friendship(:'bob', :'carol', 'accept');
SELECT address FROM social.block_user(:'bob', :'carol');
SELECT address, was_blocked FROM social.unblock_user(:'bob', :'carol');
SELECT a.action, count(*) AS actions, count(o.id) AS notifications
FROM social.friendship_actions a LEFT JOIN social.notification_outbox o ON o.action_id = a.id
GROUP BY a.action ORDER BY a.action;

-- A refused action enqueues nothing (SC001: dave cannot accept his own request).
SELECT status FROM social.upsert_friendship(:'dave', :'erin', 'request');
SELECT status FROM social.upsert_friendship(:'dave', :'erin', 'accept');
SELECT :'SQLSTATE' AS sqlstate;

-- A rolled-back request leaves no notification; inside its transaction the row is there.
BEGIN;
SELECT status FROM social.upsert_friendship(:'erin', :'alice', 'request');
SELECT count(*) AS inside FROM social.notification_outbox o
JOIN social.friendship_actions a ON a.id = o.action_id WHERE a.acting_user = :'erin';
ROLLBACK;
SELECT count(*) AS after_rollback FROM social.notification_outbox o
JOIN social.friendship_actions a ON a.id = o.action_id WHERE a.acting_user = :'erin';

SELECT * FROM pg_temp.outbox();

-- =============================================================================================
-- Claim: the event, leased.
-- =============================================================================================
-- The first two: alice's request with its message, bob's accept (sender = the one who acted).
SELECT * FROM pg_temp.claim(2);
-- A second claim does not get them while their lease runs; it gets the rest: a request without
-- a message has no "message", a name without a picture gives an empty picture.
SELECT * FROM pg_temp.claim(100);
SELECT count(*) AS third_claim FROM social.outbox_claim(100);
SELECT * FROM pg_temp.outbox();

-- =============================================================================================
-- Delivered, failed, lease expiry.
-- =============================================================================================
SELECT social.outbox_delivered(ARRAY(SELECT o.id FROM social.notification_outbox o
									 ORDER BY o.id LIMIT 2) || ARRAY[-1::bigint]) AS delivered;
SELECT social.outbox_delivered(ARRAY(SELECT o.id FROM social.notification_outbox o
									 ORDER BY o.id LIMIT 2)) AS delivered_again;
SELECT social.outbox_delivered('{}') AS delivered_none;
-- The third failed: due again after retry_after (0 here), with the error kept.
SELECT social.outbox_failed((SELECT o.id FROM social.notification_outbox o ORDER BY o.id
							 OFFSET 2 LIMIT 1), 'SNS said: throttled', interval '0') AS failed;
-- The fourth failed: due again in an hour.
SELECT social.outbox_failed((SELECT o.id FROM social.notification_outbox o ORDER BY o.id
							 OFFSET 3 LIMIT 1), repeat('x', 2000), interval '1 hour') AS failed;
SELECT n, kind, attempts, delivered, left(last_error, 20) AS last_error,
	   length(last_error) AS error_length, due FROM pg_temp.outbox();
-- A delivered row cannot fail; an unknown id is no row.
SELECT social.outbox_failed((SELECT min(o.id) FROM social.notification_outbox o), 'late',
							interval '0') AS failed_delivered,
	   social.outbox_failed(-1, 'nobody', interval '0') AS failed_unknown;
SELECT actor, kind, attempts FROM pg_temp.claim(100);
-- Leases run out (moved back here): every undelivered row is claimed again, never a delivered one.
UPDATE social.notification_outbox SET next_attempt_at = next_attempt_at - interval '2 hours';
SELECT actor, kind, attempts FROM pg_temp.claim(100);
SELECT social.outbox_delivered(ARRAY(SELECT o.id FROM social.notification_outbox o
									 ORDER BY o.id OFFSET 2 LIMIT 1)) AS delivered;

-- =============================================================================================
-- Prune: delivered rows and never-delivered ones older than the retention.
-- =============================================================================================
SELECT social.outbox_prune(interval '7 days') AS pruned_nothing_old;
-- Age the first delivered row and the last undelivered one by eight days.
UPDATE social.notification_outbox SET delivered_at = delivered_at - interval '8 days'
WHERE id = (SELECT min(id) FROM social.notification_outbox);
UPDATE social.notification_outbox SET created_at = created_at - interval '8 days'
WHERE id = (SELECT max(id) FROM social.notification_outbox);
SELECT social.outbox_prune(interval '7 days') AS pruned;
SELECT n, action, actor, kind, delivered FROM pg_temp.outbox();
-- A retention of zero empties the outbox; nothing there is a notification lost from the log.
SELECT social.outbox_prune(interval '0') AS pruned_all;
SELECT count(*) AS left_in_outbox FROM social.notification_outbox;
SELECT count(*) AS log_rows_kept FROM social.friendship_actions;

-- =============================================================================================
-- Bad arguments: SC016, nothing changed.
-- =============================================================================================
SELECT status FROM social.upsert_friendship(:'erin', :'alice', 'request');
SELECT * FROM social.outbox_claim(NULL);
SELECT :'SQLSTATE' AS sqlstate;
SELECT * FROM social.outbox_claim(0);
SELECT :'SQLSTATE' AS sqlstate;
SELECT * FROM social.outbox_claim(1001);
SELECT :'SQLSTATE' AS sqlstate;
SELECT * FROM social.outbox_claim(1, interval '0');
SELECT :'SQLSTATE' AS sqlstate;
SELECT * FROM social.outbox_claim(1, NULL);
SELECT :'SQLSTATE' AS sqlstate;
SELECT social.outbox_delivered(NULL);
SELECT :'SQLSTATE' AS sqlstate;
SELECT social.outbox_failed(NULL, 'x', interval '1 minute');
SELECT :'SQLSTATE' AS sqlstate;
SELECT social.outbox_failed(1, 'x', interval '-1 minute');
SELECT :'SQLSTATE' AS sqlstate;
SELECT social.outbox_failed(1, 'x', NULL);
SELECT :'SQLSTATE' AS sqlstate;
SELECT social.outbox_prune(NULL);
SELECT :'SQLSTATE' AS sqlstate;
SELECT social.outbox_prune(interval '-1 day');
SELECT :'SQLSTATE' AS sqlstate;
SELECT * FROM pg_temp.outbox();

-- =============================================================================================
-- Grants: social_service runs the relay's functions and cannot touch the table; social_analyst
-- reads the table and cannot claim; anybody else neither.
-- =============================================================================================
SET client_min_messages = warning;
DROP ROLE IF EXISTS social_regress_relay;
DROP ROLE IF EXISTS social_regress_outbox_analyst;
DROP ROLE IF EXISTS social_regress_outbox_nobody;
RESET client_min_messages;
CREATE ROLE social_regress_relay NOLOGIN;
GRANT social_service TO social_regress_relay;
CREATE ROLE social_regress_outbox_analyst NOLOGIN;
GRANT social_analyst TO social_regress_outbox_analyst;
CREATE ROLE social_regress_outbox_nobody NOLOGIN;

SET ROLE social_regress_relay;
-- the write path enqueues with the daemon's rights
SELECT status FROM social.upsert_friendship(:'alice', :'erin', 'accept');
SELECT kind, attempts, payload->'metadata'->'sender'->>'name' AS sender
FROM social.outbox_claim(10) ORDER BY id;
SELECT count(*) AS claimed_again FROM social.outbox_claim(10);
SELECT social.outbox_failed(-1, 'x', interval '0') AS failed;
SELECT social.outbox_delivered(ARRAY[-1::bigint]) AS delivered;
SELECT social.outbox_prune(interval '7 days') AS pruned;
SELECT count(*) FROM social.notification_outbox;
SELECT :'SQLSTATE' AS sqlstate;
DELETE FROM social.notification_outbox;
SELECT :'SQLSTATE' AS sqlstate;
RESET ROLE;

SET ROLE social_regress_outbox_analyst;
SELECT kind, attempts, delivered_at IS NULL AS undelivered FROM social.notification_outbox
ORDER BY id;
SELECT * FROM social.outbox_claim(10);
SELECT :'SQLSTATE' AS sqlstate;
SELECT social.outbox_prune(interval '0');
SELECT :'SQLSTATE' AS sqlstate;
UPDATE social.notification_outbox SET attempts = 0;
SELECT :'SQLSTATE' AS sqlstate;
RESET ROLE;

SET ROLE social_regress_outbox_nobody;
SELECT count(*) FROM social.notification_outbox;
SELECT :'SQLSTATE' AS sqlstate;
SELECT * FROM social.outbox_claim(10);
SELECT :'SQLSTATE' AS sqlstate;
SELECT social.outbox_delivered(ARRAY[1::bigint]);
SELECT :'SQLSTATE' AS sqlstate;
RESET ROLE;

-- Who may execute what: the relay's functions are social_service's alone.
SELECT p.proname,
	   has_function_privilege('social_service', p.oid, 'EXECUTE') AS service,
	   has_function_privilege('social_analyst', p.oid, 'EXECUTE') AS analyst,
	   has_function_privilege('public', p.oid, 'EXECUTE') AS public
FROM pg_proc p WHERE p.pronamespace = 'social'::regnamespace
  AND p.proname LIKE 'outbox\_%'
ORDER BY p.proname;
SELECT has_table_privilege('social_analyst', 'social.notification_outbox', 'SELECT') AS analyst_reads,
	   has_table_privilege('social_service', 'social.notification_outbox', 'SELECT') AS service_reads,
	   has_table_privilege('public', 'social.notification_outbox', 'SELECT') AS public_reads;

DROP ROLE social_regress_relay;
DROP ROLE social_regress_outbox_analyst;
DROP ROLE social_regress_outbox_nobody;

-- =============================================================================================
-- A database still at 0.4.0 (new library, old objects) writes without an outbox; after
-- ALTER EXTENSION social UPDATE its requests are enqueued, the earlier ones are not.
-- =============================================================================================
DROP EXTENSION social;
CREATE EXTENSION social VERSION '0.4.0';
SELECT status FROM social.upsert_friendship(:'alice', :'bob', 'request');
SELECT to_regclass('social.notification_outbox') IS NULL AS no_outbox_at_040;
ALTER EXTENSION social UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'social';
SELECT status FROM social.upsert_friendship(:'bob', :'alice', 'accept');
SELECT n, action, actor, kind FROM pg_temp.outbox();
