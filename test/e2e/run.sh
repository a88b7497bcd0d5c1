#!/usr/bin/env bash
#
# e2e -- black-box tests of sociald: a real PostgreSQL (from tools/pg_harness), the real daemon
# on a free loopback port, and daemon/build/socialctl as the client, authenticating and speaking
# @dcl/rpc exactly like a game client.
#
# Run inside the harness (it sets PGHOST/PGPORT/PGUSER):
#   tools/pg_harness -- bash test/e2e/run.sh [SCENARIO...]
# `make check` runs it as the e2e suite. Each scenario prints "e2e: NAME ... ok" or
# "... FAILED" with a diff of what was expected and what came.
#
# Rules the scenarios keep:
#   - No timed assertion. Waits are for a condition (a ready file, a process exit, a row in
#     pg_stat_activity), each with a generous safety limit that only turns a hang into a failure.
#   - Every stream assertion is exact: a watcher runs with --count = expected events + 1, and the
#     last event is a sentinel action made after all the others. Events arrive in log order, so a
#     missing, doubled or extra (echoed) event shifts the sentinel and shows in the diff.
#   - Each scenario uses its own users, so the database's rate limits (30 actions per user, 10
#     per pair, per minute) are only reached where a scenario means to reach them.
#   - Every process started here (sociald, watchers) is stopped by its pid from the EXIT trap.
#
# Environment: SOCIALD, SOCIALCTL (default daemon/build/...), KEEP_WORK=1 keeps the work dir
# (logs, watcher outputs; it is kept anyway when something failed).

set -euo pipefail

# shellcheck disable=SC2034 # read by lib.sh
LIB_NAME=e2e
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

DB=social_e2e
LISTEN_APP=sociald-listen	# the application_name of the daemon's LISTEN connection
WATCH_TIMEOUT_MS=60000		# safety net of a watcher that misses events

MAIN_PORT=""
MAIN_PID=""
URL=""
failures=0
passed=0

declare -A KEY ADDR

# ---------------------------------------------------------------------------------------------
# Users and the client

# user NAME: a key derived from the name (a failing run can be replayed by hand with the same
# addresses) and its address. Scenarios run in subshells, so names, not a counter, keep users
# apart: every scenario uses names of its own.
user() {
	local name=$1
	KEY[$name]=0x$(printf 'social e2e %s' "$name" | sha256sum | cut -c1-64)
	ADDR[$name]=$(SOCIALCTL_KEY=${KEY[$name]} "$SOCIALCTL" address) ||
		fail "socialctl address failed for $name"
}

ctl() {
	local who=$1
	shift
	SOCIALCTL_KEY=${KEY[$who]} "$SOCIALCTL" --url "$URL" "$@"
}

# Masks what differs on every run: times and ids.
normalize() {
	sed -E -e 's/"(created_at|blocked_at)":[0-9]+/"\1":T/g' \
		-e 's/"id":"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"/"id":ID/g'
}

# UpsertFriendship's answer: the friendship, the other user, the request's message ("" if none).
ACC() {
	printf '{"accepted":{"id":ID,"created_at":T,"friend":%s,"message":"%s"}}' "$(P "$1")" "${2:-}"
}
# A request in a list or a stream: from whom, when, its message ("" if none), the friendship id.
REQ() {
	printf '{"friend":%s,"created_at":T,"message":"%s","id":ID}' "$(P "$1")" "${2:-}"
}
# JSON of a profile we never gave a name or picture, and of a User.
P() { printf '{"address":"%s","name":"","has_claimed_name":false,"profile_picture_url":""}' "${ADDR[$1]}"; }
U() { printf '{"address":"%s"}' "${ADDR[$1]}"; }
# A list of profiles sorted by address, as the daemon orders friends.
by_address() {
	local n
	for n in "$@"; do
		echo "${ADDR[$n]} $n"
	done | LC_ALL=C sort | cut -d' ' -f2
}
PLIST() {
	local n sep="" out="["
	for n in $(by_address "$@"); do
		out+="$sep$(P "$n")"
		sep=","
	done
	printf '%s]' "$out"
}

show_diff() {
	local label=$1 want=$2 got=$3
	{
		echo "--- $label: expected"
		echo "+++ $label: actual"
		diff -u <(printf '%s\n' "$want") <(printf '%s\n' "$got") | tail -n +3 || true
	} >&2
}

# check RC WHO PROCEDURE [ARGS...] -- EXPECTED_JSON
# Calls PROCEDURE as WHO; the exit status must be RC and stdout (normalized) EXPECTED_JSON.
check() {
	local want_rc=$1 who=$2 proc=$3 rc=0 got want
	local -a args=()
	shift 3
	while (($# > 0)) && [[ $1 != -- ]]; do
		args+=("$1")
		shift
	done
	[[ ${1:-} == -- ]] || fail "check: no -- EXPECTED for $proc"
	want=$2
	got=$(ctl "$who" call "$proc" "${args[@]}" 2>"$WORK/stderr") || rc=$?
	got=$(normalize <<<"$got")
	if [[ $rc != "$want_rc" || $got != "$want" ]]; then
		show_diff "$who: $proc ${args[*]}" "$want" "$got"
		echo "exit status $rc (expected $want_rc); stderr:" >&2
		cat "$WORK/stderr" >&2
		fail "$who: $proc ${args[*]}"
	fi
}

# Shorthands for the typed errors.
E_ACTION='{"invalid_friendship_action":{}}'
E_REQUEST='{"invalid_request":{}}'
# A typed error carries a human message; tests compare the case only.
strip_error_messages() {
	sed -E 's/\{"message":"([^"\\]|\\.)*"\}/{}/g'
}

# check_error RC WHO PROCEDURE [ARGS...] -- EXPECTED (error messages masked)
check_error() {
	local want_rc=$1 who=$2 proc=$3 rc=0 got want
	local -a args=()
	shift 3
	while (($# > 0)) && [[ $1 != -- ]]; do
		args+=("$1")
		shift
	done
	want=$2
	got=$(ctl "$who" call "$proc" "${args[@]}" 2>"$WORK/stderr") || rc=$?
	got=$(normalize <<<"$got" | strip_error_messages)
	if [[ $rc != "$want_rc" || $got != "$want" ]]; then
		show_diff "$who: $proc ${args[*]}" "$want" "$got"
		echo "exit status $rc (expected $want_rc); stderr:" >&2
		cat "$WORK/stderr" >&2
		fail "$who: $proc ${args[*]}"
	fi
}

# Silent calls for setting up state; must succeed.
act() {
	local who=$1 out
	shift
	out=$(ctl "$who" call "$@" 2>"$WORK/stderr") || {
		cat "$WORK/stderr" >&2
		fail "$who: $* -> $out"
	}
}
befriend() {
	act "$1" UpsertFriendship action=request user="${ADDR[$2]}"
	act "$2" UpsertFriendship action=accept user="${ADDR[$1]}"
}

# watch_start TAG WHO PROCEDURE COUNT [URL]: a background watcher; returns once the stream is
# open on the server (socialctl writes its ready file when the offer arrived).
declare -A WATCH_PID
watch_start() {
	local tag=$1 who=$2 proc=$3 count=$4 url=${5:-$URL} pid
	rm -f "$WORK/watch.$tag.ready"
	SOCIALCTL_KEY=${KEY[$who]} "$SOCIALCTL" --url "$url" watch "$proc" --count "$count" \
		--timeout-ms "$WATCH_TIMEOUT_MS" --ready-file "$WORK/watch.$tag.ready" \
		>"$WORK/watch.$tag.out" 2>"$WORK/watch.$tag.err" &
	pid=$!
	track_pid "$pid"
	WATCH_PID[$tag]=$pid
	local i
	for ((i = 0; i < WAIT_LIMIT_S * 20; i++)); do
		[[ -f $WORK/watch.$tag.ready ]] && return 0
		if ! pid_alive "$pid"; then
			cat "$WORK/watch.$tag.err" >&2
			fail "watcher $tag ($who $proc) ended before its stream opened"
		fi
		sleep 0.05
	done
	fail "watcher $tag: stream not open after ${WAIT_LIMIT_S}s"
}

# watch_check TAG EXPECTED_LINE...: waits for the watcher to end (it ends by itself after its
# count, or at its safety timeout) and compares everything it received.
watch_check() {
	local tag=$1 rc=0 got want
	shift
	wait "${WATCH_PID[$tag]}" || rc=$?
	want=$(printf '%s\n' "$@")
	got=$(normalize <"$WORK/watch.$tag.out")
	if [[ $rc != 0 || $got != "$want" ]]; then
		show_diff "watcher $tag" "$want" "$got"
		echo "watcher exit status $rc; stderr:" >&2
		cat "$WORK/watch.$tag.err" >&2
		fail "watcher $tag received something else"
	fi
}

# FriendshipUpdate elements as socialctl prints them.
# (In a stream, a request without a message has no message field, where lists send "".)
EV_REQUEST() {
	if (($# > 1)); then
		printf '{"request":{"friend":%s,"created_at":T,"message":"%s","id":ID}}' "$(P "$1")" "$2"
	else
		printf '{"request":{"friend":%s,"created_at":T,"id":ID}}' "$(P "$1")"
	fi
}
EV() { printf '{"%s":{"user":%s}}' "$1" "$(U "$2")"; }
EV_BLOCK() { printf '{"address":"%s","is_blocked":%s}' "${ADDR[$1]}" "$2"; }

# ---------------------------------------------------------------------------------------------
# Scenarios

# Request with message, pending and sent lists, status from both sides, accept, friends, mutual
# friends, reject, cancel, delete; each counterparty's stream gets exactly its events, the actor
# never an echo.
scenario_friendship_flow() {
	user alice
	user bob
	user carol
	user dave

	watch_start fa alice SubscribeToFriendshipUpdates 3
	watch_start fb bob SubscribeToFriendshipUpdates 4
	watch_start fc carol SubscribeToFriendshipUpdates 5

	check 0 alice UpsertFriendship action=request user="${ADDR[bob]}" message="hi bob" -- \
		"$(ACC bob "hi bob")"
	check 0 alice UpsertFriendship action=request user="${ADDR[carol]}" -- \
		"$(ACC carol)"

	check 0 bob GetPendingFriendshipRequests -- \
		"{\"requests\":{\"requests\":[$(REQ alice "hi bob")]},\"pagination_data\":{\"total\":1,\"page\":1}}"
	# newest first
	check 0 alice GetSentFriendshipRequests -- \
		"{\"requests\":{\"requests\":[$(REQ carol),$(REQ bob "hi bob")]},\"pagination_data\":{\"total\":2,\"page\":1}}"
	check 0 alice GetPendingFriendshipRequests -- \
		'{"requests":{"requests":[]},"pagination_data":{"total":0,"page":1}}'
	check 0 alice GetFriendshipStatus user="${ADDR[bob]}" -- '{"accepted":{"status":"REQUEST_SENT"}}'
	check 0 bob GetFriendshipStatus user="${ADDR[alice]}" -- '{"accepted":{"status":"REQUEST_RECEIVED"}}'

	check 0 bob UpsertFriendship action=accept user="${ADDR[alice]}" -- \
		"$(ACC alice)"
	check 0 alice GetFriends -- "{\"friends\":$(PLIST bob),\"pagination_data\":{\"total\":1,\"page\":1}}"
	check 0 bob GetFriends -- "{\"friends\":$(PLIST alice),\"pagination_data\":{\"total\":1,\"page\":1}}"
	check 0 alice GetFriendshipStatus user="${ADDR[bob]}" -- '{"accepted":{"status":"ACCEPTED"}}'
	check 0 bob GetFriendshipStatus user="${ADDR[alice]}" -- '{"accepted":{"status":"ACCEPTED"}}'
	check 0 bob GetPendingFriendshipRequests -- \
		'{"requests":{"requests":[]},"pagination_data":{"total":0,"page":1}}'

	check 0 carol UpsertFriendship action=reject user="${ADDR[alice]}" -- \
		"$(ACC alice)"
	check 0 alice GetFriendshipStatus user="${ADDR[carol]}" -- '{"accepted":{"status":"REJECTED"}}'
	check 0 carol GetFriendshipStatus user="${ADDR[alice]}" -- '{"accepted":{"status":"REJECTED"}}'

	act alice UpsertFriendship action=request user="${ADDR[carol]}"
	check 0 alice UpsertFriendship action=cancel user="${ADDR[carol]}" -- \
		"$(ACC carol)"
	check 0 carol GetFriendshipStatus user="${ADDR[alice]}" -- '{"accepted":{"status":"CANCELED"}}'

	# mutual friends: bob is a friend of both alice and carol
	act carol UpsertFriendship action=request user="${ADDR[bob]}"
	act bob UpsertFriendship action=accept user="${ADDR[carol]}"
	check 0 alice GetMutualFriends user="${ADDR[carol]}" -- \
		"{\"friends\":$(PLIST bob),\"pagination_data\":{\"total\":1,\"page\":1}}"
	check 0 bob GetFriends -- "{\"friends\":$(PLIST alice carol),\"pagination_data\":{\"total\":2,\"page\":1}}"

	check 0 alice UpsertFriendship action=delete user="${ADDR[bob]}" -- \
		"$(ACC bob)"
	check 0 alice GetFriends -- '{"friends":[],"pagination_data":{"total":0,"page":1}}'
	check 0 bob GetFriendshipStatus user="${ADDR[alice]}" -- '{"accepted":{"status":"DELETED"}}'
	check 0 alice GetMutualFriends user="${ADDR[carol]}" -- \
		'{"friends":[],"pagination_data":{"total":0,"page":1}}'

	# sentinels: one last event for each watcher
	act dave UpsertFriendship action=request user="${ADDR[alice]}"
	act dave UpsertFriendship action=request user="${ADDR[bob]}"
	act dave UpsertFriendship action=request user="${ADDR[carol]}"

	watch_check fa "$(EV accept bob)" "$(EV reject carol)" "$(EV_REQUEST dave)"
	watch_check fb "$(EV_REQUEST alice "hi bob")" "$(EV_REQUEST carol)" "$(EV delete alice)" \
		"$(EV_REQUEST dave)"
	watch_check fc "$(EV_REQUEST alice)" "$(EV_REQUEST alice)" "$(EV cancel alice)" \
		"$(EV accept bob)" "$(EV_REQUEST dave)"
}

# BlockUser ends a friendship; the blocked side's block stream sees true then false; every
# friendship action while blocked is refused; lists and statuses from both sides.
scenario_blocks() {
	user erin
	user frank
	user gina

	befriend erin frank
	watch_start bf frank SubscribeToBlockUpdates 3
	watch_start ff frank SubscribeToFriendshipUpdates 3
	watch_start be erin SubscribeToBlockUpdates 1

	check 0 erin BlockUser user="${ADDR[frank]}" -- \
		"{\"ok\":{\"profile\":{\"address\":\"${ADDR[frank]}\",\"name\":\"\",\"has_claimed_name\":false,\"profile_picture_url\":\"\",\"blocked_at\":T}}}"
	check 0 erin GetFriends -- '{"friends":[],"pagination_data":{"total":0,"page":1}}'
	check 0 frank GetFriends -- '{"friends":[],"pagination_data":{"total":0,"page":1}}'
	check 0 erin GetFriendshipStatus user="${ADDR[frank]}" -- '{"accepted":{"status":"BLOCKED"}}'
	check 0 frank GetFriendshipStatus user="${ADDR[erin]}" -- '{"accepted":{"status":"BLOCKED_BY"}}'
	check 0 erin GetBlockedUsers -- \
		"{\"profiles\":[{\"address\":\"${ADDR[frank]}\",\"name\":\"\",\"has_claimed_name\":false,\"profile_picture_url\":\"\",\"blocked_at\":T}],\"pagination_data\":{\"total\":1,\"page\":1}}"
	check 0 frank GetBlockedUsers -- '{"profiles":[],"pagination_data":{"total":0,"page":1}}'
	check 0 erin GetBlockingStatus -- "{\"blocked_users\":[\"${ADDR[frank]}\"],\"blocked_by_users\":[]}"
	check 0 frank GetBlockingStatus -- "{\"blocked_users\":[],\"blocked_by_users\":[\"${ADDR[erin]}\"]}"

	check_error 1 frank UpsertFriendship action=request user="${ADDR[erin]}" -- "$E_ACTION"
	check_error 1 erin UpsertFriendship action=request user="${ADDR[frank]}" -- "$E_ACTION"
	check_error 1 frank UpsertFriendship action=delete user="${ADDR[erin]}" -- "$E_ACTION"

	# blocking twice is idempotent: no second event
	act erin BlockUser user="${ADDR[frank]}"
	check 0 erin UnblockUser user="${ADDR[frank]}" -- \
		"{\"ok\":{\"profile\":{\"address\":\"${ADDR[frank]}\",\"name\":\"\",\"has_claimed_name\":false,\"profile_picture_url\":\"\"}}}"
	check 0 erin GetBlockingStatus -- '{"blocked_users":[],"blocked_by_users":[]}'
	check 0 frank GetFriendshipStatus user="${ADDR[erin]}" -- '{"accepted":{"status":"DELETED"}}'
	check 0 erin GetFriends -- '{"friends":[],"pagination_data":{"total":0,"page":1}}'

	# sentinels
	act gina UpsertFriendship action=request user="${ADDR[frank]}"
	act gina BlockUser user="${ADDR[frank]}"
	act gina BlockUser user="${ADDR[erin]}"

	watch_check bf "$(EV_BLOCK erin true)" "$(EV_BLOCK erin false)" "$(EV_BLOCK gina true)"
	# the unblock records 'delete' (metadata reason unblock) on the friendship the block ended
	watch_check ff "$(EV block erin)" "$(EV delete erin)" "$(EV_REQUEST gina)"
	# the blocker's own stream gets no echo of its block
	watch_check be "$(EV_BLOCK gina true)"
}

# Typed errors, each from the extension's SQLSTATE, and a RemoteError for what is not served.
scenario_errors() {
	user hank
	user iris
	user jack
	user kate

	check_error 1 hank UpsertFriendship action=request user="${ADDR[hank]}" -- "$E_ACTION"
	check_error 1 hank UpsertFriendship action=accept user="${ADDR[iris]}" -- "$E_ACTION"
	check_error 1 hank UpsertFriendship action=cancel user="${ADDR[iris]}" -- "$E_ACTION"
	check_error 1 hank UpsertFriendship action=delete user="${ADDR[iris]}" -- "$E_ACTION"
	check_error 1 hank UpsertFriendship action=request user=0x1234 -- "$E_REQUEST"
	check_error 1 hank UpsertFriendship action=request user=not-an-address -- "$E_REQUEST"
	check_error 1 hank GetFriendshipStatus user=0xzz -- \
		'{"invalid_request":{}}'
	check_error 1 hank BlockUser user=0x1234 -- "$E_REQUEST"
	check_error 1 hank BlockUser user="${ADDR[hank]}" -- "$E_REQUEST"
	# a 141-character message is one too long
	check_error 1 hank UpsertFriendship action=request user="${ADDR[iris]}" \
		message="$(printf 'x%.0s' {1..141})" -- "$E_REQUEST"
	# the refused calls wrote nothing
	check 0 iris GetPendingFriendshipRequests -- \
		'{"requests":{"requests":[]},"pagination_data":{"total":0,"page":1}}'
	# accepting one's own request
	act hank UpsertFriendship action=request user="${ADDR[iris]}"
	check_error 1 hank UpsertFriendship action=accept user="${ADDR[iris]}" -- "$E_ACTION"
	check_error 1 iris UpsertFriendship action=cancel user="${ADDR[hank]}" -- "$E_ACTION"

	# rate limit: 10 actions on one pair in a minute pass, the 11th is refused
	local i
	for ((i = 0; i < 5; i++)); do
		act jack UpsertFriendship action=request user="${ADDR[kate]}"
		act jack UpsertFriendship action=cancel user="${ADDR[kate]}"
	done
	check_error 1 jack UpsertFriendship action=request user="${ADDR[kate]}" -- "$E_REQUEST"
	check 0 kate GetFriendshipStatus user="${ADDR[jack]}" -- '{"accepted":{"status":"CANCELED"}}'

	# procedures listed for clients but not served: a RemoteError, the connection stays usable
	local rc=0 out
	out=$(ctl hank call StartPrivateVoiceChat 2>"$WORK/stderr") || rc=$?
	[[ $rc == 1 && $out == '{"remote_error":{'* ]] ||
		fail "StartPrivateVoiceChat: exit $rc, output '$out' (want a remote_error)"
	rc=0
	out=$(ctl hank watch SubscribeToCommunityMemberConnectivityUpdates --timeout-ms 20000 \
		2>"$WORK/stderr") || rc=$?
	[[ $rc == 0 && -z $out ]] ||
		fail "an unsupported stream must end at once with no element: exit $rc, output '$out'"
}

# limit/offset, total and page on every paged list.
scenario_pagination() {
	user pat
	local -a friends=(q1 q2 q3 q4 q5)
	local n
	for n in "${friends[@]}"; do
		user "$n"
		befriend "$n" pat
	done
	local -a sorted
	mapfile -t sorted < <(by_address "${friends[@]}")

	check 0 pat GetFriends -- \
		"{\"friends\":$(PLIST "${friends[@]}"),\"pagination_data\":{\"total\":5,\"page\":1}}"
	check 0 pat GetFriends limit=2 offset=0 -- \
		"{\"friends\":$(PLIST "${sorted[0]}" "${sorted[1]}"),\"pagination_data\":{\"total\":5,\"page\":1}}"
	check 0 pat GetFriends limit=2 offset=2 -- \
		"{\"friends\":$(PLIST "${sorted[2]}" "${sorted[3]}"),\"pagination_data\":{\"total\":5,\"page\":2}}"
	check 0 pat GetFriends limit=2 offset=4 -- \
		"{\"friends\":$(PLIST "${sorted[4]}"),\"pagination_data\":{\"total\":5,\"page\":3}}"
	check 0 pat GetFriends limit=2 offset=10 -- \
		'{"friends":[],"pagination_data":{"total":5,"page":6}}'
	# the page number is the extension's, of the limit it used: 5000 is clamped to 1000
	check 0 pat GetFriends limit=5000 offset=1500 -- \
		'{"friends":[],"pagination_data":{"total":5,"page":3}}'

	# mutual friends page the same way: q1 is friends with q2 and q3, as is pat
	befriend q1 q2
	befriend q1 q3
	local -a mutual
	mapfile -t mutual < <(by_address q2 q3)
	check 0 pat GetMutualFriends user="${ADDR[q1]}" limit=1 offset=1 -- \
		"{\"friends\":$(PLIST "${mutual[1]}"),\"pagination_data\":{\"total\":2,\"page\":2}}"

	# pending requests, newest first
	user rita
	user r1
	user r2
	user r3
	act r1 UpsertFriendship action=request user="${ADDR[rita]}"
	act r2 UpsertFriendship action=request user="${ADDR[rita]}"
	act r3 UpsertFriendship action=request user="${ADDR[rita]}"
	check 0 rita GetPendingFriendshipRequests limit=2 -- \
		"{\"requests\":{\"requests\":[$(REQ r3),$(REQ r2)]},\"pagination_data\":{\"total\":3,\"page\":1}}"
	check 0 rita GetPendingFriendshipRequests limit=2 offset=2 -- \
		"{\"requests\":{\"requests\":[$(REQ r1)]},\"pagination_data\":{\"total\":3,\"page\":2}}"
	check 0 r2 GetSentFriendshipRequests limit=5 -- \
		"{\"requests\":{\"requests\":[$(REQ rita)]},\"pagination_data\":{\"total\":1,\"page\":1}}"

	# blocked users, newest first
	act rita BlockUser user="${ADDR[r1]}"
	act rita BlockUser user="${ADDR[r2]}"
	check 0 rita GetBlockedUsers limit=1 offset=1 -- \
		"{\"profiles\":[{\"address\":\"${ADDR[r1]}\",\"name\":\"\",\"has_claimed_name\":false,\"profile_picture_url\":\"\",\"blocked_at\":T}],\"pagination_data\":{\"total\":2,\"page\":2}}"
	# the blocked requesters vanished from rita's pending list
	check 0 rita GetPendingFriendshipRequests -- \
		"{\"requests\":{\"requests\":[$(REQ r3)]},\"pagination_data\":{\"total\":1,\"page\":1}}"
	# clamped limits give the page number: requests at most 200, blocked users 200 by default
	check 0 rita GetPendingFriendshipRequests limit=500 offset=250 -- \
		'{"requests":{"requests":[]},"pagination_data":{"total":1,"page":3}}'
	check 0 rita GetBlockedUsers limit=0 offset=201 -- \
		'{"profiles":[],"pagination_data":{"total":2,"page":3}}'
}

# Social settings and private message settings.
scenario_settings() {
	user sam
	user sue
	user sid
	befriend sam sue

	check 0 sam GetSocialSettings -- \
		'{"ok":{"settings":{"private_messages_privacy":"ALL","blocked_users_messages_visibility":"SHOW_MESSAGES","show_situation_reactions":"SHOW"}}}'
	check 0 sam UpsertSocialSettings private_messages_privacy=ONLY_FRIENDS -- \
		'{"ok":{"private_messages_privacy":"ONLY_FRIENDS","blocked_users_messages_visibility":"SHOW_MESSAGES","show_situation_reactions":"SHOW"}}'
	check 0 sam UpsertSocialSettings show_situation_reactions=HIDE \
		blocked_users_messages_visibility=DO_NOT_SHOW_MESSAGES -- \
		'{"ok":{"private_messages_privacy":"ONLY_FRIENDS","blocked_users_messages_visibility":"DO_NOT_SHOW_MESSAGES","show_situation_reactions":"HIDE"}}'
	check 0 sam GetSocialSettings -- \
		'{"ok":{"settings":{"private_messages_privacy":"ONLY_FRIENDS","blocked_users_messages_visibility":"DO_NOT_SHOW_MESSAGES","show_situation_reactions":"HIDE"}}}'
	# one entry per address, ordered by address
	local -A entry
	entry[sam]="{\"user\":$(U sam),\"private_messages_privacy\":\"ONLY_FRIENDS\",\"is_friend\":true}"
	entry[sid]="{\"user\":$(U sid),\"private_messages_privacy\":\"ALL\",\"is_friend\":false}"
	local -a order
	mapfile -t order < <(by_address sam sid)
	check 0 sue GetPrivateMessagesSettings user="${ADDR[sam]},${ADDR[sid]}" -- \
		"{\"ok\":{\"settings\":[${entry[${order[0]}]},${entry[${order[1]}]}]}}"
	check 0 sue GetPrivateMessagesSettings user="${ADDR[sid]}" user="${ADDR[sam]}" -- \
		"{\"ok\":{\"settings\":[${entry[${order[0]}]},${entry[${order[1]}]}]}}"
}

# One user, two connections: each gets the event.
scenario_two_connections() {
	user mia
	user max
	watch_start m1 mia SubscribeToFriendshipUpdates 1
	watch_start m2 mia SubscribeToFriendshipUpdates 1
	act max UpsertFriendship action=request user="${ADDR[mia]}" message="twice"
	watch_check m1 "$(EV_REQUEST max twice)"
	watch_check m2 "$(EV_REQUEST max twice)"
}

# A client that cancels its stream after one element leaves the daemon healthy, and its
# other connections are not affected.
scenario_stream_cancel() {
	user nora
	user ned
	watch_start c1 nora SubscribeToFriendshipUpdates 1
	watch_start c2 nora SubscribeToFriendshipUpdates 2
	act ned UpsertFriendship action=request user="${ADDR[nora]}"
	watch_check c1 "$(EV_REQUEST ned)"
	act ned UpsertFriendship action=cancel user="${ADDR[nora]}"
	watch_check c2 "$(EV_REQUEST ned)" "$(EV cancel ned)"
	http_get "$MAIN_PORT" /health/live >/dev/null || fail "/health/live after a cancel"
	check 0 nora GetFriendshipStatus user="${ADDR[ned]}" -- '{"accepted":{"status":"CANCELED"}}'
	pid_alive "$MAIN_PID" || fail "sociald died"
}

# Bad auth closes with 3003; a client that says nothing is closed with 3004.
scenario_auth() {
	user olga
	local mode rc err
	for mode in garbage stale expired; do
		rc=0
		ctl olga --auth "$mode" call GetFriends >"$WORK/out" 2>"$WORK/stderr" || rc=$?
		err=$(cat "$WORK/stderr")
		[[ $rc == 3 && $err == *"closed: 3003"* && ! -s $WORK/out ]] ||
			fail "--auth $mode: want exit 3 and 'closed: 3003', got exit $rc: $err"
	done

	start_sociald authtimeout "$DB" WS_AUTH_TIMEOUT_IN_MS=500
	local port=$STARTED_PORT pid=$STARTED_PID
	rc=0
	SOCIALCTL_KEY=${KEY[olga]} "$SOCIALCTL" --url "ws://127.0.0.1:$port/" --auth none \
		--timeout-ms 20000 call GetFriends >"$WORK/out" 2>"$WORK/stderr" || rc=$?
	err=$(cat "$WORK/stderr")
	[[ $rc == 3 && $err == *"closed: 3004"* ]] ||
		fail "no auth: want exit 3 and 'closed: 3004', got exit $rc: $err"
	# a client that does authenticate in time is served by the same daemon
	SOCIALCTL_KEY=${KEY[olga]} "$SOCIALCTL" --url "ws://127.0.0.1:$port/" call GetFriends \
		>/dev/null 2>"$WORK/stderr" || fail "auth-timeout daemon: a valid client was refused"
	stop_pid "$pid"
}

listen_backend_up() {
	[[ $(psql -X -At -d postgres -c \
		"SELECT count(*) FROM pg_stat_activity WHERE application_name = '$LISTEN_APP' AND datname = '$DB'") == 1 ]]
}

kill_listen_backend() {
	local n
	n=$(psql -X -At -d postgres -c \
		"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '$LISTEN_APP' AND datname = '$DB'")
	[[ $n == 1 ]] || fail "expected one '$LISTEN_APP' backend to terminate, found $n"
}

# The LISTEN connection is killed while actions happen: the watcher still gets every event,
# exactly once, in order (the daemon re-LISTENs and catches up from the log).
scenario_listen_reconnect() {
	user xena
	local i
	for i in $(seq 1 9); do
		user "y$i"
	done
	user yz

	wait_for "the LISTEN backend ($LISTEN_APP) in pg_stat_activity" listen_backend_up
	watch_start lx xena SubscribeToFriendshipUpdates 10

	act y1 UpsertFriendship action=request user="${ADDR[xena]}"
	kill_listen_backend
	# these commit while nobody listens
	act y2 UpsertFriendship action=request user="${ADDR[xena]}"
	act y3 UpsertFriendship action=request user="${ADDR[xena]}"
	wait_for "the LISTEN backend to come back" listen_backend_up
	act y4 UpsertFriendship action=request user="${ADDR[xena]}"

	# again, with actions running concurrently with the kill
	(
		for i in 5 6 7; do
			act "y$i" UpsertFriendship action=request user="${ADDR[xena]}"
		done
	) &
	local burst=$!
	track_pid "$burst"
	kill_listen_backend
	wait "$burst" || fail "the concurrent actions failed"
	wait_for "the LISTEN backend to come back" listen_backend_up
	act y8 UpsertFriendship action=request user="${ADDR[xena]}"
	act y9 UpsertFriendship action=request user="${ADDR[xena]}"
	act yz UpsertFriendship action=request user="${ADDR[xena]}"

	watch_check lx "$(EV_REQUEST y1)" "$(EV_REQUEST y2)" "$(EV_REQUEST y3)" "$(EV_REQUEST y4)" \
		"$(EV_REQUEST y5)" "$(EV_REQUEST y6)" "$(EV_REQUEST y7)" "$(EV_REQUEST y8)" \
		"$(EV_REQUEST y9)" "$(EV_REQUEST yz)"
	wait_for "pg_listen_up 1 after the reconnects" metric_is "$MAIN_PORT" pg_listen_up 1
	local reconnects
	reconnects=$(http_get "$MAIN_PORT" /metrics | sed -n 's/^sociald_pg_reconnects_total //p')
	((reconnects >= 2)) || fail "sociald_pg_reconnects_total is '$reconnects' after two lost LISTEN connections"
}

# The HTTP side: health, metrics, status.
scenario_http() {
	local body
	body=$(http_get "$MAIN_PORT" /health/live) || fail "/health/live"
	body=$(http_get "$MAIN_PORT" /metrics) || fail "/metrics"
	local m
	for m in sociald_connections_accepted sociald_auth_ok sociald_auth_failed sociald_pg_up \
		sociald_pg_listen_up sociald_rpc_requests_total; do
		grep -q "^$m" <<<"$body" || fail "/metrics has no $m"
	done
	grep -qx 'sociald_pg_up 1' <<<"$body" || fail "/metrics: sociald_pg_up is not 1"
	body=$(http_get "$MAIN_PORT" /status) || fail "/status"
	[[ -n $body ]] || fail "/status is empty"
}

http_live() { http_get "$1" /health/live >/dev/null 2>&1; }
# live_or_gone PID PORT: the daemon answers on PORT, or has exited.
live_or_gone() { ! pid_alive "$1" || http_live "$2"; }

# GET /v1/users/<address>/privacy-settings: the reference's unauthenticated route, "all" by
# default, what UpsertSocialSettings stored after, 400 for a malformed address.
scenario_privacy() {
	user pia
	local body code upper
	body=$(http_get "$MAIN_PORT" "/v1/users/${ADDR[pia]}/privacy-settings") || fail "privacy route"
	[[ $body == '{"private_messages_privacy":"all"}' ]] || fail "default privacy: $body"
	act pia UpsertSocialSettings private_messages_privacy=ONLY_FRIENDS
	upper=0x$(tr 'a-f' 'A-F' <<<"${ADDR[pia]#0x}")
	body=$(http_get "$MAIN_PORT" "/v1/users/$upper/privacy-settings") || fail "privacy route"
	[[ $body == '{"private_messages_privacy":"only_friends"}' ]] || fail "after upsert: $body"
	code=$(curl -sS -o "$WORK/privacy.bad" -w '%{http_code}' --max-time 5 \
		"http://127.0.0.1:$MAIN_PORT/v1/users/0x1234/privacy-settings")
	[[ $code == 400 ]] || fail "a malformed address answered $code"
	grep -q '"error":"Bad request"' "$WORK/privacy.bad" || fail "400 body: $(cat "$WORK/privacy.bad")"
	code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 \
		"http://127.0.0.1:$MAIN_PORT/v1/users/${ADDR[pia]}/other")
	[[ $code == 404 ]] || fail "an unknown route answered $code"
}

# A sociald configured with the reference service's variables only (its compose: the
# PG_COMPONENT_PSQL_* parts with a host name, REDIS_HOST, RPC_SERVER_PORT, UWS_SERVER_PORT, and
# variables of features sociald does not have): it starts, serves WebSocket on RPC_SERVER_PORT
# and the HTTP routes on UWS_SERVER_PORT too (no WebSocket there), and names the ignored ones.
scenario_reference_env() {
	user rex
	local ws_port http_port log=$WORK/sociald.reference.log pid i redis_hp body code rc attempt
	redis_hp=$(url_host_port "${REDIS_URL:-redis://127.0.0.1:6379}" 6379 | tr ' ' ':')
	# A free port can be taken by another process before sociald binds it: then again.
	for ((attempt = 1; attempt <= 5; attempt++)); do
		ws_port=$(free_port) || fail "no free port"
		http_port=$(free_port) || fail "no free port"
		[[ $ws_port != "$http_port" ]] || continue
		env -u PG_CONNECTION_STRING -u REDIS_URL -u HTTP_PORT -u WS_HOST \
			RPC_SERVER_PORT="$ws_port" UWS_SERVER_PORT="$http_port" \
			PG_COMPONENT_PSQL_HOST=localhost PG_COMPONENT_PSQL_PORT="$PGPORT" \
			PG_COMPONENT_PSQL_USER="$ROLE" PG_COMPONENT_PSQL_DATABASE="$DB" \
			REDIS_HOST="$redis_hp" REGISTRY_URL=http://127.0.0.1:1/ \
			AWS_SNS_ARN=arn:aws:sns:us-east-1:000000000000:events \
			AWS_SNS_ENDPOINT=http://127.0.0.1:4566 AWS_REGION=us-east-1 \
			"$SOCIALD" >"$log" 2>&1 &
		pid=$!
		track_pid "$pid"
		wait_for "sociald (reference env) on UWS_SERVER_PORT or its exit" live_or_gone "$pid" \
			"$http_port"
		pid_alive "$pid" && break
		grep -q 'could not bind' "$log" || fail "sociald (reference env) did not start: $log"
	done
	pid_alive "$pid" || fail "sociald (reference env): no free ports after 5 attempts"
	wait_for "sociald (reference env): pool up" metric_is "$http_port" pg_up 1
	grep -q 'config: reference service variables for features sociald does not have are ignored: AWS_SNS_ARN, AWS_SNS_ENDPOINT, AWS_REGION' "$log" ||
		fail "no ignored-variables line in $log"
	grep -q 'registry: profiles from POST http://127.0.0.1:1/profiles' "$log" ||
		fail "REGISTRY_URL not taken in $log"
	grep -q 'PostgreSQL host names resolved at start-up' "$log" || fail "no resolution line"
	for i in /status /metrics; do
		http_get "$http_port" "$i" >/dev/null || fail "$i on UWS_SERVER_PORT"
		http_get "$ws_port" "$i" >/dev/null || fail "$i on RPC_SERVER_PORT"
	done
	body=$(http_get "$http_port" "/v1/users/${ADDR[rex]}/privacy-settings") ||
		fail "privacy route on UWS_SERVER_PORT"
	[[ $body == '{"private_messages_privacy":"all"}' ]] || fail "privacy: $body"
	SOCIALCTL_KEY=${KEY[rex]} "$SOCIALCTL" --url "ws://127.0.0.1:$ws_port/" call \
		GetSocialSettings >/dev/null || fail "no WebSocket on RPC_SERVER_PORT"
	code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -H 'Connection: Upgrade' \
		-H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
		-H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "http://127.0.0.1:$http_port/" 2>/dev/null) ||
		true
	[[ $code != 101 ]] || fail "UWS_SERVER_PORT upgraded to WebSocket"
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	[[ $rc == 0 ]] || fail "sociald (reference env) exited with $rc"
}

# A counter of a daemon's /metrics is at least N.
metric_at_least() {
	local port=$1 name=$2 want=$3 v
	v=$(http_get "$port" /metrics 2>/dev/null | awk -v n="sociald_$name" '$1 == n { print $2 }')
	[[ -n $v ]] && ((v >= want))
}

# The profile registry (REGISTRY_URL), against test/e2e/registry_stub.js: a second sociald whose
# answers never wait for the registry. GetFriends first answers the addresses alone, the page's
# addresses go to the registry in one request, and once they are stored the next answer (and
# social.profiles) has names and pictures. A registry answering garbage, 500 or nothing at all
# costs a counter: the answers still come at once, with the address alone. Friendships are made
# through the main daemon, which has no registry, so nothing is fetched before the first look.
scenario_registry() {
	command -v node >/dev/null || fail "node is needed for the registry stub"
	local main_url=$URL reg_url mode=$WORK/registry.mode rlog=$WORK/registry.requests got
	local stub_pid rport n friend
	user rga
	user rgb
	user rgc
	user rgd
	user rge
	user rgf
	echo good >"$mode"
	: >"$rlog"
	rm -f "$WORK/registry.port"
	node "$(dirname -- "${BASH_SOURCE[0]}")/registry_stub.js" --mode-file "$mode" \
		--port-file "$WORK/registry.port" --log-file "$rlog" >>"$WORK/registry.stub.log" 2>&1 &
	stub_pid=$!
	track_pid "$stub_pid"
	wait_for "the registry stub's port file" test -s "$WORK/registry.port"
	start_sociald registry "$DB" REGISTRY_URL="http://127.0.0.1:$(cat "$WORK/registry.port")/lambdas/" \
		REGISTRY_TIMEOUT_MS=1000
	rport=$STARTED_PORT
	reg_url="ws://127.0.0.1:$rport/"

	URL=$main_url
	befriend rga rgb
	befriend rga rgc
	URL=$reg_url
	check 0 rga GetFriends -- "{\"friends\":$(PLIST rgb rgc),\"pagination_data\":{\"total\":2,\"page\":1}}"
	wait_for "2 registry profiles stored" metric_at_least "$rport" registry_profiles_stored_total 2
	n=$(wc -l <"$rlog")
	[[ $n == 1 ]] || fail "the page of friends took $n registry requests: $(cat "$rlog")"
	grep -q "^good 2 " "$rlog" || fail "registry request: $(cat "$rlog")"
	got=$(ctl rga call GetFriends)
	for friend in rgb rgc; do
		[[ $got == *"\"address\":\"${ADDR[$friend]}\",\"name\":\"name-${ADDR[$friend]: -6}\",\"has_claimed_name\":true,\"profile_picture_url\":\"https://img/${ADDR[$friend]}.png\""* ]] ||
			fail "no registry profile for $friend in $got"
	done
	got=$(psql -X -At -d "$DB" -c "SELECT name, profile_picture_url, name_color_g FROM social.profiles WHERE address = '${ADDR[rgb]}'")
	[[ $got == "name-${ADDR[rgb]: -6}|https://img/${ADDR[rgb]}.png|0.5" ]] || fail "social.profiles: $got"

	# garbage, 500, and a registry that never answers: answers come at once, address alone.
	local -a modes=(garbage "status 500" hang) metric=(registry_requests_failed_total
		registry_requests_failed_total registry_timeouts_total) want=(1 2 1) users=(rgd rge rgf)
	for ((n = 0; n < 3; n++)); do
		echo "${modes[n]}" >"$mode"
		friend=${users[n]}
		URL=$main_url
		befriend rga "$friend"
		URL=$reg_url
		got=$(timeout 5 env SOCIALCTL_KEY="${KEY[rga]}" "$SOCIALCTL" --url "$URL" call GetFriends) ||
			fail "GetFriends with a registry in mode ${modes[n]} did not answer in time"
		[[ $got == *"$(P "$friend")"* ]] || fail "mode ${modes[n]}: $friend not shown by address: $got"
		wait_for "${metric[n]} >= ${want[n]}" metric_at_least "$rport" "${metric[n]}" "${want[n]}"
		got=$(timeout 5 env SOCIALCTL_KEY="${KEY[rga]}" "$SOCIALCTL" --url "$URL" call GetFriends) ||
			fail "GetFriends after a registry ${modes[n]} did not answer in time"
		[[ $got == *"$(P "$friend")"* ]] || fail "mode ${modes[n]}: $friend changed: $got"
	done
	metric_at_least "$rport" registry_profiles_stored_total 3 && fail "a failed lookup stored a profile"
	pid_alive "$STARTED_PID" || fail "the registry daemon died"
	stop_pid "$STARTED_PID"
	stop_pid "$stub_pid"
}

# UWS_SERVER_PORT taken: a start-up failure (exit 1) that says so.
scenario_http_port_taken() {
	local ws_port log=$WORK/sociald.taken.log rc attempt
	for ((attempt = 1; attempt <= 5; attempt++)); do
		ws_port=$(free_port) || fail "no free port"
		rc=0
		env WS_HOST=127.0.0.1 RPC_SERVER_PORT="$ws_port" UWS_SERVER_PORT="$MAIN_PORT" \
			PG_CONNECTION_STRING="hostaddr=127.0.0.1 port=$PGPORT dbname=$DB user=$ROLE" \
			timeout 30 "$SOCIALD" >"$log" 2>&1 || rc=$?
		# the WebSocket port taken meanwhile by someone else: again
		grep -q "port $ws_port: could not bind" "$log" || break
	done
	[[ $rc == 1 ]] || fail "exit status $rc with UWS_SERVER_PORT taken (log: $log)"
	grep -q "port $MAIN_PORT (HTTP_PORT): could not bind" "$log" || fail "no bind error in $log"
}

# The database unreachable: the privacy route answers 503 at once, never hangs.
scenario_privacy_db_down() {
	user pdd
	local dead log=$WORK/sociald.dbdown.log pid code port attempt
	dead=$(free_port) || fail "no free port"
	for ((attempt = 1; attempt <= 5; attempt++)); do
		port=$(free_port) || fail "no free port"
		env WS_HOST=127.0.0.1 RPC_SERVER_PORT="$port" \
			PG_CONNECTION_STRING="hostaddr=127.0.0.1 port=$dead dbname=$DB user=$ROLE" \
			"$SOCIALD" >"$log" 2>&1 &
		pid=$!
		track_pid "$pid"
		wait_for "sociald (database down) or its exit" live_or_gone "$pid" "$port"
		pid_alive "$pid" && break
		grep -q 'could not bind' "$log" || fail "sociald (database down) did not start: $log"
	done
	pid_alive "$pid" || fail "sociald (database down): no free port after 5 attempts"
	code=$(curl -sS -o "$WORK/privacy.503" -w '%{http_code}' --max-time 5 \
		"http://127.0.0.1:$port/v1/users/${ADDR[pdd]}/privacy-settings") || true
	[[ $code == 503 ]] || fail "database down answered '$code'"
	stop_pid "$pid"
}

# SIGTERM: a clean exit 0, also with a client connected, which is closed with 1001.
scenario_sigterm() {
	user tom
	watch_start st tom SubscribeToFriendshipUpdates 5
	kill -TERM "$MAIN_PID"
	local rc
	rc=$(sociald_exit_status main)
	[[ $rc == 0 ]] || fail "sociald exited with $rc after SIGTERM"
	rc=0
	wait "${WATCH_PID[st]}" || rc=$?
	[[ $rc == 3 ]] || fail "a watcher of a stopped daemon must end with exit 3, got $rc"
	grep -q 'closed: 1001' "$WORK/watch.st.err" ||
		fail "the watcher was not closed with 1001: $(cat "$WORK/watch.st.err")"
}

# ---------------------------------------------------------------------------------------------

ALL_SCENARIOS=(friendship_flow blocks errors pagination settings two_connections stream_cancel
	auth listen_reconnect http privacy privacy_db_down reference_env registry http_port_taken
	sigterm)

run_scenario() {
	local name=$1 rc
	set +e
	(
		set -e
		"scenario_$name"
	)
	rc=$?
	set -e
	if ((rc == 0)); then
		passed=$((passed + 1))
		echo "e2e: $name ... ok"
	else
		failures=$((failures + 1))
		echo "e2e: $name ... FAILED"
	fi
}

main() {
	local -a scenarios=("$@") s
	((${#scenarios[@]} > 0)) || scenarios=("${ALL_SCENARIOS[@]}")
	for s in "${scenarios[@]}"; do
		declare -F "scenario_$s" >/dev/null || {
			echo "e2e: unknown scenario '$s' (have: ${ALL_SCENARIOS[*]})" >&2
			exit 2
		}
	done

	lib_init
	[[ -x $SOCIALCTL ]] || {
		echo "e2e: build the daemon first (make -C daemon): no $SOCIALCTL" >&2
		exit 2
	}
	setup_database "$DB"

	start_sociald main "$DB"
	MAIN_PORT=$STARTED_PORT
	MAIN_PID=$STARTED_PID
	URL="ws://127.0.0.1:$MAIN_PORT/"
	say "sociald pid $MAIN_PID on $URL (log $WORK/sociald.main.log)"

	for s in "${scenarios[@]}"; do
		if ! pid_alive "$MAIN_PID"; then
			echo "e2e: $s ... FAILED (sociald is not running)"
			failures=$((failures + 1))
			continue
		fi
		run_scenario "$s"
	done

	if ((failures > 0)); then
		echo "e2e: last lines of the daemon's log ($WORK/sociald.main.log):"
		tail -n 60 "$WORK/sociald.main.log" || true
	fi
	echo "e2e: $passed passed, $failures failed"
	((failures == 0))
}

main "$@"
