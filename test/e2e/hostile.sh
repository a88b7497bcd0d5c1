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
#   fdcap  an open file limit of 400 (for 100 connections it wants 1,380): the sockets numbered
#          beyond what it keeps for itself are refused at once, and it stays healthy
# No timed assertion: every wait is for a condition, with a safety limit.

set -euo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck disable=SC2034 # read by lib.sh
LIB_NAME=hostile
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

DB=social_hostile
NODE_MAJOR_MIN=18

# A daemon with too few descriptors for its WS_MAX_CONNECTIONS: 300 raw TCP connections that
# never upgrade. It must say so at start, keep WS_FD_RESERVE descriptors for itself by refusing
# (closing at once) every socket numbered beyond the rest, and serve normally once they go.
FD_LIMIT=400
FD_SERVED=200 # a limit this small: sockets numbered from half of it on are refused (ws_fd_limit)
fd_limit_case() {
	local port out case=fd_limit_refuses_beyond_reserve
	start_sociald fdcap "$DB" SOCIALD_NOFILE=$FD_LIMIT WS_MAX_CONNECTIONS=100
	port=$STARTED_PORT
	if ! out=$(cd "$HERE" && PORT=$port TOTAL=300 LIMIT=$FD_SERVED node - <<'JS' 2>&1
const net = require('net');
const [port, total, limit] = ['PORT', 'TOTAL', 'LIMIT'].map((k) => Number(process.env[k]));
const socks = [];
let closed = 0;
const fail = (why) => { console.log(why); process.exit(1); };
const safety = setTimeout(() => fail(`only ${closed} of ${total} closed by the daemon`), 30000);
for (let i = 0; i < total; i++) {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  s.on('close', () => { closed++; check(); });
  socks.push(s);
}
// The daemon holds fewer than `limit` descriptors of any kind: at least total - limit sockets
// are closed by it, the others stay open until this client lets them go.
let checked = false;
function check() {
  if (checked || closed < total - limit) return;
  checked = true;
  clearTimeout(safety);
  setTimeout(() => {
    const open = socks.filter((s) => !s.destroyed).length;
    if (open === 0 || open >= limit) fail(`${open} sockets held open, expected 1..${limit - 1}`);
    for (const s of socks) s.destroy();
    console.log(`${closed} of ${total} refused, ${open} held`);
  }, 200);
}
JS
	); then
		echo "hostile: $case ... FAILED"
		echo "  $out" >&2
		return 1
	fi
	if ! grep -q "open file limit $FD_LIMIT is below" "$WORK/sociald.fdcap.log"; then
		echo "hostile: $case ... FAILED"
		echo "  sociald did not warn about its open file limit" >&2
		return 1
	fi
	# Everything refused or let go: the daemon answers HTTP and serves a WebSocket client.
	wait_for "fdcap: /health/live" eval 'http_get "$port" /health/live >/dev/null'
	if ! (cd "$HERE" && node -e '
const w = require("./wsraw.js");
(async () => {
  const c = await w.authed(+process.argv[1], new w.Identity("fdcap " + process.pid));
  c.destroy();
  process.exit(0);
})().catch((e) => { console.log(e.message); process.exit(1); });' "$port"); then
		echo "hostile: $case ... FAILED"
		echo "  no WebSocket client served after the flood" >&2
		return 1
	fi
	echo "hostile: $case ... ok ($out)"
}

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
	if (($# == 0)) || [[ " $* " == *" fd_limit_refuses_beyond_reserve "* ]]; then
		fd_limit_case || rc=1
	fi

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
		for name in main tight quick fdcap; do
			[[ -f $WORK/sociald.$name.log ]] || continue
			echo "hostile: last lines of the $name daemon's log ($WORK/sociald.$name.log):"
			tail -n 30 "$WORK/sociald.$name.log" || true
		done
	fi
	return "$rc"
}

main "$@"
