# SPDX-License-Identifier: Apache-2.0
# Bounded polling, for the integration harness, the benchmarks and
# deploy/local: wait for a condition, never for a fixed time.
#
#   wait_for DESCRIPTION TIMEOUT_S CMD...
#       runs CMD every 0.1 s until it succeeds (0) or TIMEOUT_S seconds
#       (fractions allowed) have passed; then prints "timed out after
#       TIMEOUT_S s: DESCRIPTION" on stderr and returns 1. CMD's output is
#       discarded; CMD runs in the current shell (a function may set
#       variables).
#   not CMD...   succeeds when CMD fails (wait_for "gone" 10 not kill -0 PID)

# The deadline is measured on /proc/uptime (monotonic, 10 ms steps;
# $SECONDS counts whole seconds), so a slow CMD shortens the number of
# tries, not the bound.
wait_for() {
	local what=$1 timeout=$2
	shift 2
	local deadline now
	deadline=$(awk -v t="$timeout" -v n="$(cut -d' ' -f1 /proc/uptime)" \
		'BEGIN { printf "%.2f", n + t }')
	while :; do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		now=$(cut -d' ' -f1 /proc/uptime)
		if awk -v n="$now" -v d="$deadline" 'BEGIN { exit !(n >= d) }'; then
			echo "timed out after ${timeout} s: $what" >&2
			return 1
		fi
		sleep 0.1
	done
}

not() {
	! "$@"
}
