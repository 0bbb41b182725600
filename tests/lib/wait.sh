# SPDX-License-Identifier: Apache-2.0
# Bounded polling, for the integration harness, the benchmarks and
# deploy/local: wait for a condition, never for a fixed time.
#
#   wait_for DESCRIPTION TIMEOUT_S CMD...
#       runs CMD until it succeeds (0) or TIMEOUT_S seconds (fractions
#       allowed) have passed; then prints "timed out after TIMEOUT_S s:
#       DESCRIPTION" on stderr and returns 1. CMD's output is discarded;
#       CMD runs in the current shell (a function may set variables).
#       The pauses between tries grow from 0.1 s by 0.05 s up to 0.5 s:
#       a condition that holds soon is seen soon, and a long wait does not
#       spend the machine's CPU on curl, jq and psql ten times a second
#       (tests run side by side). The last try is at the deadline.
#   not CMD...   succeeds when CMD fails (wait_for "gone" 10 not kill -0 PID)

# The deadline is measured on /proc/uptime (monotonic, 10 ms steps;
# $SECONDS counts whole seconds), so a slow CMD shortens the number of
# tries, not the bound.
wait_for() {
	local what=$1 timeout=$2
	shift 2
	local deadline now step=0.1 next
	deadline=$(awk -v t="$timeout" -v n="$(cut -d' ' -f1 /proc/uptime)" \
		'BEGIN { printf "%.2f", n + t }')
	while :; do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		now=$(cut -d' ' -f1 /proc/uptime)
		# "PAUSE NEXT_STEP": the step cut to the time left; none left:
		# time is up.
		next=$(awk -v n="$now" -v d="$deadline" -v s="$step" 'BEGIN {
			if (n >= d) exit 1
			p = s < d - n ? s : d - n
			s = s + 0.05 < 0.5 ? s + 0.05 : 0.5
			printf "%.2f %.2f", p, s }') || {
			echo "timed out after ${timeout} s: $what" >&2
			return 1
		}
		sleep "${next% *}"
		step=${next#* }
	done
}

not() {
	! "$@"
}
