# shellcheck shell=bash disable=SC2034 # STARTED_* and ROOT are read by the callers
#
# lib.sh -- what the black-box suites (test/e2e/run.sh, test/compat/run.sh) share: a database
# with the extension, sociald on a free loopback port, and the bookkeeping that guarantees every
# process they start is stopped by its pid, whatever happens.
#
# The caller sets LIB_NAME (the prefix of messages) and calls lib_init, which creates the work
# dir and installs the EXIT trap. PostgreSQL comes from tools/pg_harness (PGPORT etc. are set).

ROOT=${ROOT:-$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)}
SOCIALD=${SOCIALD:-$ROOT/daemon/build/sociald}
SOCIALCTL=${SOCIALCTL:-$ROOT/daemon/build/socialctl}
LIB_NAME=${LIB_NAME:-test}
ROLE=sociald_test # the daemon logs in with nothing but the extension's service role

WAIT_LIMIT_S=30 # safety net of every wait on a condition: a hang becomes a failure

WORK=""
PIDS_FILE=""

say() { printf '%s: %s\n' "$LIB_NAME" "$*"; }
fail() {
	printf '%s: FAIL: %s\n' "$LIB_NAME" "$*" >&2
	exit 1
}

pid_alive() {
	local stat
	kill -0 "$1" 2>/dev/null || return 1
	# cat, not $(<file): a failed redirection would end a set -e (sub)shell when the process
	# is reaped between the two reads.
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}

# Stops one process we started: TERM, then KILL if it will not go within 10 s.
stop_pid() {
	local pid=$1 i
	pid_alive "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		pid_alive "$pid" || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

track_pid() { echo "$1" >>"$PIDS_FILE"; }

lib_cleanup() {
	local rc=$? pid
	trap '' INT TERM HUP
	if [[ -n $PIDS_FILE && -f $PIDS_FILE ]]; then
		while read -r pid; do
			[[ -n $pid ]] && stop_pid "$pid"
		done <"$PIDS_FILE"
	fi
	if [[ -n $WORK && -d $WORK ]]; then
		if ((rc != 0)) || [[ ${KEEP_WORK:-} == 1 ]]; then
			say "work dir kept: $WORK"
		else
			rm -rf -- "$WORK"
		fi
	fi
	exit "$rc"
}

lib_init() {
	[[ -n ${PGPORT:-} ]] || {
		echo "$LIB_NAME: run me inside tools/pg_harness (PGPORT is not set)" >&2
		exit 2
	}
	[[ -x $SOCIALD ]] || {
		echo "$LIB_NAME: build the daemon first (make -C daemon): no $SOCIALD" >&2
		exit 2
	}
	command -v curl >/dev/null || {
		echo "$LIB_NAME: curl is needed for the daemon's HTTP endpoints" >&2
		exit 2
	}
	trap lib_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	WORK=$(mktemp -d "/tmp/social_$LIB_NAME.XXXXXX")
	PIDS_FILE=$WORK/pids
	: >"$PIDS_FILE"
}

# Waits until "$@" succeeds; fails after WAIT_LIMIT_S.
wait_for() {
	local what=$1 i
	shift
	for ((i = 0; i < WAIT_LIMIT_S * 20; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	fail "gave up after ${WAIT_LIMIT_S}s waiting for $what"
}

port_busy() {
	local port=$1
	if command -v ss >/dev/null 2>&1 && [[ -n $(ss -Hltn "sport = :$port" 2>/dev/null) ]]; then
		return 0
	fi
	# shellcheck disable=SC2016 # $1 is expanded by the inner bash
	timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$port" 2>/dev/null
}

free_port() {
	local i port
	for ((i = 0; i < 100; i++)); do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 40001))
		if ! port_busy "$port"; then
			echo "$port"
			return 0
		fi
	done
	return 1
}

http_get() {
	curl -fsS --max-time 5 "http://127.0.0.1:$1$2"
}

metric_is() {
	local port=$1 name=$2 want=$3
	http_get "$port" /metrics 2>/dev/null | grep -qx "sociald_$name $want"
}

# setup_database DB: a fresh database with the extension, and the daemon's login role.
setup_database() {
	local db=$1
	PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -d postgres \
		-c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
	PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -d "$db" \
		-c 'CREATE EXTENSION social' >/dev/null
	# Roles are cluster-wide: create it once.
	psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DO \$\$ BEGIN
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
			CREATE ROLE $ROLE LOGIN IN ROLE social_service;
		END IF; END \$\$" >/dev/null
}

# start_sociald NAME DB [VAR=VALUE...]: starts a daemon on a free loopback port; sets
# STARTED_PORT and STARTED_PID. Ready means: /health/live answers, the query pool and LISTEN are
# up. A small wrapper writes the daemon's exit status to $WORK/sociald.NAME.rc, so a scenario
# running in a subshell (which cannot `wait` for it) can check how it ended. SOCIALD_NOFILE=N
# among the settings starts it with an open file limit (soft and hard) of N.
STARTED_PORT=""
STARTED_PID=""
start_sociald() {
	local name=$1 db=$2 attempt port pid wrapper log rcfile pidfile i up
	shift 2
	log=$WORK/sociald.$name.log
	rcfile=$WORK/sociald.$name.rc
	pidfile=$WORK/sociald.$name.pid
	for ((attempt = 1; attempt <= 5; attempt++)); do
		port=$(free_port) || fail "no free port"
		rm -f -- "$rcfile" "$pidfile"
		# shellcheck disable=SC2016 # expanded by the wrapper
		env WS_HOST=127.0.0.1 RPC_SERVER_PORT="$port" \
			PG_CONNECTION_STRING="hostaddr=127.0.0.1 port=$PGPORT dbname=$db user=$ROLE" \
			LOG_LEVEL=info "$@" \
			bash -c 'if [[ -n ${SOCIALD_NOFILE:-} ]]; then ulimit -n "$SOCIALD_NOFILE" || exit 1; fi
				"$1" & echo $! >"$2"; wait $!; echo $? >"$3"' _ \
			"$SOCIALD" "$pidfile" "$rcfile" >>"$log" 2>&1 &
		wrapper=$!
		track_pid "$wrapper"
		for ((i = 0; i < 250; i++)); do
			[[ -s $pidfile ]] && break
			sleep 0.02
		done
		pid=$(cat "$pidfile" 2>/dev/null) || fail "sociald $name: no pid"
		track_pid "$pid"
		up=0
		for ((i = 0; i < WAIT_LIMIT_S * 20; i++)); do
			pid_alive "$pid" || break
			if http_get "$port" /health/live >/dev/null 2>&1; then
				up=1
				break
			fi
			sleep 0.05
		done
		if ((up)); then
			STARTED_PORT=$port
			STARTED_PID=$pid
			wait_for "sociald $name: PostgreSQL pool up" metric_is "$port" pg_up 1
			wait_for "sociald $name: LISTEN up" metric_is "$port" pg_listen_up 1
			return 0
		fi
		stop_pid "$pid"
		if grep -qiE 'address already in use|could not bind|EADDRINUSE' "$log"; then
			continue
		fi
		tail -n 40 "$log" >&2
		fail "sociald $name did not start (log: $log)"
	done
	fail "sociald $name: no free port after 5 attempts"
}

# The exit status of daemon NAME once it has ended (waits for it, within the safety limit).
sociald_exit_status() {
	local rcfile=$WORK/sociald.$1.rc
	wait_for "sociald $1 to exit" test -s "$rcfile"
	cat "$rcfile"
}

# ---------------------------------------------------------------------------------------------
# redis-server and nats-server of a suite's own (test/e2e/presence.sh starts them to kill and
# restart them, or to run with settings of its own). Both listen on loopback only, keep nothing
# on disk, and are stopped by pid like everything else here. Restarting on the same port is what
# a daemon's reconnect sees as "the server came back".

# Host and port of a redis:// or nats:// URL (default ports 6379 and 4222): "host port".
url_host_port() {
	local url=$1 default=$2 rest host port
	rest=${url#*://}
	rest=${rest##*@}
	rest=${rest%%/*}
	if [[ $rest == \[* ]]; then
		host=${rest%%]*}
		host=${host#[}
		rest=${rest#*]}
		port=${rest#:}
	elif [[ $rest == *:* ]]; then
		host=${rest%%:*}
		port=${rest##*:}
	else
		host=$rest
		port=""
	fi
	printf '%s %s\n' "${host:-127.0.0.1}" "${port:-$default}"
}

redis_ping() {
	[[ $(timeout 3 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) == PONG ]]
}

# start_redis NAME [PORT]: a redis-server with no persistence (a restart starts empty, the
# worst case for the daemons); sets STARTED_REDIS_PORT and STARTED_REDIS_PID. With PORT (a
# restart) that port, else a free one.
STARTED_REDIS_PORT=""
STARTED_REDIS_PID=""
start_redis() {
	local name=$1 fixed=${2:-} attempt port pid log i up
	command -v redis-server >/dev/null || fail "no redis-server (apt-get install redis-server)"
	log=$WORK/redis.$name.log
	for ((attempt = 1; attempt <= 5; attempt++)); do
		port=${fixed:-$(free_port)} || fail "no free port for redis-server"
		redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
			--dir "$WORK" --dbfilename "redis.$name.rdb" --daemonize no --logfile '' \
			>>"$log" 2>&1 &
		pid=$!
		track_pid "$pid"
		up=0
		for ((i = 0; i < WAIT_LIMIT_S * 20; i++)); do
			pid_alive "$pid" || break
			if redis_ping "$port"; then
				up=1
				break
			fi
			sleep 0.05
		done
		if ((up)); then
			STARTED_REDIS_PORT=$port
			STARTED_REDIS_PID=$pid
			return 0
		fi
		stop_pid "$pid"
		if [[ -z $fixed ]] && grep -qiE 'address already in use' "$log"; then
			continue
		fi
		tail -n 20 "$log" >&2
		fail "redis-server $name did not start on port $port (log: $log)"
	done
	fail "redis-server $name: no free port after 5 attempts"
}

# nats_ping PORT: the server on 127.0.0.1:PORT speaks NATS (INFO, then PONG for our PING).
nats_ping() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	timeout 3 bash -c '
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		IFS= read -r line <&3 && [[ $line == INFO* ]] || exit 1
		printf "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n" >&3
		while IFS= read -r line <&3; do
			[[ $line == PONG* ]] && exit 0
			[[ $line == -ERR* ]] && exit 1
		done
		exit 1' _ "$1" 2>/dev/null
}

# start_nats NAME [PORT]: a nats-server (no JetStream, no monitoring port); sets
# STARTED_NATS_PORT and STARTED_NATS_PID. With PORT (a restart) that port, else a free one.
STARTED_NATS_PORT=""
STARTED_NATS_PID=""
start_nats() {
	local name=$1 fixed=${2:-} attempt port pid log i up
	command -v nats-server >/dev/null || fail "no nats-server (apt-get install nats-server)"
	log=$WORK/nats.$name.log
	for ((attempt = 1; attempt <= 5; attempt++)); do
		port=${fixed:-$(free_port)} || fail "no free port for nats-server"
		nats-server -a 127.0.0.1 -p "$port" >>"$log" 2>&1 &
		pid=$!
		track_pid "$pid"
		up=0
		for ((i = 0; i < WAIT_LIMIT_S * 20; i++)); do
			pid_alive "$pid" || break
			if nats_ping "$port"; then
				up=1
				break
			fi
			sleep 0.05
		done
		if ((up)); then
			STARTED_NATS_PORT=$port
			STARTED_NATS_PID=$pid
			return 0
		fi
		stop_pid "$pid"
		if [[ -z $fixed ]] && grep -qiE 'address already in use' "$log"; then
			continue
		fi
		tail -n 20 "$log" >&2
		fail "nats-server $name did not start on port $port (log: $log)"
	done
	fail "nats-server $name: no free port after 5 attempts"
}

# kill_now PID: SIGKILL, the crash case, and waits until it is gone (reaped quietly when it is
# a child of this shell: bash would print "Killed" for it).
kill_now() {
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	wait_for "pid $1 to die" eval "! pid_alive $1"
}

# nats_pub HOST PORT SUBJECT [BODY_FILE]...: publishes, over the NATS text protocol, one message
# per SUBJECT[=BODY_FILE] argument after HOST PORT (no file: an empty body), in order on one
# connection, and returns once the server has processed them all (PING answered by PONG after
# the last one). A subject the server refuses fails the call.
nats_pub() {
	local host=$1 port=$2 arg subject file size line
	shift 2
	(
		exec 3<>"/dev/tcp/$host/$port" || exit 1
		IFS= read -r -t 5 line <&3 && [[ $line == INFO* ]] || exit 1
		{
			printf 'CONNECT {"verbose":false,"pedantic":false}\r\n'
			for arg in "$@"; do
				subject=${arg%%=*}
				file=""
				[[ $arg == *=* ]] && file=${arg#*=}
				if [[ -n $file ]]; then
					size=$(stat -c %s -- "$file")
					printf 'PUB %s %d\r\n' "$subject" "$size"
					cat -- "$file"
					printf '\r\n'
				else
					printf 'PUB %s 0\r\n\r\n' "$subject"
				fi
			done
			printf 'PING\r\n'
		} >&3
		while IFS= read -r -t 10 line <&3; do
			line=${line%$'\r'}
			[[ $line == PONG ]] && exit 0
			if [[ $line == -ERR* ]]; then
				echo "nats_pub: server refused: $line" >&2
				exit 1
			fi
		done
		exit 1
	)
}
