-- social 0.2.0 -> 0.3.0: page sizes written once, and the page number from the extension.
--
-- Each paged read clamps its limit and offset silently, like the reference service, and a
-- response carries the page number ceil(offset / limit) + 1 of the limit and offset actually
-- used.  Until 0.2.0 the numbers were written three times: in C for friends and mutual friends
-- (extension/friendset.c), as literals in the SQL bodies of pending_requests, sent_requests and
-- blocked_users, and in sociald, which copied them to compute the page number.  Now one table in
-- extension/paging.c holds each list's default and maximum page size and the offset cap:
--
--   social.page_limit(list, requested)        the limit the list's read uses
--   social.clamp_offset(requested)            the offset every read uses (now in C, same values)
--   social.page_number(list, limit, offset)   the page those give, for sociald's responses
--
-- friendset.c reads the same table, and the three SQL reads below take their limits from
-- page_limit.  A list name that is not one of friends, mutual_friends, pending_requests,
-- sent_requests and blocked_users is refused with SC014.

\echo Use "ALTER EXTENSION social UPDATE TO '0.3.0'" to load this file. \quit

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

-- Same values as the SQL it replaces; the cap is now paging.c's.
CREATE OR REPLACE FUNCTION social.clamp_offset(requested integer) RETURNS integer
	AS 'MODULE_PATHNAME', 'social_clamp_offset'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION social.clamp_offset(integer) IS
	'The offset a paged read uses: 0 when NULL or negative, else at most the offset cap.';

COMMENT ON FUNCTION social.friends(text, integer, integer) IS
	'Friends of me ordered by address; limit and offset clamped as social.page_limit(''friends'', ...) and social.clamp_offset say.';
COMMENT ON FUNCTION social.mutual_friends(text, text, integer, integer) IS
	'Friends both users share, ordered by address; empty when either blocks the other; limit and offset clamped as social.page_limit(''mutual_friends'', ...) and social.clamp_offset say.';

CREATE OR REPLACE FUNCTION social.pending_requests(me text, "limit" integer DEFAULT NULL,
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

CREATE OR REPLACE FUNCTION social.sent_requests(me text, "limit" integer DEFAULT NULL,
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

CREATE OR REPLACE FUNCTION social.blocked_users(me text, "limit" integer DEFAULT NULL,
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

-- Readable by the daemon and analysts, like the other read functions (clamp_offset keeps its
-- grants: CREATE OR REPLACE does not change them).
REVOKE ALL ON FUNCTION
	social.page_limit(text, integer),
	social.page_number(text, integer, integer)
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	social.page_limit(text, integer),
	social.page_number(text, integer, integer)
	TO social_service, social_analyst;
