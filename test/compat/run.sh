#!/usr/bin/env bash
#
# compat -- sociald against the official client libraries (@dcl/rpc, @dcl/protocol, @dcl/crypto
# from npm, versions pinned in package-lock.json). Run inside tools/pg_harness:
#   tools/pg_harness -- bash test/compat/run.sh
# `make check` runs it as the compat suite.
#
# `npm ci` installs exactly the locked versions into test/compat/node_modules (never committed);
# it is skipped when node_modules already matches the lock file, so a second run needs no
# network. Then a database with the extension, sociald on a free loopback port, and compat.js.
#
# COMPAT_SOCIALD_URL=ws://HOST:PORT/ runs compat.js against that sociald instead, one already
# running with its database (tools/docker_check points it at the container); then no harness,
# database or daemon is started here, and PGPORT is not needed.

set -euo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck disable=SC2034 # read by lib.sh
LIB_NAME=compat
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
source "$HERE/../e2e/lib.sh"

DB=social_compat
NODE_MAJOR_MIN=18

need() {
	command -v "$1" >/dev/null || {
		echo "compat: $1 is needed (Node.js $NODE_MAJOR_MIN+ and npm) ... FAILED" >&2
		exit 1
	}
}

# npm records what it installed in node_modules/.package-lock.json; when that matches the lock
# file's packages, node_modules is current.
deps_current() {
	[[ -f $HERE/node_modules/.package-lock.json ]] || return 1
	node -e '
		const fs = require("fs");
		const lock = JSON.parse(fs.readFileSync(process.argv[1] + "/package-lock.json", "utf8"));
		const have = JSON.parse(fs.readFileSync(process.argv[1] + "/node_modules/.package-lock.json", "utf8"));
		const pick = (pkgs) => Object.fromEntries(Object.entries(pkgs)
			.filter(([k]) => k.startsWith("node_modules/"))
			.map(([k, v]) => [k, v.version + " " + (v.integrity || "")]));
		const a = pick(lock.packages), b = pick(have.packages);
		const same = Object.keys(a).length === Object.keys(b).length &&
			Object.keys(a).every((k) => a[k] === b[k]);
		process.exit(same ? 0 : 1);
	' "$HERE"
}

main() {
	need node
	need npm
	local major
	major=$(node -p 'process.versions.node.split(".")[0]')
	((major >= NODE_MAJOR_MIN)) || {
		echo "compat: Node.js $NODE_MAJOR_MIN+ is needed, this is $(node --version) ... FAILED" >&2
		exit 1
	}

	if deps_current; then
		say "node_modules matches package-lock.json; npm ci skipped"
	else
		say "npm ci (versions from package-lock.json)"
		(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error) ||
			fail "npm ci failed"
	fi

	if [[ -n ${COMPAT_SOCIALD_URL:-} ]]; then
		say "against the running sociald at $COMPAT_SOCIALD_URL"
		(cd "$HERE" && SOCIALD_URL=$COMPAT_SOCIALD_URL node compat.js)
		return
	fi

	lib_init
	setup_database "$DB"
	start_sociald main "$DB"
	say "sociald pid $STARTED_PID on ws://127.0.0.1:$STARTED_PORT/"

	local rc=0
	(cd "$HERE" && SOCIALD_URL="ws://127.0.0.1:$STARTED_PORT/" node compat.js) || rc=$?
	if ((rc != 0)); then
		echo "compat: last lines of the daemon's log ($WORK/sociald.main.log):"
		tail -n 40 "$WORK/sociald.main.log" || true
	fi
	return "$rc"
}

main "$@"
