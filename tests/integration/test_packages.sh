#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Debian packages (issue 13): builds fleetd from this source tree as a
# release would (Release, no sanitizers, prefix /usr) in $T, makes the
# fleetd, fleetctl and fleet-agent packages with CPack, checks them with
# lintian (no errors; the overrides are in deploy/debian/*.lintian-overrides
# with their reasons), installs them with dpkg -i, and uses what was
# installed: fleetd check-config on the example config, fleetd migrate
# finding the installed migrations by default, fleetctl --version, the man
# pages, the completions, systemd-analyze verify on the installed units, the
# service user, no service started without a configuration. The packages
# are purged at the end, also when the test fails.
# Needs root (dpkg -i); about 2-3 minutes on two cores, most of it the build.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"

if [ "$(id -u)" != 0 ]; then
	echo "SKIP: installing packages needs root"
	harness_done
	exit 0
fi

PKGS="fleetd fleetctl fleet-agent"
purge_packages() {
	dpkg --purge $PKGS >"$T/purge.log" 2>&1 || {
		cat "$T/purge.log"
		return 1
	}
}
# Purged also when the test fails; then the harness cleans up.
packages_cleanup() {
	local rc=$?
	purge_packages || rc=1
	return "$rc"
}
trap 'packages_cleanup; harness_cleanup' EXIT
# A run that was killed may have left them installed.
purge_packages || true

# ---- build and package ----------------------------------------------------
B=$T/build
cmake -S "$FLEET_SOURCE_DIR" -B "$B" -DCMAKE_BUILD_TYPE=Release \
	-DCMAKE_INSTALL_PREFIX=/usr -DFLEET_TESTS=OFF -DFLEET_WERROR=ON \
	>"$T/configure.log" 2>&1 || {
	cat "$T/configure.log"
	fail "configure a release build"
	exit 1
}
# fleet-sim is not packaged: everything else.
cmake --build "$B" -j2 --target fleetd fleetctl fleet-agent fleet_man \
	fleet_completions fleet_deb_changelog_fleetd fleet_deb_changelog_fleetctl \
	fleet_deb_changelog_fleet-agent >"$T/build.log" 2>&1 || {
	tail -n 40 "$T/build.log"
	fail "release build"
	exit 1
}
ok "release build"
(cd "$B" && cpack -G DEB -C Release) >"$T/cpack.log" 2>&1 || {
	tail -n 40 "$T/cpack.log"
	fail "cpack"
	exit 1
}
VERSION=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$B/CMakeCache.txt")
ARCH=$(dpkg --print-architecture)
for p in $PKGS; do
	deb=$B/${p}_$VERSION-1_$ARCH.deb
	check "package $p built" test -f "$deb"
	DEBS+=("$deb")
done

# ---- what is in them --------------------------------------------------------
dpkg-deb -I "$B/fleetd_$VERSION-1_$ARCH.deb" >"$T/fleetd.info"
check "fleetd depends on the libraries dpkg-shlibdeps found" \
	grep -qE '^ Depends:.*libwebsockets[0-9]+.*' "$T/fleetd.info"
check "fleetd depends on libpq5 and adduser" \
	grep -qE '^ Depends:.*adduser.*libpq5|^ Depends:.*libpq5.*adduser' "$T/fleetd.info"
check "fleetd has postinst, prerm, postrm and conffiles" \
	bash -c "grep -q ' postinst' '$T/fleetd.info' && grep -q ' prerm' '$T/fleetd.info' &&
		grep -q ' postrm' '$T/fleetd.info' && grep -q ' conffiles' '$T/fleetd.info'"
dpkg-deb -c "$B/fleetd_$VERSION-1_$ARCH.deb" >"$T/fleetd.files"
for f in ./usr/sbin/fleetd ./usr/share/fleetd/migrations/0001_init.sql \
	./usr/share/fleetd/fleetd.conf.example ./lib/systemd/system/fleetd.service \
	./usr/share/man/man8/fleetd.8.gz ./usr/share/man/man5/fleetd.conf.5.gz \
	./etc/default/fleetd ./usr/share/doc/fleetd/copyright \
	./usr/share/doc/fleetd/changelog.Debian.gz; do
	check "fleetd ships $f" grep -q " $f\$" "$T/fleetd.files"
done
check "fleet-sim (a test tool) is not packaged" \
	not bash -c "dpkg-deb -c '$B/fleet-agent_$VERSION-1_$ARCH.deb' | grep -q fleet-sim"

# ---- lintian ------------------------------------------------------------------
# --fail-on error: exit 1 on an error tag (and 2 if lintian itself fails).
if lintian --allow-root --fail-on error --display-level '>=info' "${DEBS[@]}" \
	>"$T/lintian.log" 2>&1; then
	ok "lintian: no errors"
else
	cat "$T/lintian.log"
	fail "lintian: no errors"
fi
# Warnings and notes are shown, not failed: they are for a person to read.
grep -E '^[WIP]: ' "$T/lintian.log" || true

# ---- install and use ------------------------------------------------------------
dpkg -i "${DEBS[@]}" >"$T/dpkg-i.log" 2>&1 || {
	cat "$T/dpkg-i.log"
	fail "dpkg -i"
	exit 1
}
ok "dpkg -i installs the three packages"
check "the service user exists" getent passwd fleetd
check "postinst says why fleetd was not started (no config)" \
	bash -c "! [ -d /run/systemd/system ] || grep -q 'fleetd: not started' '$T/dpkg-i.log'"
check "no fleetd runs from /usr/sbin" not pgrep -f '^/usr/sbin/fleetd'

out=$(/usr/sbin/fleetd -c /usr/share/fleetd/fleetd.conf.example check-config 2>&1)
assert_eq "$out" "/usr/share/fleetd/fleetd.conf.example: ok" "installed fleetd check-config on the example config"
out=$(/usr/bin/fleetctl --version)
assert_eq "$out" "fleetctl $VERSION" "installed fleetctl --version"
out=$(/usr/sbin/fleetd --version)
check "installed fleetd --version says $VERSION" grep -q "^fleetd $VERSION " <<<"$out"
out=$(/usr/sbin/fleet-agent --version)
assert_eq "$out" "fleet-agent $VERSION" "installed fleet-agent --version (one version)"

# The installed fleetd applies the installed migrations without being told
# where they are (its config names no migrations_dir).
createdb "$DB"
if (cd / && /usr/sbin/fleetd migrate) >"$T/pkg-migrate.log" 2>&1; then
	ok "installed fleetd migrate finds /usr/share/fleetd/migrations"
else
	cat "$T/pkg-migrate.log"
	fail "installed fleetd migrate finds /usr/share/fleetd/migrations"
fi
n=$(psql_q 'SELECT count(*) FROM schema_migrations')
assert_eq "$n" "$(ls /usr/share/fleetd/migrations/*.sql | wc -l)" "every installed migration is applied"

for page in fleetd.8 fleetctl.1 fleet-agent.8 fleetd.conf.5; do
	check "man page $page is installed" man -w "${page##*.}" "${page%.*}"
	check "man page $page renders" \
		bash -c "MANWIDTH=80 man -P cat ${page##*.} ${page%.*} 2>/dev/null | grep -q NAME"
done
check "fleetctl(1) lists its commands" \
	bash -c "MANWIDTH=120 man -P cat 1 fleetctl 2>/dev/null | grep -q 'fleetctl tokens create'"
check "bash completion installed" test -f /usr/share/bash-completion/completions/fleetctl
check "zsh completion installed" test -f /usr/share/zsh/vendor-completions/_fleetctl
check "fish completion installed" test -f /usr/share/fish/vendor_completions.d/fleetctl.fish
out=$(bash -c 'source /usr/share/bash-completion/completions/fleetctl
	COMP_WORDS=(fleetctl tokens cr); COMP_CWORD=2; _fleetctl; echo "${COMPREPLY[*]}"')
assert_eq "$out" "create" "installed bash completion completes 'fleetctl tokens cr'"
if command -v fish >/dev/null; then
	out=$(fish -c "complete -C 'fleetctl devices dec'" | cut -f1)
	assert_eq "$out" "decommission" "installed fish completion completes 'fleetctl devices dec'"
fi
if command -v zsh >/dev/null; then
	check "zsh completion parses" zsh -n /usr/share/zsh/vendor-completions/_fleetctl
	# zsh's completion widgets need a terminal: _describe is stood in for by
	# a function that prints what it was given, to see what is offered.
	out=$(zsh -c '_describe() { print -l -- "${(@P)${@[-1]}}" | cut -d: -f1 | tr "\n" " " }
		source <(sed "\$d" /usr/share/zsh/vendor-completions/_fleetctl)
		words=(fleetctl --ca x tokens "") CURRENT=5 _fleetctl')
	assert_eq "$out" "create list revoke " "installed zsh completion offers the subcommands of 'fleetctl --ca x tokens'"
fi
for unit in fleetd fleet-agent; do
	if systemd-analyze verify /lib/systemd/system/$unit.service >"$T/verify-$unit.log" 2>&1 &&
		! grep -q . "$T/verify-$unit.log"; then
		ok "systemd-analyze verify on the installed $unit.service (man pages too)"
	else
		cat "$T/verify-$unit.log"
		fail "systemd-analyze verify on the installed $unit.service"
	fi
done

# ---- purge ------------------------------------------------------------------------
purge_packages && ok "dpkg --purge removes the three packages"
check "nothing of fleetd is left in /usr" \
	not bash -c 'ls /usr/sbin/fleetd /usr/bin/fleetctl /usr/sbin/fleet-agent /usr/share/fleetd 2>/dev/null | grep -q .'
check "the conffiles are gone after purge" not test -e /etc/default/fleetd

harness_done
