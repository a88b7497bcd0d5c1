-- views: the analyst views (friends_view, open_requests, daily_actions, friend_counts), and
-- example questions an analyst can answer with plain SQL (the README quotes them).
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

CREATE FUNCTION pg_temp.act(actor text, target text, action text, message text DEFAULT NULL)
	RETURNS text LANGUAGE sql AS $$
	SELECT status FROM social.upsert_friendship(actor, target, action, message)
$$;

-- The story:
--   alice is friends with bob, carol and dave; bob with carol; carol with erin.
--   bob and dave were friends, then bob deleted the friendship.
--   alice blocks dave, ending their friendship, and later unblocks him (it stays ended);
--   erin blocks dave; carol and bob block frank.
--   frank asked alice, who rejected; dave asked erin, then canceled.
--   Open: erin -> alice ("hi alice"), frank -> dave, carol -> dave ("hi dave").
SELECT pg_temp.act(:alice, :bob, 'request'), pg_temp.act(:bob, :alice, 'accept');
SELECT pg_temp.act(:alice, :carol, 'request'), pg_temp.act(:carol, :alice, 'accept');
SELECT pg_temp.act(:alice, :dave, 'request'), pg_temp.act(:dave, :alice, 'accept');
SELECT pg_temp.act(:bob, :carol, 'request'), pg_temp.act(:carol, :bob, 'accept');
SELECT pg_temp.act(:erin, :carol, 'request'), pg_temp.act(:carol, :erin, 'accept');
SELECT pg_temp.act(:bob, :dave, 'request'), pg_temp.act(:dave, :bob, 'accept'),
	   pg_temp.act(:bob, :dave, 'delete');
SELECT pg_temp.act(:frank, :alice, 'request', 'hello?'), pg_temp.act(:alice, :frank, 'reject');
SELECT pg_temp.act(:dave, :erin, 'request'), pg_temp.act(:dave, :erin, 'cancel');
SELECT pg_temp.act(:erin, :alice, 'request', 'hi alice');
SELECT pg_temp.act(:frank, :dave, 'request');
SELECT pg_temp.act(:carol, :dave, 'request', 'hi dave');
SELECT address FROM social.block_user(:alice, :dave);
SELECT address FROM social.block_user(:carol, :frank);
SELECT address FROM social.block_user(:bob, :frank);
SELECT address FROM social.block_user(:erin, :dave);
SELECT address, was_blocked FROM social.unblock_user(:alice, :dave);
SELECT count(*) AS inconsistent_friend_sets FROM social.check_friend_sets();

-- =============================================================================================
-- friends_view: every friendship in both directions; since = the time of the accept.
-- =============================================================================================
SELECT address, friend FROM social.friends_view ORDER BY address, friend;
SELECT bool_and(v.since = a."timestamp") AS since_is_accept_time, count(*) AS rows
FROM social.friends_view v
JOIN social.friendship_actions a
  ON a.action = 'accept'
 AND ((a.acting_user = v.address AND a.target_user = v.friend)
	  OR (a.acting_user = v.friend AND a.target_user = v.address));
-- the same friends as social.friends()
SELECT bool_and(v.friends = f.friends) AS same_as_friends_function
FROM (SELECT address, array_agg(friend ORDER BY friend) AS friends
	  FROM social.friends_view GROUP BY address) v
JOIN LATERAL (SELECT array_agg(x.address ORDER BY x.address) AS friends
			  FROM social.friends(v.address) x) f ON true;

-- =============================================================================================
-- open_requests: who asked whom, with the message.
-- =============================================================================================
SELECT requester, requested, message FROM social.open_requests ORDER BY requester, requested;
-- a request made by the user stored second in the pair (the pair row was created by the other)
SELECT pg_temp.act(:alice, :frank, 'request', 'sorry, frank');
SELECT f.address_requester = :frank AS row_created_by_frank, o.requester = :alice AS alice_asks,
	   o.requested = :frank AS frank_is_asked, o.message
FROM social.open_requests o JOIN social.friendships f ON f.id = o.friendship_id
WHERE :frank IN (o.requester, o.requested)
ORDER BY o.requester;
-- the same requests as pending_requests() and sent_requests()
SELECT (SELECT array_agg(requester ORDER BY requester) FROM social.open_requests
		WHERE requested = :dave) = (SELECT array_agg(address ORDER BY address)
									FROM social.pending_requests(:dave)) AS same_as_pending,
	   (SELECT array_agg(requested ORDER BY requested) FROM social.open_requests
		WHERE requester = :alice) = (SELECT array_agg(address ORDER BY address)
									 FROM social.sent_requests(:alice)) AS same_as_sent,
	   (SELECT array_agg(requester ORDER BY requester) FROM social.open_requests
		WHERE requested = :frank) = (SELECT array_agg(address ORDER BY address)
									 FROM social.pending_requests(:frank)) AS same_for_frank;

-- =============================================================================================
-- daily_actions: actions per UTC day and action.
-- =============================================================================================
SELECT action, sum(actions) AS actions FROM social.daily_actions GROUP BY action ORDER BY action;
-- the logs, for comparison
SELECT 'friendship' AS log, action, count(*) FROM social.friendship_actions GROUP BY action
UNION ALL
SELECT 'block', action, count(*) FROM social.block_actions GROUP BY action
ORDER BY log, action;
-- everything happened today, by the UTC calendar (the session's time zone does not matter)
SET TimeZone = 'Pacific/Kiritimati';
SELECT bool_and(day = (now() AT TIME ZONE 'UTC')::date) AS all_today_utc
FROM social.daily_actions;
RESET TimeZone;
-- One row per day, kind and action: a block of the friendship log and a block of the block log
-- must not come out as two rows that look alike.
SELECT count(*) = count(DISTINCT (day, kind, action)) AS one_row_per_day_kind_and_action
FROM social.daily_actions;

-- =============================================================================================
-- friend_counts: friends per user, users without friends absent; same as friend_count().
-- =============================================================================================
SELECT address, friends FROM social.friend_counts ORDER BY address;
SELECT bool_and(friends = social.friend_count(address)) AS same_as_friend_count
FROM social.friend_counts;
SELECT social.friend_count(:dave) AS dave, social.friend_count(:frank) AS frank;

-- =============================================================================================
-- Example analyst questions.  The queries below are quoted in the README; keep them in step.
-- =============================================================================================

-- 1. Who has the most friends?
SELECT address, friends
FROM social.friend_counts
ORDER BY friends DESC, address
LIMIT 10;

-- 2. What happened to the friendship requests of the last 30 days, and what share of the
--    answered ones were accepted?  (The outcome of a request is the next action on its pair.)
SELECT count(*) AS requests,
	   count(*) FILTER (WHERE outcome = 'accept') AS accepted,
	   count(*) FILTER (WHERE outcome = 'reject') AS rejected,
	   count(*) FILTER (WHERE outcome = 'cancel') AS canceled,
	   count(*) FILTER (WHERE outcome = 'block') AS blocked,
	   count(*) FILTER (WHERE outcome IS NULL) AS still_open,
	   round(count(*) FILTER (WHERE outcome = 'accept')::numeric
			 / nullif(count(*) FILTER (WHERE outcome IN ('accept', 'reject')), 0), 2)
		   AS acceptance_rate
FROM (
	SELECT (SELECT n.action
			FROM social.friendship_actions n
			WHERE n.friendship_id = r.friendship_id AND n.seq > r.seq
			ORDER BY n.seq
			LIMIT 1) AS outcome
	FROM social.friendship_actions r
	WHERE r.action = 'request'
	  AND r."timestamp" > now() - interval '30 days'
) requests;

-- 3. Who has the most requests waiting for an answer?
SELECT requested AS address, count(*) AS waiting,
	   count(*) FILTER (WHERE message IS NOT NULL) AS with_message
FROM social.open_requests
GROUP BY requested
ORDER BY waiting DESC, address
LIMIT 10;

-- 4. Who is blocked by the most users?
SELECT blocked_address AS address, count(*) AS blocked_by
FROM social.blocks
GROUP BY blocked_address
ORDER BY blocked_by DESC, address
LIMIT 10;

-- 5. How many actions did users take per day over the last week?  (From the logs: the 'block'
--    that a block records in the friendship log, and the 'delete' that an unblock records there,
--    are consequences, not actions a user took; in the test, the day column is replaced by
--    "today".)
SELECT day = (now() AT TIME ZONE 'UTC')::date AS today, requests, accepts, rejects, cancels,
	   deletes, blocks, unblocks
FROM (
SELECT day,
	   count(*) FILTER (WHERE action = 'request') AS requests,
	   count(*) FILTER (WHERE action = 'accept') AS accepts,
	   count(*) FILTER (WHERE action = 'reject') AS rejects,
	   count(*) FILTER (WHERE action = 'cancel') AS cancels,
	   count(*) FILTER (WHERE action = 'delete') AS deletes,
	   count(*) FILTER (WHERE action = 'block') AS blocks,
	   count(*) FILTER (WHERE action = 'unblock') AS unblocks
FROM (
	SELECT ("timestamp" AT TIME ZONE 'UTC')::date AS day, action
	FROM social.friendship_actions
	WHERE action <> 'block' AND metadata IS DISTINCT FROM '{"reason": "unblock"}'
	UNION ALL
	SELECT ("timestamp" AT TIME ZONE 'UTC')::date, action
	FROM social.block_actions
) actions
WHERE day > (now() AT TIME ZONE 'UTC')::date - 7
GROUP BY day
ORDER BY day
) q
ORDER BY q.day;
