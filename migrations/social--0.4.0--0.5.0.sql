-- social 0.4.0 -> 0.5.0: a notification outbox for friend requests and accepts.
--
-- The reference service tells Decentraland's notification system about every request and accept
-- by publishing an event to AWS SNS.  Publishing from the writing transaction would lose events
-- (a crash between commit and publish) or invent them (a publish followed by a rollback), so the
-- extension writes a notification row in the same transaction as the action, and sociald relays
-- the rows to SNS afterwards (an outbox):
--
--   - social.notification_outbox gets one row per 'request' and 'accept' the state machine
--     writes: extension/friendship.c inserts it right after the action, in the same transaction,
--     so the row commits or rolls back with the action.  Every API write of a request or accept
--     (upsert_friendship) goes through that code; reject, cancel, delete and block enqueue
--     nothing.  It is the write path and not a trigger on the log because two things append to
--     the log that are not news: social.import_reference (imported history) and pg_restore (the
--     extension's trigger exists before the dump's rows are copied back, so a trigger would
--     enqueue every past request again and collide with the restored outbox rows).  The library
--     enqueues only when the table exists, so it keeps serving databases not yet updated.
--   - action_id is unique and names the log row; it is not a foreign key: the log is append-only
--     (a named action never goes away), and a foreign key would turn TRUNCATE of the log into
--     0A000 before the append-only trigger's SC020.
--   - social.outbox_claim(n, lease) hands out up to n due rows (not delivered, next_attempt_at
--     reached) with the event JSON built from the log and social.profiles.  Row locks taken with
--     FOR UPDATE SKIP LOCKED last only as long as the claiming transaction, so the claim is a
--     lease: the same statement moves next_attempt_at to now() + lease and counts the attempt.
--     Two relays never get the same row while its lease runs, whether their claims overlap (SKIP
--     LOCKED, and the re-check of a row another claim just updated) or follow each other (the row
--     is no longer due).  A relay that dies mid-send leaves the row to be claimed again when the
--     lease ends: delivery is at least once, and the event's key (the action id) lets the
--     receiver drop a duplicate.
--   - social.outbox_delivered(ids) marks rows sent; social.outbox_failed(id, error, retry_after)
--     records the error and when to try again; social.outbox_prune(retention) deletes delivered
--     rows and never-delivered ones older than the retention.
--
-- The event is the reference's SNS Message:
--   {"key": <action id>, "type": "social-service",
--    "subType": "friendship-request" | "friendship-accepted", "timestamp": <action time, ms>,
--    "metadata": {"requestId": <action id>,
--                 "sender": {"address", "name", "profileImageUrl", "hasClaimedName"},
--                 "receiver": {...the same...}, "message": <only for a request with one>}}
-- sender is the user who acted, receiver the other one.  Profiles are built at claim time (the
-- newest display data); an address without a profile row, or without a name, is named by its
-- address alone, with an empty picture and hasClaimedName false.
--
-- Bad arguments to the outbox functions (NULL, a count outside 1..1000, a negative or NULL
-- interval) are SC016.  The relay functions are granted to social_service; social_analyst may
-- read the table.

\echo Use "ALTER EXTENSION social UPDATE TO '0.5.0'" to load this file. \quit

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
