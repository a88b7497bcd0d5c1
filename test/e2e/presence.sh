#!/usr/bin/env bash
#
# presence -- black-box tests of presence (issue 4): what users see on
# SubscribeToFriendConnectivityUpdates when friends come and go through the three sources
# (the social WebSocket itself, NATS peer events, Archipelago's /peers), across two sociald
# instances sharing one PostgreSQL, one Redis and one NATS, through blocks, accepts, expiry,
# junk, and a crash and restart of redis-server and nats-server.
#
# Run inside the harness (it sets PGHOST/PGPORT/PGUSER, and REDIS_URL/NATS_URL when it started
# redis-server and nats-server; without them this script starts its own):
#   tools/pg_harness -- bash test/e2e/presence.sh [SCENARIO...]
# `make check` runs it as the presence suite. Each scenario prints "presence: NAME ... ok" or
# "... FAILED" with a diff of what was expected and what came.
#
# Rules the scenarios keep (as test/e2e/run.sh):
#   - No timed assertion. Every wait is for a condition (a line on a stream, a counter in
#     /metrics, a poll served by the stub), with a safety limit that only turns a hang into a
#     failure. Expiry is tested with a short TTL by waiting for the OFFLINE it must produce.
#   - Stream assertions are exact: a watcher runs with --count = the elements expected, the
#     last being a sentinel status change made after everything else; a missing, doubled, extra
#     or echoed element shifts the sentinel and shows in the diff. Between steps the script
#     waits for the previous step's element, so the order of elements is the order of steps.
#   - Friendships and blocks are set up with SQL (the extension's functions, as the superuser),
#     not with socialctl: every socialctl call is a connection, and a connection is presence.
#     Before a stream opens, every running instance has read the setup's events (the
#     events_received_total counter of each has caught up with the log).
#   - Each scenario has users of its own, and stops what it started; everything started here
#     is also stopped by pid from the EXIT trap.
#
# Environment: SOCIALD, SOCIALCTL, KEEP_WORK=1 (keep logs and watcher outputs; kept anyway on a
# failure), REDIS_URL and NATS_URL (the servers of the two main instances).

set -euo pipefail

# shellcheck disable=SC2034 # read by lib.sh
LIB_NAME=presence
HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

DB=social_presence
WATCH_TIMEOUT_MS=90000 # safety net of a watcher that misses elements
HOLD_TIMEOUT_MS=600000 # a connection held open to keep its user online
SHORT_TTL_MS=3000      # PRESENCE_TTL_IN_MS of the expiry scenario (the smallest allowed)
POLL_MS=500            # Archipelago poll interval of the instances that poll (the smallest)

# Settings of sociald this suite relies on (sociald --help).
CFG_TTL=PRESENCE_TTL_IN_MS
CFG_ARCHIPELAGO_URL=ARCHIPELAGO_STATS_URL
CFG_ARCHIPELAGO_INTERVAL=ARCHIPELAGO_POLL_INTERVAL_IN_MS

CONN=SubscribeToFriendConnectivityUpdates

failures=0
passed=0

# The servers of the main instances: the harness's, or ours.
MAIN_REDIS_URL=""
MAIN_NATS_URL=""

# Running instances: name -> port / pid. Scenarios add their own in their subshell.
declare -A PORT PID
# Per instance, the Redis and NATS it uses (so a scenario publishes where its daemons listen).
declare -A INST_NATS

declare -A KEY ADDR

# The running scenario: the prefix of its files in $WORK (watcher outputs), so that a kept work
# dir shows every scenario's.
SCENARIO=main

# ---------------------------------------------------------------------------------------------
# Users, SQL setup, and the client

# user NAME: a key derived from the name (so a failing run can be replayed by hand) and its
# address; the prefix keeps these users apart from the other suites' in the shared Redis.
user() {
	local name=$1
	KEY[$name]=0x$(printf 'social presence %s' "$name" | sha256sum | cut -c1-64)
	ADDR[$name]=$(SOCIALCTL_KEY=${KEY[$name]} "$SOCIALCTL" address) ||
		fail "socialctl address failed for $name"
}

# The address with its hex digits in upper case (how a checksummed address may arrive).
upper_hex() {
	local a=${ADDR[$1]}
	printf '0x%s' "${a:2}" | tr 'a-f' 'A-F' | sed 's/^0X/0x/'
}

url_of() { printf 'ws://127.0.0.1:%s/' "${PORT[$1]}"; }

# ctl WHO INSTANCE ARGS...: socialctl as WHO against INSTANCE.
ctl() {
	local who=$1 inst=$2
	shift 2
	SOCIALCTL_KEY=${KEY[$who]} "$SOCIALCTL" --url "$(url_of "$inst")" "$@"
}

# act WHO INSTANCE PROCEDURE ARGS...: a call that must succeed (exit 0).
act() {
	local who=$1 inst=$2 out
	shift 2
	out=$(ctl "$who" "$inst" call "$@" 2>"$WORK/stderr.$$") || {
		cat "$WORK/stderr.$$" >&2
		fail "$who on $inst: $* -> $out"
	}
	printf '%s\n' "$out"
}

sql() {
	psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"
}

# sql_friends A B: A requests, B accepts.
sql_friends() {
	sql -v a="${ADDR[$1]}" -v b="${ADDR[$2]}" >/dev/null <<'EOF'
SELECT social.upsert_friendship(:'a', :'b', 'request');
SELECT social.upsert_friendship(:'b', :'a', 'accept');
EOF
}

# sql_block BLOCKER BLOCKED
sql_block() {
	sql -v a="${ADDR[$1]}" -v b="${ADDR[$2]}" >/dev/null <<<"SELECT social.block_user(:'a', :'b');"
}

# Every event in the log (one per action row), and what an instance has read of them.
db_events() {
	sql -c 'SELECT (SELECT count(*) FROM social.friendship_actions)
				 + (SELECT count(*) FROM social.block_actions)'
}

metric_value() {
	http_get "$1" /metrics 2>/dev/null | sed -n "s/^sociald_$2 \([0-9]*\)\$/\1/p"
}

metric_at_least() {
	local v
	v=$(metric_value "$1" "$2")
	[[ -n $v ]] && ((v >= $3))
}

# events_mark, then setup SQL, then events_settled: waits until every running instance has
# read (and routed, and fed to its presence index) every event the setup wrote.
EV_DB_MARK=0
declare -A EV_MARK
events_mark() {
	local inst
	EV_DB_MARK=$(db_events)
	for inst in "${!PORT[@]}"; do
		EV_MARK[$inst]=$(metric_value "${PORT[$inst]}" events_received_total)
		[[ -n ${EV_MARK[$inst]} ]] || fail "instance $inst: no sociald_events_received_total in /metrics"
	done
}
events_settled() {
	local inst want
	want=$(($(db_events) - EV_DB_MARK))
	for inst in "${!PORT[@]}"; do
		wait_for "instance $inst to read the setup's $want event(s)" \
			metric_at_least "${PORT[$inst]}" events_received_total $((EV_MARK[$inst] + want))
	done
}

# ---------------------------------------------------------------------------------------------
# Instances

# start_instance NAME REDIS_URL NATS_URL [VAR=VALUE...]: sociald on a free port, ready (HTTP,
# PostgreSQL pool, LISTEN) and with presence up (Redis connected, NATS subscribed).
start_instance() {
	local name=$1 redis=$2 nats=$3
	shift 3
	start_sociald "$name" "$DB" REDIS_URL="$redis" NATS_URL="$nats" "$@"
	PORT[$name]=$STARTED_PORT
	PID[$name]=$STARTED_PID
	INST_NATS[$name]=$nats
	# Events committed before the listener's first cursor are not this instance's: wait for
	# it, so that events_mark/events_settled count from a known point.
	wait_for "instance $name: the events listener's first cursor" \
		grep -q 'events: listening from cursor' "$WORK/sociald.$name.log"
	wait_presence_up "$name"
}

# Presence is up when Redis is (commands and the presence channel) and NATS is connected.
presence_up() { redis_up "$1" && metric_is "${PORT[$1]}" nats_up 1; }
redis_up() { metric_is "${PORT[$1]}" redis_up 1; }
wait_presence_up() { wait_for "instance $1: presence up (Redis and NATS)" presence_up "$1"; }

healthy() {
	local inst
	for inst in "$@"; do
		pid_alive "${PID[$inst]}" || fail "sociald $inst (pid ${PID[$inst]}) is not running"
		http_get "${PORT[$inst]}" /health/live >/dev/null || fail "sociald $inst: /health/live failed"
	done
}

# stop_instance NAME: SIGTERM must end it with exit status 0.
stop_instance() {
	local rc
	kill -TERM "${PID[$1]}"
	rc=$(sociald_exit_status "$1")
	[[ $rc == 0 ]] || fail "sociald $1 exited with $rc after SIGTERM"
	unset 'PORT[$1]' 'PID[$1]'
}

# ---------------------------------------------------------------------------------------------
# NATS

# Messages the instances on NATS server URL have taken from peer.>, all together.
nats_taken() {
	local url=$1 inst v sum=0
	for inst in "${!PORT[@]}"; do
		[[ ${INST_NATS[$inst]} == "$url" ]] || continue
		v=$(metric_value "${PORT[$inst]}" nats_messages_total)
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}
nats_taken_at_least() { (($(nats_taken "$1") >= $2)); }

# npub INSTANCE SUBJECT[=BODY_FILE]...: publishes on the NATS server INSTANCE listens to, and
# returns once the instances on it have taken every message a peer.> subscription gets. The
# queue group hands consecutive messages to different instances, which may apply them in any
# order: a step waits for the previous one to be taken before it publishes.
npub() {
	local inst=$1 hp url arg subject n=0 base
	shift
	url=${INST_NATS[$inst]}
	hp=$(url_host_port "$url" 4222)
	for arg in "$@"; do
		subject=${arg%%=*}
		[[ $subject =~ ^peer\.[^.]+(\.[^.]+)*$ ]] && n=$((n + 1))
	done
	base=$(nats_taken "$url")
	# shellcheck disable=SC2086 # "host port"
	nats_pub $hp "$@" || fail "publishing on $url failed: $*"
	wait_for "the instances to take $n message(s) from NATS" nats_taken_at_least "$url" $((base + n))
}

# The heartbeat Archipelago publishes: Heartbeat{position{x=100, y=0, z=-40}, desired_room
# "plaza"} (parcel 6,-3), written byte by byte.
HEARTBEAT=""
make_heartbeat() {
	HEARTBEAT=$WORK/heartbeat.bin
	printf '\x0a\x0f\x0d\x00\x00\xc8\x42\x15\x00\x00\x00\x00\x1d\x00\x00\x20\xc2\x12\x05plaza' \
		>"$HEARTBEAT"
}

# ---------------------------------------------------------------------------------------------
# Watchers

# JSON of a FriendConnectivityUpdate as socialctl prints it (no profile: empty name, picture).
P() { printf '{"address":"%s","name":"","has_claimed_name":false,"profile_picture_url":""}' "${ADDR[$1]}"; }
ST() { printf '{"friend":%s,"status":"%s"}' "$(P "$1")" "$2"; }

show_diff() {
	local label=$1 want=$2 got=$3
	{
		echo "--- $label: expected"
		echo "+++ $label: actual"
		diff -u <(printf '%s\n' "$want") <(printf '%s\n' "$got") | tail -n +3 || true
	} >&2
}

# Names of the addresses in a text, for readable failures.
name_addresses() {
	local text=$1 n
	for n in "${!ADDR[@]}"; do
		text=${text//${ADDR[$n]}/<$n>}
	done
	printf '%s\n' "$text"
}

# watch_start TAG WHO INSTANCE PROCEDURE COUNT: a background watcher (COUNT 0: until stopped),
# returned once its stream is open on the server.
declare -A WATCH_PID
watch_start() {
	local tag=$1 who=$2 inst=$3 proc=$4 count=$5 pid i timeout=$WATCH_TIMEOUT_MS
	local -a count_arg=()
	if ((count > 0)); then
		count_arg=(--count "$count")
	else
		timeout=$HOLD_TIMEOUT_MS
	fi
	rm -f "$WORK/$SCENARIO.watch.$tag.ready"
	SOCIALCTL_KEY=${KEY[$who]} "$SOCIALCTL" --url "$(url_of "$inst")" watch "$proc" \
		"${count_arg[@]}" --timeout-ms "$timeout" --ready-file "$WORK/$SCENARIO.watch.$tag.ready" \
		>"$WORK/$SCENARIO.watch.$tag.out" 2>"$WORK/$SCENARIO.watch.$tag.err" &
	pid=$!
	track_pid "$pid"
	WATCH_PID[$tag]=$pid
	for ((i = 0; i < WAIT_LIMIT_S * 20; i++)); do
		[[ -f $WORK/$SCENARIO.watch.$tag.ready ]] && return 0
		if ! pid_alive "$pid"; then
			cat "$WORK/$SCENARIO.watch.$tag.err" >&2
			fail "watcher $tag ($who $proc on $inst) ended before its stream opened"
		fi
		sleep 0.05
	done
	fail "watcher $tag: stream not open after ${WAIT_LIMIT_S}s"
}

# cwatch TAG WHO INSTANCE COUNT: a connectivity watcher.
cwatch() { watch_start "$1" "$2" "$3" "$CONN" "$4"; }

# hold TAG WHO INSTANCE: a connection that keeps WHO online (a stream that never has elements)
# until release TAG.
hold() { watch_start "$1" "$2" "$3" SubscribeToBlockUpdates 0; }
release() {
	stop_pid "${WATCH_PID[$1]}"
	wait "${WATCH_PID[$1]}" 2>/dev/null || true
}

# wait_line TAG LINE: until the watcher has received LINE (fails early if it ended without).
wait_line() {
	local tag=$1 line=$2 out=$WORK/$SCENARIO.watch.$1.out i
	for ((i = 0; i < WAIT_LIMIT_S * 20; i++)); do
		grep -Fxq -- "$line" "$out" && return 0
		if ! pid_alive "${WATCH_PID[$tag]}"; then
			grep -Fxq -- "$line" "$out" && return 0
			break
		fi
		sleep 0.05
	done
	show_diff "watcher $tag (waiting for one line)" "$(name_addresses "$line")" \
		"$(name_addresses "$(cat "$out")")"
	cat "$WORK/$SCENARIO.watch.$tag.err" >&2
	fail "watcher $tag never received: $(name_addresses "$line")"
}

# wait_lines TAG N: until the watcher has received N elements.
lines_at_least() { (($(wc -l <"$WORK/$SCENARIO.watch.$1.out") >= $2)); }
wait_lines() { wait_for "watcher $1 to receive $2 element(s)" lines_at_least "$1" "$2"; }

# watch_check TAG LINE...: waits for the watcher's end (its count, or its safety timeout) and
# compares everything it received.
watch_check() {
	local tag=$1 rc=0 got want
	shift
	wait "${WATCH_PID[$tag]}" || rc=$?
	want=$(printf '%s\n' "$@")
	got=$(cat "$WORK/$SCENARIO.watch.$tag.out")
	if [[ $rc != 0 || $got != "$want" ]]; then
		show_diff "watcher $tag" "$(name_addresses "$want")" "$(name_addresses "$got")"
		echo "watcher exit status $rc; stderr:" >&2
		cat "$WORK/$SCENARIO.watch.$tag.err" >&2
		fail "watcher $tag received something else"
	fi
}

# watch_check_normalized TAG LINE...: as watch_check, with times and ids masked (T, ID).
watch_check_normalized() {
	local tag=$1 rc=0 got want
	shift
	wait "${WATCH_PID[$tag]}" || rc=$?
	want=$(printf '%s\n' "$@")
	got=$(sed -E -e 's/"created_at":[0-9]+/"created_at":T/g' \
		-e 's/"id":"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"/"id":ID/g' \
		"$WORK/$SCENARIO.watch.$tag.out")
	if [[ $rc != 0 || $got != "$want" ]]; then
		show_diff "watcher $tag" "$(name_addresses "$want")" "$(name_addresses "$got")"
		echo "watcher exit status $rc; stderr:" >&2
		cat "$WORK/$SCENARIO.watch.$tag.err" >&2
		fail "watcher $tag received something else"
	fi
}

# The state a client holds after applying a watcher's elements in order: "ADDRESS STATUS" for
# each friend it heard of, sorted.
fold_state() {
	sed -nE 's/^\{"friend":\{"address":"(0x[0-9a-f]{40})".*"status":"([A-Z]+)".*$/\1 \2/p' \
		"$WORK/$SCENARIO.watch.$1.out" |
		awk '{ s[$1] = $2 } END { for (a in s) print a, s[a] }' | LC_ALL=C sort
}
# want_state NAME=STATUS...: the same form, for the expected state.
want_state() {
	local kv
	for kv in "$@"; do
		printf '%s %s\n' "${ADDR[${kv%%=*}]}" "${kv#*=}"
	done | LC_ALL=C sort
}
state_is() { [[ $(fold_state "$1") == "$2" ]]; }

# wait_state TAG NAME=STATUS...: until the client's state is exactly that (every friend it heard
# of listed, none missing): convergence.
wait_state() {
	local tag=$1 want i
	shift
	want=$(want_state "$@")
	for ((i = 0; i < WAIT_LIMIT_S * 20; i++)); do
		state_is "$tag" "$want" && return 0
		sleep 0.05
	done
	show_diff "state of watcher $tag" "$(name_addresses "$want")" \
		"$(name_addresses "$(fold_state "$tag")")"
	echo "its elements:" >&2
	name_addresses "$(cat "$WORK/$SCENARIO.watch.$tag.out")" >&2
	fail "watcher $tag did not converge to: $*"
}

# ---------------------------------------------------------------------------------------------
# Scenarios

# Two instances: A on 1, B on 2. Each sees the other's status change exactly once; B's second
# connection (on the other instance) changes nothing; B goes offline when its last connection
# closes; friendship events cross instances.
scenario_two_instances() {
	user ia
	user ib
	user is
	user it
	user ic
	events_mark
	sql_friends ia ib
	sql_friends ia is
	sql_friends ib is
	sql_friends ia it
	events_settled

	cwatch wa ia i1 4
	cwatch wb ib i2 2
	# ia was online before ib's stream opened: the snapshot, or a live update, but once.
	wait_line wa "$(ST ib ONLINE)"
	wait_line wb "$(ST ia ONLINE)"

	# a second connection of ib, on instance 1, opens and closes: ib stays online
	act ib i1 GetFriends >/dev/null

	# friendship events cross instances: ia on instance 1 requests ic, whose stream is on 2
	watch_start fc ic i2 SubscribeToFriendshipUpdates 1
	act ia i1 UpsertFriendship action=request user="${ADDR[ic]}" message="across" >/dev/null
	watch_check_normalized fc "{\"request\":{\"friend\":$(P ia),\"created_at\":T,\"message\":\"across\",\"id\":ID}}"

	# is comes online (on instance 1): ib's watcher has its two elements and ends, which
	# closes ib's last connection
	hold hs is i1
	watch_check wb "$(ST ia ONLINE)" "$(ST is ONLINE)"
	wait_line wa "$(ST ib OFFLINE)"
	# sentinel
	hold ht it i2
	watch_check wa "$(ST ib ONLINE)" "$(ST is ONLINE)" "$(ST ib OFFLINE)" "$(ST it ONLINE)"
	release hs
	release ht
	healthy i1 i2
}

# NATS peer events: heartbeat and world.join mean online; disconnect, connect and world.leave
# offline; each change reaches friends on both instances once; a heartbeat that changes nothing
# sends nothing; the address in the subject is validated and lower-cased; junk changes nothing.
scenario_nats() {
	user na
	user nb
	user nc
	user nt
	events_mark
	sql_friends nc na
	sql_friends nc nb
	sql_friends nt na
	sql_friends nt nb
	events_settled

	cwatch wa na i1 7
	cwatch wb nb i2 7
	local c=${ADDR[nc]} step
	local -a steps=(
		"heartbeat=$HEARTBEAT ONLINE"
		"disconnect OFFLINE"
		"world.join ONLINE"
		"world.leave OFFLINE"
		"heartbeat ONLINE"
		"connect OFFLINE"
	)
	for step in "${steps[@]}"; do
		local verb=${step% *} status=${step#* } subject
		subject="peer.$c.$verb"
		# world.join with the address in upper case: it is lower-cased
		[[ $verb == world.join ]] && subject="peer.$(upper_hex nc).$verb"
		npub i1 "$subject"
		wait_line wa "$(ST nc "$status")"
		wait_line wb "$(ST nc "$status")"
		if [[ $status == ONLINE ]]; then
			# the same status again changes nothing
			npub i1 "peer.$c.heartbeat" "peer.$c.world.join" "peer.$c.heartbeat=$HEARTBEAT"
		fi
	done

	# junk: none of it is a status change of anyone's friend, and nothing may crash
	local bad=${c:0:21}g${c:22}
	head -c 60000 /dev/urandom >"$WORK/junk.bin"
	printf '\x0a\xff\xff\xff\xff\x0f\x01' >"$WORK/junk_pb.bin"
	npub i1 \
		"peer.notanaddress.heartbeat" \
		"peer..heartbeat" \
		"foo.bar" \
		"peer" \
		"peer.$c" \
		"peer.$c.bogus" \
		"peer.$c.world" \
		"peer.$c.world.joinx" \
		"peer.$c.heartbeat.extra" \
		"peer.$c.disconnect.extra" \
		"peer.${c:0:41}.heartbeat" \
		"peer.${c}0.heartbeat" \
		"peer.$bad.heartbeat" \
		"peer.${c:2}.heartbeat" \
		"peer.0x.heartbeat" \
		"peer.*.heartbeat" \
		"peer.>" \
		"peer.notanaddress.heartbeat=$WORK/junk.bin" \
		"peer.0x00000000000000000000000000000000000000ff.heartbeat=$WORK/junk.bin" \
		"peer.0x00000000000000000000000000000000000000fe.heartbeat=$WORK/junk_pb.bin" \
		"peer.0x00000000000000000000000000000000000000fe.disconnect=$WORK/junk.bin"
	healthy i1 i2

	# sentinel
	npub i2 "peer.${ADDR[nt]}.heartbeat"
	local -a want=()
	for step in "${steps[@]}"; do
		want+=("$(ST nc "${step#* }")")
	done
	want+=("$(ST nt ONLINE)")
	watch_check wa "${want[@]}"
	watch_check wb "${want[@]}"
	npub i1 "peer.${ADDR[nt]}.disconnect" "peer.0x00000000000000000000000000000000000000ff.disconnect"
	healthy i1 i2
}

# The stub's request count for a prefix ("-" for /peers itself).
stub_count() {
	local v=""
	[[ -f $1 ]] && v=$(awk -v p="$2" '$1 == p { print $2 }' "$1")
	echo "${v:-0}"
}
stub_count_at_least() { (($(stub_count "$1" "$2") >= $3)); }

# set_peers FILE CONTENT: what the stub serves from now on (renamed into place).
set_peers() {
	printf '%s' "$2" >"$1.tmp"
	mv -f -- "$1.tmp" "$1"
}

# start_stub NAME: archipelago_stub.js on a free port; sets STUB_PORT, STUB_PEERS (the file it
# serves), STUB_COUNTS (its request counts).
STUB_PORT=""
STUB_PEERS=""
STUB_COUNTS=""
start_stub() {
	local name=$1 pid
	command -v node >/dev/null || fail "node is needed for the Archipelago stub"
	STUB_PEERS=$WORK/stub.$name.peers
	STUB_COUNTS=$WORK/stub.$name.counts
	set_peers "$STUB_PEERS" '{"peers":[]}'
	rm -f "$WORK/stub.$name.port" "$STUB_COUNTS"
	node "$HERE/archipelago_stub.js" --peers-file "$STUB_PEERS" --port-file "$WORK/stub.$name.port" \
		--count-file "$STUB_COUNTS" >>"$WORK/stub.$name.log" 2>&1 &
	pid=$!
	track_pid "$pid"
	STUB_PID=$pid
	wait_for "the Archipelago stub's port file" test -s "$WORK/stub.$name.port"
	STUB_PORT=$(cat "$WORK/stub.$name.port")
}

# wait_polls PREFIX N: until the stub has answered N more /peers requests for PREFIX.
wait_polls() {
	local prefix=$1 n=$2 base
	base=$(stub_count "$STUB_COUNTS" "$prefix")
	wait_for "$n more poll(s) of the stub ($prefix)" stub_count_at_least "$STUB_COUNTS" "$prefix" $((base + n))
}

# Archipelago: a peer listed by /peers is online for its friends, and a new stream starts with it
# (snapshot); a peer that leaves the list goes offline; junk from the stub changes nothing and
# never stalls the daemon.
scenario_archipelago() {
	user ad
	user ag
	user ah
	events_mark
	sql_friends ad ag
	sql_friends ad ah
	events_settled

	start_stub arch
	# The poller's word lasts its TTL: a peer that leaves the list lapses (like Archipelago's own
	# 60 s), so the short TTL keeps the "leaves" step short.
	start_instance i3 "$MAIN_REDIS_URL" "$MAIN_NATS_URL" \
		"$CFG_ARCHIPELAGO_URL=http://127.0.0.1:$STUB_PORT" "$CFG_ARCHIPELAGO_INTERVAL=$POLL_MS" \
		"$CFG_TTL=$SHORT_TTL_MS"
	wait_polls - 1

	cwatch wg ag i1 2
	# ad among junk entries, its hex digits in upper case
	set_peers "$STUB_PEERS" "{\"peers\":[{\"id\":\"not an address\"},{\"id\":\"0x1234\"},{\"id\":42},{},\"x\",null,{\"id\":\"$(upper_hex ad)\",\"extra\":[1,2]},{\"address\":\"${ADDR[ah]}\"}],\"more\":{}}"
	wait_line wg "$(ST ad ONLINE)"
	# a new stream, on the other instance, starts with ad
	cwatch wh ah i2 1
	watch_check wh "$(ST ad ONLINE)"

	# ad leaves the list: offline once the poller's word lapses
	set_peers "$STUB_PEERS" '{"peers":[]}'
	watch_check wg "$(ST ad ONLINE)" "$(ST ad OFFLINE)"

	# junk: each served at least twice (once for #hang and #close), the daemon stays healthy
	local big=$WORK/stub.big
	{
		printf '{"peers":['
		head -c 3000000 /dev/zero | tr '\0' ' '
		printf ']}'
	} >"$big"
	local junk
	for junk in 'not json' '{"peers":5}' '{"peers":[' '{"peers":[{"id":"0x12' '[]' '' 'null' \
		$'#status 500\n{"peers":[]}' $'#status 404\nnot found' $'#status 301\n' \
		"{\"peers\":[{\"id\":\"${ADDR[ad]}\"}]}}}trailing"; do
		set_peers "$STUB_PEERS" "$junk"
		wait_polls - 2
		healthy i3
	done
	cp -f -- "$big" "$STUB_PEERS.tmp" && mv -f -- "$STUB_PEERS.tmp" "$STUB_PEERS"
	wait_polls - 2
	healthy i3
	set_peers "$STUB_PEERS" '#close'
	wait_polls - 1
	healthy i3
	set_peers "$STUB_PEERS" '#hang'
	wait_polls - 1
	# the hung request must not stall the loop
	healthy i3
	act ag i3 GetFriends >/dev/null

	# back to a good list: ad is online again, for a new stream
	set_peers "$STUB_PEERS" "{\"peers\":[{\"id\":\"${ADDR[ad]}\"}]}"
	cwatch wg2 ag i1 1
	watch_check wg2 "$(ST ad ONLINE)"
	set_peers "$STUB_PEERS" '{"peers":[]}'
	healthy i1 i2 i3
	stop_instance i3
	stop_pid "$STUB_PID"
}

# Two instances configured to poll: one polls at a time (a Redis lease); when it stops, the
# other takes over.
scenario_archipelago_lease() {
	start_stub lease
	start_instance la "$MAIN_REDIS_URL" "$MAIN_NATS_URL" \
		"$CFG_ARCHIPELAGO_URL=http://127.0.0.1:$STUB_PORT/a" "$CFG_ARCHIPELAGO_INTERVAL=$POLL_MS"
	wait_polls /a 2
	start_instance lb "$MAIN_REDIS_URL" "$MAIN_NATS_URL" \
		"$CFG_ARCHIPELAGO_URL=http://127.0.0.1:$STUB_PORT/b" "$CFG_ARCHIPELAGO_INTERVAL=$POLL_MS"
	local b0
	b0=$(stub_count "$STUB_COUNTS" /b)
	# la holds the lease and keeps it: while it polls 10 more times, lb never polls
	wait_polls /a 10
	local b1
	b1=$(stub_count "$STUB_COUNTS" /b)
	((b1 == b0)) || fail "both instances polled Archipelago while the first one held the lease ($((b1 - b0)) polls of the second)"
	stop_instance la
	wait_polls /b 2
	healthy lb
	stop_instance lb
	stop_pid "$STUB_PID"
}

# Blocks hide presence both ways, in snapshots and live; a new friend's status comes with the
# accept, to both sides.
scenario_blocks() {
	user ba # blocked by be
	user be
	user bx # blocks be
	user bs # observer: friend of be and bx
	user bt # sentinel: friend of ba and be
	user bf # befriends ba during the scenario
	events_mark
	sql_friends ba be
	sql_friends be bx
	sql_friends bs be
	sql_friends bs bx
	sql_friends ba bt
	sql_friends be bt
	sql_block be ba
	sql_block bx be
	events_settled

	cwatch ws bs i1 4
	cwatch wa ba i1 3
	# be (blocker of ba, blocked by bx) comes online: bs sees it, ba does not; be's snapshot
	# has bs only, not the online ba
	cwatch we be i2 2
	wait_line ws "$(ST be ONLINE)"
	wait_line we "$(ST bs ONLINE)"
	# bx comes online and goes: its snapshot has bs only, not the online be; be hears nothing
	cwatch wx bx i2 1
	watch_check wx "$(ST bs ONLINE)"
	wait_line ws "$(ST bx ONLINE)"
	wait_line ws "$(ST bx OFFLINE)"
	# sentinel for be and ba: bt comes online; be's watcher ends, so be goes offline
	hold ht bt i1
	watch_check we "$(ST bs ONLINE)" "$(ST bt ONLINE)"
	watch_check ws "$(ST be ONLINE)" "$(ST bx ONLINE)" "$(ST bx OFFLINE)" "$(ST be OFFLINE)"

	# a new friend: ba (on 1) requests, bf (on 2, online) accepts; both are told the other is
	# online. bf stays online until ba has heard (each instance reads the other's status when it
	# reads the accept: a bf gone by then is rightly never announced).
	hold hf bf i2
	cwatch wf bf i2 1
	act ba i1 UpsertFriendship action=request user="${ADDR[bf]}" >/dev/null
	act bf i2 UpsertFriendship action=accept user="${ADDR[ba]}" >/dev/null
	watch_check wf "$(ST ba ONLINE)"
	wait_line wa "$(ST bf ONLINE)"
	release hf
	watch_check wa "$(ST bt ONLINE)" "$(ST bf ONLINE)" "$(ST bf OFFLINE)"
	release ht
	healthy i1 i2
}

# A short TTL on a stack of its own: a heartbeat's word lapses and the friend goes offline;
# heartbeats in time keep it online without a flap; a user held online by a socket stays online
# across many TTLs.
scenario_expiry() {
	start_redis expiry
	local redis="redis://127.0.0.1:$STARTED_REDIS_PORT"
	start_nats expiry
	local nats="nats://127.0.0.1:$STARTED_NATS_PORT"
	user xa
	user xc
	user xk
	start_instance x1 "$redis" "$nats" "$CFG_TTL=$SHORT_TTL_MS"
	start_instance x2 "$redis" "$nats" "$CFG_TTL=$SHORT_TTL_MS"
	events_mark
	sql_friends xk xa
	sql_friends xk xc
	events_settled

	cwatch wk xk x1 5
	hold ha xa x2
	wait_line wk "$(ST xa ONLINE)"
	# one heartbeat, then silence: offline once the TTL has passed
	npub x1 "peer.${ADDR[xc]}.heartbeat=$HEARTBEAT"
	wait_line wk "$(ST xc ONLINE)"
	wait_line wk "$(ST xc OFFLINE)"
	# heartbeats well within the TTL for three TTLs: online once, then offline once they stop
	local i
	for ((i = 0; i < 3 * SHORT_TTL_MS / 250; i++)); do
		npub x1 "peer.${ADDR[xc]}.heartbeat"
		sleep 0.25
	done
	watch_check wk "$(ST xa ONLINE)" "$(ST xc ONLINE)" "$(ST xc OFFLINE)" "$(ST xc ONLINE)" \
		"$(ST xc OFFLINE)"
	release ha
	healthy x1 x2
	stop_instance x1
	stop_instance x2
}

# Redis and NATS crash and come back (on stacks of their own): the daemons stay up, friendships
# keep working while Redis is down, socket presence works while NATS is down, and afterwards
# every stream converges to the truth and new changes arrive.
scenario_restart() {
	start_redis restart
	local rport=$STARTED_REDIS_PORT rpid=$STARTED_REDIS_PID
	local redis="redis://127.0.0.1:$rport"
	start_nats restart
	local nport=$STARTED_NATS_PORT npid=$STARTED_NATS_PID
	local nats="nats://127.0.0.1:$nport"
	local n
	for n in ra rb rc rd re rf rg rh; do
		user "$n"
	done
	start_instance r1 "$redis" "$nats"
	start_instance r2 "$redis" "$nats"
	events_mark
	for n in rb rc rd re rf rh; do
		sql_friends ra "$n"
	done
	events_settled

	cwatch wa ra r1 0
	hold hb rb r2
	hold hd rd r2
	wait_state wa rb=ONLINE rd=ONLINE

	# Redis crashes
	kill_now "$rpid"
	wait_for "r1 to notice Redis is down" eval '! redis_up r1'
	healthy r1 r2
	# friendships keep working
	local out
	out=$(act ra r1 UpsertFriendship action=request user="${ADDR[rg]}")
	[[ $out == '{"accepted":'* ]] || fail "a friendship request while Redis is down: $out"
	out=$(act rg r2 GetPendingFriendshipRequests)
	[[ $out == *"${ADDR[ra]}"* ]] || fail "the request made while Redis was down is not pending: $out"
	act ra r2 GetFriends >/dev/null
	# rd leaves while Redis is down
	release hd
	healthy r1 r2

	# Redis comes back, empty
	start_redis restart "$rport"
	rpid=$STARTED_REDIS_PID
	wait_presence_up r1
	wait_presence_up r2
	wait_state wa rb=ONLINE rd=OFFLINE
	# a change after the recovery arrives
	hold hc rc r2
	wait_state wa rb=ONLINE rd=OFFLINE rc=ONLINE
	# a new stream's snapshot is the truth
	cwatch wa2 ra r2 3
	wait_lines wa2 2
	local got want
	got=$(head -n 2 "$WORK/$SCENARIO.watch.wa2.out" | LC_ALL=C sort)
	want=$(printf '%s\n' "$(ST rb ONLINE)" "$(ST rc ONLINE)" | LC_ALL=C sort)
	if [[ $got != "$want" ]]; then
		show_diff "snapshot after the Redis restart" "$(name_addresses "$want")" "$(name_addresses "$got")"
		fail "the snapshot after the Redis restart is not the truth"
	fi
	hold hh rh r1
	wait "${WATCH_PID[wa2]}" || fail "watcher wa2 failed: $(cat "$WORK/$SCENARIO.watch.wa2.err")"
	[[ $(sed -n 3p "$WORK/$SCENARIO.watch.wa2.out") == "$(ST rh ONLINE)" ]] ||
		fail "after the snapshot, wa2 got $(name_addresses "$(sed -n '3,$p' "$WORK/$SCENARIO.watch.wa2.out")")"

	# NATS crashes: socket presence goes on
	kill_now "$npid"
	healthy r1 r2
	hold hf rf r1
	wait_state wa rb=ONLINE rd=OFFLINE rc=ONLINE rh=ONLINE rf=ONLINE
	# NATS comes back: heartbeats reach the daemons again once they have resubscribed (a
	# publish before that is lost, as on any NATS; so publish until one gets through)
	start_nats restart "$nport"
	local i got_it=0
	for ((i = 0; i < WAIT_LIMIT_S * 4; i++)); do
		nats_pub 127.0.0.1 "$nport" "peer.${ADDR[re]}.heartbeat=$HEARTBEAT" || true
		if grep -Fxq -- "$(ST re ONLINE)" "$WORK/$SCENARIO.watch.wa.out"; then
			got_it=1
			break
		fi
		sleep 0.25
	done
	((got_it)) || fail "no heartbeat reached the daemons after nats-server came back"
	wait_presence_up r1
	wait_presence_up r2
	nats_pub 127.0.0.1 "$nport" "peer.${ADDR[re]}.disconnect" || fail "publish after the NATS restart"
	wait_state wa rb=ONLINE rd=OFFLINE rc=ONLINE rh=ONLINE rf=ONLINE re=OFFLINE

	healthy r1 r2
	release wa
	for n in hb hc hh hf; do
		release "$n"
	done
	stop_instance r1
	stop_instance r2
	stop_pid "$STARTED_NATS_PID"
	stop_pid "$rpid"
}

# A user never receives their own status (two connections on two instances, NATS events for
# them); a second connectivity subscription on one connection is refused with
# stream_closed{DUPLICATE_SUBSCRIPTION} and the first goes on.
scenario_self_and_duplicate() {
	user sa
	user sb
	user sc
	user sd
	# the duplicate test's own client (test/e2e/wsraw.js): its address, from its seed
	local seed="presence duplicate"
	ADDR[sx]=$(node -e '
		const w = require(process.argv[1]);
		process.stdout.write(new w.Identity(process.argv[2]).address + "\n");' \
		"$HERE/wsraw.js" "$seed") || fail "wsraw.js: no identity"
	events_mark
	sql_friends sa sb
	sql_friends sa sc
	sql_friends sb sc
	sql_friends sx sd
	events_settled

	cwatch wb sb i2 2
	cwatch wa sa i1 2
	cwatch wa2 sa i2 2
	wait_line wb "$(ST sa ONLINE)"
	# NATS says sa is online, then that sa left: sockets still vouch, nothing changes
	npub i1 "peer.${ADDR[sa]}.heartbeat" "peer.${ADDR[sa]}.disconnect"
	# sentinel
	hold hc sc i1
	watch_check wa "$(ST sb ONLINE)" "$(ST sc ONLINE)"
	watch_check wa2 "$(ST sb ONLINE)" "$(ST sc ONLINE)"
	watch_check wb "$(ST sa ONLINE)" "$(ST sc ONLINE)"
	release hc

	# two subscriptions on one connection
	node - "$HERE/wsraw.js" "$seed" "${PORT[i1]}" >"$WORK/$SCENARIO.dup.out" 2>"$WORK/$SCENARIO.dup.err" <<'EOF' &
'use strict';
const w = require(process.argv[2]);
const [seed, port] = [process.argv[3], Number(process.argv[4])];
const STATUS = ['ONLINE', 'OFFLINE', 'AWAY'];
const REASON = ['STREAM_CLOSED_UNKNOWN', 'STREAM_CLOSED_DUPLICATE_SUBSCRIPTION'];
const first = (f, n, d) => (f[n] ? f[n][0] : d);
(async () => {
	const c = await w.authed(port, new w.Identity(seed));
	let n = c.nextNo++;
	c.send(w.rpc.createPort(n, 'presence'));
	let m = await c.next();
	if (!m || m.type !== w.T.CREATE_PORT_RESPONSE) throw new Error('CreatePort failed');
	const portId = m.f[2][0];
	n = c.nextNo++;
	c.send(w.rpc.requestModule(n, portId));
	m = await c.next();
	if (!m || m.type !== w.T.REQUEST_MODULE_RESPONSE) throw new Error('RequestModule failed');
	let proc = 0;
	for (const p of m.f[5] || []) {
		const d = w.decode(p);
		if (Buffer.from(d[2][0]).toString() === 'SubscribeToFriendConnectivityUpdates') proc = d[1][0];
	}
	if (!proc) throw new Error('no SubscribeToFriendConnectivityUpdates in the module');
	const s1 = c.nextNo++;
	const s2 = c.nextNo++;
	// frames of each stream, in order
	const q = { [s1]: [], [s2]: [] };
	const take = async (s) => {
		while (!q[s].length) {
			const f = await c.next(60000);
			if (!f) throw new Error('connection closed: ' + c.closeCode);
			if (q[f.n] === undefined) throw new Error('a frame for message ' + f.n);
			if (f.type !== w.T.STREAM_MESSAGE) throw new Error('frame type ' + f.type + ' for ' + f.n);
			q[f.n].push({ seq: first(f.f, 4, 0), closed: first(f.f, 7, 0n) === 1n, payload: first(f.f, 6, null) });
		}
		return q[s].shift();
	};
	c.send(w.rpc.request(s1, portId, proc));
	let f = await take(s1);
	if (f.seq !== 0 || f.closed) throw new Error('no offer for the first stream');
	c.send(w.rpc.ack(s1, portId, 0));
	c.send(w.rpc.request(s2, portId, proc));
	f = await take(s2);
	if (f.seq !== 0 || f.closed) throw new Error('no offer for the second stream');
	c.send(w.rpc.ack(s2, portId, 0));
	f = await take(s2);
	if (f.closed || !f.payload) throw new Error('the second stream ended with no element');
	const u = w.decode(f.payload);
	const sc = u[3] ? w.decode(u[3][0]) : null;
	console.log('second: friend=' + (u[1] ? 'yes' : 'no') + ' stream_closed=' +
		(sc ? REASON[Number(first(sc, 1, 0n))] || 'reason ' + first(sc, 1, 0n) : 'none'));
	c.send(w.rpc.ack(s2, portId, f.seq));
	f = await take(s2);
	console.log('second: closed=' + f.closed);
	console.log('ready');
	f = await take(s1);
	if (f.closed || !f.payload) throw new Error('the first stream ended');
	const e = w.decode(f.payload);
	const friend = e[1] ? w.decode(e[1][0]) : {};
	console.log('first: ' + (friend[1] ? Buffer.from(friend[1][0]).toString() : '?') + ' ' +
		STATUS[Number(first(e, 2, 0n))]);
	c.close();
	process.exit(0);
})().catch((e) => {
	console.error(e.stack || String(e));
	process.exit(1);
});
EOF
	local dup=$!
	track_pid "$dup"
	wait_for "the duplicate test client to get its answer" grep -qx ready "$WORK/$SCENARIO.dup.out"
	hold hd sd i2
	local rc=0
	wait "$dup" || rc=$?
	local want
	want=$(printf '%s\n' 'second: friend=no stream_closed=STREAM_CLOSED_DUPLICATE_SUBSCRIPTION' \
		'second: closed=true' ready "first: ${ADDR[sd]} ONLINE")
	if [[ $rc != 0 || $(cat "$WORK/$SCENARIO.dup.out") != "$want" ]]; then
		show_diff "duplicate subscription" "$want" "$(cat "$WORK/$SCENARIO.dup.out")"
		cat "$WORK/$SCENARIO.dup.err" >&2
		fail "duplicate subscription (client exit $rc)"
	fi
	release hd
	healthy i1 i2
}

# ---------------------------------------------------------------------------------------------

ALL_SCENARIOS=(two_instances nats archipelago archipelago_lease blocks self_and_duplicate expiry
	restart)

run_scenario() {
	local name=$1 rc
	set +e
	(
		set -eE
		SCENARIO=$name
		# A step that fails without a message of its own still says where it was.
		trap 'echo "presence: $SCENARIO: \"$BASH_COMMAND\" failed (exit $?) in ${FUNCNAME[0]:-main}, line $LINENO" >&2' ERR
		"scenario_$name"
	)
	rc=$?
	set -e
	if ((rc == 0)); then
		passed=$((passed + 1))
		echo "presence: $name ... ok"
	else
		failures=$((failures + 1))
		echo "presence: $name ... FAILED"
	fi
}

main() {
	local -a scenarios=("$@") s
	((${#scenarios[@]} > 0)) || scenarios=("${ALL_SCENARIOS[@]}")
	for s in "${scenarios[@]}"; do
		declare -F "scenario_$s" >/dev/null || {
			echo "presence: unknown scenario '$s' (have: ${ALL_SCENARIOS[*]})" >&2
			exit 2
		}
	done

	lib_init
	[[ -x $SOCIALCTL ]] || {
		echo "presence: build the daemon first (make -C daemon): no $SOCIALCTL" >&2
		exit 2
	}
	local cmd
	for cmd in redis-server redis-cli nats-server node; do
		command -v "$cmd" >/dev/null || {
			echo "presence: $cmd is needed (make deps)" >&2
			exit 2
		}
	done
	make_heartbeat
	setup_database "$DB"

	MAIN_REDIS_URL=${REDIS_URL:-}
	MAIN_NATS_URL=${NATS_URL:-}
	if [[ -z $MAIN_REDIS_URL ]]; then
		start_redis main
		MAIN_REDIS_URL="redis://127.0.0.1:$STARTED_REDIS_PORT"
	fi
	if [[ -z $MAIN_NATS_URL ]]; then
		start_nats main
		MAIN_NATS_URL="nats://127.0.0.1:$STARTED_NATS_PORT"
	fi
	start_instance i1 "$MAIN_REDIS_URL" "$MAIN_NATS_URL"
	start_instance i2 "$MAIN_REDIS_URL" "$MAIN_NATS_URL"
	say "sociald i1 pid ${PID[i1]} port ${PORT[i1]}, i2 pid ${PID[i2]} port ${PORT[i2]};" \
		"Redis $MAIN_REDIS_URL, NATS $MAIN_NATS_URL; logs in $WORK"

	for s in "${scenarios[@]}"; do
		if ! pid_alive "${PID[i1]}" || ! pid_alive "${PID[i2]}"; then
			echo "presence: $s ... FAILED (a main sociald is not running)"
			failures=$((failures + 1))
			continue
		fi
		run_scenario "$s"
	done

	if ((failures > 0)); then
		local log
		for log in "$WORK"/sociald.*.log; do
			echo "presence: last lines of $log:"
			tail -n 40 "$log" || true
		done
	fi
	echo "presence: $passed passed, $failures failed"
	((failures == 0))
}

main "$@"
