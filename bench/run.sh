#!/usr/bin/env bash
#
# bench/run.sh -- the benchmark of `make bench`.
#
# Measures, in one run on one graph, the extension's read functions against the reference
# service's query strategy reproduced as plain SQL (schema ref, same rows), and the write
# throughput of social.upsert_friendship (all rules + NOTIFY) against a bare INSERT + NOTIFY of the
# same rows.  Writes BENCHMARKS.md at the repository root (bench/report.sh).  Nothing here asserts
# on a time: a missed target is reported as missed.  The run fails only when something is broken
# (an error, a generated graph that breaks an invariant, results that differ between the two
# strategies).
#
# Runs under tools/pg_harness (make bench): a throw-away server, PGHOST/PGPORT/PGUSER=postgres
# exported, the server's bindir first on PATH.  Needs a superuser (it loads the extension's
# tables directly) and the extension installed.
#
# Steps: create database social_bench and the extension; build the graph in schema bench
# (sql/generate.sql) and copy it into social.* and ref.* in parallel (sql/load_social.sql,
# sql/load_reference.sql); rebuild friend sets; VACUUM ANALYZE; check invariants and that both
# strategies return the same answers; time the reads with pgbench (pgbench/*.sql, one client,
# per-transaction log, ours and the reference interleaved); time the writes with pgbench (1 and 2
# clients, synchronous_commit as the server has it and off, ours and bare back to back in
# alternating order); write the report.
#
# Environment (default):
#   BENCH_DB              database to (re)create (social_bench)
#   BENCH_ITERATIONS      timed calls per read of ours (500)
#   BENCH_REF_ITERATIONS  timed calls per reference query (60), which are up to 100x slower
#   BENCH_WRITES          requests per write run (3000)
#   BENCH_ROUNDS          write runs per variant and configuration (4)
#   BENCH_OUTPUT          report file (BENCHMARKS.md at the repository root)
#   BENCH_COMMAND         the command named in the report (make bench)

set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd -- "$here/.." && pwd -P)

DB=${BENCH_DB:-social_bench}
ITERATIONS=${BENCH_ITERATIONS:-500}
REF_ITERATIONS=${BENCH_REF_ITERATIONS:-60}
WRITES=${BENCH_WRITES:-3000}
ROUNDS=${BENCH_ROUNDS:-4}
readonly CHUNKS=5
OUTPUT=${BENCH_OUTPUT:-$root/BENCHMARKS.md}
export BENCH_COMMAND=${BENCH_COMMAND:-make bench}

# Reads run with parallel query off, ours and the reference alike; the hub cases also time the
# reference page with the server's parallel settings, and the report compares with the faster.
readonly READ_OPTS="-c max_parallel_workers_per_gather=0"
readonly CLIENTS=(1 2)

started=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/social-bench.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() {
	printf 'bench: error: %s\n' "$*" >&2
	exit 1
}

q() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
val() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" -c "$1"; }

# pgbench OUTFILE ARGS...: pgbench against $DB; its output is kept, and shown when it fails.
pgb() {
	local out=$1
	shift
	if ! pgbench -n -M extended "$@" "$DB" >"$out" 2>&1; then
		cat -- "$out" >&2
		die "pgbench $* failed"
	fi
}

preflight() {
	command -v pgbench >/dev/null || die "no pgbench on PATH (run under tools/pg_harness)"
	[[ $(psql -X -At -d postgres -c 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user') == t ]] ||
		die "needs a superuser (PGUSER=postgres under tools/pg_harness)"
	[[ $(psql -X -At -d postgres -c "SELECT count(*) FROM pg_available_extensions WHERE name = 'social'") == 1 ]] ||
		die "extension social is not installed (make install)"
	((WRITES % 2 == 0)) || die "BENCH_WRITES must be even (split over 1 and 2 clients)"
	((ITERATIONS >= CHUNKS && REF_ITERATIONS >= CHUNKS)) ||
		die "BENCH_ITERATIONS and BENCH_REF_ITERATIONS must be at least $CHUNKS"
}

create_db() {
	psql -X -q -v ON_ERROR_STOP=1 -d postgres -v db="$DB" <<'EOF'
SET client_min_messages = warning;
DROP DATABASE IF EXISTS :"db";
CREATE DATABASE :"db";
EOF
	q -c 'CREATE EXTENSION social'
}

# Commit modes of the write runs: the server's synchronous_commit, and off unless it already is.
commit_modes() {
	local server
	server=$(val 'SHOW synchronous_commit')
	echo server
	[[ $server == off ]] || echo off
}

load_graph() {
	local pairs a b
	# Every write run takes WRITES fresh pairs; ours and bare take disjoint slices (both write
	# into social.*).
	pairs=$((WRITES * ROUNDS * ${#CLIENTS[@]} * $(commit_modes | wc -l)))
	log "generating the graph (schema bench)"
	q -v write_pairs=$((2 * pairs)) -f "$here/sql/generate.sql"
	q -v bare_start=$((pairs + 1)) <<'EOF'
CREATE SEQUENCE bench.write_seq_ours;
CREATE SEQUENCE bench.write_seq_bare START :bare_start;
EOF

	log "loading social.* and ref.* (in parallel)"
	(q -v rows=1 -v part=0 -f "$here/sql/load_social.sql") &
	a=$!
	(q -f "$here/sql/load_reference.sql" && q -v rows=0 -v part=1 -f "$here/sql/load_social.sql") &
	b=$!
	wait "$a" || die "loading social.* failed"
	wait "$b" || die "loading ref.* failed"

	log "rebuilding friend sets, VACUUM ANALYZE"
	q -c 'SELECT social.rebuild_friend_sets()' >/dev/null
	q -c 'VACUUM ANALYZE'
}

# Invariants of the generated data; a failure is a bug in the generator (or in rebuild).
check_graph() {
	local bad
	bad=$(val "
		SELECT concat_ws(', ',
			CASE WHEN (SELECT count(*) FROM social.friendships) <> (SELECT count(*) FROM ref.friendships)
				 THEN 'friendships differ from ref' END,
			CASE WHEN (SELECT count(*) FROM social.friendship_actions)
					  <> (SELECT count(*) FROM ref.friendship_actions)
				 THEN 'actions differ from ref' END,
			CASE WHEN EXISTS (SELECT FROM social.friendship_actions a
							  WHERE NOT EXISTS (SELECT FROM social.friendships f WHERE f.id = a.friendship_id))
				 THEN 'action without friendship' END,
			CASE WHEN EXISTS (SELECT FROM social.friendships f
							  LEFT JOIN social.friendship_actions a ON a.id = f.last_action_id
							  WHERE a.id IS NULL OR a.friendship_id <> f.id OR a.action <> f.last_action
								 OR a.acting_user <> f.last_actor
								 OR a.seq <> (SELECT max(seq) FROM social.friendship_actions x
											  WHERE x.friendship_id = f.id))
				 THEN 'last_action_id is not the newest action' END,
			CASE WHEN (SELECT count(*) FROM social.friend_sets)
					  <> (SELECT count(DISTINCT u) FROM social.friendships f,
							LATERAL (VALUES (f.address_requester), (f.address_requested)) v(u)
						  WHERE f.is_active)
				 THEN 'friend_sets rows do not match the users with friends' END,
			CASE WHEN (SELECT sum(length(friends) / 20) FROM social.friend_sets)
					  <> 2 * (SELECT count(*) FROM social.friendships WHERE is_active)
				 THEN 'friend_sets entries do not match the friendships' END)")
	[[ -z $bad ]] || die "generated graph is inconsistent: $bad"
}

# The addresses the reads are measured on.
pick_users() {
	hub1=$(val 'SELECT bench.addr(1)')
	hub2=$(val 'SELECT bench.addr(2)')
	# An ordinary friend of hub 1 with friends of its own: hub 1 x user is a profile visit.
	user=$(val "SELECT u.addr FROM bench.users u
				JOIN bench.edges e ON e.kind = 'accepted' AND 1 IN (e.a, e.b) AND u.n IN (e.a, e.b)
				WHERE u.n <> 1 ORDER BY u.n LIMIT 1")
}

# Runs SCRIPT with psql, the pgbench variables given as NAME=VALUE, and prints the rows.
rows_of() {
	local script=$1 kv
	local -a vars=()
	shift
	for kv in "$@"; do
		vars+=(-v "${kv%%=*}=${kv#*=}")
	done
	# psql substitutes :name like pgbench; addresses go in quoted.
	psql -X -q -At -F '|' -v ON_ERROR_STOP=1 -d "$DB" "${vars[@]}" -f "$here/pgbench/$script.sql"
}

# Both strategies must give the same answers before their speed means anything.
check_results() {
	local me="'$hub1'" other="'$hub2'" u="'$user'"
	local -a failures=()
	add_check() { # NAME OURS REF
		local ok=yes
		[[ $2 == "$3" ]] || {
			ok=NO
			failures+=("$1")
		}
		printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$ok" >>"$work/checks.tsv"
	}
	field() { cut -d'|' -f"$1"; }
	count() { wc -l | tr -d ' '; }
	digest() { md5sum | cut -c1-12; }

	local ours refp refc
	ours=$(rows_of ours_mutual me="$me" other="$other" limit=1000)
	refp=$(rows_of ref_mutual me="$me" other="$other" limit=1000)
	refc=$(rows_of ref_mutual_count me="$me" other="$other")
	add_check "mutual hub 1 x hub 2: total" "$(field 2 <<<"$ours" | head -n 1)" "$refc"
	add_check "mutual hub 1 x hub 2: page (1,000 addresses)" \
		"$(field 1 <<<"$ours" | digest) ($(count <<<"$ours") rows)" "$(digest <<<"$refp") ($(count <<<"$refp") rows)"

	ours=$(rows_of ours_mutual me="$me" other="$u" limit=1000)
	refp=$(rows_of ref_mutual me="$me" other="$u" limit=1000)
	refc=$(rows_of ref_mutual_count me="$me" other="$u")
	add_check "mutual hub 1 x user: total" "$(field 2 <<<"$ours" | head -n 1)" "$refc"
	add_check "mutual hub 1 x user: page" \
		"$(field 1 <<<"$ours" | digest) ($(count <<<"$ours") rows)" "$(digest <<<"$refp") ($(count <<<"$refp") rows)"

	ours=$(rows_of ours_friends me="$me" limit=1000)
	refc=$(rows_of ref_friends_count me="$me")
	add_check "friends of hub 1: total" "$(field 2 <<<"$ours" | head -n 1)" "$refc"
	# Pages differ by design (ours by address, the reference newest first): compare whole lists.
	refp=$(rows_of ref_friends me="$me" limit=100000 | field 1 | LC_ALL=C sort)
	ours=$(psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" -v me="$hub1" \
		<<<"SELECT social.friend_addresses(:'me');" | LC_ALL=C sort)
	add_check "friends of hub 1: all addresses" \
		"$(digest <<<"$ours") ($(count <<<"$ours") rows)" "$(digest <<<"$refp") ($(count <<<"$refp") rows)"

	ours=$(rows_of ours_friends me="$u" limit=1000)
	refc=$(rows_of ref_friends_count me="$u")
	add_check "friends of user: total" "$(field 2 <<<"$ours" | head -n 1)" "$refc"

	# Same order on both sides: newest request first (timestamps are distinct).
	ours=$(rows_of ours_pending me="$me" limit=100)
	refp=$(rows_of ref_pending me="$me" limit=100)
	refc=$(rows_of ref_pending_count me="$me")
	add_check "pending requests of hub 1: total" "$(field 5 <<<"$ours" | head -n 1)" "$refc"
	add_check "pending requests of hub 1: page (100 senders, in order)" \
		"$(field 2 <<<"$ours" | digest) ($(count <<<"$ours") rows)" \
		"$(field 2 <<<"$refp" | digest) ($(count <<<"$refp") rows)"

	check_failures=${#failures[@]}
	if ((check_failures > 0)); then
		log "RESULTS DIFFER between our functions and the reference strategy: ${failures[*]}"
	fi
}

# pgbench_log OUT CASE VARIANT OPTS SCRIPT N ARGS...: N timed calls on one client; appends one
# latency per call to latency.tsv (per-transaction log: client, transaction, latency in us, ...).
pgbench_log() {
	local case=$1 variant=$2 opts=$3 script=$4 n=$5
	shift 5
	rm -f -- "$work"/lat.*
	PGOPTIONS=$opts pgb "$work/read.out" -c 1 -j 1 -t "$n" -f "$here/pgbench/$script.sql" \
		--log --log-prefix="$work/lat" "$@"
	awk -v c="$case" -v v="$variant" '{ print c "\t" v "\t" $3 }' "$work"/lat.* >>"$work/latency.tsv"
}

# read_case CASE OURS_SCRIPT REF_SCRIPT COUNT_SCRIPT [parallel] -- ARGS...: ours, the reference
# page and the reference count, each warmed up, then timed in CHUNKS alternating slices so that a
# change of load on the machine hits them alike.  With "parallel", the reference page is also
# timed with the server's parallel-query settings (variant ref_parallel).
read_case() {
	local case=$1 ours=$2 ref=$3 count=$4 parallel="" k
	shift 4
	if [[ $1 == parallel ]]; then
		parallel=1
		shift
	fi
	shift # --
	log "  $case: $ITERATIONS calls of ours, $REF_ITERATIONS of each reference query"
	PGOPTIONS=$READ_OPTS pgb "$work/warm.out" -c 1 -j 1 -t 20 -f "$here/pgbench/$ours.sql" "$@"
	PGOPTIONS=$READ_OPTS pgb "$work/warm.out" -c 1 -j 1 -t 3 -f "$here/pgbench/$ref.sql" "$@"
	PGOPTIONS=$READ_OPTS pgb "$work/warm.out" -c 1 -j 1 -t 3 -f "$here/pgbench/$count.sql" "$@"
	for ((k = 0; k < CHUNKS; k++)); do
		pgbench_log "$case" ours "$READ_OPTS" "$ours" $((ITERATIONS / CHUNKS)) "$@"
		pgbench_log "$case" ref "$READ_OPTS" "$ref" $((REF_ITERATIONS / CHUNKS)) "$@"
		pgbench_log "$case" ref_count "$READ_OPTS" "$count" $((REF_ITERATIONS / CHUNKS)) "$@"
		if [[ -n $parallel ]]; then
			pgbench_log "$case" ref_parallel "" "$ref" $((REF_ITERATIONS / CHUNKS)) "$@"
		fi
	done
}

measure_reads() {
	log "reads (one client)"
	loadavg reads
	local -a hubs=(-D "me=$hub1" -D "other=$hub2")
	read_case mutual_hub ours_mutual ref_mutual ref_mutual_count parallel -- "${hubs[@]}" -D limit=1000
	read_case friends_hub ours_friends ref_friends ref_friends_count parallel -- -D "me=$hub1" -D limit=1000
	read_case pending_hub ours_pending ref_pending ref_pending_count parallel -- -D "me=$hub1" -D limit=100
	read_case mutual_hub_100 ours_mutual ref_mutual ref_mutual_count -- "${hubs[@]}" -D limit=100
	read_case mutual_hub_user ours_mutual ref_mutual ref_mutual_count -- \
		-D "me=$hub1" -D "other=$user" -D limit=1000
	read_case friends_user ours_friends ref_friends ref_friends_count -- -D "me=$user" -D limit=1000
}

# write_run VARIANT CLIENTS MODE ROUND
write_run() {
	local variant=$1 c=$2 mode=$3 round=$4 opts="" out tps lat processed
	out=$work/write.$variant.$c.$mode.$round.out
	[[ $mode == off ]] && opts="-c synchronous_commit=off"
	q -c CHECKPOINT
	PGOPTIONS=$opts pgb "$out" -c "$c" -j "$c" -t $((WRITES / c)) -f "$here/pgbench/write_$variant.sql"
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$out")
	lat=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$out")
	processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
	[[ -n $tps && -n $lat && $processed == "$WRITES" ]] || {
		cat -- "$out" >&2
		die "write run $variant/$c/$mode/$round: unexpected pgbench output"
	}
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$variant" "$c" "$mode" "$round" "$tps" "$lat" >>"$work/writes.tsv"
}

measure_writes() {
	local mode c r
	log "writes ($WRITES requests per run, $ROUNDS rounds of ours and bare per configuration)"
	loadavg writes
	for mode in $(commit_modes); do
		for c in "${CLIENTS[@]}"; do
			log "  $c client(s), synchronous_commit=$mode"
			for ((r = 1; r <= ROUNDS; r++)); do
				# Back to back, in alternating order: each round compares like with like.
				if ((r % 2 == 1)); then
					write_run ours "$c" "$mode" "$r"
					write_run bare "$c" "$mode" "$r"
				else
					write_run bare "$c" "$mode" "$r"
					write_run ours "$c" "$mode" "$r"
				fi
			done
		done
	done

	# Every transaction wrote its request (pgbench stops a client at its first error).
	local expected=$((WRITES * ROUNDS * ${#CLIENTS[@]} * $(commit_modes | wc -l)))
	local got
	got=$(val "SELECT count(*) FROM social.friendships f JOIN bench.write_pairs w
				ON f.address_requester = w.actor AND f.last_action = 'request'")
	[[ $got == "$((2 * expected))" ]] ||
		die "write runs left $got requests, expected $((2 * expected))"
}

# The 1-minute load average now, to show in the report how busy the machine was.
loadavg() {
	printf 'load_%s\t%s\n' "$1" "$(cut -d' ' -f1 /proc/loadavg)" >>"$work/meta.tsv"
}

store_results() {
	q <<EOF
CREATE TABLE bench.latency (case_name text, variant text, us double precision);
CREATE TABLE bench.writes (variant text, clients int, mode text, round int, tps double precision,
						   latency_ms double precision);
CREATE TABLE bench.checks (name text, ours text, ref text, ok text);
CREATE TABLE bench.meta (key text PRIMARY KEY, value text);
\copy bench.latency FROM '$work/latency.tsv'
\copy bench.writes FROM '$work/writes.tsv'
\copy bench.checks FROM '$work/checks.tsv'
\copy bench.meta FROM '$work/meta.tsv'
EOF
}

collect_meta() {
	local cpu mem
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
	mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
	{
		printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
		printf 'command\t%s\n' "$BENCH_COMMAND"
		printf 'nproc\t%s\n' "$(nproc)"
		printf 'cpu\t%s\n' "${cpu:-unknown}"
		printf 'memory\t%s\n' "$mem"
		printf 'os\t%s / Linux %s\n' "$(sed -n 's/^PRETTY_NAME="\(.*\)"$/\1/p' /etc/os-release 2>/dev/null)" "$(uname -r)"
		printf 'revision\t%s\n' "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo none)$(
			[[ -n $(git -C "$root" status --porcelain 2>/dev/null) ]] && echo ' (with uncommitted changes)')"
		printf 'hub1\t%s\n' "$hub1"
		printf 'hub2\t%s\n' "$hub2"
		printf 'user\t%s\n' "$user"
		printf 'iterations\t%s\n' "$ITERATIONS"
		printf 'ref_iterations\t%s\n' "$REF_ITERATIONS"
		printf 'writes\t%s\n' "$WRITES"
		printf 'rounds\t%s\n' "$ROUNDS"
		printf 'load_seconds\t%s\n' "$load_seconds"
	} >>"$work/meta.tsv"
	loadavg end
}

main() {
	preflight
	log "database $DB on ${PGHOST:-local}:${PGPORT:-5432}"
	create_db
	local t0
	: >"$work/meta.tsv"
	loadavg start
	t0=$(date +%s)
	load_graph
	check_graph
	load_seconds=$(($(date +%s) - t0))
	pick_users
	: >"$work/checks.tsv"
	check_results
	: >"$work/latency.tsv"
	measure_reads
	: >"$work/writes.tsv"
	measure_writes
	collect_meta
	store_results
	# Presence fan-out (bench/presence/run.sh): a sociald of its own with redis-server,
	# nats-server and a database of its own on this server; its section is appended by report.sh.
	local presence_rc=0
	log "presence fan-out (bench/presence/run.sh)"
	PRESENCE_REPORT=$work/presence.md bash "$here/presence/run.sh" || presence_rc=$?
	log "writing $OUTPUT"
	BENCH_DB=$DB PRESENCE_REPORT=$work/presence.md bash "$here/report.sh" >"$work/report.md"
	mv -- "$work/report.md" "$OUTPUT"
	log "done in $(($(date +%s) - started)) s"
	((check_failures == 0)) || die "our functions and the reference strategy disagree (see $OUTPUT)"
	((presence_rc == 0)) || die "the presence benchmark failed (see the Presence fan-out section of $OUTPUT)"
}

main "$@"
