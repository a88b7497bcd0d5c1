-- social 0.1.0 -> 0.2.0: presence sessions for analysts.
--
-- Presence itself lives in Redis and never touches this database's write path (the daemon's
-- README section "Presence").  What analysts want from it is history: who was online, from when
-- to when, and where they were last.  Each sociald instance batches the status flips it detected
-- (exactly one instance detects each flip) and hands them over at most once a second with one
-- call of social.record_presence.
--
-- A session is keyed by (address, online_from): the online flip knows when it started, and the
-- offline flip carries the same start (Redis keeps it with the status).  So recording is an
-- upsert that neither order nor repetition can confuse: instance A may record the start after
-- instance B recorded the end, and a batch retried after a lost connection changes nothing.

\echo Use "ALTER EXTENSION social UPDATE TO '0.2.0'" to load this file. \quit

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
