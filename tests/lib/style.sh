#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Style checks run as unit tests: `banned` greps for unbounded C calls,
# `format` checks every C file with clang-format (the repo's .clang-format).
set -euo pipefail
what=$1 top=$2
cd "$top"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
case $what in
banned)
	if grep -nE '\b(strcpy|sprintf|strtok|atoi|gets)[[:space:]]*\(' $files; then
		echo "banned calls above: use snprintf, strtol, strtok_r and bounded copies"
		exit 1
	fi
	echo "no banned calls in $(echo "$files" | wc -w) files"
	;;
format)
	bad=0
	for f in $files; do
		if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
			echo "not clang-formatted: $f"
			bad=1
		fi
	done
	[ $bad = 0 ] && echo "all $(echo "$files" | wc -w) files formatted"
	exit $bad
	;;
esac
