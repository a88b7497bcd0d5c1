#!/usr/bin/env bash
#
# bench/presence/run.sh -- the presence fan-out benchmark (issue 4), part of `make bench`.
#
# One sociald, its own redis-server and nats-server on loopback, a PostgreSQL database with a
# friend graph of USERS connected users and PEERS peers (~FRIENDS friends each, all among the
# connected users) and HUBS hubs (HUB_FRIENDS connected friends each), and loadclient holding
# USERS real WebSocket connections, each authenticated and subscribed to
# SubscribeToFriendConnectivityUpdates, acknowledging and counting every element. Status
# changes are NATS publishes (peer.<address>.heartbeat / .disconnect), sent in batches; a batch
# is timed from its first publish until loadclient has received every notification it must
# cause (from the graph: the connected friends of each peer whose status flipped).
#
# Measured, per batch, then the median over batches:
#   - status changes per second and friend notifications per second (wall clock);
#   - notifications per second per core: notifications / CPU seconds of the daemon (all its
#     threads, /proc/PID/task/*/schedstat), since sociald does this work on one loop thread;
#   - daemon CPU per status change;
#   - heartbeats that change nothing: daemon CPU per heartbeat, Redis commands per heartbeat;
#   - SQL per status change: the bench database's xact_commit (pg_stat_database, read from
#     another database so the reads do not count) and sociald_presence_sql_queries_total over
#     the measured phases, which open no stream. Sessions are off (PRESENCE_SESSIONS=off): with
#     them on, sociald adds at most one batched write a second whatever the rate of changes.
# Nothing here asserts on a number: a missed target is reported as missed. The run fails when
# something is broken: a connection that cannot be made, a notification that never arrives.
#
# Usage (under tools/pg_harness, which sets PGHOST/PGPORT/PGUSER):
#   tools/pg_harness -- bash bench/presence/run.sh [--update FILE]
#     --update FILE  replace the "## Presence fan-out" section of FILE (BENCHMARKS.md) with this
#                    run's; without it the section is printed (or written to $PRESENCE_REPORT).
# bench/run.sh calls it with PRESENCE_REPORT set and report.sh appends the section.
#
# Environment (default): BENCH_PRESENCE_USERS (10000), _PEERS (10000), _FRIENDS (50), _HUBS (4),
# _HUB_FRIENDS (5000), _BATCH status changes per batch (500), _ROUNDS batches of peers each way
# (at most 5), _HUB_ROUNDS (at most 5), _BUDGET_S (150: no new round of peer batches after half
# of it, of hub batches after all of it; one round of each always runs), _HEARTBEATS no-change
# heartbeats (20000), _CONNECT_RATE connections
# opened per second (500), _LOG_LEVEL of sociald (warn), _DB (social_bench_presence),
# BENCH_COMMAND (the command named in the report).

# Single quotes around awk programs and eval'd conditions are on purpose.
# shellcheck disable=SC2016

set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd -- "$here/../.." && pwd -P)

# shellcheck disable=SC2034 # read by lib.sh
LIB_NAME=bench-presence
# shellcheck source-path=SCRIPTDIR/../../test/e2e source=../../test/e2e/lib.sh
source "$root/test/e2e/lib.sh"

USERS=${BENCH_PRESENCE_USERS:-10000}
PEERS=${BENCH_PRESENCE_PEERS:-10000}
FRIENDS=${BENCH_PRESENCE_FRIENDS:-50}
HUBS=${BENCH_PRESENCE_HUBS:-4}
HUB_FRIENDS=${BENCH_PRESENCE_HUB_FRIENDS:-5000}
BATCH=${BENCH_PRESENCE_BATCH:-500}
ROUNDS=${BENCH_PRESENCE_ROUNDS:-5}
HUB_ROUNDS=${BENCH_PRESENCE_HUB_ROUNDS:-5}
HEARTBEATS=${BENCH_PRESENCE_HEARTBEATS:-20000}
BUDGET_S=${BENCH_PRESENCE_BUDGET_S:-150}
CLIENT_RATE=${BENCH_PRESENCE_CONNECT_RATE:-500}
LOG_LEVEL=${BENCH_PRESENCE_LOG_LEVEL:-warn}
BENCH_DB=${BENCH_PRESENCE_DB:-social_bench_presence}
SEED=bench
COMMAND=${BENCH_COMMAND:-tools/pg_harness -- bash bench/presence/run.sh}
LOADCLIENT=$here/build/loadclient
SETUP_LIMIT_S=600 # safety net of opening every connection
BATCH_LIMIT_S=60  # safety net of one batch: no new element for this long

UPDATE_FILE=""

log() { printf '[bench presence %s] %s\n' "$(date +%T)" "$*" >&2; }

usage() { sed -n '27,40s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

parse_args() {
	while (($# > 0)); do
		case $1 in
			--update)
				(($# >= 2)) || { usage >&2; exit 2; }
				UPDATE_FILE=$2
				shift 2
				;;
			-h | --help)
				usage
				exit 0
				;;
			*)
				usage >&2
				exit 2
				;;
		esac
	done
}

check_settings() {
	local v
	for v in USERS PEERS FRIENDS HUBS HUB_FRIENDS BATCH ROUNDS HUB_ROUNDS HEARTBEATS BUDGET_S; do
		[[ ${!v} =~ ^[0-9]+$ ]] || fail "BENCH_PRESENCE_$v must be a number, got '${!v}'"
	done
	((USERS >= 100 && USERS <= 100000)) || fail "BENCH_PRESENCE_USERS must be 100..100000"
	((FRIENDS >= 1 && FRIENDS <= USERS)) || fail "BENCH_PRESENCE_FRIENDS must be 1..USERS"
	((HUB_FRIENDS <= USERS)) || fail "BENCH_PRESENCE_HUB_FRIENDS must not exceed USERS"
	((BATCH >= 1 && ROUNDS >= 1 && ROUNDS * BATCH <= PEERS)) ||
		fail "BENCH_PRESENCE_ROUNDS x _BATCH must be 1..PEERS"
	((HEARTBEATS >= BATCH)) || fail "BENCH_PRESENCE_HEARTBEATS must be at least _BATCH"
}

# ---------------------------------------------------------------------------------------------
# Measuring

# CPU time of every thread of PID, in nanoseconds.
cpu_ns() {
	cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

now_ns() { date +%s%N; }

stat_of() { awk -v k="$1" '$1 == k { print $2 }' "$WORK/client.stats" 2>/dev/null; }

metric_value() {
	http_get "$PORT" /metrics 2>/dev/null | sed -n "s/^sociald_$1 \([0-9]*\)\$/\1/p"
}

redis_stat() {
	redis-cli -h 127.0.0.1 -p "$REDIS_PORT" info "$1" | tr -d '\r'
}
redis_calls() { # all commands processed
	redis_stat stats | sed -n 's/^total_commands_processed://p'
}
redis_evalsha() {
	redis_stat commandstats | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p' | grep . || echo 0
}

# The bench database's committed transactions, read from database postgres (so the reads do not
# count). A backend reports its counts when it goes idle, or at the latest PGSTAT_IDLE_INTERVAL
# (10 s) later when it reported less than a second before: so first wait that long.
xact_commits() {
	sleep 11
	psql -X -At -d postgres -c "SELECT xact_commit FROM pg_stat_database WHERE datname = '$BENCH_DB'"
}

# pubs VERB BODY FROM COUNT: PUB commands for users FROM .. FROM+COUNT-1 (from users.tsv).
# BODY heartbeat: a Heartbeat with a position (x 123.456, z -45.678); none: empty.
pubs() {
	local verb=$1 body=$2 from=$3 count=$4
	LC_ALL=C awk -F'\t' -v verb="$verb" -v body="$body" -v from="$from" -v to=$((from + count)) '
		BEGIN {
			hb = "\012\012\015\171\351\366\102\035\106\266\066\302"
			b = (body == "heartbeat") ? hb : ""
		}
		$1 >= from && $1 < to {
			printf "PUB peer.%s.%s %d\r\n%s\r\n", $2, verb, length(b), b
		}' "$WORK/users.tsv"
}

# nats_blast FILE: sends a file of PUB commands on one connection; returns once nats-server has
# taken them all (PONG after a PING that follows them).
nats_blast() {
	local file=$1 line
	exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT"
	IFS= read -r -t 5 line <&3 || fail "nats-server sent no INFO"
	{
		printf 'CONNECT {"verbose":false,"pedantic":false}\r\n'
		cat -- "$file"
		printf 'PING\r\n'
	} >&3
	while IFS= read -r -t 60 line <&3; do
		line=${line%$'\r'}
		[[ $line == PONG ]] && break
		[[ $line == -ERR* ]] && fail "nats-server refused a publish: $line"
	done
	exec 3<&-
}

# Elements the client has received so far.
elements() { stat_of elements; }

# wait_elements TARGET: until the client has received TARGET elements in all. Returns 1, with
# BROKEN saying why, when more arrive (a doubled or stray notification) or none for
# BATCH_LIMIT_S (a status change was lost).
BROKEN=""
wait_elements() {
	local target=$1 got last=-1 idle_since=$SECONDS loops=0
	while :; do
		got=$(elements)
		got=${got:-0}
		((got == target)) && return 0
		if ((got > target)); then
			BROKEN="the client received $((got - target)) more element(s) than the graph allows"
			return 1
		fi
		if ((got != last)); then
			last=$got
			idle_since=$SECONDS
		elif ((SECONDS - idle_since > BATCH_LIMIT_S)); then
			BROKEN="stuck at $got of $target elements for ${BATCH_LIMIT_S}s: status changes were lost"
			return 1
		fi
		loops=$((loops + 1))
		((loops % 1000 == 0)) && log "  ... $got of $target elements"
		sleep 0.01
	done
}

# Sum of the fan-out (connected friends) of users FROM .. FROM+COUNT-1.
fanout_of() {
	awk -v from="$1" -v to=$(($1 + $2)) '$1 >= from && $1 < to { s += $2 } END { print s + 0 }' \
		"$WORK/fanout.tsv"
}

# batch KIND VERB BODY FROM COUNT: one timed batch; appends a row to batches.tsv:
# kind, changes, notifications, wall seconds, daemon CPU seconds, client CPU seconds.
# Returns 1 (BROKEN set) when the batch did not end with exactly its notifications.
batch() {
	local kind=$1 verb=$2 body=$3 from=$4 count=$5 expected base t0 t1 c0 c1 l0 l1 status s0 s1
	pubs "$verb" "$body" "$from" "$count" >"$WORK/batch.pub"
	expected=$(fanout_of "$from" "$count")
	status=online
	[[ $verb == disconnect ]] && status=offline
	base=$(elements)
	s0=$(stat_of "$status")
	c0=$(cpu_ns "$DAEMON_PID")
	l0=$(cpu_ns "$CLIENT_PID")
	t0=$(now_ns)
	nats_blast "$WORK/batch.pub"
	if ! wait_elements $((base + expected)); then
		BROKEN="$kind batch of $count: $BROKEN"
		return 1
	fi
	t1=$(now_ns)
	c1=$(cpu_ns "$DAEMON_PID")
	l1=$(cpu_ns "$CLIENT_PID")
	# Every one of them must say what happened: ONLINE after heartbeats, OFFLINE after
	# disconnects. The client rewrites its stats every 100 ms: wait for the file to catch up.
	wait_counter "$status elements" "stat_$status" $((s0 + expected)) || true
	s1=$(stat_of "$status")
	if ((s1 - s0 != expected)); then
		BROKEN="$kind batch of $count: $((s1 - s0)) of its $expected elements said $status"
		return 1
	fi
	printf '%s\t%d\t%d\t%s\t%s\t%s\n' "$kind" "$count" "$expected" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", (b - a) / 1e9 }')" \
		"$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.6f", (b - a) / 1e9 }')" \
		"$(awk -v a="$l0" -v b="$l1" 'BEGIN { printf "%.6f", (b - a) / 1e9 }')" \
		>>"$WORK/batches.tsv"
}

# ---------------------------------------------------------------------------------------------
# Steps

build() {
	log "building the load client"
	make --no-print-directory -s -C "$here" >&2 || fail "could not build bench/presence/loadclient"
}

raise_fd_limit() {
	local want=$((USERS + PEERS + 4096))
	if (($(ulimit -n) < want)); then
		ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
	fi
	(($(ulimit -n) >= USERS + 256)) ||
		fail "open files limit $(ulimit -n) is too low for $USERS connections (ulimit -n)"
}

load_graph() {
	local total=$((USERS + PEERS + HUBS + 1)) t0
	t0=$(date +%s)
	log "database $BENCH_DB: $USERS connected users, $PEERS peers with ~$FRIENDS friends, $HUBS hubs of $HUB_FRIENDS"
	setup_database "$BENCH_DB"
	"$LOADCLIENT" keys --seed "$SEED" --from 0 --count "$total" |
		awk '{ printf "%d\t%s\n", NR - 1, $0 }' >"$WORK/users.tsv"
	[[ $(wc -l <"$WORK/users.tsv") == "$total" ]] || fail "loadclient keys gave too few addresses"
	psql -X -q -v ON_ERROR_STOP=1 -d "$BENCH_DB" \
		-v connected="$USERS" -v peers="$PEERS" -v friends="$FRIENDS" -v hubs="$HUBS" \
		-v hub_friends="$HUB_FRIENDS" -f "$here/graph.sql" <"$WORK/users.tsv" >/dev/null
	psql -X -At -F $'\t' -d "$BENCH_DB" -c 'SELECT n, notifications FROM bench_presence.fanout' \
		>"$WORK/fanout.tsv"
	# Nothing may be left for autovacuum to do while the phases run.
	psql -X -q -d "$BENCH_DB" -c 'VACUUM ANALYZE' >/dev/null
	FRIENDSHIPS=$(psql -X -At -d "$BENCH_DB" -c \
		"SELECT count(*) FROM social.friendships f JOIN bench_presence.users u
		 ON u.addr = f.address_requester WHERE u.n <> $((USERS + PEERS + HUBS))")
	AVG_FRIENDS=$(psql -X -At -d "$BENCH_DB" -c \
		"SELECT round(avg(notifications), 1) FROM bench_presence.fanout WHERE n < $((USERS + PEERS))")
	LOAD_SECONDS=$(($(date +%s) - t0))
}

start_stack() {
	start_redis bench
	REDIS_PORT=$STARTED_REDIS_PORT
	start_nats bench
	NATS_PORT=$STARTED_NATS_PORT
	start_sociald bench "$BENCH_DB" LOG_LEVEL="$LOG_LEVEL" \
		REDIS_URL="redis://127.0.0.1:$REDIS_PORT" NATS_URL="nats://127.0.0.1:$NATS_PORT" \
		PRESENCE_SESSIONS=off WS_MAX_CONNECTIONS=$((USERS + 1000)) \
		WS_MESSAGES_PER_SECOND=1000000 WS_MESSAGES_BURST=1000000
	PORT=$STARTED_PORT
	DAEMON_PID=$STARTED_PID
	wait_for "sociald: Redis up" metric_is "$PORT" redis_up 1
	wait_for "sociald: NATS up" metric_is "$PORT" nats_up 1
}

connect_clients() {
	local t0 streaming failed closed connecting i
	log "opening $USERS connections"
	t0=$(now_ns)
	"$LOADCLIENT" run --url "ws://127.0.0.1:$PORT/" --seed "$SEED" --from 0 --count "$USERS" \
		--rate "$CLIENT_RATE" --stats "$WORK/client.stats" >>"$WORK/client.log" 2>&1 &
	CLIENT_PID=$!
	track_pid "$CLIENT_PID"
	for ((i = 0; i < SETUP_LIMIT_S * 10; i++)); do
		sleep 0.1
		pid_alive "$CLIENT_PID" || fail "loadclient exited: $(tail -n 5 "$WORK/client.log")"
		streaming=$(stat_of streaming)
		connecting=$(stat_of connecting)
		failed=$(stat_of failed)
		closed=$(stat_of closed)
		[[ -n $streaming ]] || continue
		((streaming == USERS)) && break
		if ((connecting == 0 && streaming + failed + closed == USERS)); then
			fail "only $streaming of $USERS connections opened their stream ($failed failed, $closed closed: $(grep '^close_' "$WORK/client.stats" | tr '\n' ' ')); see $WORK"
		fi
	done
	((streaming == USERS)) || fail "$streaming of $USERS streams open after ${SETUP_LIMIT_S}s"
	OPEN_SECONDS=$(awk -v a="$t0" -v b="$(now_ns)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
	# Nobody is online yet but the connected users, who are nobody's friends here: no snapshot
	# has anything to send.
	[[ $(elements) == 0 ]] || fail "the streams received $(elements) element(s) before any status change"
	# The offer comes before the friends are loaded: a stream is live once it could get the
	# probe's ONLINE, in its snapshot or live. So flip the probe and wait for all of them.
	log "$USERS streams open in ${OPEN_SECONDS}s; waiting for all of them to be live"
	local probe=$((USERS + PEERS + HUBS))
	pubs heartbeat heartbeat "$probe" 1 >"$WORK/probe.pub"
	nats_blast "$WORK/probe.pub"
	SETUP_LIMIT_S_SAVED=$BATCH_LIMIT_S
	BATCH_LIMIT_S=$SETUP_LIMIT_S
	wait_elements "$USERS" || fail "the probe's ONLINE: $BROKEN"
	SETUP_SECONDS=$(awk -v a="$t0" -v b="$(now_ns)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
	pubs disconnect none "$probe" 1 >"$WORK/probe.pub"
	nats_blast "$WORK/probe.pub"
	wait_elements $((2 * USERS)) || fail "the probe's OFFLINE: $BROKEN"
	BATCH_LIMIT_S=$SETUP_LIMIT_S_SAVED
	RSS_KB=$(awk '/^VmRSS/ { print $2 }' "/proc/$DAEMON_PID/status")
	log "$USERS streams live in ${SETUP_SECONDS}s; daemon RSS $((RSS_KB / 1024)) MiB"
}

# The phases, within the budget. A broken batch (BROKEN) ends them: what was measured up to then
# is reported with the reason, and the run fails after the report.
measure() {
	local r x0 x1 s0 s1 p0 p1 g0 g1 hub_from=$((USERS + PEERS)) started=$SECONDS
	: >"$WORK/batches.tsv"
	PEER_ROUNDS_RUN=0
	HUB_ROUNDS_RUN=0
	HB_COUNT=0
	LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
	x0=$(xact_commits)
	s0=$(metric_value presence_sql_queries_total)
	p0=$(metric_value presence_changes_published_total)
	g0=$(metric_value pg_reconnects_total)
	PHASE_START=$(psql -X -At -d postgres -c 'SELECT now()')

	log "status changes: up to $ROUNDS batches of $BATCH peers online, then offline"
	for ((r = 0; r < ROUNDS; r++)); do
		if [[ -n $BROKEN ]] || ((r > 0 && SECONDS - started >= BUDGET_S / 2)); then
			break
		fi
		batch peers_online heartbeat heartbeat $((USERS + r * BATCH)) "$BATCH" &&
			batch peers_offline disconnect none $((USERS + r * BATCH)) "$BATCH" &&
			PEER_ROUNDS_RUN=$((r + 1))
	done
	if [[ -z $BROKEN ]]; then
		log "hubs: up to $HUB_ROUNDS times $HUBS hubs online, then offline"
		for ((r = 0; r < HUB_ROUNDS; r++)); do
			if [[ -n $BROKEN ]] || ((r > 0 && SECONDS - started >= BUDGET_S)); then
				break
			fi
			batch hubs_online heartbeat heartbeat "$hub_from" "$HUBS" &&
				batch hubs_offline disconnect none "$hub_from" "$HUBS" &&
				HUB_ROUNDS_RUN=$((r + 1))
		done
	fi
	if [[ -z $BROKEN ]]; then
		log "heartbeats that change nothing: $HEARTBEATS"
		batch peers_online heartbeat heartbeat "$USERS" "$BATCH" &&
			measure_heartbeats &&
			batch peers_offline disconnect none "$USERS" "$BATCH"
	fi
	[[ -z $BROKEN ]] || log "measurement ended early: $BROKEN"

	x1=$(xact_commits)
	s1=$(metric_value presence_sql_queries_total)
	p1=$(metric_value presence_changes_published_total)
	g1=$(metric_value pg_reconnects_total)
	# Every sociald session that ran a statement during the phases (or connected during them).
	read -r SESSIONS_BUSY SESSIONS < <(psql -X -At -F ' ' -d postgres -v db="$BENCH_DB" \
		-v t="$PHASE_START" <<'SQL'
SELECT count(*) FILTER (WHERE state_change >= :'t' OR backend_start >= :'t'), count(*)
FROM pg_stat_activity WHERE datname = :'db' AND application_name LIKE 'sociald%';
SQL
	)
	PUBLISHED=$((p1 - p0))
	PG_RECONNECTS=$((g1 - g0))
	XACTS=$((x1 - x0))
	SQL_QUERIES=$((s1 - s0))
	LOAD_END=$(cut -d' ' -f1 /proc/loadavg)
	CHANGES=$(awk '{ s += $2 } END { print s + 0 }' "$WORK/batches.tsv")
	REDIS_TIMEOUTS=$(grep -c 'redis: no reply from' "$WORK/sociald.bench.log" || true)
}

# wait_counter WHAT FN TARGET: until FN prints at least TARGET, or stops moving for 3 s (then
# returns 1).
wait_counter() {
	local what=$1 fn=$2 target=$3 v last=-1 since=$SECONDS
	while :; do
		v=$("$fn")
		((v >= target)) && return 0
		if ((v != last)); then
			last=$v
			since=$SECONDS
		elif ((SECONDS - since > 3)); then
			log "  $what: $v, short of $target"
			return 1
		fi
		sleep 0.02
	done
}
nats_taken() { metric_value nats_messages_total; }
stat_online() { stat_of online; }
stat_offline() { stat_of offline; }

# HEARTBEATS heartbeats for BATCH peers that are online already: no notification may come.
measure_heartbeats() {
	local n0 n1 e0 e1 r0 r1 c0 c1 base t0 t1 k=0
	# In rounds of BATCH (one heartbeat per peer), each taken and run before the next is sent:
	# sociald fails Redis commands at once beyond its in-flight limit (10,000), and real
	# heartbeats come spread out anyway.
	pubs heartbeat heartbeat "$USERS" "$BATCH" >"$WORK/hb.pub"
	base=$(elements)
	n0=$(metric_value nats_messages_total)
	e0=$(redis_evalsha)
	r0=$(redis_calls)
	c0=$(cpu_ns "$DAEMON_PID")
	t0=$(now_ns)
	while ((k < HEARTBEATS)); do
		nats_blast "$WORK/hb.pub"
		k=$((k + BATCH))
		wait_counter "heartbeats taken" nats_taken $((n0 + k)) || true
		wait_counter "scripts run" redis_evalsha $((e0 + k)) || true
	done
	t1=$(now_ns)
	c1=$(cpu_ns "$DAEMON_PID")
	n1=$(metric_value nats_messages_total)
	e1=$(redis_evalsha)
	r1=$(redis_calls)
	if [[ $(elements) != "$base" ]]; then
		BROKEN="heartbeats that change nothing sent $(($(elements) - base)) notification(s)"
		return 1
	fi
	HB_COUNT=$((n1 - n0))
	HB_SENT=$k
	HB_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
	HB_CPU_US=$(awk -v c=$((c1 - c0)) -v n="$HB_COUNT" 'BEGIN { printf "%.1f", c / n / 1000 }')
	HB_EVALSHA=$(awk -v e=$((e1 - e0)) -v n="$HB_COUNT" 'BEGIN { printf "%.2f", e / n }')
	HB_REDIS=$(awk -v e=$((r1 - r0)) -v n="$HB_COUNT" 'BEGIN { printf "%.2f", e / n }')
	HB_RATE=$(awk -v w="$HB_WALL" -v n="$HB_COUNT" 'BEGIN { printf "%.0f", n / w }')
}

# ---------------------------------------------------------------------------------------------
# Report

median() { LC_ALL=C sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# batch_median KIND_REGEX COLUMN_EXPR: the median over the batches of that kind of an awk expression of
# $2 changes, $3 notifications, $4 wall s, $5 daemon CPU s, $6 client CPU s.
batch_median() {
	awk -F'\t' -v k="$1" '$1 ~ k { print '"$2"' }' "$WORK/batches.tsv" | median
}

fmt() { awk -v v="$1" -v d="${2:-0}" 'BEGIN { printf "%\047.*f\n", d, v }'; }

report() {
	local cpu mem ops nps npc cpc ops_h nps_h npc_h cpc_h client_share verdict_n verdict_h verdict_sql
	local peers_row hubs_row hb_line sql_line broken_line=""
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
	mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
	verdict() { awk -v v="$1" 'BEGIN { print (v >= 50000) ? "**met**" : "**missed**" }'; }

	if ((PEER_ROUNDS_RUN > 0)); then
		ops=$(batch_median '^peers_' '$2 / $4')
		nps=$(batch_median '^peers_' '$3 / $4')
		npc=$(batch_median '^peers_' '$3 / $5')
		cpc=$(batch_median '^peers_' '$5 / $2 * 1e6')
		client_share=$(batch_median '^peers_' '$6 / $4 * 100')
		verdict_n=$(verdict "$npc")
		peers_row="| Peers, ~$FRIENDS friends, $(fmt "$BATCH") changes per batch | $(grep -c '^peers_' "$WORK/batches.tsv") | $(fmt "$ops") | $(fmt "$nps") | **$(fmt "$npc")** | $(fmt "$cpc") µs | ≥ 50,000 per core | $verdict_n |"
	else
		client_share=0
		peers_row="| Peers, ~$FRIENDS friends, $(fmt "$BATCH") changes per batch | 0 | | | | | ≥ 50,000 per core | **not measured** |"
	fi
	if ((HUB_ROUNDS_RUN > 0)); then
		ops_h=$(batch_median '^hubs_' '$2 / $4')
		nps_h=$(batch_median '^hubs_' '$3 / $4')
		npc_h=$(batch_median '^hubs_' '$3 / $5')
		cpc_h=$(batch_median '^hubs_' '$5 / $2 * 1e6')
		verdict_h=$(verdict "$npc_h")
		hubs_row="| Hubs, $(fmt "$HUB_FRIENDS") friends, $HUBS changes per batch | $((2 * HUB_ROUNDS_RUN)) | $(fmt "$ops_h" 1) | $(fmt "$nps_h") | **$(fmt "$npc_h")** | $(fmt "$cpc_h") µs | ≥ 50,000 per core | $verdict_h |"
	else
		hubs_row="| Hubs, $(fmt "$HUB_FRIENDS") friends, $HUBS changes per batch | 0 | | | | | ≥ 50,000 per core | **not measured** |"
	fi
	if ((HB_COUNT > 0)); then
		hb_line="- **Heartbeats that change nothing:** $(fmt "$HB_COUNT") heartbeats taken (of $(fmt "$HB_SENT") sent) for $(fmt "$BATCH")
  peers already online, in rounds of one each, $(fmt "$HB_RATE") per second: $HB_CPU_US µs of daemon CPU
  and $HB_EVALSHA Redis round trips (EVALSHA) each, target at most one; Redis counted $HB_REDIS
  commands per heartbeat (the calls inside the script, plus the daemon's background work in
  the same seconds); no notification."
	else
		hb_line="- **Heartbeats that change nothing:** not measured."
	fi
	if ((SQL_QUERIES == 0 && SESSIONS_BUSY == 0)); then
		verdict_sql="**met**"
		sql_line="- **SQL per status change: none.** None of sociald's $SESSIONS PostgreSQL sessions ran a
  statement"
	else
		verdict_sql="**missed**"
		sql_line="- **SQL per status change: $SESSIONS_BUSY of sociald's $SESSIONS PostgreSQL sessions ran
  statements**"
	fi
	sql_line+=" during the $(fmt "$CHANGES") status changes and the heartbeats
  (pg_stat_activity: state_change, backend_start; presence_sql_queries_total +$SQL_QUERIES;
  $PG_RECONNECTS reconnects).
  Target zero: $verdict_sql. The database committed $XACTS transactions meanwhile
  (pg_stat_database), from other sessions (autovacuum's rounds). sociald counted
  $(fmt "$PUBLISHED") of the status changes as published by itself (a change whose script reply was
  lost to a Redis timeout is not counted). The only presence SQL is one friend-list query when a
  stream opens ($(fmt "$USERS") at setup)."
	if [[ -n $BROKEN ]]; then
		broken_line="
**The measurement ended early: $BROKEN.** The rows above hold the batches completed before.
"
	fi

	cat <<EOF
## Presence fan-out

Produced by \`$COMMAND\` (bench/presence/run.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'),
revision $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo none)$(
		[[ -n $(git -C "$root" status --porcelain 2>/dev/null) ]] && echo ' (with uncommitted changes)').
**Machine:** $(nproc) CPU (${cpu:-unknown}), $mem RAM; 1-minute load average $LOAD_START before the
measured phases, $LOAD_END after. One sociald (PRESENCE_SESSIONS=off, LOG_LEVEL=$LOG_LEVEL), its
own redis-server and nats-server, PostgreSQL and the load client all share these $(nproc) cores;
the client alone used a median $(fmt "$client_share") % of one core during the peer batches.

**Setup:** $(fmt "$USERS") connected users, each a real WebSocket with a signed auth chain and a
SubscribeToFriendConnectivityUpdates stream (bench/presence/loadclient.c, one process),
opened at most $CLIENT_RATE a second, all open in ${OPEN_SECONDS} s and live (friends loaded,
snapshot sent) in ${SETUP_SECONDS} s; daemon RSS then $((RSS_KB / 1024)) MiB. Graph
(bench/presence/graph.sql, $(fmt "$FRIENDSHIPS") friendships, loaded in ${LOAD_SECONDS} s):
$(fmt "$PEERS") peers with $AVG_FRIENDS connected friends on average, $HUBS hubs with
$(fmt "$HUB_FRIENDS") connected friends each. A status change is a NATS publish
(\`peer.<address>.heartbeat\` with a Heartbeat body, or \`.disconnect\`); a batch is timed from its
first publish until the client has received every notification the graph says it causes
(exactly that many, each ONLINE after heartbeats and OFFLINE after disconnects: one more, one
saying the wrong status, or none for ${BATCH_LIMIT_S} s, ends the measurement).

| Case | Batches | Status changes/s | Friend notifications/s | Notifications/s per daemon core | Daemon CPU per change | Target | |
|---|---|---|---|---|---|---|---|
$peers_row
$hubs_row
$broken_line
Medians over the batches (online and offline batches alike). "Per daemon core" divides the
notifications by the CPU time sociald used for the batch (all its threads; it works on one
loop thread), so it does not depend on how busy the other processes kept the machine.

$hb_line
$sql_line
- sociald logged $REDIS_TIMEOUTS Redis command timeout(s) (\`redis: no reply\`) during the run.
EOF
}

write_report() {
	local out
	out=$(report)
	if [[ -n $UPDATE_FILE ]]; then
		# Replace the section (up to the next "## " heading or the end), or append it.
		awk -v section="$out" '
			/^## Presence fan-out$/ { print section; skip = 1; done = 1; next }
			skip && /^## / { skip = 0 }
			!skip { print }
			END { if (!done) { print ""; print section } }' "$UPDATE_FILE" >"$UPDATE_FILE.tmp"
		mv -- "$UPDATE_FILE.tmp" "$UPDATE_FILE"
		log "updated $UPDATE_FILE"
	elif [[ -n ${PRESENCE_REPORT:-} ]]; then
		printf '%s\n' "$out" >"$PRESENCE_REPORT"
	else
		printf '%s\n' "$out"
	fi
}

CLIENT_PID=""
bench_cleanup() {
	local rc=$?
	[[ -n $CLIENT_PID ]] && stop_pid "$CLIENT_PID"
	(exit "$rc")
	lib_cleanup
}

main() {
	local t0
	parse_args "$@"
	t0=$(date +%s)
	check_settings
	lib_init
	# The client first: it holds thousands of sockets and exits at once on SIGTERM, and it must
	# not outlive an interrupted run while the daemon drains.
	trap bench_cleanup EXIT
	for cmd in redis-server redis-cli nats-server; do
		command -v "$cmd" >/dev/null || fail "$cmd is needed (make deps)"
	done
	build
	raise_fd_limit
	load_graph
	start_stack
	connect_clients
	measure
	write_report
	stop_pid "$CLIENT_PID"
	log "done in $(($(date +%s) - t0)) s"
	[[ -z $BROKEN ]] || fail "$BROKEN"
}

main "$@"
