#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Build-time layering check (docs/internals/layering.md): a folder may not
# include the headers of a library it must not know. Run by the build for
# each fleetd part; prints the offending lines and fails.
#   check_layers.sh STAMP DIR FORBIDDEN-REGEX
# (The per-part include directories already make includes of forbidden
# fleetd folders fail; this catches system headers such as
# <libwebsockets.h>, which every target can see in /usr/include.)
set -eu
stamp=$1
dir=$2
forbidden=$3
if grep -nE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]($forbidden)" \
	"$dir"/*.c "$dir"/*.h 2>/dev/null; then
	echo "layering: $(basename "$dir")/ must not include the headers above" >&2
	exit 1
fi
touch "$stamp"
