#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# idem_bench: what the Idempotency-Key retention (docs/internals/
# hygiene-s22.md) costs PostgreSQL, over COUNT records (default
# 1,000,000; half of them older than the 24 h retention):
# - the lookup as it was (a plain SELECT) and as it is now (the SELECT
#   beside a DELETE of the expired record), on live keys, with pgbench
#   (one client, SECS seconds each, default 10): transactions/s and mean
#   latency;
# - the sweep: batches of 500 (the statement of fleetd/db/idempotency.c)
#   until nothing is left: batches, ms per batch, rows/s; then one batch
#   without the created_at index (migration 0018) for comparison.
# Prints figures; asserts nothing. Usage: idem_bench.sh BUILD_DIR [COUNT]
# (fleetd from BUILD_DIR only applies the migrations).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/bench_env.sh"
BUILD=${1:?usage: idem_bench.sh BUILD_DIR [COUNT]}
COUNT=${2:-1000000}
SECS=${SECS:-10}
case $COUNT in '' | *[!0-9]*) echo "COUNT must be a number" >&2; exit 2 ;; esac
case $SECS in '' | *[!0-9]*) echo "SECS must be a number" >&2; exit 2 ;; esac
bench_setup idem_bench "$BUILD"
q() { psql -X -q -t -A -v ON_ERROR_STOP=1 -d fleet_bench -c "$1"; }
HALF=$((COUNT / 2))

echo "load: $(cut -d' ' -f1-3 /proc/loadavg); records: $COUNT ($HALF expired)"
q "INSERT INTO idempotency_keys (actor, key, request_sha256, status, body, created_at)
	SELECT 'token-bench', 'k-' || g, repeat('0', 64), 201, '{\"id\": 1}',
	CASE WHEN g <= $HALF THEN now() - interval '2 days' ELSE now() END
	FROM generate_series(1, $COUNT) g"
q "VACUUM ANALYZE idempotency_keys"

cat >"$T/old.sql" <<EOT
\set k random($((HALF + 1)), $COUNT)
SELECT request_sha256, status, body FROM idempotency_keys WHERE actor = 'token-bench' AND key = 'k-' || CAST(:k AS text);
EOT
cat >"$T/new.sql" <<EOT
\set k random($((HALF + 1)), $COUNT)
WITH expired AS (DELETE FROM idempotency_keys WHERE actor = 'token-bench' AND key = 'k-' || CAST(:k AS text) AND created_at < now() - 86400::bigint * interval '1 second' RETURNING 1) SELECT request_sha256, status, body FROM idempotency_keys WHERE actor = 'token-bench' AND key = 'k-' || CAST(:k AS text) AND created_at >= now() - 86400::bigint * interval '1 second';
EOT
lookup() { # lookup NAME FILE
	local out tps lat
	out=$(pgbench -n -M prepared -c 1 -T "$SECS" -f "$2" fleet_bench 2>&1)
	tps=$(awk '/^tps/ { print $3; exit }' <<<"$out")
	lat=$(awk '/^latency average/ { print $4; exit }' <<<"$out")
	printf 'lookup %-28s %10s tps  %8s ms mean\n' "$1" "$tps" "$lat"
}
lookup "plain SELECT (before)" "$T/old.sql"
lookup "SELECT + DELETE (now)" "$T/new.sql"

SWEEP="DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM idempotency_keys WHERE created_at < now() - 86400::bigint * interval '1 second' ORDER BY created_at LIMIT 500 FOR UPDATE SKIP LOCKED)"
# The batches in one session, each its own transaction, as fleetd's
# driver runs them (bounded by the number of rows).
out=$(psql -X -q -t -A -v ON_ERROR_STOP=1 -d fleet_bench 2>&1 -c "DO \$\$
DECLARE n bigint; b int := 0; t0 timestamptz := clock_timestamp();
BEGIN
	LOOP
		$SWEEP;
		GET DIAGNOSTICS n = ROW_COUNT;
		COMMIT;
		b := b + 1;
		EXIT WHEN n = 0 OR b > $((COUNT / 500 + 10));
	END LOOP;
	RAISE NOTICE 'batches % ms %', b,
		round(extract(epoch FROM clock_timestamp() - t0) * 1000);
END \$\$")
batches=$(sed -n 's/.*batches \([0-9]*\) ms \([0-9]*\).*/\1/p' <<<"$out")
ms=$(sed -n 's/.*batches \([0-9]*\) ms \([0-9]*\).*/\2/p' <<<"$out")
echo "sweep with the index: $HALF rows in ${batches:-?} batches of 500, ${ms:-?} ms" \
	"($(((${ms:-0} * 1000) / ${batches:-1})) us per batch, $((HALF * 1000 / (${ms:-0} > 0 ? ${ms:-1} : 1))) rows/s)"
echo "rows left: $(q 'SELECT count(*) FROM idempotency_keys') (the live ones)"

# one batch without the index, as before migration 0018
q "INSERT INTO idempotency_keys (actor, key, request_sha256, status, body, created_at)
	SELECT 'token-bench', 'x-' || g, repeat('0', 64), 201, '{}', now() - interval '2 days'
	FROM generate_series(1, $HALF) g"
q "DROP INDEX idempotency_keys_created_at_idx"
q "VACUUM ANALYZE idempotency_keys"
t0=$(date +%s%N)
q "$SWEEP" >/dev/null
t1=$(date +%s%N)
echo "one batch of 500 without the index: $(((t1 - t0) / 1000000)) ms"
q "CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at)"
t0=$(date +%s%N)
q "$SWEEP" >/dev/null
t1=$(date +%s%N)
echo "one batch of 500 with the index:    $(((t1 - t0) / 1000000)) ms"
