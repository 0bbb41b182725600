#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Artifact benchmark (issue 11): a 64 MiB artifact (SIZE_MIB=N for another
# size) in a private PostgreSQL, offered to 20 enrolled devices (CLIENTS=N),
# then 20 parallel mutual-TLS downloads with curl (each with its own device
# certificate) from
#   1. fleetd serving from its verified cache file (artifact_cache_dir),
#   2. fleetd streaming chunk by chunk from PostgreSQL (no cache),
#   3. nginx (Debian) serving the same file from a temp dir over TLS with
#      the same server certificate and client-certificate verification,
# each figure the aggregate MiB/s from the launch of the first download to
# the end of the last (ROUNDS=N rounds, fleetd and nginx in turn, best
# kept), and the ratios to nginx. Then fleet-agent's idle private memory (Private_* of
# /proc/PID/smaps_rollup, an agent connected to fleetd and idle) and its
# stripped binary size. Figures only; nothing is timed against a limit.
# Everything started is stopped by PID and removed on exit.
#   tests/bench/artifact_bench.sh BUILD_DIR
# Build without sanitizers (release):
#   cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release
#   cmake --build build-rel --target artifact_bench_run
# Environment: WORKERS (fleetd net workers and nginx worker processes,
# default 2), CLIENTS (20), SIZE_MIB (64), ROUNDS (3).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: artifact_bench.sh BUILD_DIR}" && pwd)
. "$here/bench_env.sh"

workers=${WORKERS:-2}
clients=${CLIENTS:-20}
size_mib=${SIZE_MIB:-64}
rounds=${ROUNDS:-3}
command -v nginx >/dev/null || NGINX=/usr/sbin/nginx
NGINX=${NGINX:-nginx}
[ -x "$(command -v "$NGINX")" ] || { echo "nginx is not installed (apt-get install nginx)" >&2; exit 1; }

bench_setup artifact-bench "$build"
mkdir -p "$T/cache" "$T/www" "$T/dev" "$T/nginx/tmp"
chmod 0755 "$T/www" "$T/dev"
[ "$(id -u)" != 0 ] || chown "$FLEET_USER:$FLEET_USER" "$T/cache"
chmod 0700 "$T/cache"
bench_start_fleetd "workers = $workers
artifact_cache_dir = $T/cache"
device_port=$(awk '$1 == "device_port" { print $3 }' "$T/fleetd.conf")
token=$(bench_enroll_token $((clients + 2)))
echo "fleetd: $workers net worker(s) on $(nproc) cores; $clients clients; ${size_mib} MiB artifact"

# ---- devices and the artifact --------------------------------------------
for ((i = 1; i <= clients; i++)); do
	d="$T/dev/d$i"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d.key" 2>/dev/null
	openssl req -new -key "$d.key" -subj "/CN=d$i" -out "$d.csr" 2>/dev/null
	jq -n --arg t "$token" --rawfile c "$d.csr" '{token: $t, csr: $c}' |
		curl -sf --cacert "$T/pki/ca-bundle.pem" -H 'Content-Type: application/json' \
			--data @- "$url/enroll/v1" >"$d.json"
	jq -r .certificate "$d.json" >"$d.pem"
	jq -r .device_id "$d.json" >"$d.id"
done
size=$((size_mib * 1048576))
head -c "$size" /dev/urandom >"$T/www/blob"
chmod 0644 "$T/www/blob"
sha=$(sha256sum "$T/www/blob" | cut -d' ' -f1)
mkdir "$T/chunks"
chmod 0755 "$T/chunks"
(cd "$T/chunks" && split -b 1048576 -d -a 5 "$T/www/blob" c. && chmod 0644 c.*)
nchunks=$(ls "$T/chunks" | wc -l)
{
	echo "BEGIN;"
	echo "INSERT INTO artifact_blobs (sha256, size, chunk_size) VALUES ('$sha', $size, 1048576);"
	for ((i = 0; i < nchunks; i++)); do
		printf "INSERT INTO artifact_chunks (sha256, idx, data) VALUES ('%s', %d, pg_read_binary_file('%s/chunks/c.%05d'));\n" \
			"$sha" "$i" "$T" "$i"
	done
	echo "UPDATE artifact_blobs SET complete = true WHERE sha256 = '$sha';"
	echo "INSERT INTO artifacts (id, sha256, name, version, version_int, hw, installer, size, expires_at, envelope, manifest, created_by)
	      VALUES ('11111111-1111-4111-8111-111111111111', '$sha', 'bench', '1', 1, '{bench}', 'dir-ab', $size, now() + interval '1 day', '{}', '{}', 'bench');"
	echo "INSERT INTO deployments (id, artifact_id, created_by) VALUES ('22222222-2222-4222-8222-222222222222', '11111111-1111-4111-8111-111111111111', 'bench');"
	for ((i = 1; i <= clients; i++)); do
		echo "INSERT INTO deployment_devices (deployment_id, device_id) VALUES ('22222222-2222-4222-8222-222222222222', '$(cat "$T/dev/d$i.id")');"
	done
	echo "COMMIT;"
} | psql -X -q -v ON_ERROR_STOP=1 -d fleet_bench >/dev/null
rm -rf "$T/chunks"

now() { date +%s.%N; }

# parallel_round PORT PATH: one round of $clients parallel downloads of
# PATH on PORT, each with its own device certificate; checks every status
# and size, prints the aggregate MiB/s (all bytes over the time from the
# launch of the first to the end of the last).
parallel_round() {
	local port=$1 path=$2 t0 t1 i pids=() bad=0
	t0=$(now)
	for ((i = 1; i <= clients; i++)); do
		curl -s --max-time 600 --cacert "$T/pki/ca-bundle.pem" \
			--cert "$T/dev/d$i.pem" --key "$T/dev/d$i.key" \
			-o /dev/null -w '%{http_code} %{size_download}\n' \
			"https://localhost:$port$path" >"$T/round.$i" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || bad=1; done
	t1=$(now)
	for ((i = 1; i <= clients; i++)); do
		read -r code got <"$T/round.$i"
		[ "$code" = 200 ] && [ "$got" = "$size" ] || bad=1
	done
	[ "$bad" = 0 ] || { echo "a download failed: $(cat "$T"/round.* | sort | uniq -c)" >&2; return 1; }
	awk -v b="$((size * clients))" -v a="$t0" -v z="$t1" 'BEGIN { printf "%.1f\n", b / 1048576 / (z - a) }'
}


# ---- nginx (runs throughout: its rounds alternate with fleetd's) --------
nginx_port=$(free_port)
nginx_user=""
[ "$(id -u)" != 0 ] || nginx_user="user nobody nogroup;"
cat >"$T/nginx/nginx.conf" <<EOF
$nginx_user
worker_processes $workers;
daemon off;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $T/nginx/tmp/body;
	proxy_temp_path $T/nginx/tmp/proxy;
	fastcgi_temp_path $T/nginx/tmp/fastcgi;
	uwsgi_temp_path $T/nginx/tmp/uwsgi;
	scgi_temp_path $T/nginx/tmp/scgi;
	default_type application/octet-stream;
	sendfile on;
	server {
		listen 127.0.0.1:$nginx_port ssl;
		ssl_certificate $T/pki/server/server-chain.pem;
		ssl_certificate_key $T/pki/server/server.key;
		ssl_client_certificate $T/pki/ca-bundle.pem;
		ssl_verify_client on;
		ssl_verify_depth 2;
		root $T/www;
	}
}
EOF
bench_spawn "$NGINX" -p "$T/nginx" -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log"
NGINX_PID=$LAST_PID
wait_for "nginx answers" 10 curl -s -o /dev/null --cacert "$T/pki/ca-bundle.pem" \
	--cert "$T/dev/d1.pem" --key "$T/dev/d1.key" "https://localhost:$nginx_port/blob" ||
	{ cat "$T/nginx/error.log" >&2; exit 1; }

# compare NAME: $rounds rounds of fleetd's device port and nginx in turn
# (the machine may be shared: alternating spreads its load over both);
# sets $fleetd_best and raises $nginx_best.
nginx_best=0
compare() {
	local r v
	fleetd_best=0
	for ((r = 1; r <= rounds; r++)); do
		v=$(parallel_round "$device_port" "/artifacts/$sha")
		echo "  round $r: fleetd ($1) $v MiB/s"
		fleetd_best=$(awk -v a="$fleetd_best" -v b="$v" 'BEGIN { print (b > a) ? b : a }')
		v=$(parallel_round "$nginx_port" /blob)
		echo "  round $r: nginx $v MiB/s"
		nginx_best=$(awk -v a="$nginx_best" -v b="$v" 'BEGIN { print (b > a) ? b : a }')
	done
}

# ---- fleetd, from the cache file ---------------------------------------
t0=$(now)
code=$(curl -s --cacert "$T/pki/ca-bundle.pem" --cert "$T/dev/d1.pem" --key "$T/dev/d1.key" \
	-o "$T/first" -w '%{http_code}' "https://localhost:$device_port/artifacts/$sha")
t1=$(now)
[ "$code" = 200 ] && [ "$(sha256sum "$T/first" | cut -d' ' -f1)" = "$sha" ] ||
	{ echo "the first download failed ($code)" >&2; tail -n 20 "$T/fleetd.log" >&2; exit 1; }
rm -f "$T/first"
awk -v a="$t0" -v z="$t1" 'BEGIN { printf "first download (fills the cache from PostgreSQL): %.2f s\n", z - a }'
compare "cache file"
cached=$fleetd_best

# ---- fleetd, chunks from PostgreSQL ------------------------------------
bench_stop_pid "$FLEETD_PID"
FLEETD_PID=
bench_start_fleetd "workers = $workers"
device_port=$(awk '$1 == "device_port" { print $3 }' "$T/fleetd.conf")
compare "PostgreSQL chunks"
direct=$fleetd_best
bench_stop_pid "$FLEETD_PID"
FLEETD_PID=
bench_stop_pid "$NGINX_PID"
ref=$nginx_best

echo "$clients parallel mTLS downloads of ${size_mib} MiB (aggregate, best of $rounds rounds each):"
echo "  fleetd, cache file:        $cached MiB/s"
echo "  fleetd, PostgreSQL chunks: $direct MiB/s"
echo "  nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'):              $ref MiB/s"
awk -v c="$cached" -v d="$direct" -v n="$ref" 'BEGIN {
	printf "  ratio to nginx: cache file %.2f, PostgreSQL chunks %.2f (target >= 0.8)\n", c / n, d / n }'

# ---- fleet-agent: idle private memory and stripped size ------------------
bench_start_fleetd "workers = 1"
printf '%s\n' "$(bench_enroll_token 1)" >"$T/agent.token"
chmod 600 "$T/agent.token"
cat >"$T/agent.conf" <<EOF
api_url = $url
ca_file = $T/pki/ca-bundle.pem
state_dir = $T/agent
token_file = $T/agent.token
model = bench
fw_version = 1.0
log_level = warn
EOF
bench_spawn "$build/agent/fleet-agent" -c "$T/agent.conf"
AGENT_PID=$LAST_PID
agent_connected() { "$build/agent/fleet-agent" status -c "$T/agent.conf" 2>/dev/null | grep -q 'connected: *yes'; }
wait_for "fleet-agent connected" 30 agent_connected || { echo "fleet-agent did not connect" >&2; exit 1; }
sleep "${SETTLE:-3}" # a duration: let the agent go idle before measuring
awk '/^Private_/ { kb += $2 } END { printf "fleet-agent idle private memory: %d KiB (%.2f MiB; Private_* of smaps_rollup)\n", kb, kb / 1024 }' \
	"/proc/$AGENT_PID/smaps_rollup"
cp "$build/agent/fleet-agent" "$T/fleet-agent.stripped"
strip "$T/fleet-agent.stripped"
awk -v b="$(stat -c %s "$T/fleet-agent.stripped")" 'BEGIN { printf "fleet-agent stripped binary: %d bytes (%.1f KiB)\n", b, b / 1024 }'
