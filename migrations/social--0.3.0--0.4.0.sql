-- social 0.3.0 -> 0.4.0: import an existing deployment's data from the reference service.
--
-- social.import_reference(source_schema) reads the reference service's (social-service-ea)
-- friendships, friendship_actions, blocks and social_settings tables from the schema the operator
-- names (a database elsewhere is reached by importing its tables into a schema with postgres_fdw)
-- and writes them into social's tables, keeping every invariant social enforces:
--
--   - addresses are lower-cased and validated as social.normalize_address does (0x + 40 hex
--     digits); a row with an invalid address, or one naming the same user twice, is refused;
--   - the reference's duplicate pair rows (A->B and B->A, its defect 2) are merged into one
--     friendship: the oldest row's id is kept, and the actions of all of them are replayed in time
--     order (ties by action id) through social.transition_table(), the state machine of
--     extension/friendship.c; the action ids are kept;
--   - a pair whose history the state machine would not allow is refused as a whole, with the first
--     illegal step as the reason: importing up to that step would leave a state the users never
--     saw, and a refused pair is retried as it is by a rerun once the source is corrected;
--   - an action whose friendship_id names no friendship row is refused (the other user is unknown);
--   - a pair that either user blocks (in the source or in social) must have a history ending in
--     'block' or 'delete', as block_user leaves it; otherwise its friendship is refused, the block
--     itself is imported;
--   - blocks are logged in social.block_actions under the reference block's id; settings values
--     are checked against social.settings' constraints.
--
-- Rerunning imports nothing twice: action ids, block ids (in block_actions) and settings addresses
-- are the keys.  A pair already in social whose actions are the first ones of the source's merged
-- history gets the rest appended (an import repeated before cutover catches up); any other pair
-- already in social is refused.
--
-- Imported rows send no NOTIFY and are not returned by social.events_since: the function runs with
-- session_replication_role = replica (no ordinary trigger fires: not the NOTIFY trigger, not the
-- foreign-key check; the function writes the friendship before its actions itself) and stores
-- xid = 2 (FrozenTransactionId: "older than any snapshot") in the log rows.  Imported history is
-- the past, not events: import before sociald starts, or restart it after.  Policies (rate limits,
-- message length, friend and request caps) apply to new actions, not to imported history.
--
-- SECURITY INVOKER and not granted to anyone: only a superuser (or the extension's owner) can run
-- it.  A missing schema or one without the reference's tables and columns is SC015.

\echo Use "ALTER EXTENSION social UPDATE TO '0.4.0'" to load this file. \quit

CREATE FUNCTION social.import_reference(source_schema name)
	RETURNS TABLE(kind text, source_id text, outcome text, detail text)
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
	SET session_replication_role = replica
AS $fn$
DECLARE
	missing		text;
	has_show	boolean;
	-- FrozenTransactionId: older than every listener's cursor, so catch-up never returns the row.
	frozen		constant xid8 := '2'::xid8;
	p			record;
	a			record;
	ef			record;
	existing	uuid[];
	cur_state	text;
	cur_actor	text;
	first_actor	text;
	step		int;
	reason		text;
	n_actions	int;
	n_new		int;
	imported	int := 0;
BEGIN
	IF source_schema IS NULL
	   OR NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = source_schema) THEN
		RAISE EXCEPTION 'import source schema "%" does not exist', source_schema
			USING ERRCODE = 'SC015',
				  HINT = 'Name the schema that holds the reference''s tables (IMPORT FOREIGN SCHEMA brings another database''s).';
	END IF;
	SELECT string_agg(format('%s.%s', r.tbl, r.col), ', ' ORDER BY r.tbl, r.col) INTO missing
	FROM (VALUES ('friendships', 'id'), ('friendships', 'address_requester'),
				 ('friendships', 'address_requested'), ('friendships', 'is_active'),
				 ('friendships', 'created_at'),
				 ('friendship_actions', 'id'), ('friendship_actions', 'friendship_id'),
				 ('friendship_actions', 'action'), ('friendship_actions', 'acting_user'),
				 ('friendship_actions', 'metadata'), ('friendship_actions', 'timestamp'),
				 ('blocks', 'id'), ('blocks', 'blocker_address'), ('blocks', 'blocked_address'),
				 ('blocks', 'blocked_at'),
				 ('social_settings', 'address'), ('social_settings', 'private_messages_privacy'),
				 ('social_settings', 'blocked_users_messages_visibility')) AS r(tbl, col)
	WHERE NOT EXISTS (
		SELECT FROM pg_attribute att
		JOIN pg_class c ON c.oid = att.attrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = source_schema AND c.relname = r.tbl AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
		  AND att.attname = r.col AND att.attnum > 0 AND NOT att.attisdropped);
	IF missing IS NOT NULL THEN
		RAISE EXCEPTION 'schema "%" does not have the reference service''s tables', source_schema
			USING ERRCODE = 'SC015', DETAIL = format('Missing: %s.', missing),
				  HINT = 'Expected friendships, friendship_actions, blocks and social_settings as social-service-ea''s migrations create them.';
	END IF;
	-- Older reference deployments have no show_situation_reactions: it reads as 'show'.
	has_show := EXISTS (
		SELECT FROM pg_attribute att
		JOIN pg_class c ON c.oid = att.attrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = source_schema AND c.relname = 'social_settings'
		  AND att.attname = 'show_situation_reactions' AND att.attnum > 0 AND NOT att.attisdropped);

	-- Writers take ROW EXCLUSIVE: the import runs alone, and two imports run one after the other.
	LOCK TABLE social.friendships, social.friendship_actions, social.blocks, social.block_actions,
		social.settings IN SHARE ROW EXCLUSIVE MODE;

	-- The source, read once.  The reference stores UTC wall-clock timestamps.  An address is
	-- valid when it is 0x + 40 hex digits in any case (extension/address.c), then lower-cased.
	-- Left over by an earlier call in the same transaction.
	FOR reason IN
		SELECT t FROM unnest(ARRAY['import_report', 'import_f', 'import_a', 'import_b', 'import_s',
								'import_rules', 'import_b1', 'import_s1', 'import_blocked']) AS t
		WHERE to_regclass('pg_temp.' || t) IS NOT NULL
	LOOP
		EXECUTE format('DROP TABLE pg_temp.%I', reason);
	END LOOP;
	CREATE TEMP TABLE import_report (kind text, source_id text, outcome text, detail text)
		ON COMMIT DROP;
	EXECUTE format(
		'CREATE TEMP TABLE import_f ON COMMIT DROP AS '
		'SELECT id::uuid AS id, address_requester::text AS raw_requester, '
		'       address_requested::text AS raw_requested, is_active::boolean AS is_active, '
		'       created_at::timestamp AT TIME ZONE ''UTC'' AS created_at '
		'FROM %I.friendships', source_schema);
	EXECUTE format(
		'CREATE TEMP TABLE import_a ON COMMIT DROP AS '
		'SELECT id::uuid AS id, friendship_id::uuid AS friendship_id, action::text AS action, '
		'       acting_user::text AS raw_actor, metadata::text AS metadata, '
		'       "timestamp"::timestamp AT TIME ZONE ''UTC'' AS ts '
		'FROM %I.friendship_actions', source_schema);
	EXECUTE format(
		'CREATE TEMP TABLE import_b ON COMMIT DROP AS '
		'SELECT id::uuid AS id, blocker_address::text AS raw_blocker, '
		'       blocked_address::text AS raw_blocked, '
		'       blocked_at::timestamp AT TIME ZONE ''UTC'' AS blocked_at '
		'FROM %I.blocks', source_schema);
	EXECUTE format(
		'CREATE TEMP TABLE import_s ON COMMIT DROP AS '
		'SELECT address::text AS raw_address, private_messages_privacy::text AS pmp, '
		'       blocked_users_messages_visibility::text AS bumv, %s AS ssr '
		'FROM %I.social_settings',
		CASE WHEN has_show THEN 'show_situation_reactions::text' ELSE '''show''::text' END,
		source_schema);
	ALTER TABLE import_f ADD requester text, ADD requested text;
	UPDATE import_f SET
		requester = CASE WHEN raw_requester ~ '^0x[0-9a-fA-F]{40}$' THEN lower(raw_requester) END,
		requested = CASE WHEN raw_requested ~ '^0x[0-9a-fA-F]{40}$' THEN lower(raw_requested) END;
	ALTER TABLE import_a ADD actor text;
	UPDATE import_a SET actor = CASE WHEN raw_actor ~ '^0x[0-9a-fA-F]{40}$' THEN lower(raw_actor) END;
	ALTER TABLE import_b ADD blocker text, ADD blocked text;
	UPDATE import_b SET
		blocker = CASE WHEN raw_blocker ~ '^0x[0-9a-fA-F]{40}$' THEN lower(raw_blocker) END,
		blocked = CASE WHEN raw_blocked ~ '^0x[0-9a-fA-F]{40}$' THEN lower(raw_blocked) END;
	CREATE INDEX ON import_a (friendship_id);
	ANALYZE import_f;
	ANALYZE import_a;
	-- Pairs either user blocks, in the source or in social: looked up once per pair below.
	CREATE TEMP TABLE import_blocked ON COMMIT DROP AS
		SELECT least(b.blocker, b.blocked) AS lo, greatest(b.blocker, b.blocked) AS hi
		FROM import_b b WHERE b.blocker IS NOT NULL AND b.blocked IS NOT NULL
		UNION
		SELECT least(b.blocker_address::text, b.blocked_address::text),
			   greatest(b.blocker_address::text, b.blocked_address::text)
		FROM social.blocks b;
	CREATE INDEX ON import_blocked (lo, hi);
	ANALYZE import_blocked;
	-- The state machine's rules, as extension/friendship.c prints them.
	CREATE TEMP TABLE import_rules ON COMMIT DROP AS
		SELECT t.from_state, t.action, t.actor, t.to_state
		FROM social.transition_table() t WHERE t.allowed;

	-- Friendship rows that cannot be a pair.
	INSERT INTO import_report
	SELECT 'friendship', f.id::text, 'refused',
		   CASE WHEN f.requester IS NULL
				THEN format('invalid address %L: an address is 0x followed by 40 hexadecimal digits', f.raw_requester)
				WHEN f.requested IS NULL
				THEN format('invalid address %L: an address is 0x followed by 40 hexadecimal digits', f.raw_requested)
				ELSE format('%s is both sides of the friendship once lower-cased', f.requester) END
			   || format('; %s action(s) not imported',
						 (SELECT count(*) FROM import_a x WHERE x.friendship_id = f.id))
	FROM import_f f
	WHERE f.requester IS NULL OR f.requested IS NULL OR f.requester = f.requested;

	-- Actions that belong to no friendship row.
	INSERT INTO import_report
	SELECT 'friendship_action', x.id::text, 'refused',
		   format('its friendship %s has no row in %I.friendships: the other user is unknown',
				  x.friendship_id, source_schema)
	FROM import_a x
	WHERE NOT EXISTS (SELECT FROM import_f f WHERE f.id = x.friendship_id);

	-- One pass per unordered pair, its rows merged.
	FOR p IN
		SELECT least(f.requester, f.requested) AS lo, greatest(f.requester, f.requested) AS hi,
			   array_agg(f.id ORDER BY f.created_at, f.id) AS ids,
			   min(f.created_at) AS created_at,
			   bool_or(f.is_active) AS any_active
		FROM import_f f
		WHERE f.requester IS NOT NULL AND f.requested IS NOT NULL AND f.requester <> f.requested
		GROUP BY 1, 2
		ORDER BY 1, 2
	LOOP
		SELECT count(*) INTO n_actions FROM import_a x WHERE x.friendship_id = ANY (p.ids);
		IF n_actions = 0 THEN
			INSERT INTO import_report VALUES ('friendship', p.ids[1]::text, 'refused',
				'no actions: the state of the friendship is unknown');
			CONTINUE;
		END IF;

		-- What social already holds for the pair.
		SELECT f.id, f.last_action, f.last_actor::text AS last_actor INTO ef
		FROM social.friendships f
		WHERE least(f.address_requester::text, f.address_requested::text) = p.lo
		  AND greatest(f.address_requester::text, f.address_requested::text) = p.hi;
		existing := '{}';
		cur_state := 'none';
		cur_actor := NULL;
		IF FOUND THEN
			SELECT COALESCE(array_agg(l.id ORDER BY l.seq), '{}') INTO existing
			FROM social.friendship_actions l WHERE l.friendship_id = ef.id;
			cur_state := ef.last_action;
			cur_actor := ef.last_actor;
		END IF;

		-- Replay: the first cardinality(existing) actions must be the ones social holds, the
		-- rest must each be allowed by the state machine.
		reason := NULL;
		step := 0;
		first_actor := NULL;
		FOR a IN
			SELECT x.id, x.action, x.raw_actor, x.actor, x.ts
			FROM import_a x WHERE x.friendship_id = ANY (p.ids)
			ORDER BY x.ts, x.id
		LOOP
			step := step + 1;
			IF step = 1 THEN
				first_actor := a.actor;
			END IF;
			IF step <= cardinality(existing) THEN
				IF existing[step] <> a.id THEN
					reason := format('social already has a different history for the pair (action %s of %s there is %s, not %s)',
									 step, cardinality(existing), existing[step], a.id);
					EXIT;
				END IF;
				CONTINUE;
			END IF;
			IF a.actor IS NULL THEN
				reason := format('step %s (action %s): invalid acting_user %L', step, a.id, a.raw_actor);
			ELSIF a.actor NOT IN (p.lo, p.hi) THEN
				reason := format('step %s (action %s): acting_user %s is not one of the pair', step, a.id, a.actor);
			ELSIF a.action NOT IN ('request', 'accept', 'reject', 'cancel', 'delete', 'block') THEN
				reason := format('step %s (action %s): unknown action %L', step, a.id, a.action);
			ELSIF EXISTS (SELECT FROM social.friendship_actions l WHERE l.id = a.id) THEN
				reason := format('step %s (action %s): social already has an action with this id in another friendship', step, a.id);
			ELSE
				SELECT r.to_state INTO reason FROM import_rules r
				WHERE r.from_state = cur_state AND r.action = a.action
				  AND r.actor = CASE WHEN cur_state = 'none' THEN 'anyone'
									 WHEN a.actor = cur_actor THEN 'last actor'
									 ELSE 'other user' END;
				IF reason IS NULL THEN
					reason := format('step %s (action %s): "%s" by the %s cannot follow "%s"',
									 step, a.id, a.action,
									 CASE WHEN cur_state = 'none' THEN 'first user'
										  WHEN a.actor = cur_actor THEN 'same user'
										  ELSE 'other user' END,
									 cur_state);
				ELSE
					cur_state := reason;
					cur_actor := a.actor;
					reason := NULL;
				END IF;
			END IF;
			EXIT WHEN reason IS NOT NULL;
		END LOOP;
		IF reason IS NULL AND step < cardinality(existing) THEN
			reason := format('social already has %s actions for the pair, the source only %s',
							 cardinality(existing), step);
		END IF;
		-- A blocked pair's friendship ends in 'block' (or 'delete', when one of two blocks was
		-- lifted), as block_user and unblock_user leave it.
		IF reason IS NULL AND cur_state NOT IN ('block', 'delete')
		   AND EXISTS (SELECT FROM import_blocked k WHERE k.lo = p.lo AND k.hi = p.hi) THEN
			reason := format('the pair is blocked but its history ends in "%s", not "block": the friendship is not imported, the block is', cur_state);
		END IF;
		IF reason IS NOT NULL THEN
			INSERT INTO import_report VALUES ('friendship', p.ids[1]::text, 'refused',
				reason || CASE WHEN cardinality(p.ids) > 1
							   THEN format('; rows %s merged for it', array_to_string(p.ids, ', '))
							   ELSE '' END
					   || '; nothing of this pair imported');
			CONTINUE;
		END IF;

		n_new := step - cardinality(existing);
		IF n_new = 0 THEN
			INSERT INTO import_report VALUES ('friendship', p.ids[1]::text, 'already_imported',
				format('%s action(s) already in social', step));
			CONTINUE;
		END IF;

		-- Write: the friendship first (no foreign-key trigger runs here), then its new actions
		-- in time order, so seq follows time.
		IF ef.id IS NULL THEN
			INSERT INTO social.friendships (id, address_requester, address_requested, is_active,
											created_at, updated_at, last_action, last_actor,
											last_action_id)
			SELECT p.ids[1], first_actor, CASE WHEN first_actor = p.lo THEN p.hi ELSE p.lo END,
				   cur_state = 'accept', least(p.created_at, min(x.ts)), max(x.ts), cur_state, cur_actor,
				   (array_agg(x.id ORDER BY x.ts DESC, x.id DESC))[1]
			FROM import_a x WHERE x.friendship_id = ANY (p.ids);
		ELSE
			UPDATE social.friendships f
			SET is_active = cur_state = 'accept', last_action = cur_state, last_actor = cur_actor,
				updated_at = l.ts, last_action_id = l.id
			FROM (SELECT x.id, x.ts FROM import_a x WHERE x.friendship_id = ANY (p.ids)
				  ORDER BY x.ts DESC, x.id DESC LIMIT 1) l
			WHERE f.id = ef.id;
		END IF;
		INSERT INTO social.friendship_actions (id, friendship_id, action, acting_user, target_user,
											   metadata, "timestamp", xid)
		SELECT x.id, COALESCE(ef.id, p.ids[1]), x.action, x.actor,
			   CASE WHEN x.actor = p.lo THEN p.hi ELSE p.lo END,
			   CASE WHEN x.action = 'request' AND x.metadata::json ->> 'message' <> ''
					THEN jsonb_build_object('message', x.metadata::json ->> 'message') END,
			   x.ts, frozen
		FROM import_a x WHERE x.friendship_id = ANY (p.ids)
		ORDER BY x.ts, x.id
		OFFSET cardinality(existing);
		imported := imported + 1;

		INSERT INTO import_report VALUES ('friendship', p.ids[1]::text,
			CASE WHEN cardinality(p.ids) > 1 THEN 'merged' ELSE 'imported' END,
			CASE WHEN cardinality(p.ids) > 1
				 THEN format('rows %s merged: ', array_to_string(p.ids, ', ')) ELSE '' END
			|| format('%s action(s) in time order, state "%s"', n_new, cur_state)
			|| CASE WHEN cardinality(existing) > 0
					THEN format(', after the %s already in social', cardinality(existing)) ELSE '' END
			|| CASE WHEN p.any_active IS DISTINCT FROM (cur_state = 'accept')
					THEN format('; the source''s is_active said %s, its history wins', p.any_active::text)
					ELSE '' END);
	END LOOP;

	-- Blocks, keyed by the reference's block id in social.block_actions.
	INSERT INTO import_report
	SELECT 'block', b.id::text, 'refused',
		   CASE WHEN b.blocker IS NULL
				THEN format('invalid address %L: an address is 0x followed by 40 hexadecimal digits', b.raw_blocker)
				WHEN b.blocked IS NULL
				THEN format('invalid address %L: an address is 0x followed by 40 hexadecimal digits', b.raw_blocked)
				ELSE format('%s blocks itself once lower-cased', b.blocker) END
	FROM import_b b
	WHERE b.blocker IS NULL OR b.blocked IS NULL OR b.blocker = b.blocked;
	CREATE TEMP TABLE import_b1 ON COMMIT DROP AS
		SELECT DISTINCT ON (b.blocker, b.blocked) b.*
		FROM import_b b
		WHERE b.blocker IS NOT NULL AND b.blocked IS NOT NULL AND b.blocker <> b.blocked
		ORDER BY b.blocker, b.blocked, b.blocked_at, b.id;
	INSERT INTO import_report
	SELECT 'block', b.id::text, 'merged', format('the same block as %s once lower-cased; that one is kept', k.id)
	FROM import_b b JOIN import_b1 k ON k.blocker = b.blocker AND k.blocked = b.blocked
	WHERE b.id <> k.id;
	INSERT INTO import_report
	SELECT 'block', k.id::text,
		   CASE WHEN EXISTS (SELECT FROM social.block_actions l WHERE l.id = k.id) THEN 'already_imported'
				ELSE 'already_present' END,
		   CASE WHEN EXISTS (SELECT FROM social.block_actions l WHERE l.id = k.id)
				THEN 'imported before (and kept, or lifted since, in social)'
				ELSE format('social already has %s blocking %s', k.blocker, k.blocked) END
	FROM import_b1 k
	WHERE EXISTS (SELECT FROM social.block_actions l WHERE l.id = k.id)
	   OR EXISTS (SELECT FROM social.blocks s
				  WHERE s.blocker_address = k.blocker AND s.blocked_address = k.blocked);
	DELETE FROM import_b1 k
	WHERE EXISTS (SELECT FROM social.block_actions l WHERE l.id = k.id)
	   OR EXISTS (SELECT FROM social.blocks s
				  WHERE s.blocker_address = k.blocker AND s.blocked_address = k.blocked);
	INSERT INTO social.blocks (id, blocker_address, blocked_address, blocked_at)
	SELECT k.id, k.blocker, k.blocked, k.blocked_at FROM import_b1 k ORDER BY k.blocked_at, k.id;
	INSERT INTO social.block_actions (id, action, blocker_address, blocked_address, "timestamp", xid)
	SELECT k.id, 'block', k.blocker, k.blocked, k.blocked_at, frozen
	FROM import_b1 k ORDER BY k.blocked_at, k.id;
	INSERT INTO import_report
	SELECT 'block', k.id::text, 'imported', format('%s blocks %s', k.blocker, k.blocked)
	FROM import_b1 k;

	-- Settings, keyed by address.  Of rows that are one address once lower-cased, the one
	-- already in lower case (the one the reference read) is kept.
	ALTER TABLE import_s ADD address text;
	UPDATE import_s SET address = CASE WHEN raw_address ~ '^0x[0-9a-fA-F]{40}$' THEN lower(raw_address) END;
	INSERT INTO import_report
	SELECT 'settings', s.raw_address, 'refused',
		   CASE WHEN s.address IS NULL
				THEN format('invalid address %L: an address is 0x followed by 40 hexadecimal digits', s.raw_address)
				WHEN s.pmp IS NULL OR s.pmp NOT IN ('only_friends', 'all')
				THEN format('invalid private_messages_privacy %L', s.pmp)
				WHEN s.bumv IS NULL OR s.bumv NOT IN ('show_messages', 'do_not_show_messages')
				THEN format('invalid blocked_users_messages_visibility %L', s.bumv)
				ELSE format('invalid show_situation_reactions %L', s.ssr) END
	FROM import_s s
	WHERE s.address IS NULL OR s.pmp IS NULL OR s.pmp NOT IN ('only_friends', 'all')
	   OR s.bumv IS NULL OR s.bumv NOT IN ('show_messages', 'do_not_show_messages')
	   OR s.ssr IS NULL OR s.ssr NOT IN ('show', 'hide');
	DELETE FROM import_s s
	WHERE s.address IS NULL OR s.pmp IS NULL OR s.pmp NOT IN ('only_friends', 'all')
	   OR s.bumv IS NULL OR s.bumv NOT IN ('show_messages', 'do_not_show_messages')
	   OR s.ssr IS NULL OR s.ssr NOT IN ('show', 'hide');
	CREATE TEMP TABLE import_s1 ON COMMIT DROP AS
		SELECT DISTINCT ON (s.address) s.*
		FROM import_s s
		ORDER BY s.address, s.raw_address = s.address DESC, s.raw_address;
	INSERT INTO import_report
	SELECT 'settings', s.raw_address, 'merged',
		   format('the same address as %s once lower-cased; that row is kept', k.raw_address)
	FROM import_s s JOIN import_s1 k ON k.address = s.address
	WHERE s.raw_address <> k.raw_address;
	INSERT INTO import_report
	SELECT 'settings', k.raw_address,
		   CASE WHEN (t.private_messages_privacy, t.blocked_users_messages_visibility,
					  t.show_situation_reactions) = (k.pmp, k.bumv, k.ssr)
				THEN 'already_imported' ELSE 'already_present' END,
		   CASE WHEN (t.private_messages_privacy, t.blocked_users_messages_visibility,
					  t.show_situation_reactions) = (k.pmp, k.bumv, k.ssr)
				THEN 'social has the same settings'
				ELSE 'social has other settings for this address; they are kept' END
	FROM import_s1 k JOIN social.settings t ON t.address = k.address;
	INSERT INTO social.settings (address, private_messages_privacy,
								 blocked_users_messages_visibility, show_situation_reactions)
	SELECT k.address, k.pmp, k.bumv, k.ssr
	FROM import_s1 k
	WHERE NOT EXISTS (SELECT FROM social.settings t WHERE t.address = k.address)
	ORDER BY k.address;
	INSERT INTO import_report
	SELECT 'settings', k.raw_address, 'imported',
		   format('%s / %s / %s', k.pmp, k.bumv, k.ssr)
		   || CASE WHEN k.raw_address <> k.address THEN format(', as %s', k.address) ELSE '' END
	FROM import_s1 k
	WHERE NOT EXISTS (SELECT FROM import_report r
					  WHERE r.kind = 'settings' AND r.source_id = k.raw_address);

	-- Friend sets follow the friendships (and the blocks) written above.
	IF imported > 0 OR EXISTS (SELECT FROM import_report r
							   WHERE r.kind = 'block' AND r.outcome = 'imported') THEN
		PERFORM social.rebuild_friend_sets();
	END IF;

	RETURN QUERY
		SELECT r.kind, r.source_id, r.outcome, r.detail FROM import_report r
		ORDER BY r.kind, r.source_id, r.outcome;
END
$fn$;
COMMENT ON FUNCTION social.import_reference(name) IS
	'Imports the reference service''s friendships, friendship_actions, blocks and social_settings from a schema; idempotent; returns what it imported, merged and refused.';

-- Superusers only (it writes every table, with triggers off): not for the daemon or analysts.
REVOKE ALL ON FUNCTION social.import_reference(name) FROM PUBLIC;
