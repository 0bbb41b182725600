#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Prints a help2man include section "[COMMANDS]" with the --help of every
# fleetctl command, from fleetctl's own command table (`fleetctl completion
# commands`), so that fleetctl(1) says what `fleetctl X --help` says.
# Groups (whose help only lists their commands) are left out.
#   fleetctl-commands.sh /path/to/fleetctl > commands.h2m
set -eu
fleetctl=$1
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
echo "[COMMANDS]"
"$fleetctl" completion commands | while IFS= read -r cmd; do
	# shellcheck disable=SC2086 # the path is words: "tokens create"
	"$fleetctl" $cmd --help </dev/null >"$tmp" 2>&1 || true
	grep -q '^Commands:' "$tmp" && continue
	awk 'function esc(s) { gsub(/\\/, "\\e", s); sub(/^[.]/, "\\\\&&", s)
		gsub(/'\''/, "\\(aq", s); return s }
	NR == 1 && /^usage: / { sub(/^usage: /, ""); print ".TP\n.B " esc($0) "\n.nf"; next }
	NR == 1 { print ".TP\n.B fleetctl '"$cmd"'\n.nf" }
	/^Global options: / { exit }
	NR == 2 && /^$/ { next }
	{ print esc($0) }
	END { print ".fi" }' "$tmp"
done
