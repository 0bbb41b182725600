#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `fleetd migrate` against real PostgreSQL (the "Foundation" acceptance):
# an empty database to the latest schema, a second run that applies nothing,
# refusal of an edited applied migration and of a migration this fleetd does
# not ship, a failing migration that leaves nothing behind, concurrent runs
# on a fresh database, and `fleetd serve` refusing an older schema.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"

MIGRATIONS=$FLEET_SOURCE_DIR/migrations
NFILES=$(find "$MIGRATIONS" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]_*.sql' | wc -l)
LATEST=$(find "$MIGRATIONS" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]_*.sql' -printf '%f\n' |
	sort | tail -n 1 | cut -c1-4 | sed 's/^0*//')
# Every table the shipped migrations create, as an outside oracle.
TABLES=$(grep -hoiE '^[[:space:]]*create table (if not exists )?[a-z_]+' "$MIGRATIONS"/*.sql |
	awk '{print $NF}' | sort -u)

fresh_db() {
	dropdb --if-exists "$DB" >/dev/null 2>&1
	createdb "$DB"
}

# run_migrate LOG [env...]: runs `fleetd migrate`, output in $T/LOG.log;
# sets RC.
run_migrate() {
	local log=$1
	shift
	RC=0
	env "$@" fleetd migrate >"$T/$log.log" 2>&1 || RC=$?
}

# --- an empty database to the latest schema -------------------------------
fresh_db
run_migrate migrate-1
assert_eq "$RC" 0 "migrate on an empty database exits 0"
check "it reports every file applied" \
	grep -q "migrations applied: $NFILES " "$T/migrate-1.log"
assert_eq "$(psql_q 'SELECT count(*) FROM schema_migrations')" "$NFILES" \
	"schema_migrations has one row per migration file"
assert_eq "$(psql_q 'SELECT max(version) FROM schema_migrations')" "$LATEST" \
	"the schema is at the newest file's version"
missing=
for t in $TABLES; do
	[ "$(psql_q "SELECT to_regclass('public.$t') IS NOT NULL")" = t ] ||
		missing="$missing $t"
done
assert_eq "$missing" "" "every table the migrations create exists"
check "recorded sha256 is the file's sha256" [ \
	"$(psql_q "SELECT sha256 FROM schema_migrations WHERE version = 1")" = \
	"$(sha256sum "$MIGRATIONS/0001_"*.sql | cut -d' ' -f1)" ]

# --- a second run applies nothing ----------------------------------------
STATE_SQL="SELECT string_agg(version || ' ' || applied_at::text, ',' ORDER BY version) FROM schema_migrations"
before=$(psql_q "$STATE_SQL")
run_migrate migrate-2
assert_eq "$RC" 0 "a second migrate exits 0"
check "a second migrate applies nothing" \
	grep -q "migrations applied: 0" "$T/migrate-2.log"
assert_eq "$(psql_q "$STATE_SQL")" \
	"$before" "a second migrate leaves schema_migrations as it was"

# --- an edited, already applied file is refused, by name ------------------
cp -r "$MIGRATIONS" "$T/edited"
first=$(basename "$(ls "$T/edited"/0001_*.sql)")
echo "-- an innocent looking edit" >>"$T/edited/$first"
run_migrate migrate-edited FLEETD_MIGRATIONS_DIR="$T/edited"
check "an edited applied migration is refused (exit $RC)" [ "$RC" != 0 ]
check "the refusal names the edited file" grep -q "$first" "$T/migrate-edited.log"
check "the refusal says it changed" grep -q "changed after it was applied" "$T/migrate-edited.log"
assert_eq "$(psql_q 'SELECT count(*) FROM schema_migrations')" "$NFILES" \
	"the refused run recorded nothing"

# --- a failing new migration is rolled back, and named -------------------
cp -r "$MIGRATIONS" "$T/broken"
cat >"$T/broken/9998_broken.sql" <<'EOT'
CREATE TABLE half_written (id integer);
SELECT no_such_function();
EOT
run_migrate migrate-broken FLEETD_MIGRATIONS_DIR="$T/broken"
check "a failing migration makes migrate fail (exit $RC)" [ "$RC" != 0 ]
check "the failure names the file" grep -q 9998_broken.sql "$T/migrate-broken.log"
assert_eq "$(psql_q "SELECT to_regclass('public.half_written') IS NULL")" t \
	"the failing migration left no table behind"
assert_eq "$(psql_q 'SELECT count(*) FROM schema_migrations WHERE version = 9998')" 0 \
	"the failing migration is not recorded"

# --- a database with a migration this fleetd does not ship ---------------
psql_q "INSERT INTO schema_migrations (version, name, sha256)
	VALUES (9999, '9999_from_the_future.sql', repeat('0', 64))" >/dev/null
run_migrate migrate-unknown
check "a database with an unknown migration is refused (exit $RC)" [ "$RC" != 0 ]
check "the refusal names the unknown migration" \
	grep -q 9999_from_the_future.sql "$T/migrate-unknown.log"
psql_q 'DELETE FROM schema_migrations WHERE version = 9999' >/dev/null

# --- concurrent runs on a fresh database ---------------------------------
for round in 1 2 3 4 5; do
	fresh_db
	pids=()
	for i in 1 2 3; do
		fleetd migrate >"$T/concurrent-$round-$i.log" 2>&1 &
		pids+=("$!")
	done
	rcs=
	for pid in "${pids[@]}"; do
		rc=0
		wait "$pid" || rc=$?
		rcs="$rcs$rc"
	done
	assert_eq "$rcs" 000 "round $round: three concurrent migrate runs all exit 0"
	total=0
	for i in 1 2 3; do
		n=$(sed -n 's/^migrations applied: \([0-9]*\).*/\1/p' "$T/concurrent-$round-$i.log")
		total=$((total + ${n:-0}))
	done
	assert_eq "$total" "$NFILES" "round $round: each migration applied exactly once in all"
	assert_eq "$(psql_q "SELECT count(*) || '/' || count(DISTINCT version) FROM schema_migrations")" \
		"$NFILES/$NFILES" "round $round: one schema_migrations row per file"
	n=0
	for t in $TABLES; do
		[ "$(psql_q "SELECT to_regclass('public.$t') IS NOT NULL")" = t ] && n=$((n + 1))
	done
	assert_eq "$n" "$(wc -w <<<"$TABLES")" "round $round: all tables exist"
done

# --- `fleetd serve` against an older schema ------------------------------
if [ "$NFILES" -ge 2 ]; then
	fresh_db
	mkdir -p "$T/old"
	cp "$MIGRATIONS"/0001_*.sql "$T/old/"
	run_migrate migrate-old FLEETD_MIGRATIONS_DIR="$T/old"
	assert_eq "$RC" 0 "an older schema (0001 only) is set up"
	mkdir -p "$T/pki"
	fleetd_write_config 1
	rc=0
	timeout 30 fleetd -c "$T/fleetd.conf" serve >"$T/serve-old.log" 2>&1 || rc=$?
	check "serve on an older schema exits non-zero (exit $rc)" [ "$rc" != 0 ] && [ "$rc" != 124 ]
	check "serve says to run fleetd migrate" grep -q 'run `fleetd migrate`' "$T/serve-old.log"
	# and after migrating, the same check passes (serve gets past it)
	run_migrate migrate-up
	assert_eq "$RC" 0 "migrate brings the older schema up to date"
	check "it applies the missing migrations" \
		grep -q "migrations applied: $((NFILES - 1)) " "$T/migrate-up.log"
fi

# --- no database at all --------------------------------------------------
rc=0
FLEETD_DATABASE="host=$PGHOST user=postgres dbname=${DB}_missing connect_timeout=5" \
	fleetd migrate >"$T/migrate-nodb.log" 2>&1 || rc=$?
check "migrate against a missing database fails (exit $rc)" [ "$rc" != 0 ]
check "and says why" grep -q 'database' "$T/migrate-nodb.log"

harness_done
