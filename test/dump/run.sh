#!/usr/bin/env bash
#
# Dump/restore test: the extension promises that pg_dump keeps its data (every table it owns is
# registered with pg_extension_config_dump). Write through the extension's functions, dump with
# pg_dump -Fc, restore into a fresh database, and require the same rows, the same answers, and
# a database that still accepts writes (a sequence left out of the dump restarts and collides).
#
# Runs against the server of tools/pg_harness (PGHOST, PGPORT, PGUSER from the environment);
# creates and drops the databases dump_src and dump_dst.

set -euo pipefail

readonly DB_SRC=dump_src DB_DST=dump_dst
readonly PROG=dump

: "${PGHOST:?PGHOST is not set: run this under tools/pg_harness}"
: "${PGPORT:?PGPORT is not set: run this under tools/pg_harness}"
if [[ -n ${PG_BINDIR:-} ]]; then
	PATH=$PG_BINDIR:$PATH
fi
export PGOPTIONS="${PGOPTIONS:+$PGOPTIONS }-c client_min_messages=warning"

work=""
reported=0

say() { printf '%s: %s\n' "$PROG" "$*"; }
fail() {
	printf '%s: FAILED: %s\n' "$PROG" "$*" >&2
	reported=1
	exit 1
}

cleanup() {
	local rc=$?
	if ((rc != 0 && !reported)); then
		printf '%s: FAILED: a command exited with status %s (output above)\n' "$PROG" "$rc" >&2
	fi
	dropdb --if-exists "$DB_SRC" >/dev/null 2>&1 || true
	dropdb --if-exists "$DB_DST" >/dev/null 2>&1 || true
	if [[ -n $work ]]; then
		rm -rf -- "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT

psql_db() {
	local db=$1
	shift
	psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"
}

# What must survive the round trip, one line per fact: row counts, a checksum of every row,
# and the state machine's view of the pair.
facts() {
	psql_db "$1" -At <<'SQL'
SELECT 'friendships rows=' || count(*) FROM social.friendships;
SELECT 'friendship_actions rows=' || count(*) FROM social.friendship_actions;
SELECT 'blocks rows=' || count(*) FROM social.blocks;
SELECT 'block_actions rows=' || count(*) FROM social.block_actions;
SELECT 'friendships md5=' || md5(coalesce(string_agg(t::text, E'\n' ORDER BY t::text), ''))
FROM social.friendships AS t;
SELECT 'friendship_actions md5=' || md5(coalesce(string_agg(t::text, E'\n' ORDER BY t::text), ''))
FROM social.friendship_actions AS t;
SELECT 'blocks md5=' || md5(coalesce(string_agg(t::text, E'\n' ORDER BY t::text), ''))
FROM social.blocks AS t;
SELECT 'block_actions md5=' || md5(coalesce(string_agg(t::text, E'\n' ORDER BY t::text), ''))
FROM social.block_actions AS t;
SELECT 'friendship_status(a,b)='
       || social.friendship_status('0x' || repeat('a', 40), '0x' || repeat('b', 40))::text;
SQL
}

work=$(mktemp -d)
dropdb --if-exists "$DB_SRC" >/dev/null
dropdb --if-exists "$DB_DST" >/dev/null

createdb "$DB_SRC"
psql_db "$DB_SRC" -o /dev/null <<'SQL'
CREATE EXTENSION social;
SELECT social.upsert_friendship('0x' || repeat('a', 40), '0x' || repeat('b', 40), 'request', 'hi');
SELECT social.upsert_friendship('0x' || repeat('b', 40), '0x' || repeat('a', 40), 'accept');
SELECT social.block_user('0x' || repeat('c', 40), '0x' || repeat('a', 40));
SQL

facts "$DB_SRC" >"$work/src.txt"
grep -qx 'friendship_status(a,b)=accepted' "$work/src.txt" ||
	fail "source: friendship_status(a, b) is not 'accepted': $(grep '^friendship_status' "$work/src.txt")"
for table in friendships friendship_actions blocks block_actions; do
	if grep -qx "$table rows=0" "$work/src.txt"; then
		fail "source: social.$table is empty after the writes; the test data did not land"
	fi
done

pg_dump -Fc -f "$work/$DB_SRC.dump" "$DB_SRC"
createdb "$DB_DST"
if ! pg_restore --exit-on-error -d "$DB_DST" "$work/$DB_SRC.dump"; then
	fail "pg_restore into $DB_DST failed (error above)"
fi

facts "$DB_DST" >"$work/dst.txt"
if ! diff -u --label "$DB_SRC" --label "$DB_DST (restored)" "$work/src.txt" "$work/dst.txt"; then
	fail "the restored database differs from the dumped one (diff above)"
fi

# The restored database must keep working: new actions need fresh ids and sequence values.
if ! psql_db "$DB_DST" -o /dev/null <<'SQL'; then
SELECT social.upsert_friendship('0x' || repeat('d', 40), '0x' || repeat('a', 40), 'request');
SELECT social.block_user('0x' || repeat('d', 40), '0x' || repeat('b', 40));
SQL
	fail "writing to the restored database failed (error above): is every sequence registered with pg_extension_config_dump?"
fi

say "ok: $(grep -c ' rows=' "$work/src.txt") tables and friendship_status survive pg_dump -Fc / pg_restore"
