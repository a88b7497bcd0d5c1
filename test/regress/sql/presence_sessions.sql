-- presence_sessions: social.record_presence (0.2.0), the table it writes and the two analyst
-- views over it.  Times are fixed instants (ms since the epoch), never now(), except for the
-- open session of daily_active_users, which is checked by its first day only.
DROP EXTENSION social;
CREATE EXTENSION social;
\set SHOW_CONTEXT never
SET TIME ZONE 'UTC';

\set alice '''0xa11ce00000000000000000000000000000000001'''
\set bob '''0xb0b0000000000000000000000000000000000001'''
\set carol '''0xca40100000000000000000000000000000000001'''

-- 2024-01-01 00:00:00 UTC and friends, in ms.
\set d1 1704067200000
\set h 3600000

-- A helper that keeps the calls readable: rows of (address, from, until, x, y).
CREATE FUNCTION pg_temp.rec(VARIADIC flips text[]) RETURNS bigint LANGUAGE sql AS $$
	SELECT social.record_presence(
		ARRAY(SELECT split_part(f, ' ', 1) FROM unnest(flips) WITH ORDINALITY u(f, o) ORDER BY o),
		ARRAY(SELECT split_part(f, ' ', 2)::bigint FROM unnest(flips) WITH ORDINALITY u(f, o) ORDER BY o),
		ARRAY(SELECT nullif(split_part(f, ' ', 3), '-')::bigint
			  FROM unnest(flips) WITH ORDINALITY u(f, o) ORDER BY o),
		ARRAY(SELECT nullif(split_part(f, ' ', 4), '-')::integer
			  FROM unnest(flips) WITH ORDINALITY u(f, o) ORDER BY o),
		ARRAY(SELECT nullif(split_part(f, ' ', 5), '-')::integer
			  FROM unnest(flips) WITH ORDINALITY u(f, o) ORDER BY o),
		'test-instance')
$$;

CREATE VIEW pg_temp.sessions AS
	SELECT address, online_from, online_until, last_parcel_x AS x, last_parcel_y AS y, instance
	FROM social.presence_sessions;

-- =============================================================================================
-- Opening and closing.
-- =============================================================================================
-- alice comes online at 10:00 at parcel (1,2); bob at 11:00 with no parcel.
SELECT pg_temp.rec(:alice || ' ' || (:d1 + 10 * :h) || ' - 1 2',
				   '0xB0B0000000000000000000000000000000000001 ' || (:d1 + 11 * :h) || ' - - -') AS written;
SELECT * FROM pg_temp.sessions ORDER BY address, online_from;
-- alice goes offline at 12:30 at parcel (-5,7): the open session closes, the parcel is the last one.
SELECT pg_temp.rec(:alice || ' ' || (:d1 + 10 * :h) || ' ' || (:d1 + 12 * :h + :h / 2) || ' -5 7')
	AS written;
SELECT * FROM pg_temp.sessions ORDER BY address, online_from;
-- The same batch again (a retry after a lost connection) changes nothing.
SELECT pg_temp.rec(:alice || ' ' || (:d1 + 10 * :h) || ' ' || (:d1 + 12 * :h + :h / 2) || ' -5 7')
	AS written;
SELECT count(*) AS sessions FROM social.presence_sessions;
-- A start recorded again after its end (another instance flushing late) does not reopen it.
SELECT pg_temp.rec(:alice || ' ' || (:d1 + 10 * :h) || ' - 1 2') AS written;
SELECT * FROM pg_temp.sessions WHERE address = :alice ORDER BY online_from;

-- An end that arrives before its start: the session is complete at once, the start changes
-- nothing.
SELECT pg_temp.rec(:carol || ' ' || (:d1 + 20 * :h) || ' ' || (:d1 + 21 * :h) || ' - -') AS written;
SELECT pg_temp.rec(:carol || ' ' || (:d1 + 20 * :h) || ' - 3 3') AS written;
SELECT * FROM pg_temp.sessions WHERE address = :carol ORDER BY online_from;

-- One batch holding a whole session and the start of the next (flips in order).
SELECT pg_temp.rec(:bob || ' ' || (:d1 + 11 * :h) || ' ' || (:d1 + 13 * :h) || ' 9 9',
				   :bob || ' ' || (:d1 + 23 * :h) || ' - 4 4',
				   :bob || ' ' || (:d1 + 23 * :h) || ' ' || (:d1 + 24 * :h + :h / 4) || ' - -')
	AS written;
SELECT * FROM pg_temp.sessions WHERE address = :bob ORDER BY online_from;

-- =============================================================================================
-- Views.
-- =============================================================================================
-- bob's second session spans midnight: he counts on both days.
SELECT day, users FROM social.daily_active_users ORDER BY day;
SELECT address, online_from, seconds, last_parcel_x, last_parcel_y
FROM social.session_lengths ORDER BY address, online_from;
-- The README's questions: daily active users, and the median session length.
SELECT day, users FROM social.daily_active_users
WHERE day BETWEEN '2024-01-01' AND '2024-01-07' ORDER BY day;
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS median_seconds,
	   count(*) AS sessions
FROM social.session_lengths
WHERE online_from >= '2024-01-01' AND online_from < '2024-01-08';
-- An open session counts from its first day up to today, but at most one day after its start:
-- a session whose end was lost does not make its user active forever.
SELECT pg_temp.rec(:carol || ' ' || (:d1 + 48 * :h + 12 * :h) || ' - - -') AS written;
SELECT day, users FROM social.daily_active_users WHERE day >= '2024-01-03' ORDER BY day;
SELECT count(*) AS ended_sessions FROM social.session_lengths;

-- =============================================================================================
-- Bad input: every refusal names its SQLSTATE and writes nothing.
-- =============================================================================================
SELECT count(*) AS before FROM social.presence_sessions;
SELECT social.record_presence(ARRAY[:alice], ARRAY[1::bigint], ARRAY[NULL::bigint],
							  ARRAY[1], ARRAY[]::integer[], 'x');
SELECT :'SQLSTATE' AS sqlstate;
SELECT social.record_presence(NULL, ARRAY[1::bigint], ARRAY[NULL::bigint], ARRAY[1], ARRAY[1], 'x');
SELECT :'SQLSTATE' AS sqlstate;
SELECT social.record_presence(ARRAY[:alice], ARRAY[1::bigint], ARRAY[NULL::bigint], ARRAY[1],
							  ARRAY[1], '');
SELECT :'SQLSTATE' AS sqlstate;
SELECT social.record_presence(ARRAY[:alice], ARRAY[NULL::bigint], ARRAY[NULL::bigint],
							  ARRAY[NULL::integer], ARRAY[NULL::integer], 'x');
SELECT :'SQLSTATE' AS sqlstate;
SELECT pg_temp.rec('0xnot-an-address ' || :d1 || ' - - -');
SELECT :'SQLSTATE' AS sqlstate;
-- an end before its start
SELECT pg_temp.rec(:alice || ' ' || (:d1 + 2 * :h) || ' ' || (:d1 + :h) || ' - -');
SELECT :'SQLSTATE' AS sqlstate;
-- half a parcel
SELECT pg_temp.rec(:alice || ' ' || :d1 || ' - 1 -');
SELECT :'SQLSTATE' AS sqlstate;
SELECT count(*) AS after FROM social.presence_sessions;
-- an empty batch is fine
SELECT social.record_presence('{}', '{}', '{}', '{}', '{}', 'x') AS written;

-- =============================================================================================
-- Privileges: the daemon records, analysts read, nobody else does either.
-- =============================================================================================
SET client_min_messages = warning;
DROP ROLE IF EXISTS social_regress_daemon;
DROP ROLE IF EXISTS social_regress_analyst;
RESET client_min_messages;
CREATE ROLE social_regress_daemon NOLOGIN;
GRANT social_service TO social_regress_daemon;
CREATE ROLE social_regress_analyst NOLOGIN;
GRANT social_analyst TO social_regress_analyst;

SET ROLE social_regress_daemon;
SELECT social.record_presence(ARRAY[:alice], ARRAY[:d1 + 100 * :h], ARRAY[NULL::bigint],
							  ARRAY[NULL::integer], ARRAY[NULL::integer], 'daemon') AS written;
SELECT count(*) FROM social.presence_sessions;
SELECT :'SQLSTATE' AS sqlstate;
SELECT count(*) FROM social.session_lengths;
SELECT :'SQLSTATE' AS sqlstate;
RESET ROLE;

SET ROLE social_regress_analyst;
SELECT count(*) AS sessions FROM social.presence_sessions;
SELECT day, users FROM social.daily_active_users ORDER BY day;
SELECT count(*) AS ended FROM social.session_lengths;
SELECT social.record_presence(ARRAY[:alice], ARRAY[1::bigint], ARRAY[NULL::bigint],
							  ARRAY[NULL::integer], ARRAY[NULL::integer], 'analyst');
SELECT :'SQLSTATE' AS sqlstate;
DELETE FROM social.presence_sessions;
SELECT :'SQLSTATE' AS sqlstate;
RESET ROLE;

SELECT instance, count(*) FROM social.presence_sessions GROUP BY instance ORDER BY instance;
DROP ROLE social_regress_daemon;
DROP ROLE social_regress_analyst;
