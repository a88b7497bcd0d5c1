#!/usr/bin/env bash
#
# hostile -- black-box tests of sociald against broken and malicious clients: first frames that
# are no auth frame (garbage, deep JSON, oversized, fragmented), bad WebSocket framing, malformed
# @dcl/rpc frames, floods of ports, calls and messages, garbage, oversized and invalid payloads
# for every procedure, streams that are never acknowledged, clients that never read, connection
# caps, auth and idle timeouts, odd HTTP requests, resets mid-frame, and SIGTERM in the middle of
# all of it. Each case asserts what a client sees (close code and text, RemoteError, typed
# error) and that the daemon stays healthy and ends up holding nothing.
#
# Run inside the harness (it sets PGHOST/PGPORT/PGUSER):
#   tools/pg_harness -- bash test/e2e/hostile.sh [CASE...]
# `make check` runs it as the hostile suite. The client is test/e2e/hostile.js on Node.js
# (18+) with nothing but Node's built-ins (test/e2e/wsraw.js speaks WebSocket from raw TCP, so a
# case can send what no client library would). Three daemons, one database:
#   main   the default limits
#   tight  small caps and buffers: 12 connections, 4 unauthenticated, STREAM_BUFFER 2, 16
#          queued frames, no practical message rate limit; SIGTERMed by its last case
#   quick  a 1 s auth timeout and a 2 s idle timeout
# No timed assertion: every wait is for a condition, with a safety limit.

set -euo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck disable=SC2034 # read by lib.sh
LIB_NAME=hostile
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

DB=social_hostile
NODE_MAJOR_MIN=18

main() {
	local major rc=0 main_port tight_port tight_pid quick_port status name port
	command -v node >/dev/null || {
		echo "hostile: Node.js $NODE_MAJOR_MIN+ is needed ... FAILED" >&2
		exit 1
	}
	major=$(node -p 'process.versions.node.split(".")[0]')
	((major >= NODE_MAJOR_MIN)) || {
		echo "hostile: Node.js $NODE_MAJOR_MIN+ is needed, this is $(node --version) ... FAILED" >&2
		exit 1
	}

	lib_init
	setup_database "$DB"
	start_sociald main "$DB"
	main_port=$STARTED_PORT
	start_sociald tight "$DB" WS_MAX_CONNECTIONS=12 WS_MAX_UNAUTHENTICATED=4 STREAM_BUFFER=2 \
		WS_OUTBOUND_QUEUE_MESSAGES=16 WS_MESSAGES_PER_SECOND=1000000 WS_MESSAGES_BURST=1000000 \
		WS_SHUTDOWN_TIMEOUT_IN_MS=1500
	tight_port=$STARTED_PORT
	tight_pid=$STARTED_PID
	start_sociald quick "$DB" WS_AUTH_TIMEOUT_IN_MS=1000 WS_IDLE_TIMEOUT_IN_SECONDS=2
	quick_port=$STARTED_PORT
	say "sociald main :$main_port, tight :$tight_port (pid $tight_pid), quick :$quick_port"

	(cd "$HERE" && node hostile.js "$main_port" "$tight_port" "$tight_pid" "$quick_port" "$@") ||
		rc=$?

	# The tight daemon was SIGTERMed by the last case: it must have drained and exited 0.
	if (($# == 0)) || [[ " $* " == *" sigterm_closes_everyone_1001 "* ]]; then
		status=$(sociald_exit_status tight)
		if [[ $status == 0 ]]; then
			echo "hostile: sigterm_exit_status ... ok"
		else
			echo "hostile: sigterm_exit_status ... FAILED"
			echo "  sociald exited $status after SIGTERM" >&2
			rc=1
		fi
	fi
	for name in main quick; do
		port=$main_port
		[[ $name == quick ]] && port=$quick_port
		if http_get "$port" /health/live >/dev/null 2>&1; then
			echo "hostile: ${name}_alive_at_the_end ... ok"
		else
			echo "hostile: ${name}_alive_at_the_end ... FAILED"
			rc=1
		fi
	done
	if ((rc != 0)); then
		for name in main tight quick; do
			echo "hostile: last lines of the $name daemon's log ($WORK/sociald.$name.log):"
			tail -n 30 "$WORK/sociald.$name.log" || true
		done
	fi
	return "$rc"
}

main "$@"
