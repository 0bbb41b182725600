#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Builds the man pages from the programs' own help text (help2man) and the
# configuration page from docs/config.md (docs/man/md2man.awk), with the
# extra sections in docs/man/*.h2m; gzip -9n (reproducible, as Debian wants).
#   fleet_man.sh OUTDIR SRCDIR VERSION FLEETD FLEETCTL FLEET_AGENT
set -eu
out=$1 src=$2 version=$3 fleetd=$4 fleetctl=$5 agent=$6
man=$src/docs/man
mkdir -p "$out"
# The sanitizer build's programs print their help like any other.
export ASAN_OPTIONS=detect_leaks=0

h2m() { # PROGRAM SECTION NAME INCLUDE...
	prog=$1 section=$2 name=$3
	shift 3
	incs=
	for i in "$@"; do incs="$incs --include=$i"; done
	# shellcheck disable=SC2086
	help2man --no-info --section="$section" --version-string="$version" \
		--source="fleetd $version" --manual="fleetd manual" \
		--name="$name" $incs "$prog" >"$out/$(basename "$prog").$section.tmp"
	gzip -9n <"$out/$(basename "$prog").$section.tmp" \
		>"$out/$(basename "$prog").$section.gz"
	rm -f "$out/$(basename "$prog").$section.tmp"
}

h2m "$fleetd" 8 "secure device provisioning and fleet manager" \
	"$man/fleetd.8.h2m"
sh "$man/fleetctl-commands.sh" "$fleetctl" >"$out/fleetctl-commands.h2m"
h2m "$fleetctl" 1 "admin command line for fleetd" "$man/fleetctl.1.h2m" \
	"$out/fleetctl-commands.h2m"
h2m "$agent" 8 "device agent for fleetd" "$man/fleet-agent.8.h2m"
{
	awk -v name=fleetd.conf -v section=5 -v version="$version" \
		-v summary="fleetd configuration file" -f "$man/md2man.awk" \
		"$src/docs/config.md"
	cat "$man/fleetd.conf.5.tail"
} | gzip -9n >"$out/fleetd.conf.5.gz"
