#!/usr/bin/env bash
#
# Upgrade-path test: a database that was created at the oldest release and walked through every
# delta script must end up identical to a fresh install of the current version.
#
# Versions are discovered from the repo, never listed by hand:
#   sql/social--X.Y.Z.sql           full install scripts
#   migrations/social--A--B.sql     deltas, installed next to them by extension/Makefile
#   extension/social.control        default_version, where the walk must end
#
# "Identical" is checked three ways, all of which must match between the two databases:
#   - `\dx social` (the installed version),
#   - pg_dump --schema-only --schema=social, without comments and blank lines (objects in the
#     schema that do not belong to the extension, the schema itself and its privileges),
#   - a catalog listing of every object the extension owns, with its full definition: pg_dump
#     prints extension members only as "CREATE EXTENSION", so it cannot see drift inside them.
#     Columns are listed in position order: a delta that appends a column the fresh script
#     declares in the middle changes `SELECT *` and must be caught. The rows the scripts leave
#     in the extension's tables (count and checksum) and its sequences' values are listed too.
#
# The listing describes in full only the kinds of object the extension has (functions,
# procedures and aggregates; tables, views, sequences and indexes; composite, enum and domain
# types; event triggers; its schema). A member of any other kind (an operator, a cast, a base
# type...) fails the test until catalog.sql describes it: otherwise only its name would be
# compared, and drift inside it would pass unseen.
#
# The scripts compared are the ones installed in PostgreSQL's share directory, so they must be
# byte for byte the ones in sql/ and migrations/ (make install); the test checks that first.
#
# Not compared: roles. They are global to the cluster, so both databases see the same ones;
# sql/social--X.Y.Z.sql creates social_service and social_analyst only if they are missing.
#
# Runs against the server of tools/pg_harness (PGHOST, PGPORT, PGUSER from the environment);
# creates and drops the databases upg_walk and upg_fresh.

set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
readonly ROOT
readonly DB_WALK=upg_walk DB_FRESH=upg_fresh
readonly PROG=upgrade

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
	dropdb --if-exists "$DB_WALK" >/dev/null 2>&1 || true
	dropdb --if-exists "$DB_FRESH" >/dev/null 2>&1 || true
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

# True if version $1 sorts after version $2.
version_gt() {
	[[ $1 != "$2" && $(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n 1) == "$1" ]]
}

installed_version() {
	psql_db "$1" -At -c "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'social'"
}

# ---------------------------------------------------------------------------------------------
# Discover the versions.

control=$ROOT/extension/social.control
[[ -f $control ]] || fail "$control not found"
target=$(sed -nE "s/^[[:space:]]*default_version[[:space:]]*=[[:space:]]*'([^']+)'.*/\\1/p" "$control")
[[ -n $target ]] || fail "no default_version in $control"

full_versions=()
shopt -s nullglob
for f in "$ROOT"/sql/social--*.sql; do
	v=${f##*/social--}
	v=${v%.sql}
	[[ $v == *--* ]] && continue # a delta that strayed into sql/
	full_versions+=("$v")
done
declare -A delta_from=() delta_to=()
for f in "$ROOT"/migrations/social--*--*.sql; do
	name=${f##*/social--}
	name=${name%.sql}
	delta_from[$name]=${name%%--*}
	delta_to[$name]=${name#*--}
done
shopt -u nullglob

((${#full_versions[@]} > 0)) || fail "no full install script sql/social--X.Y.Z.sql"
oldest=$(printf '%s\n' "${full_versions[@]}" | sort -V | head -n 1)

# A script newer than default_version means the control file was not bumped with it.
for v in "${full_versions[@]}"; do
	if version_gt "$v" "$target"; then
		fail "sql/social--$v.sql is newer than default_version $target in extension/social.control"
	fi
done
for name in "${!delta_to[@]}"; do
	if version_gt "${delta_to[$name]}" "$target"; then
		fail "migrations/social--$name.sql goes past default_version $target in extension/social.control"
	fi
done

# What CREATE EXTENSION and ALTER EXTENSION read is the installed copy: it must be this repo's.
sharedir=$("${PG_CONFIG:-pg_config}" --sharedir)/extension
for f in "$ROOT"/sql/social--*.sql "$ROOT"/migrations/social--*--*.sql; do
	[[ -f $f ]] || continue
	cmp -s -- "$f" "$sharedir/${f##*/}" ||
		fail "$sharedir/${f##*/} is not ${f#"$ROOT"/} of this checkout: run make install"
done

say "oldest release $oldest, default_version $target, ${#delta_to[@]} delta script(s)"

work=$(mktemp -d)

# ---------------------------------------------------------------------------------------------
# Walk from the oldest release through every delta, one release at a time.

dropdb --if-exists "$DB_WALK" >/dev/null
dropdb --if-exists "$DB_FRESH" >/dev/null
createdb "$DB_WALK"
psql_db "$DB_WALK" -v ver="$oldest" <<'SQL'
CREATE EXTENSION social VERSION :'ver';
SQL
[[ $(installed_version "$DB_WALK") == "$oldest" ]] || fail "CREATE EXTENSION did not install $oldest"

declare -A walked=()
current=$oldest
while [[ $current != "$target" ]]; do
	# The next step is the nearest release reachable from here.
	next=""
	step=""
	for name in "${!delta_from[@]}"; do
		[[ ${delta_from[$name]} == "$current" ]] || continue
		if [[ -z $next ]] || version_gt "$next" "${delta_to[$name]}"; then
			next=${delta_to[$name]}
			step=$name
		fi
	done
	[[ -n $next ]] || fail "no delta migrations/social--$current--*.sql: cannot reach $target from $current"
	if ! version_gt "$next" "$current"; then
		fail "migrations/social--$step.sql does not move forward"
	fi

	say "ALTER EXTENSION social UPDATE TO '$next'"
	psql_db "$DB_WALK" -v ver="$next" <<'SQL' || fail "update $current -> $next failed"
ALTER EXTENSION social UPDATE TO :'ver';
SQL
	[[ $(installed_version "$DB_WALK") == "$next" ]] || fail "after UPDATE TO $next the version is not $next"
	walked[$step]=1
	current=$next
done

for name in "${!delta_to[@]}"; do
	if [[ -z ${walked[$name]:-} ]]; then
		say "warning: migrations/social--$name.sql is not on the path $oldest -> $target and was not exercised"
	fi
done

# ---------------------------------------------------------------------------------------------
# Fresh install of the current version.

createdb "$DB_FRESH"
psql_db "$DB_FRESH" -c 'CREATE EXTENSION social'
[[ $(installed_version "$DB_FRESH") == "$target" ]] ||
	fail "CREATE EXTENSION social installed $(installed_version "$DB_FRESH"), not default_version $target"

# ---------------------------------------------------------------------------------------------
# Compare.

# One line per fact about the extension's objects; sorted, so two databases compare with diff.
cat >"$work/catalog.sql" <<'SQL'
WITH ext AS (
    SELECT e.oid, e.extversion, e.extnamespace, e.extconfig, e.extcondition
    FROM pg_catalog.pg_extension e
    WHERE e.extname = 'social'
),
members AS (
    SELECT d.classid, d.objid, d.objsubid
    FROM pg_catalog.pg_depend d
    JOIN ext ON d.refobjid = ext.oid
    WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e'
),
member_rels AS (
    SELECT m.objid AS oid FROM members m WHERE m.classid = 'pg_catalog.pg_class'::regclass
    UNION
    SELECT t.typrelid FROM pg_catalog.pg_type t
    JOIN members m ON m.classid = 'pg_catalog.pg_type'::regclass AND m.objid = t.oid
    WHERE t.typrelid <> 0
),
rels AS (
    SELECT oid FROM member_rels
    UNION
    -- sequences owned by the extension's tables (serial, identity), member or not
    SELECT d.objid FROM pg_catalog.pg_depend d
    JOIN member_rels r ON d.refobjid = r.oid
    JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
    WHERE d.classid = 'pg_catalog.pg_class'::regclass
      AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype IN ('a', 'i')
),
facts(line) AS (
    SELECT 'version ' || ext.extversion FROM ext
UNION ALL
    SELECT 'member ' || pg_catalog.pg_describe_object(m.classid, m.objid, m.objsubid) FROM members m
UNION ALL
    SELECT format('config-dump %s where %s', c.rel::regclass, coalesce(c.cond, ''))
    FROM ext, unnest(ext.extconfig, ext.extcondition) AS c(rel, cond)
UNION ALL
    SELECT format('schema %s owner=%s acl=%s', n.nspname, pg_catalog.pg_get_userbyid(n.nspowner),
                  coalesce(n.nspacl::text, '-'))
    FROM pg_catalog.pg_namespace n JOIN ext ON n.oid = ext.extnamespace
UNION ALL
    SELECT format('default-acl %s %s %s', pg_catalog.pg_get_userbyid(da.defaclrole), da.defaclobjtype,
                  da.defaclacl)
    FROM pg_catalog.pg_default_acl da JOIN ext ON da.defaclnamespace = ext.extnamespace
UNION ALL
    SELECT format('function %s kind=%s owner=%s acl=%s', p.oid::regprocedure, p.prokind,
                  pg_catalog.pg_get_userbyid(p.proowner), coalesce(p.proacl::text, '-'))
           || CASE WHEN p.prokind = 'a' THEN
                  format(' sfunc=%s stype=%s finalfunc=%s combinefunc=%s initcond=%s',
                         a.aggtransfn, pg_catalog.format_type(a.aggtranstype, NULL), a.aggfinalfn,
                         a.aggcombinefn, coalesce(a.agginitval, '-'))
              ELSE E'\n' || pg_catalog.pg_get_functiondef(p.oid) END
    FROM pg_catalog.pg_proc p
    JOIN members m ON m.classid = 'pg_catalog.pg_proc'::regclass AND m.objid = p.oid
    LEFT JOIN pg_catalog.pg_aggregate a ON a.aggfnoid = p.oid
UNION ALL
    SELECT format('relation %s kind=%s persistence=%s owner=%s acl=%s rls=%s forcerls=%s replident=%s options=%s partkey=%s bound=%s',
                  c.oid::regclass, c.relkind, c.relpersistence, pg_catalog.pg_get_userbyid(c.relowner),
                  coalesce(c.relacl::text, '-'), c.relrowsecurity, c.relforcerowsecurity, c.relreplident,
                  coalesce(c.reloptions::text, '-'),
                  CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) ELSE '-' END,
                  coalesce(pg_catalog.pg_get_expr(c.relpartbound, c.oid), '-'))
    FROM pg_catalog.pg_class c JOIN rels r ON r.oid = c.oid
UNION ALL
    SELECT format('column %s #%s %s %s%s%s%s%s%s storage=%s compression=%s stattarget=%s options=%s acl=%s',
                  a.attrelid::regclass,
                  row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum), a.attname,
                  pg_catalog.format_type(a.atttypid, a.atttypmod),
                  CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                  CASE WHEN a.attidentity <> '' THEN ' identity=' || a.attidentity::text ELSE '' END,
                  CASE WHEN a.attgenerated <> '' THEN ' generated=' || a.attgenerated::text ELSE '' END,
                  coalesce(' default ' || pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), ''),
                  CASE WHEN a.attcollation <> t.typcollation
                       THEN ' collate ' || a.attcollation::regcollation::text ELSE '' END,
                  a.attstorage, coalesce(nullif(a.attcompression::text, ''), '-'), a.attstattarget,
                  -- The server build this is tested on (15.20-0+deb12u1) stamps every column
                  -- with a pg_attver=N option, another N at each CREATE: not part of the
                  -- definition, so left out.
                  coalesce(nullif(array_to_string(ARRAY(SELECT o FROM unnest(a.attoptions) AS o
                                                        WHERE o NOT LIKE 'pg\_attver=%'
                                                        ORDER BY o), ','), ''), '-'),
                  coalesce(a.attacl::text, '-'))
    FROM pg_catalog.pg_attribute a
    JOIN rels r ON r.oid = a.attrelid
    JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    WHERE a.attnum > 0 AND NOT a.attisdropped
UNION ALL
    SELECT format('view %s%s', c.oid::regclass, E'\n' || pg_catalog.pg_get_viewdef(c.oid, true))
    FROM pg_catalog.pg_class c JOIN rels r ON r.oid = c.oid
    WHERE c.relkind IN ('v', 'm')
UNION ALL
    SELECT format('sequence %s type=%s start=%s increment=%s min=%s max=%s cache=%s cycle=%s',
                  s.seqrelid::regclass, pg_catalog.format_type(s.seqtypid, NULL), s.seqstart,
                  s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
    FROM pg_catalog.pg_sequence s JOIN rels r ON r.oid = s.seqrelid
UNION ALL
    -- What the install scripts leave in the sequences and tables: a full script that seeds rows
    -- (or calls setval) which its delta does not, or the other way round, is drift too.
    SELECT format('sequence %s last_value=%s', s.seqrelid::regclass,
                  coalesce(pg_catalog.pg_sequence_last_value(s.seqrelid)::text, 'unused'))
    FROM pg_catalog.pg_sequence s JOIN rels r ON r.oid = s.seqrelid
UNION ALL
    SELECT format('rows %s %s', c.oid::regclass,
                  (xpath('/row/x/text()',
                         query_to_xml(format('SELECT count(*) || '' md5='' || coalesce(md5(string_agg(t::text, E''\n'' ORDER BY t::text)), ''-'') AS x FROM ONLY %s t',
                                             c.oid::regclass),
                                      false, true, '')))[1]::text)
    FROM pg_catalog.pg_class c JOIN rels r ON r.oid = c.oid
    WHERE c.relkind IN ('r', 'm')
UNION ALL
    SELECT format('sequence %s owned-by %s.%s', d.objid::regclass, d.refobjid::regclass, att.attname)
    FROM pg_catalog.pg_depend d
    JOIN rels r ON r.oid = d.objid
    JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
    JOIN pg_catalog.pg_attribute att ON att.attrelid = d.refobjid AND att.attnum = d.refobjsubid
    WHERE d.classid = 'pg_catalog.pg_class'::regclass
      AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype IN ('a', 'i')
UNION ALL
    SELECT format('constraint %s %s %s', co.conrelid::regclass, co.conname,
                  pg_catalog.pg_get_constraintdef(co.oid))
    FROM pg_catalog.pg_constraint co JOIN rels r ON r.oid = co.conrelid
UNION ALL
    SELECT format('index %s%s', pg_catalog.pg_get_indexdef(i.indexrelid),
                  CASE WHEN i.indisclustered THEN ' clustered' ELSE '' END)
    FROM pg_catalog.pg_index i JOIN rels r ON r.oid = i.indrelid
UNION ALL
    SELECT format('trigger %s enabled=%s', pg_catalog.pg_get_triggerdef(tg.oid), tg.tgenabled)
    FROM pg_catalog.pg_trigger tg JOIN rels r ON r.oid = tg.tgrelid
    WHERE NOT tg.tgisinternal
UNION ALL
    SELECT format('rule %s', pg_catalog.pg_get_ruledef(rw.oid))
    FROM pg_catalog.pg_rewrite rw JOIN rels r ON r.oid = rw.ev_class
    WHERE rw.rulename <> '_RETURN'
UNION ALL
    SELECT format('policy %s %s cmd=%s permissive=%s roles=%s using=%s check=%s',
                  pol.polrelid::regclass, pol.polname, pol.polcmd, pol.polpermissive,
                  array_to_string(ARRAY(SELECT CASE WHEN rid = 0 THEN 'public'
                                                    ELSE pg_catalog.pg_get_userbyid(rid)::text END
                                        FROM unnest(pol.polroles) AS rid ORDER BY 1), ','),
                  coalesce(pg_catalog.pg_get_expr(pol.polqual, pol.polrelid), '-'),
                  coalesce(pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid), '-'))
    FROM pg_catalog.pg_policy pol JOIN rels r ON r.oid = pol.polrelid
UNION ALL
    SELECT format('type %s type=%s acl=%s', t.oid::regtype, t.typtype, coalesce(t.typacl::text, '-'))
           || CASE t.typtype
                  WHEN 'e' THEN ' labels=' || (SELECT string_agg(quote_literal(e.enumlabel), ','
                                                                 ORDER BY e.enumsortorder)
                                               FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid)
                  WHEN 'd' THEN format(' base=%s notnull=%s default=%s',
                                       pg_catalog.format_type(t.typbasetype, t.typtypmod),
                                       t.typnotnull, coalesce(t.typdefault, '-'))
                  ELSE '' END
    FROM pg_catalog.pg_type t
    JOIN members m ON m.classid = 'pg_catalog.pg_type'::regclass AND m.objid = t.oid
UNION ALL
    SELECT format('domain-constraint %s %s %s', co.contypid::regtype, co.conname,
                  pg_catalog.pg_get_constraintdef(co.oid))
    FROM pg_catalog.pg_constraint co
    JOIN members m ON m.classid = 'pg_catalog.pg_type'::regclass AND m.objid = co.contypid
UNION ALL
    SELECT format('event-trigger %s on %s tags=%s function=%s enabled=%s', et.evtname, et.evtevent,
                  coalesce(et.evttags::text, '-'), et.evtfoid::regproc, et.evtenabled)
    FROM pg_catalog.pg_event_trigger et
    JOIN members m ON m.classid = 'pg_catalog.pg_event_trigger'::regclass AND m.objid = et.oid
UNION ALL
    SELECT format('comment %s: %s',
                  pg_catalog.pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description)
    FROM pg_catalog.pg_description d
    WHERE (d.classoid, d.objoid) IN (SELECT m.classid, m.objid FROM members m)
       OR (d.classoid = 'pg_catalog.pg_class'::regclass AND d.objoid IN (SELECT oid FROM rels))
       OR (d.classoid = 'pg_catalog.pg_constraint'::regclass
           AND d.objoid IN (SELECT co.oid FROM pg_catalog.pg_constraint co
                            WHERE co.conrelid IN (SELECT oid FROM rels)))
       OR (d.classoid = 'pg_catalog.pg_trigger'::regclass
           AND d.objoid IN (SELECT tg.oid FROM pg_catalog.pg_trigger tg
                            WHERE tg.tgrelid IN (SELECT oid FROM rels)))
)
SELECT line FROM facts ORDER BY line COLLATE "C";
SQL

snapshot() {
	local db=$1
	echo "== \\dx social"
	psql_db "$db" -At -c '\dx social'
	echo "== pg_dump --schema-only --schema=social"
	pg_dump --schema-only --schema=social -f "$work/$db.dump.sql" "$db"
	# \restrict lines carry a random key per dump (PostgreSQL 15.14 and later).
	grep -vE '^--|^[[:space:]]*$|^\\(un)?restrict ' "$work/$db.dump.sql" || true
	echo "== catalog"
	psql_db "$db" -At -f "$work/catalog.sql"
}

# Members whose kind catalog.sql does not describe in full (see the header).
cat >"$work/undescribed.sql" <<'SQL'
SELECT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_extension e ON d.refobjid = e.oid AND e.extname = 'social'
LEFT JOIN pg_catalog.pg_class c ON d.classid = 'pg_catalog.pg_class'::regclass AND c.oid = d.objid
LEFT JOIN pg_catalog.pg_type t ON d.classid = 'pg_catalog.pg_type'::regclass AND t.oid = d.objid
WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e'
  AND NOT (d.classid IN ('pg_catalog.pg_proc'::regclass, 'pg_catalog.pg_event_trigger'::regclass,
                         'pg_catalog.pg_namespace'::regclass)
           OR coalesce(c.relkind IN ('r', 'p', 'v', 'm', 'S', 'i', 'I', 'c'), false)
           OR coalesce(t.typtype IN ('c', 'e', 'd'), false))
ORDER BY 1;
SQL
for db in "$DB_WALK" "$DB_FRESH"; do
	undescribed=$(psql_db "$db" -At -f "$work/undescribed.sql")
	if [[ -n $undescribed ]]; then
		printf '%s\n' "$undescribed" >&2
		fail "the extension in $db owns objects of a kind the comparison does not describe (above): add them to catalog.sql in $0"
	fi
done

snapshot "$DB_WALK" >"$work/walk.txt"
snapshot "$DB_FRESH" >"$work/fresh.txt"

if ! diff -u --label "walked $oldest -> $target ($DB_WALK)" --label "fresh $target ($DB_FRESH)" \
	"$work/walk.txt" "$work/fresh.txt"; then
	fail "the upgraded database differs from a fresh install (diff above)"
fi
say "ok: walked $oldest -> $target matches a fresh install ($(grep -c '^member ' "$work/fresh.txt") objects compared)"
