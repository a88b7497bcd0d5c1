#!/bin/bash
#
# postgres-entrypoint -- of docker/Dockerfile.postgres. On an empty $PGDATA: initdb, database
# $POSTGRES_DB, every /docker-entrypoint-initdb.d/*.sql in it (the extension), and the daemon's
# login role. Then (always) exec postgres with the arguments given.
#
# Environment (names of the official postgres image where they exist):
#   POSTGRES_USER (postgres), POSTGRES_PASSWORD, POSTGRES_DB (social), PGDATA, PGPORT (5432)
#   POSTGRES_HOST_AUTH_METHOD   scram-sha-256 (default; then POSTGRES_PASSWORD is required) or trust
#   SOCIALD_DB_USER (sociald), SOCIALD_DB_PASSWORD (default: POSTGRES_PASSWORD)
#       the role sociald logs in with: LOGIN, member of social_service, nothing more.

set -euo pipefail

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=social}"
: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
: "${SOCIALD_DB_USER:=sociald}"
SOCIALD_DB_PASSWORD=${SOCIALD_DB_PASSWORD:-${POSTGRES_PASSWORD:-}}
export PGDATA

say() { printf 'postgres-entrypoint: %s\n' "$*"; }

init_cluster() {
	if [[ $POSTGRES_HOST_AUTH_METHOD != trust && -z ${POSTGRES_PASSWORD:-} ]]; then
		say "POSTGRES_PASSWORD is empty: set it, or POSTGRES_HOST_AUTH_METHOD=trust" >&2
		exit 1
	fi
	say "initialising $PGDATA"
	local pwfile
	pwfile=$(mktemp)
	printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
	initdb -D "$PGDATA" -U "$POSTGRES_USER" -E UTF8 --locale=C.UTF-8 --auth-local=trust \
		--auth-host="$POSTGRES_HOST_AUTH_METHOD" --pwfile="$pwfile" >/dev/null
	rm -f "$pwfile"
	printf 'host all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"

	# A server on the Unix socket only for the setup.
	pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -k /var/run/postgresql" start >/dev/null
	local psql=(psql -X -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$POSTGRES_USER")
	if [[ $POSTGRES_DB != postgres ]]; then
		"${psql[@]}" -d postgres -v db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
	fi
	local f
	for f in /docker-entrypoint-initdb.d/*; do
		case $f in
			*.sql)
				say "running $f"
				PGOPTIONS="-c client_min_messages=warning" "${psql[@]}" -d "$POSTGRES_DB" -f "$f"
				;;
			*.sh)
				say "running $f"
				# shellcheck disable=SC1090
				. "$f"
				;;
		esac
	done
	"${psql[@]}" -d "$POSTGRES_DB" -v role="$SOCIALD_DB_USER" -v pw="$SOCIALD_DB_PASSWORD" <<'SQL'
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') AS create_role \gset
\if :create_role
CREATE ROLE :"role" LOGIN IN ROLE social_service;
\endif
SELECT :'pw' <> '' AS set_password \gset
\if :set_password
ALTER ROLE :"role" PASSWORD :'pw';
\endif
SQL
	say "role $SOCIALD_DB_USER (member of social_service) in database $POSTGRES_DB"
	pg_ctl -D "$PGDATA" -w -m fast stop >/dev/null
	say "initialised"
}

if [[ ! -s $PGDATA/PG_VERSION ]]; then
	init_cluster
fi
exec postgres "$@"
