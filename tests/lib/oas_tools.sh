# SPDX-License-Identifier: Apache-2.0
# The OpenAPI tools of the tests, pinned, installed with npm under the build
# tree (never globally), sourced by tests/lib/harness.sh and tests/run.sh:
#
#   oas_tools_install validate   ajv + ajv-formats (harness_done's check)
#   oas_tools_install lint       @redocly/cli (test_openapi.sh)
#   oas_redocly ARGS...          runs the pinned redocly
#   oas_validate_calls DIR       validates the answers api() recorded in DIR
#
# Offline-safe once installed: a tool already at its pinned version is not
# fetched again. Versions change here only, on purpose.
OAS_AJV_VERSION=8.17.1
OAS_AJV_FORMATS_VERSION=3.0.1
OAS_REDOCLY_VERSION=2.77.0
OAS_TOOLS_DIR=${OAS_TOOLS_DIR:-$FLEET_BUILD_DIR/oas-tools}

# _oas_has DIR PACKAGE VERSION: the package is installed at that version.
_oas_has() {
	[ -f "$1/node_modules/$2/package.json" ] &&
		[ "$(node -p "require('$1/node_modules/$2/package.json').version" 2>/dev/null)" = "$3" ]
}

oas_tools_install() {
	local kind=$1 dir="$OAS_TOOLS_DIR/$1" pkgs=()
	# Debian's nodejs comes without npm (NodeSource's has it): as root,
	# install Debian's npm when it is missing.
	if ! command -v npm >/dev/null && [ "$(id -u)" = 0 ] &&
		command -v apt-get >/dev/null; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends npm >/dev/null 2>&1 || true
	fi
	command -v node >/dev/null && command -v npm >/dev/null || {
		echo "oas: node and npm are needed (deploy/packages.sh installs nodejs; Debian's npm package)" >&2
		return 1
	}
	case $kind in
	validate)
		_oas_has "$dir" ajv "$OAS_AJV_VERSION" || pkgs+=("ajv@$OAS_AJV_VERSION")
		_oas_has "$dir" ajv-formats "$OAS_AJV_FORMATS_VERSION" ||
			pkgs+=("ajv-formats@$OAS_AJV_FORMATS_VERSION")
		;;
	lint)
		_oas_has "$dir" @redocly/cli "$OAS_REDOCLY_VERSION" ||
			pkgs+=("@redocly/cli@$OAS_REDOCLY_VERSION")
		;;
	*) return 2 ;;
	esac
	[ ${#pkgs[@]} -eq 0 ] && return 0
	mkdir -p "$dir"
	[ -f "$dir/package.json" ] || echo '{"private": true}' >"$dir/package.json"
	# One installer at a time per directory (tests may run side by side).
	(
		flock 9
		npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
			--save-exact "${pkgs[@]}" >"$dir/install.log" 2>&1 || {
			cat "$dir/install.log" >&2
			exit 1
		}
	) 9>"$dir/.lock"
}

oas_redocly() {
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
		"$OAS_TOOLS_DIR/lint/node_modules/.bin/redocly" "$@"
}

oas_validate_calls() {
	local dir=$1 doc="$FLEET_BUILD_DIR/fleetd/openapi.json"
	[ -s "$dir/calls.tsv" ] || return 0
	[ -f "$doc" ] || {
		echo "FAIL - openapi: $doc is missing (build fleetd)"
		return 1
	}
	oas_tools_install validate || {
		echo "FAIL - openapi: cannot install the response validator"
		return 1
	}
	NODE_PATH="$OAS_TOOLS_DIR/validate/node_modules" \
		node "$FLEET_SOURCE_DIR/tests/lib/oas_validate.js" "$doc" "$dir"
}
