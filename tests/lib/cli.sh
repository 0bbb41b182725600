# SPDX-License-Identifier: Apache-2.0
# fleetctl as the integration tests run it, sourced after
# tests/lib/harness.sh (ok, fail, assert_eq and $T come from there).
#
#   run ARGS...          runs fleetctl (stdin from /dev/null); sets $RC,
#                        $OUT and $ERR
#   expect_ok WHAT ARGS...
#                        fleetctl succeeds with an empty stderr
#   expect_fail WHAT RC ERE ARGS...
#                        exit code RC, exactly one line on stderr matching
#                        the extended regex ERE, nothing on stdout
#   out_has ERE WHAT     the last run's stdout matches ERE
#   json_is FILTER EXPECTED WHAT
#                        jq FILTER over the last run's stdout
run() {
	set +e
	fleetctl "$@" >"$T/out" 2>"$T/err" </dev/null
	RC=$?
	set -e
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
}

expect_ok() {
	local what=$1
	shift
	run "$@"
	if [ "$RC" = 0 ] && [ -z "$ERR" ]; then
		ok "$what"
	else
		fail "$what (rc $RC, stderr: $ERR)"
	fi
}

expect_fail() {
	local what=$1 want=$2 pattern=$3
	shift 3
	run "$@"
	if [ "$RC" = "$want" ] && [ "$(wc -l <"$T/err")" = 1 ] &&
		grep -qE -- "$pattern" "$T/err" && [ -z "$OUT" ]; then
		ok "$what"
	else
		fail "$what (rc $RC, want $want; stderr: $ERR; stdout: $OUT)"
	fi
}

out_has() {
	if grep -qE -- "$1" "$T/out"; then ok "$2"; else fail "$2 (stdout: $OUT)"; fi
}

json_is() {
	local got
	got=$(printf '%s' "$OUT" | jq -r "$1" 2>&1) || got="(jq failed: $got)"
	assert_eq "$got" "$2" "$3"
}
