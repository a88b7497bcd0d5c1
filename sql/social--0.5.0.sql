-- social 0.5.0: friendship truth inside PostgreSQL, presence sessions for analysts, page sizes
-- written once, an import of the reference service's data, and a notification outbox.
--
-- Every rule about friendships lives here: the state machine (C, extension/friendship.c), blocks,
-- anti-spam policies, the action log and the NOTIFY trigger.  The tables keep the reference
-- service's names and meanings so its data can be imported; the functions are the only way in for
-- the daemon role.  A released script is never edited: changes go into migrations/.
--
-- This is social--0.4.0.sql followed by migrations/social--0.4.0--0.5.0.sql, statement for
-- statement, so a fresh install and an upgraded one are the same (test/upgrade/run.sh).

\echo Use "CREATE EXTENSION social" to load this file. \quit

-- ---------------------------------------------------------------------------------------------
-- Roles.  Roles are cluster-wide and survive DROP EXTENSION, so create them only when missing.
--   social_service: the daemon; may only EXECUTE the API functions.
--   social_analyst: read-only SQL access to tables and views.
-- ---------------------------------------------------------------------------------------------
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'social_service') THEN
		CREATE ROLE social_service NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'social_analyst') THEN
		CREATE ROLE social_analyst NOLOGIN;
	END IF;
END
$roles$;

-- ---------------------------------------------------------------------------------------------
-- Addresses: '0x' + 40 hex digits, stored lower case.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION social.normalize_address(address text) RETURNS text
	AS 'MODULE_PATHNAME', 'social_normalize_address'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION social.normalize_address(text) IS
	'Validates an address (0x + 40 hex digits, any case) and returns it in lower case; raises SC010 otherwise.';

CREATE DOMAIN social.address AS varchar(42)
	CHECK (VALUE ~ '^0x[0-9a-f]{40}$');

-- One global sequence orders every logged event (friendship actions and block changes).
CREATE SEQUENCE social.event_seq;

-- ---------------------------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------------------------
CREATE TABLE social.friendships (
	id					uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	address_requester	social.address NOT NULL,
	address_requested	social.address NOT NULL,
	is_active			boolean NOT NULL DEFAULT false,
	created_at			timestamptz NOT NULL DEFAULT now(),
	updated_at			timestamptz NOT NULL DEFAULT now(),
	-- The newest action, kept by the state machine's choke point so that reads need no
	-- "latest row per friendship" search in the log.
	last_action			text NOT NULL,
	last_actor			social.address NOT NULL,
	last_action_id		uuid NOT NULL,
	CONSTRAINT friendships_not_self CHECK (address_requester <> address_requested),
	CONSTRAINT friendships_last_actor_in_pair
		CHECK (last_actor IN (address_requester, address_requested)),
	CONSTRAINT friendships_last_action_valid
		CHECK (last_action IN ('request', 'accept', 'reject', 'cancel', 'delete', 'block')),
	CONSTRAINT friendships_active_iff_accepted CHECK (is_active = (last_action = 'accept'))
);
-- Exactly one row per unordered pair: A->B and B->A are the same friendship.  (A unique index
-- on the ordered pair of addresses; an equivalent EXCLUDE constraint costs four times as much
-- per insert.)
CREATE UNIQUE INDEX friendships_one_per_pair ON social.friendships (
	(LEAST(address_requester::text, address_requested::text)),
	(GREATEST(address_requester::text, address_requested::text)));
CREATE INDEX friendships_requester_idx ON social.friendships (address_requester);
CREATE INDEX friendships_requested_idx ON social.friendships (address_requested);
-- Open requests by sender and by recipient.
CREATE INDEX friendships_sent_idx ON social.friendships (last_actor)
	WHERE last_action = 'request';
CREATE INDEX friendships_received_idx ON social.friendships ((
	CASE WHEN last_actor = address_requester THEN address_requested ELSE address_requester END))
	WHERE last_action = 'request';
COMMENT ON TABLE social.friendships IS
	'One row per unordered pair that ever had a friendship action; is_active = friends.';

CREATE TABLE social.friendship_actions (
	id				uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	friendship_id	uuid NOT NULL REFERENCES social.friendships (id),
	action			text NOT NULL
		CHECK (action IN ('request', 'accept', 'reject', 'cancel', 'delete', 'block')),
	acting_user		social.address NOT NULL,
	-- The other side of the pair; makes the log self-describing for listeners.
	target_user		social.address NOT NULL,
	-- {"message": "..."} for a request with a message; {"reason": "unblock"} for the delete
	-- recorded by an unblock.
	metadata		jsonb,
	"timestamp"		timestamptz NOT NULL DEFAULT now(),
	seq				bigint NOT NULL DEFAULT nextval('social.event_seq') UNIQUE,
	-- The writing transaction; catch-up compares it with a listener's snapshot.
	xid				xid8 NOT NULL DEFAULT pg_current_xact_id(),
	CHECK (acting_user <> target_user)
);
CREATE INDEX friendship_actions_friendship_idx
	ON social.friendship_actions (friendship_id, seq DESC);
CREATE INDEX friendship_actions_actor_idx ON social.friendship_actions (acting_user, "timestamp");
CREATE INDEX friendship_actions_xid_idx ON social.friendship_actions (xid);
COMMENT ON TABLE social.friendship_actions IS
	'Append-only log of friendship actions; the newest row of a friendship is its state.';

CREATE TABLE social.blocks (
	id				uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	blocker_address	social.address NOT NULL,
	blocked_address	social.address NOT NULL,
	blocked_at		timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT blocks_pair_key UNIQUE (blocker_address, blocked_address),
	CONSTRAINT blocks_not_self CHECK (blocker_address <> blocked_address)
);
CREATE INDEX blocks_blocked_idx ON social.blocks (blocked_address);
COMMENT ON TABLE social.blocks IS 'Current blocks: one row per (blocker, blocked).';

CREATE TABLE social.block_actions (
	id				uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	action			text NOT NULL CHECK (action IN ('block', 'unblock')),
	blocker_address	social.address NOT NULL,
	blocked_address	social.address NOT NULL,
	"timestamp"		timestamptz NOT NULL DEFAULT now(),
	seq				bigint NOT NULL DEFAULT nextval('social.event_seq') UNIQUE,
	xid				xid8 NOT NULL DEFAULT pg_current_xact_id(),
	CHECK (blocker_address <> blocked_address)
);
CREATE INDEX block_actions_blocker_idx ON social.block_actions (blocker_address, "timestamp");
CREATE INDEX block_actions_xid_idx ON social.block_actions (xid);
COMMENT ON TABLE social.block_actions IS 'Append-only log of block and unblock actions.';

CREATE TABLE social.settings (
	address								social.address PRIMARY KEY,
	private_messages_privacy			text NOT NULL DEFAULT 'all'
		CHECK (private_messages_privacy IN ('only_friends', 'all')),
	blocked_users_messages_visibility	text NOT NULL DEFAULT 'show_messages'
		CHECK (blocked_users_messages_visibility IN ('show_messages', 'do_not_show_messages')),
	show_situation_reactions			text NOT NULL DEFAULT 'show'
		CHECK (show_situation_reactions IN ('show', 'hide')),
	updated_at							timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE social.settings IS
	'Privacy settings; an address without a row reads as all / show_messages / show.';

CREATE TABLE social.profiles (
	address				social.address PRIMARY KEY,
	name				text,
	has_claimed_name	boolean NOT NULL DEFAULT false,
	profile_picture_url	text,
	-- Name colour as RGB components in [0, 1] (decentraland.common.Color3).
	name_color_r		real CHECK (name_color_r BETWEEN 0 AND 1),
	name_color_g		real CHECK (name_color_g BETWEEN 0 AND 1),
	name_color_b		real CHECK (name_color_b BETWEEN 0 AND 1),
	updated_at			timestamptz NOT NULL DEFAULT now(),
	CHECK ((name_color_r IS NULL) = (name_color_g IS NULL)
		AND (name_color_g IS NULL) = (name_color_b IS NULL))
);
COMMENT ON TABLE social.profiles IS
	'Optional display data; an address without a row is shown by its address alone.';

-- Each user's friends as one sorted array of 20-byte addresses, kept by the state machine in the
-- same transaction as the friendship change.  It turns a 5,000-friend list into one tuple read
-- and mutual friends into a merge of two sorted arrays (see extension/friendset.c).
CREATE TABLE social.friend_sets (
	address	social.address PRIMARY KEY,
	friends	bytea NOT NULL CHECK (length(friends) % 20 = 0)
);
ALTER TABLE social.friend_sets ALTER COLUMN friends SET STORAGE EXTERNAL;
COMMENT ON TABLE social.friend_sets IS
	'Derived: sorted packed friend addresses per user, maintained with every friendship change.';

-- pg_dump keeps the data of extension tables only when they are registered.
SELECT pg_catalog.pg_extension_config_dump('social.friendships', '');
SELECT pg_catalog.pg_extension_config_dump('social.friendship_actions', '');
SELECT pg_catalog.pg_extension_config_dump('social.blocks', '');
SELECT pg_catalog.pg_extension_config_dump('social.block_actions', '');
SELECT pg_catalog.pg_extension_config_dump('social.settings', '');
SELECT pg_catalog.pg_extension_config_dump('social.profiles', '');
SELECT pg_catalog.pg_extension_config_dump('social.friend_sets', '');
SELECT pg_catalog.pg_extension_config_dump('social.event_seq', '');

-- ---------------------------------------------------------------------------------------------
-- The logs are append-only, for everyone including the table owner.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION social.refuse_log_change() RETURNS trigger
	AS 'MODULE_PATHNAME', 'social_refuse_log_change'
	LANGUAGE C;
CREATE TRIGGER friendship_actions_append_only
	BEFORE UPDATE OR DELETE OR TRUNCATE ON social.friendship_actions
	FOR EACH STATEMENT EXECUTE FUNCTION social.refuse_log_change();
CREATE TRIGGER block_actions_append_only
	BEFORE UPDATE OR DELETE OR TRUNCATE ON social.block_actions
	FOR EACH STATEMENT EXECUTE FUNCTION social.refuse_log_change();

-- ---------------------------------------------------------------------------------------------
-- Events: one NOTIFY on channel social_events per logged row, delivered at commit.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION social.notify_event() RETURNS trigger
	AS 'MODULE_PATHNAME', 'social_notify_event'
	LANGUAGE C;
CREATE TRIGGER friendship_actions_notify
	AFTER INSERT ON social.friendship_actions
	FOR EACH ROW EXECUTE FUNCTION social.notify_event();
CREATE TRIGGER block_actions_notify
	AFTER INSERT ON social.block_actions
	FOR EACH ROW EXECUTE FUNCTION social.notify_event();

-- ---------------------------------------------------------------------------------------------
-- Writes (C).  SECURITY DEFINER: the daemon role holds no table privileges.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION social.upsert_friendship(actor text, target text, action text,
										 message text DEFAULT NULL,
										 OUT action_id uuid, OUT friendship_id uuid,
										 OUT created_at timestamptz, OUT status text)
	AS 'MODULE_PATHNAME', 'social_upsert_friendship'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION social.upsert_friendship(text, text, text, text) IS
	'Applies request/accept/reject/cancel/delete by actor on the pair (actor, target).';

CREATE FUNCTION social.block_user(blocker text, blocked text,
								  OUT address text, OUT blocked_at timestamptz)
	AS 'MODULE_PATHNAME', 'social_block_user'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION social.block_user(text, text) IS
	'Blocks a user (idempotent); ends a friendship between the two with a block action.';

CREATE FUNCTION social.unblock_user(blocker text, blocked text,
									OUT address text, OUT was_blocked boolean)
	AS 'MODULE_PATHNAME', 'social_unblock_user'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION social.unblock_user(text, text) IS
	'Removes a block (idempotent); records a delete action when the block had ended a friendship.';

CREATE FUNCTION social.transition_table(OUT from_state text, OUT action text,
										OUT actor text, OUT allowed boolean, OUT to_state text)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'social_transition_table'
	LANGUAGE C IMMUTABLE;
COMMENT ON FUNCTION social.transition_table() IS
	'The state machine''s transition table: every (last action, action, actor) and its outcome.';

-- What social.friend_sets must hold, computed from social.friendships: friends of each user, as
-- sorted 20-byte addresses ("C" order of the lower-case hex is the order of the bytes).
CREATE FUNCTION social.expected_friend_sets(OUT address text, OUT friends bytea)
	RETURNS SETOF record
	LANGUAGE sql STABLE
BEGIN ATOMIC
	SELECT e.address, string_agg(decode(substr(e.friend, 3), 'hex'), ''::bytea
								 ORDER BY e.friend COLLATE "C")
	FROM (SELECT f.address_requester::text AS address, f.address_requested::text AS friend
		  FROM social.friendships f WHERE f.is_active
		  UNION ALL
		  SELECT f.address_requested::text, f.address_requester::text
		  FROM social.friendships f WHERE f.is_active) e
	WHERE NOT EXISTS (SELECT FROM social.blocks b
					  WHERE (b.blocker_address = e.address AND b.blocked_address = e.friend)
						 OR (b.blocker_address = e.friend AND b.blocked_address = e.address))
	GROUP BY e.address;
END;

CREATE FUNCTION social.rebuild_friend_sets() RETURNS bigint
	LANGUAGE plpgsql VOLATILE
AS $fn$
DECLARE
	n bigint;
BEGIN
	-- Writers take this lock too (ROW EXCLUSIVE), so no change slips in while rebuilding.
	LOCK TABLE social.friendships IN SHARE MODE;
	DELETE FROM social.friend_sets;
	INSERT INTO social.friend_sets (address, friends)
		SELECT e.address, e.friends FROM social.expected_friend_sets() e;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$fn$;
COMMENT ON FUNCTION social.rebuild_friend_sets() IS
	'Recomputes social.friend_sets from social.friendships (after a bulk import); returns the users written.';

CREATE FUNCTION social.check_friend_sets(OUT address text, OUT expected bytea, OUT actual bytea)
	RETURNS SETOF record
	LANGUAGE sql STABLE
BEGIN ATOMIC
	SELECT COALESCE(e.address, s.address::text), e.friends, s.friends
	FROM social.expected_friend_sets() e
	FULL JOIN social.friend_sets s ON s.address = e.address
	WHERE e.friends IS DISTINCT FROM s.friends;
END;
COMMENT ON FUNCTION social.check_friend_sets() IS
	'Rows where social.friend_sets differs from what social.friendships implies; empty when consistent.';

-- ---------------------------------------------------------------------------------------------
-- Reads
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION social.friends(me text, "limit" integer DEFAULT NULL, "offset" integer DEFAULT NULL,
							   OUT address text, OUT total bigint)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'social_friends'
	LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION social.friends(text, integer, integer) IS
	'Friends of me ordered by address; limit and offset clamped as social.page_limit(''friends'', ...) and social.clamp_offset say.';

CREATE FUNCTION social.mutual_friends(me text, other text, "limit" integer DEFAULT NULL,
									  "offset" integer DEFAULT NULL,
									  OUT address text, OUT total bigint)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'social_mutual_friends'
	LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION social.mutual_friends(text, text, integer, integer) IS
	'Friends both users share, ordered by address; empty when either blocks the other; limit and offset clamped as social.page_limit(''mutual_friends'', ...) and social.clamp_offset say.';

CREATE FUNCTION social.friend_count(me text) RETURNS bigint
	AS 'MODULE_PATHNAME', 'social_friend_count'
	LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION social.is_friend(me text, other text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'social_is_friend'
	LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION social.is_friend(text, text) IS 'Whether the two users are friends.';

CREATE FUNCTION social.friend_addresses(me text) RETURNS SETOF text
	AS 'MODULE_PATHNAME', 'social_friend_addresses'
	LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION social.friend_addresses(text) IS 'Every friend of me, ordered by address.';

-- Clamps, as the reference service applies them silently.
CREATE FUNCTION social.clamp_limit(requested integer, dflt integer, maximum integer)
	RETURNS integer
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN CASE WHEN requested IS NULL OR requested <= 0 THEN dflt
				ELSE LEAST(requested, maximum) END;

-- Page sizes and the offset cap are paging.c's (0.3.0).
CREATE FUNCTION social.page_limit(list text, requested integer) RETURNS integer
	AS 'MODULE_PATHNAME', 'social_page_limit'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION social.page_limit(text, integer) IS
	'The page size a paged read uses for the requested limit: the list''s default when NULL, zero or negative, else at most its maximum.';

CREATE FUNCTION social.page_number(list text, "limit" integer, "offset" integer) RETURNS integer
	AS 'MODULE_PATHNAME', 'social_page_number'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION social.page_number(text, integer, integer) IS
	'The page number ceil(offset / limit) + 1 of a paged read, from the limit and offset it uses for those requested.';

CREATE FUNCTION social.clamp_offset(requested integer) RETURNS integer
	AS 'MODULE_PATHNAME', 'social_clamp_offset'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION social.clamp_offset(integer) IS
	'The offset a paged read uses: 0 when NULL or negative, else at most the offset cap.';

CREATE FUNCTION social.friendship_status(me text, other text) RETURNS text
	LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	WITH p AS (
		SELECT social.normalize_address(me) AS me, social.normalize_address(other) AS other
	)
	SELECT CASE
		WHEN EXISTS (SELECT FROM social.blocks b
					 WHERE b.blocker_address = p.me AND b.blocked_address = p.other)
			THEN 'blocked'
		WHEN EXISTS (SELECT FROM social.blocks b
					 WHERE b.blocker_address = p.other AND b.blocked_address = p.me)
			THEN 'blocked_by'
		ELSE COALESCE((
			SELECT CASE f.last_action
				WHEN 'request' THEN
					CASE WHEN f.last_actor = p.me THEN 'request_sent' ELSE 'request_received' END
				WHEN 'accept' THEN 'accepted'
				WHEN 'reject' THEN 'rejected'
				WHEN 'cancel' THEN 'canceled'
				WHEN 'delete' THEN 'deleted'
				WHEN 'block' THEN
					CASE WHEN f.last_actor = p.me THEN 'blocked' ELSE 'blocked_by' END
			END
			FROM social.friendships f
			WHERE LEAST(f.address_requester::text, f.address_requested::text) = LEAST(p.me, p.other)
			  AND GREATEST(f.address_requester::text, f.address_requested::text)
				  = GREATEST(p.me, p.other)), 'none')
	END
	FROM p;
END;
COMMENT ON FUNCTION social.friendship_status(text, text) IS
	'The friendship as me sees it: request_sent, request_received, canceled, accepted, rejected, deleted, blocked, none or blocked_by.';

-- Open requests.  A request between a blocked pair cannot exist (a block records a block action),
-- the NOT EXISTS is a second line of defence for imported data.  A friendship's updated_at is the
-- time of its last action, so the page is sorted and cut before any log row is read: only the
-- messages of the page's requests are fetched.
CREATE FUNCTION social.pending_requests(me text, "limit" integer DEFAULT NULL,
												   "offset" integer DEFAULT NULL,
												   OUT id uuid, OUT address text,
												   OUT created_at timestamptz, OUT message text,
												   OUT total bigint)
	RETURNS SETOF record
	LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	WITH p AS (SELECT social.normalize_address(me) AS me),
	page AS (
		SELECT f.id, f.last_actor::text AS address, f.updated_at AS created_at, f.last_action_id,
			   count(*) OVER () AS total
		FROM p, social.friendships f
		WHERE f.last_action = 'request'
		  AND (CASE WHEN f.last_actor = f.address_requester THEN f.address_requested
					ELSE f.address_requester END) = p.me
		  AND NOT EXISTS (SELECT FROM social.blocks b
						  WHERE b.blocker_address = p.me AND b.blocked_address = f.last_actor)
		  AND NOT EXISTS (SELECT FROM social.blocks b
						  WHERE b.blocker_address = f.last_actor AND b.blocked_address = p.me)
		ORDER BY f.updated_at DESC, f.last_actor
		LIMIT social.page_limit('pending_requests', "limit") OFFSET social.clamp_offset("offset")
	)
	SELECT page.id, page.address, page.created_at,
		   (SELECT a.metadata ->> 'message' FROM social.friendship_actions a
			WHERE a.id = page.last_action_id),
		   page.total
	FROM page
	ORDER BY page.created_at DESC, page.address;
END;
COMMENT ON FUNCTION social.pending_requests(text, integer, integer) IS
	'Requests others sent to me, newest first; limit and offset clamped as social.page_limit(''pending_requests'', ...) and social.clamp_offset say.';

CREATE FUNCTION social.sent_requests(me text, "limit" integer DEFAULT NULL,
												"offset" integer DEFAULT NULL,
												OUT id uuid, OUT address text,
												OUT created_at timestamptz, OUT message text,
												OUT total bigint)
	RETURNS SETOF record
	LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	WITH p AS (SELECT social.normalize_address(me) AS me),
	r AS (
		SELECT f.id,
			   (CASE WHEN f.address_requester = p.me THEN f.address_requested
					 ELSE f.address_requester END)::text AS address,
			   f.updated_at AS created_at, f.last_action_id
		FROM p, social.friendships f
		WHERE f.last_action = 'request' AND f.last_actor = p.me
	),
	page AS (
		SELECT r.id, r.address, r.created_at, r.last_action_id, count(*) OVER () AS total
		FROM r, p
		WHERE NOT EXISTS (SELECT FROM social.blocks b
						  WHERE b.blocker_address = p.me AND b.blocked_address = r.address)
		  AND NOT EXISTS (SELECT FROM social.blocks b
						  WHERE b.blocker_address = r.address AND b.blocked_address = p.me)
		ORDER BY r.created_at DESC, r.address
		LIMIT social.page_limit('sent_requests', "limit") OFFSET social.clamp_offset("offset")
	)
	SELECT page.id, page.address, page.created_at,
		   (SELECT a.metadata ->> 'message' FROM social.friendship_actions a
			WHERE a.id = page.last_action_id),
		   page.total
	FROM page
	ORDER BY page.created_at DESC, page.address;
END;
COMMENT ON FUNCTION social.sent_requests(text, integer, integer) IS
	'Requests I sent that are still open, newest first; limit and offset clamped as social.page_limit(''sent_requests'', ...) and social.clamp_offset say.';

CREATE FUNCTION social.blocked_users(me text, "limit" integer DEFAULT NULL,
												"offset" integer DEFAULT NULL,
												OUT address text, OUT blocked_at timestamptz,
												OUT total bigint)
	RETURNS SETOF record
	LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT b.blocked_address::text, b.blocked_at, count(*) OVER ()
	FROM social.blocks b
	WHERE b.blocker_address = social.normalize_address(me)
	ORDER BY b.blocked_at DESC, b.blocked_address
	LIMIT social.page_limit('blocked_users', "limit") OFFSET social.clamp_offset("offset");
END;
COMMENT ON FUNCTION social.blocked_users(text, integer, integer) IS
	'Users I block, newest first; limit and offset clamped as social.page_limit(''blocked_users'', ...) and social.clamp_offset say.';

CREATE FUNCTION social.blocking_status(me text, OUT blocked_users text[],
									   OUT blocked_by_users text[])
	LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT
		ARRAY(SELECT b.blocked_address::text FROM social.blocks b
			  WHERE b.blocker_address = social.normalize_address(me)
			  ORDER BY b.blocked_address),
		ARRAY(SELECT b.blocker_address::text FROM social.blocks b
			  WHERE b.blocked_address = social.normalize_address(me)
			  ORDER BY b.blocker_address);
END;
COMMENT ON FUNCTION social.blocking_status(text) IS
	'Complete lists of the users I block and of the users who block me.';

CREATE FUNCTION social.get_settings(me text, OUT address text, OUT private_messages_privacy text,
									OUT blocked_users_messages_visibility text,
									OUT show_situation_reactions text)
	LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT p.me,
		   COALESCE(s.private_messages_privacy, 'all'),
		   COALESCE(s.blocked_users_messages_visibility, 'show_messages'),
		   COALESCE(s.show_situation_reactions, 'show')
	FROM (SELECT social.normalize_address(me) AS me) p
	LEFT JOIN social.settings s ON s.address = p.me;
END;
COMMENT ON FUNCTION social.get_settings(text) IS
	'The three privacy settings of an address, with defaults for an address without a row.';

CREATE FUNCTION social.upsert_settings(me text, new_private_messages_privacy text DEFAULT NULL,
									   new_blocked_users_messages_visibility text DEFAULT NULL,
									   new_show_situation_reactions text DEFAULT NULL,
									   OUT address text, OUT private_messages_privacy text,
									   OUT blocked_users_messages_visibility text,
									   OUT show_situation_reactions text)
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	who text := social.normalize_address(me);
BEGIN
	IF new_private_messages_privacy IS NOT NULL
	   AND new_private_messages_privacy NOT IN ('only_friends', 'all') THEN
		RAISE EXCEPTION 'invalid value for private_messages_privacy: "%"', new_private_messages_privacy
			USING ERRCODE = 'SC012', HINT = 'Use only_friends or all.';
	END IF;
	IF new_blocked_users_messages_visibility IS NOT NULL
	   AND new_blocked_users_messages_visibility NOT IN ('show_messages', 'do_not_show_messages') THEN
		RAISE EXCEPTION 'invalid value for blocked_users_messages_visibility: "%"',
			new_blocked_users_messages_visibility
			USING ERRCODE = 'SC012', HINT = 'Use show_messages or do_not_show_messages.';
	END IF;
	IF new_show_situation_reactions IS NOT NULL
	   AND new_show_situation_reactions NOT IN ('show', 'hide') THEN
		RAISE EXCEPTION 'invalid value for show_situation_reactions: "%"', new_show_situation_reactions
			USING ERRCODE = 'SC012', HINT = 'Use show or hide.';
	END IF;
	INSERT INTO social.settings AS s (address, private_messages_privacy,
									  blocked_users_messages_visibility, show_situation_reactions)
	VALUES (who, COALESCE(new_private_messages_privacy, 'all'),
			COALESCE(new_blocked_users_messages_visibility, 'show_messages'),
			COALESCE(new_show_situation_reactions, 'show'))
	ON CONFLICT ON CONSTRAINT settings_pkey DO UPDATE
		SET private_messages_privacy
				= COALESCE(new_private_messages_privacy, s.private_messages_privacy),
			blocked_users_messages_visibility
				= COALESCE(new_blocked_users_messages_visibility,
						   s.blocked_users_messages_visibility),
			show_situation_reactions
				= COALESCE(new_show_situation_reactions, s.show_situation_reactions),
			updated_at = now()
	RETURNING s.address, s.private_messages_privacy, s.blocked_users_messages_visibility,
			  s.show_situation_reactions
	INTO address, private_messages_privacy, blocked_users_messages_visibility,
		 show_situation_reactions;
END
$fn$;
COMMENT ON FUNCTION social.upsert_settings(text, text, text, text) IS
	'Sets the given settings (NULL keeps the current value) and returns all three.';

CREATE FUNCTION social.private_messages_settings(me text, addresses text[],
												 OUT address text,
												 OUT private_messages_privacy text,
												 OUT is_friend boolean)
	RETURNS SETOF record
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	who text := social.normalize_address(me);
BEGIN
	IF addresses IS NULL THEN
		RAISE EXCEPTION 'addresses must not be null' USING ERRCODE = 'SC013';
	END IF;
	IF cardinality(addresses) > 50 THEN
		RAISE EXCEPTION 'too many addresses: % given, at most 50 allowed', cardinality(addresses)
			USING ERRCODE = 'SC013', HINT = 'Ask for the settings in batches of 50.';
	END IF;
	RETURN QUERY
		SELECT a.addr, COALESCE(s.private_messages_privacy, 'all'),
			   social.is_friend(who, a.addr)
		FROM (SELECT DISTINCT social.normalize_address(x) AS addr FROM unnest(addresses) AS x) a
		LEFT JOIN social.settings s ON s.address = a.addr
		ORDER BY a.addr;
END
$fn$;
COMMENT ON FUNCTION social.private_messages_settings(text, text[]) IS
	'For up to 50 addresses: their private-message setting and whether they are friends of me.';

CREATE FUNCTION social.upsert_profile(address text, name text DEFAULT NULL,
									  has_claimed_name boolean DEFAULT false,
									  profile_picture_url text DEFAULT NULL,
									  name_color real[] DEFAULT NULL)
	RETURNS void
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	who text := social.normalize_address(address);
BEGIN
	IF name_color IS NOT NULL AND (cardinality(name_color) <> 3
		OR EXISTS (SELECT FROM unnest(name_color) c WHERE c IS NULL OR c < 0 OR c > 1)) THEN
		RAISE EXCEPTION 'invalid name_color: %', name_color
			USING ERRCODE = 'SC012', HINT = 'Give three components {r,g,b}, each between 0 and 1.';
	END IF;
	INSERT INTO social.profiles AS p (address, name, has_claimed_name, profile_picture_url,
									  name_color_r, name_color_g, name_color_b, updated_at)
	VALUES (who, upsert_profile.name, COALESCE(upsert_profile.has_claimed_name, false),
			upsert_profile.profile_picture_url, name_color[1], name_color[2], name_color[3], now())
	ON CONFLICT ON CONSTRAINT profiles_pkey DO UPDATE
		SET name = EXCLUDED.name, has_claimed_name = EXCLUDED.has_claimed_name,
			profile_picture_url = EXCLUDED.profile_picture_url,
			name_color_r = EXCLUDED.name_color_r, name_color_g = EXCLUDED.name_color_g,
			name_color_b = EXCLUDED.name_color_b, updated_at = now();
END
$fn$;
COMMENT ON FUNCTION social.upsert_profile(text, text, boolean, text, real[]) IS
	'Stores display data for an address (from a profile source); name_color is {r,g,b} in [0,1].';

CREATE FUNCTION social.get_profiles(addresses text[],
									OUT address text, OUT name text, OUT has_claimed_name boolean,
									OUT profile_picture_url text, OUT name_color real[])
	RETURNS SETOF record
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
	IF addresses IS NULL THEN
		RAISE EXCEPTION 'addresses must not be null' USING ERRCODE = 'SC013';
	END IF;
	-- Every address asked for comes back, known or not: a missing profile never hides a user.
	RETURN QUERY
		SELECT a.addr, COALESCE(p.name, ''), COALESCE(p.has_claimed_name, false),
			   COALESCE(p.profile_picture_url, ''),
			   CASE WHEN p.name_color_r IS NOT NULL
					THEN ARRAY[p.name_color_r, p.name_color_g, p.name_color_b] END
		FROM (SELECT DISTINCT social.normalize_address(x) AS addr FROM unnest(addresses) AS x) a
		LEFT JOIN social.profiles p ON p.address = a.addr
		ORDER BY a.addr;
END
$fn$;
COMMENT ON FUNCTION social.get_profiles(text[]) IS
	'Display data for each address; unknown addresses come back with empty name and picture.';

CREATE FUNCTION social.friendship_history(me text, other text,
										  OUT seq bigint, OUT action text, OUT acting_user text,
										  OUT message text, OUT "timestamp" timestamptz)
	RETURNS SETOF record
	LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT a.seq, a.action, a.acting_user::text, a.metadata ->> 'message', a."timestamp"
	FROM social.friendships f
	JOIN social.friendship_actions a ON a.friendship_id = f.id
	WHERE LEAST(f.address_requester::text, f.address_requested::text)
		  = LEAST(social.normalize_address(me), social.normalize_address(other))
	  AND GREATEST(f.address_requester::text, f.address_requested::text)
		  = GREATEST(social.normalize_address(me), social.normalize_address(other))
	ORDER BY a.seq;
END;
COMMENT ON FUNCTION social.friendship_history(text, text) IS
	'Every friendship action between two users, oldest first.';

CREATE FUNCTION social.friend_suggestions(me text, "limit" integer DEFAULT NULL,
										  OUT address text, OUT mutual_friends bigint)
	RETURNS SETOF record
	LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	WITH p AS (SELECT social.normalize_address(me) AS me),
	mine AS (SELECT social.friend_addresses(p.me) AS friend FROM p),
	candidates AS (
		SELECT c.address, count(*) AS mutual_friends
		FROM mine, LATERAL social.friend_addresses(mine.friend) AS c(address)
		GROUP BY c.address
	)
	SELECT c.address, c.mutual_friends
	FROM candidates c, p
	WHERE c.address <> p.me
	  AND c.address NOT IN (SELECT friend FROM mine)
	  -- no open request either way
	  AND NOT EXISTS (
		SELECT FROM social.friendships f
		WHERE f.last_action = 'request'
		  AND LEAST(f.address_requester::text, f.address_requested::text) = LEAST(p.me, c.address)
		  AND GREATEST(f.address_requester::text, f.address_requested::text)
			  = GREATEST(p.me, c.address))
	  AND NOT EXISTS (
		SELECT FROM social.blocks b
		WHERE (b.blocker_address = p.me AND b.blocked_address = c.address)
		   OR (b.blocker_address = c.address AND b.blocked_address = p.me))
	ORDER BY c.mutual_friends DESC, c.address
	LIMIT social.clamp_limit("limit", 20, 100);
END;
COMMENT ON FUNCTION social.friend_suggestions(text, integer) IS
	'Friends of my friends, most mutual friends first, without my friends, open requests and blocks.';

-- ---------------------------------------------------------------------------------------------
-- Catch-up for listeners (design: extension/notify.c).  A cursor is a pg_snapshot: every event
-- committed after the snapshot was taken is returned exactly once, however late it commits.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION social.events_cursor() RETURNS pg_snapshot
	LANGUAGE sql STABLE
	RETURN pg_current_snapshot();
COMMENT ON FUNCTION social.events_cursor() IS
	'A starting cursor for social.events_since: the current snapshot.';

CREATE FUNCTION social.events_since(from_cursor pg_snapshot,
									OUT seq bigint, OUT kind text, OUT action text,
									OUT actor text, OUT target text, OUT friendship_id uuid,
									OUT action_id uuid, OUT message text,
									OUT "timestamp" timestamptz, OUT next_cursor pg_snapshot)
	RETURNS SETOF record
	LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT e.seq, e.kind, e.action, e.actor, e.target, e.friendship_id, e.action_id, e.message,
		   e."timestamp", pg_current_snapshot()
	FROM (
		SELECT a.seq, 'friendship' AS kind, a.action, a.acting_user::text AS actor,
			   a.target_user::text AS target, a.friendship_id, a.id AS action_id,
			   a.metadata ->> 'message' AS message, a."timestamp"
		FROM social.friendship_actions a
		WHERE a.xid >= pg_snapshot_xmin(from_cursor)
		  AND NOT pg_visible_in_snapshot(a.xid, from_cursor)
		UNION ALL
		SELECT b.seq, 'block', b.action, b.blocker_address::text, b.blocked_address::text,
			   NULL, b.id, NULL, b."timestamp"
		FROM social.block_actions b
		WHERE b.xid >= pg_snapshot_xmin(from_cursor)
		  AND NOT pg_visible_in_snapshot(b.xid, from_cursor)
	) e
	ORDER BY e.seq;
END;
COMMENT ON FUNCTION social.events_since(pg_snapshot) IS
	'Events committed after from_cursor was taken, in seq order; each row carries the next cursor.';

-- ---------------------------------------------------------------------------------------------
-- Analyst views
-- ---------------------------------------------------------------------------------------------
CREATE VIEW social.friends_view AS
	SELECT f.address_requester::text AS address, f.address_requested::text AS friend,
		   a."timestamp" AS since
	FROM social.friendships f JOIN social.friendship_actions a ON a.id = f.last_action_id
	WHERE f.is_active
	UNION ALL
	SELECT f.address_requested::text, f.address_requester::text, a."timestamp"
	FROM social.friendships f JOIN social.friendship_actions a ON a.id = f.last_action_id
	WHERE f.is_active;
COMMENT ON VIEW social.friends_view IS
	'Every friendship in both directions: (address, friend, since = time of the accept).';

CREATE VIEW social.open_requests AS
	SELECT f.id AS friendship_id, f.last_actor::text AS requester,
		   (CASE WHEN f.last_actor = f.address_requester THEN f.address_requested
				 ELSE f.address_requester END)::text AS requested,
		   a."timestamp" AS requested_at, a.metadata ->> 'message' AS message
	FROM social.friendships f JOIN social.friendship_actions a ON a.id = f.last_action_id
	WHERE f.last_action = 'request';
COMMENT ON VIEW social.open_requests IS 'Friendship requests that are still waiting for an answer.';

CREATE VIEW social.daily_actions AS
	SELECT date_trunc('day', "timestamp" AT TIME ZONE 'UTC')::date AS day, 'friendship' AS kind,
		   action, count(*) AS actions
	FROM social.friendship_actions
	GROUP BY 1, 3
	UNION ALL
	SELECT date_trunc('day', "timestamp" AT TIME ZONE 'UTC')::date, 'block', action, count(*)
	FROM social.block_actions
	GROUP BY 1, 3;
COMMENT ON VIEW social.daily_actions IS
	'Actions per UTC day: kind friendship (request ... block) or block (block, unblock).';

CREATE VIEW social.friend_counts AS
	SELECT address::text AS address, (length(friends) / 20)::bigint AS friends
	FROM social.friend_sets;
COMMENT ON VIEW social.friend_counts IS 'Number of friends per user (users with no friends are absent).';

-- ---------------------------------------------------------------------------------------------
-- Privileges: nobody writes the tables directly; the daemon only executes functions.
-- ---------------------------------------------------------------------------------------------
REVOKE ALL ON ALL TABLES IN SCHEMA social FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA social FROM PUBLIC;
GRANT USAGE ON SCHEMA social TO social_service, social_analyst;
GRANT EXECUTE ON FUNCTION
	social.normalize_address(text),
	social.upsert_friendship(text, text, text, text),
	social.block_user(text, text),
	social.unblock_user(text, text),
	social.transition_table(),
	social.friends(text, integer, integer),
	social.mutual_friends(text, text, integer, integer),
	social.friend_count(text),
	social.is_friend(text, text),
	social.friend_addresses(text),
	social.clamp_limit(integer, integer, integer),
	social.clamp_offset(integer),
	social.friendship_status(text, text),
	social.pending_requests(text, integer, integer),
	social.sent_requests(text, integer, integer),
	social.blocked_users(text, integer, integer),
	social.blocking_status(text),
	social.get_settings(text),
	social.upsert_settings(text, text, text, text),
	social.private_messages_settings(text, text[]),
	social.upsert_profile(text, text, boolean, text, real[]),
	social.get_profiles(text[]),
	social.friendship_history(text, text),
	social.friend_suggestions(text, integer),
	social.events_cursor(),
	social.events_since(pg_snapshot)
	TO social_service;
-- Analysts read everything and may call the read functions, never the writes.
GRANT SELECT ON ALL TABLES IN SCHEMA social TO social_analyst;
GRANT EXECUTE ON FUNCTION
	social.normalize_address(text),
	social.transition_table(),
	social.friends(text, integer, integer),
	social.mutual_friends(text, text, integer, integer),
	social.friend_count(text),
	social.is_friend(text, text),
	social.friend_addresses(text),
	social.clamp_limit(integer, integer, integer),
	social.clamp_offset(integer),
	social.friendship_status(text, text),
	social.pending_requests(text, integer, integer),
	social.sent_requests(text, integer, integer),
	social.blocked_users(text, integer, integer),
	social.blocking_status(text),
	social.get_settings(text),
	social.private_messages_settings(text, text[]),
	social.get_profiles(text[]),
	social.friendship_history(text, text),
	social.friend_suggestions(text, integer),
	social.events_cursor(),
	social.events_since(pg_snapshot)
	TO social_analyst;

-- =============================================================================================
-- 0.2.0: presence sessions (migrations/social--0.1.0--0.2.0.sql has the design notes).
-- =============================================================================================
CREATE TABLE social.presence_sessions (
	id				bigserial PRIMARY KEY,
	address			social.address NOT NULL,
	online_from		timestamptz NOT NULL,
	-- NULL while the session is open (or when its end was lost: an instance stopped between
	-- detecting the offline flip and recording it).
	online_until	timestamptz,
	-- The parcel of the last heartbeat that carried a position (x = floor(x / 16 m),
	-- y = floor(z / 16 m)); NULL when no source reported one.
	last_parcel_x	integer,
	last_parcel_y	integer,
	-- The sociald instance that recorded the session first.
	instance		text NOT NULL,
	CONSTRAINT presence_sessions_one_per_start UNIQUE (address, online_from),
	CONSTRAINT presence_sessions_ordered CHECK (online_until >= online_from),
	CONSTRAINT presence_sessions_parcel_pair CHECK ((last_parcel_x IS NULL) = (last_parcel_y IS NULL))
);
CREATE INDEX presence_sessions_from_idx ON social.presence_sessions (online_from);
CREATE INDEX presence_sessions_open_idx ON social.presence_sessions (address)
	WHERE online_until IS NULL;
COMMENT ON TABLE social.presence_sessions IS
	'Presence sessions recorded by sociald: one row per online period of an address.';

SELECT pg_catalog.pg_extension_config_dump('social.presence_sessions', '');
SELECT pg_catalog.pg_extension_config_dump('social.presence_sessions_id_seq', '');

-- One call per batch, one statement per call.  Parallel arrays, one element per flip:
--   addresses[i]    the user (any case)
--   online_from[i]  ms since the epoch when the session started
--   online_until[i] ms since the epoch when it ended; NULL for an online flip
--   parcel_x[i], parcel_y[i]  the last known parcel, or NULL
-- Flips of one session in one batch are merged; an end recorded before its start is kept and
-- the start then changes nothing.  Returns the number of sessions written.
CREATE FUNCTION social.record_presence(addresses text[], online_from bigint[],
									   online_until bigint[], parcel_x integer[],
									   parcel_y integer[], instance text)
	RETURNS bigint
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	n		bigint := coalesce(cardinality(addresses), 0);
	written	bigint;
BEGIN
	IF addresses IS NULL OR record_presence.online_from IS NULL
	   OR record_presence.online_until IS NULL OR parcel_x IS NULL OR parcel_y IS NULL
	   OR record_presence.instance IS NULL OR record_presence.instance = '' THEN
		RAISE EXCEPTION 'record_presence: no argument may be null, and instance must not be empty'
			USING ERRCODE = '22004';
	END IF;
	IF cardinality(record_presence.online_from) <> n
	   OR cardinality(record_presence.online_until) <> n
	   OR cardinality(parcel_x) <> n OR cardinality(parcel_y) <> n THEN
		RAISE EXCEPTION 'record_presence: the five arrays must have the same length'
			USING ERRCODE = '22023';
	END IF;
	IF array_position(addresses, NULL) IS NOT NULL
	   OR array_position(record_presence.online_from, NULL) IS NOT NULL THEN
		RAISE EXCEPTION 'record_presence: every flip needs an address and a start'
			USING ERRCODE = '22004';
	END IF;
	IF EXISTS (SELECT FROM unnest(record_presence.online_from, record_presence.online_until,
								  parcel_x, parcel_y) AS f(from_ms, until_ms, px, py)
			   WHERE f.until_ms < f.from_ms OR (f.px IS NULL) <> (f.py IS NULL)) THEN
		RAISE EXCEPTION 'record_presence: a flip ends before it starts or has half a parcel'
			USING ERRCODE = '22023';
	END IF;
	IF n > 100000 THEN
		RAISE EXCEPTION 'record_presence: at most 100000 flips per call, got %', n
			USING ERRCODE = '22023',
				  HINT = 'Flush batches more often.';
	END IF;

	WITH flips AS (
		SELECT social.normalize_address(f.address) AS address,
			   timestamptz 'epoch' + f.from_ms * interval '1 millisecond' AS online_from,
			   timestamptz 'epoch' + f.until_ms * interval '1 millisecond' AS online_until,
			   f.px, f.py, f.ord
		FROM unnest(addresses, record_presence.online_from, record_presence.online_until,
					parcel_x, parcel_y) WITH ORDINALITY AS f(address, from_ms, until_ms, px, py, ord)
	),
	sessions AS (
		-- The end, and the parcel known last: that of the latest flip carrying one.
		SELECT l.address, l.online_from, max(l.online_until) AS online_until,
			   (array_agg(l.px ORDER BY l.ord DESC)
					FILTER (WHERE l.px IS NOT NULL AND l.py IS NOT NULL))[1] AS px,
			   (array_agg(l.py ORDER BY l.ord DESC)
					FILTER (WHERE l.px IS NOT NULL AND l.py IS NOT NULL))[1] AS py
		FROM flips l
		GROUP BY l.address, l.online_from
	)
	INSERT INTO social.presence_sessions AS s
		(address, online_from, online_until, last_parcel_x, last_parcel_y, instance)
	SELECT q.address, q.online_from, q.online_until, q.px, q.py, record_presence.instance
	FROM sessions q
	ORDER BY q.address, q.online_from
	ON CONFLICT ON CONSTRAINT presence_sessions_one_per_start DO UPDATE
		-- greatest() skips NULLs: an end, once known, stays
		SET online_until = greatest(s.online_until, EXCLUDED.online_until),
			last_parcel_x = CASE WHEN EXCLUDED.online_until IS NOT NULL
									  AND EXCLUDED.last_parcel_x IS NOT NULL
								 THEN EXCLUDED.last_parcel_x
								 ELSE coalesce(s.last_parcel_x, EXCLUDED.last_parcel_x) END,
			last_parcel_y = CASE WHEN EXCLUDED.online_until IS NOT NULL
									  AND EXCLUDED.last_parcel_x IS NOT NULL
								 THEN EXCLUDED.last_parcel_y
								 ELSE coalesce(s.last_parcel_y, EXCLUDED.last_parcel_y) END;
	GET DIAGNOSTICS written = ROW_COUNT;
	RETURN written;
END
$fn$;
COMMENT ON FUNCTION social.record_presence(text[], bigint[], bigint[], integer[], integer[], text) IS
	'Records a batch of presence flips (sociald): opens and closes social.presence_sessions rows.';

-- Analyst views.  An open session counts as lasting until now, but at most a day: a session
-- whose end was lost must not count its user as active on every day that follows.
CREATE VIEW social.daily_active_users AS
	SELECT d.day::date AS day, count(DISTINCT s.address) AS users
	FROM social.presence_sessions s,
		 LATERAL generate_series(
			 date_trunc('day', s.online_from AT TIME ZONE 'UTC'),
			 date_trunc('day', coalesce(s.online_until,
										least(now(), s.online_from + interval '1 day'))
								   AT TIME ZONE 'UTC'),
			 interval '1 day') AS d(day)
	GROUP BY d.day;
COMMENT ON VIEW social.daily_active_users IS
	'Distinct users online during each UTC day (a session counts on every day it overlaps).';

CREATE VIEW social.session_lengths AS
	SELECT s.id, s.address::text AS address, s.online_from, s.online_until,
		   extract(epoch FROM s.online_until - s.online_from)::double precision AS seconds,
		   s.last_parcel_x, s.last_parcel_y
	FROM social.presence_sessions s
	WHERE s.online_until IS NOT NULL;
COMMENT ON VIEW social.session_lengths IS
	'Every ended presence session with its length in seconds.';

REVOKE ALL ON social.presence_sessions, social.daily_active_users, social.session_lengths
	FROM PUBLIC;
REVOKE ALL ON FUNCTION
	social.record_presence(text[], bigint[], bigint[], integer[], integer[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	social.record_presence(text[], bigint[], bigint[], integer[], integer[], text)
	TO social_service;
GRANT SELECT ON social.presence_sessions, social.daily_active_users, social.session_lengths
	TO social_analyst;

-- =============================================================================================
-- 0.3.0: page sizes written once (migrations/social--0.2.0--0.3.0.sql has the design notes; the
-- functions themselves are defined in their final form above).
-- =============================================================================================

-- Readable by the daemon and analysts, like the other read functions.
REVOKE ALL ON FUNCTION
	social.page_limit(text, integer),
	social.page_number(text, integer, integer)
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	social.page_limit(text, integer),
	social.page_number(text, integer, integer)
	TO social_service, social_analyst;

-- =============================================================================================
-- 0.4.0: import of the reference service's data (migrations/social--0.3.0--0.4.0.sql has the
-- design notes).
-- =============================================================================================

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

-- =============================================================================================
-- 0.5.0: the notification outbox (migrations/social--0.4.0--0.5.0.sql has the design notes).
-- =============================================================================================

CREATE TABLE social.notification_outbox (
	id				bigserial PRIMARY KEY,
	-- The social.friendship_actions row (append-only, so never gone); the event's key.
	action_id		uuid NOT NULL UNIQUE,
	kind			text NOT NULL CHECK (kind IN ('friendship-request', 'friendship-accepted')),
	created_at		timestamptz NOT NULL DEFAULT now(),
	-- Claims so far; a claim counts even if the relay never reports back.
	attempts		integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
	-- Due when reached and delivered_at is NULL; a claim moves it past its lease.
	next_attempt_at	timestamptz NOT NULL DEFAULT now(),
	delivered_at	timestamptz,
	last_error		text
);
-- The relay's scan: undelivered rows by due time.
CREATE INDEX notification_outbox_due_idx ON social.notification_outbox (next_attempt_at, id)
	WHERE delivered_at IS NULL;
COMMENT ON TABLE social.notification_outbox IS
	'Notifications of friendship requests and accepts, written with the action, relayed to SNS by sociald.';

SELECT pg_catalog.pg_extension_config_dump('social.notification_outbox', '');
SELECT pg_catalog.pg_extension_config_dump('social.notification_outbox_id_seq', '');

-- ---------------------------------------------------------------------------------------------
-- The relay's functions.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION social.outbox_claim(n integer, lease interval DEFAULT interval '60 seconds')
	RETURNS TABLE(id bigint, action_id uuid, kind text, attempts integer, payload jsonb)
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
	IF n IS NULL OR n < 1 OR n > 1000 THEN
		RAISE EXCEPTION 'invalid outbox claim size: %', coalesce(n::text, 'NULL')
			USING ERRCODE = 'SC016', HINT = 'Claim between 1 and 1000 rows.';
	END IF;
	IF lease IS NULL OR lease <= interval '0' THEN
		RAISE EXCEPTION 'invalid outbox lease: %', coalesce(lease::text, 'NULL')
			USING ERRCODE = 'SC016', HINT = 'Give a positive interval.';
	END IF;
	RETURN QUERY
		WITH due AS (
			SELECT o.id FROM social.notification_outbox o
			WHERE o.delivered_at IS NULL AND o.next_attempt_at <= now()
			ORDER BY o.next_attempt_at, o.id
			LIMIT n
			FOR UPDATE SKIP LOCKED
		), claimed AS (
			UPDATE social.notification_outbox o
			SET attempts = o.attempts + 1, next_attempt_at = now() + lease
			FROM due WHERE o.id = due.id
			RETURNING o.id, o.action_id, o.kind, o.attempts
		)
		SELECT c.id, c.action_id, c.kind, c.attempts,
			   jsonb_build_object(
				   'key', a.id::text,
				   'type', 'social-service',
				   'subType', c.kind,
				   'timestamp', floor(extract(epoch FROM a."timestamp") * 1000)::bigint,
				   'metadata', jsonb_build_object(
					   'requestId', a.id::text,
					   'sender', jsonb_build_object(
						   'address', a.acting_user::text,
						   'name', coalesce(nullif(ps.name, ''), a.acting_user::text),
						   'profileImageUrl', coalesce(ps.profile_picture_url, ''),
						   'hasClaimedName', coalesce(ps.has_claimed_name, false)),
					   'receiver', jsonb_build_object(
						   'address', a.target_user::text,
						   'name', coalesce(nullif(pr.name, ''), a.target_user::text),
						   'profileImageUrl', coalesce(pr.profile_picture_url, ''),
						   'hasClaimedName', coalesce(pr.has_claimed_name, false)))
					   || CASE WHEN a.action = 'request' AND coalesce(a.metadata->>'message', '') <> ''
							   THEN jsonb_build_object('message', a.metadata->>'message')
							   ELSE '{}'::jsonb END)
		FROM claimed c
		JOIN social.friendship_actions a ON a.id = c.action_id
		LEFT JOIN social.profiles ps ON ps.address = a.acting_user
		LEFT JOIN social.profiles pr ON pr.address = a.target_user
		ORDER BY c.id;
END
$fn$;
COMMENT ON FUNCTION social.outbox_claim(integer, interval) IS
	'Leases up to n due notifications (FOR UPDATE SKIP LOCKED; next_attempt_at = now() + lease, attempts + 1) and returns their SNS events.';

CREATE FUNCTION social.outbox_delivered(ids bigint[]) RETURNS bigint
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	marked	bigint;
BEGIN
	IF ids IS NULL THEN
		RAISE EXCEPTION 'outbox ids must not be null' USING ERRCODE = 'SC016';
	END IF;
	UPDATE social.notification_outbox o SET delivered_at = now(), last_error = NULL
	WHERE o.id = ANY (ids) AND o.delivered_at IS NULL;
	GET DIAGNOSTICS marked = ROW_COUNT;
	RETURN marked;
END
$fn$;
COMMENT ON FUNCTION social.outbox_delivered(bigint[]) IS
	'Marks notifications delivered; returns how many were not already; unknown ids are ignored.';

CREATE FUNCTION social.outbox_failed(id bigint, error text, retry_after interval) RETURNS boolean
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
	IF outbox_failed.id IS NULL THEN
		RAISE EXCEPTION 'outbox id must not be null' USING ERRCODE = 'SC016';
	END IF;
	IF retry_after IS NULL OR retry_after < interval '0' THEN
		RAISE EXCEPTION 'invalid outbox retry_after: %', coalesce(retry_after::text, 'NULL')
			USING ERRCODE = 'SC016', HINT = 'Give an interval of zero or more.';
	END IF;
	UPDATE social.notification_outbox o
	SET last_error = left(coalesce(error, ''), 1000), next_attempt_at = now() + retry_after
	WHERE o.id = outbox_failed.id AND o.delivered_at IS NULL;
	RETURN FOUND;
END
$fn$;
COMMENT ON FUNCTION social.outbox_failed(bigint, text, interval) IS
	'Records a failed send (error kept, up to 1000 characters) and makes the row due again after retry_after; false for an unknown or delivered id.';

CREATE FUNCTION social.outbox_prune(retention interval) RETURNS bigint
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	pruned	bigint;
BEGIN
	IF retention IS NULL OR retention < interval '0' THEN
		RAISE EXCEPTION 'invalid outbox retention: %', coalesce(retention::text, 'NULL')
			USING ERRCODE = 'SC016', HINT = 'Give an interval of zero or more.';
	END IF;
	DELETE FROM social.notification_outbox o
	WHERE (o.delivered_at IS NOT NULL AND o.delivered_at <= now() - retention)
	   OR (o.delivered_at IS NULL AND o.created_at <= now() - retention);
	GET DIAGNOSTICS pruned = ROW_COUNT;
	RETURN pruned;
END
$fn$;
COMMENT ON FUNCTION social.outbox_prune(interval) IS
	'Deletes notifications delivered, or created and never delivered, at least retention ago; returns how many.';

-- ---------------------------------------------------------------------------------------------
-- Privileges: the relay executes the functions; analysts read the table.
-- ---------------------------------------------------------------------------------------------
REVOKE ALL ON social.notification_outbox, social.notification_outbox_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION
	social.outbox_claim(integer, interval),
	social.outbox_delivered(bigint[]),
	social.outbox_failed(bigint, text, interval),
	social.outbox_prune(interval)
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	social.outbox_claim(integer, interval),
	social.outbox_delivered(bigint[]),
	social.outbox_failed(bigint, text, interval),
	social.outbox_prune(interval)
	TO social_service;
GRANT SELECT ON social.notification_outbox TO social_analyst;
