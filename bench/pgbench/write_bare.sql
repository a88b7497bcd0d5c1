-- The same write without the rules: the friendship row and the action row a request on a fresh
-- pair produces, inserted straight into the same tables (same constraints and indexes), whose
-- NOTIFY trigger sends the same event.  The pairs are as fresh as write_ours.sql's, from another
-- slice of bench.write_pairs (both variants write into social.*).
WITH w AS MATERIALIZED (
	SELECT actor, target, gen_random_uuid() AS fid, gen_random_uuid() AS aid
	FROM bench.write_pairs
	WHERE n = (SELECT nextval('bench.write_seq_bare'))
), f AS (
	INSERT INTO social.friendships (id, address_requester, address_requested, is_active,
									last_action, last_actor, last_action_id)
	SELECT fid, actor, target, false, 'request', actor, aid FROM w
	RETURNING id
)
INSERT INTO social.friendship_actions (id, friendship_id, action, acting_user, target_user)
SELECT w.aid, f.id, 'request', w.actor, w.target FROM w JOIN f ON f.id = w.fid
RETURNING id, friendship_id, "timestamp";
