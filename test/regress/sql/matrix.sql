-- The state machine, twice: the transition table as the C code holds it, and the same matrix
-- executed for real on fresh pairs.  Any change to a rule shows up as a diff here.
DROP EXTENSION social;
CREATE EXTENSION social;
SET social.actor_actions_per_minute = 0;
SET social.pair_actions_per_minute = 0;

-- 1. The table itself: every (state, action, actor) cell.
SELECT from_state, action, actor, allowed, to_state
FROM social.transition_table()
ORDER BY array_position(ARRAY['none','request','accept','reject','cancel','delete','block'], from_state),
		 array_position(ARRAY['request','accept','reject','cancel','delete','block'], action),
		 actor;

-- 2. The executed matrix.  For each state, a fresh pair (x, y) is brought into it with x as the
-- last actor, then x ("last actor") or y ("other user") asks for each action.
CREATE SEQUENCE cell_seq;
CREATE FUNCTION cell_address(n bigint) RETURNS text
	LANGUAGE sql RETURN '0x' || lpad(to_hex(n), 40, '0');

CREATE FUNCTION setup_state(state text, x text, y text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	CASE state
		WHEN 'none' THEN NULL;
		WHEN 'request' THEN
			PERFORM social.upsert_friendship(x, y, 'request');
		WHEN 'accept' THEN
			PERFORM social.upsert_friendship(y, x, 'request');
			PERFORM social.upsert_friendship(x, y, 'accept');
		WHEN 'reject' THEN
			PERFORM social.upsert_friendship(y, x, 'request');
			PERFORM social.upsert_friendship(x, y, 'reject');
		WHEN 'cancel' THEN
			PERFORM social.upsert_friendship(x, y, 'request');
			PERFORM social.upsert_friendship(x, y, 'cancel');
		WHEN 'delete' THEN
			PERFORM social.upsert_friendship(y, x, 'request');
			PERFORM social.upsert_friendship(x, y, 'accept');
			PERFORM social.upsert_friendship(x, y, 'delete');
		WHEN 'block' THEN
			PERFORM social.upsert_friendship(y, x, 'request');
			PERFORM social.block_user(x, y);
	END CASE;
END
$$;

-- Returns the status the actor sees after the action, or the SQLSTATE that refused it.
CREATE FUNCTION try_cell(state text, act text, by_last_actor boolean) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	x text := cell_address(nextval('cell_seq'));
	y text := cell_address(nextval('cell_seq'));
	actor text := CASE WHEN by_last_actor THEN x ELSE y END;
	other text := CASE WHEN by_last_actor THEN y ELSE x END;
	expected text := (ARRAY['none', 'request_sent', 'accepted', 'rejected', 'canceled', 'deleted',
							'blocked'])[array_position(ARRAY['none', 'request', 'accept', 'reject',
															 'cancel', 'delete', 'block'], state)];
	result text;
BEGIN
	PERFORM setup_state(state, x, y);
	IF social.friendship_status(x, y) <> expected THEN
		RAISE EXCEPTION 'setup of % failed: %', state, social.friendship_status(x, y);
	END IF;
	BEGIN
		SELECT u.status INTO result FROM social.upsert_friendship(actor, other, act) u;
		-- the other side must see the mirror image
		result := result || ' / ' || social.friendship_status(other, actor);
	EXCEPTION WHEN OTHERS THEN
		result := 'refused ' || SQLSTATE;
	END;
	RETURN result;
END
$$;

SELECT t.from_state, t.action, t.actor, t.allowed,
	   try_cell(t.from_state, t.action, t.actor = 'last actor') AS outcome
FROM social.transition_table() t
WHERE t.action <> 'block'
ORDER BY array_position(ARRAY['none','request','accept','reject','cancel','delete','block'], t.from_state),
		 array_position(ARRAY['request','accept','reject','cancel','delete'], t.action),
		 t.actor;

-- Every allowed cell succeeded and every refused cell was refused as an invalid transition,
-- except in state block, where the block itself refuses first (SC003).
SELECT count(*) AS disagreements
FROM social.transition_table() t,
	 LATERAL try_cell(t.from_state, t.action, t.actor = 'last actor') o
WHERE t.action <> 'block'
  AND CASE WHEN t.from_state = 'block' THEN o <> 'refused SC003'
		   WHEN t.allowed THEN o LIKE 'refused%'
		   ELSE o <> 'refused SC001' END;

-- Exactly one friendship row per pair whatever happened, and the friend sets match.
SELECT count(*) AS pairs_with_two_rows
FROM (SELECT LEAST(address_requester::text, address_requested::text) AS lo,
			 GREATEST(address_requester::text, address_requested::text) AS hi
	  FROM social.friendships GROUP BY 1, 2 HAVING count(*) > 1) d;
SELECT count(*) AS friend_set_mismatches FROM social.check_friend_sets();

-- The constraint itself refuses a second row for a pair, in either order.
INSERT INTO social.friendships (address_requester, address_requested, last_action, last_actor,
								last_action_id)
SELECT address_requested, address_requester, 'request', address_requested, gen_random_uuid()
FROM social.friendships ORDER BY address_requester, address_requested LIMIT 1;

-- The log keeps the state: the newest action of every friendship is its last_action.
SELECT count(*) AS stale_rows
FROM social.friendships f
WHERE f.last_action IS DISTINCT FROM (SELECT a.action FROM social.friendship_actions a
									  WHERE a.friendship_id = f.id ORDER BY a.seq DESC LIMIT 1);

DROP FUNCTION try_cell(text, text, boolean);
DROP FUNCTION setup_state(text, text, text);
DROP FUNCTION cell_address(bigint);
DROP SEQUENCE cell_seq;
