# SPDX-License-Identifier: Apache-2.0
# CPack: three Debian packages from the install components (fleetd,
# fleetctl, fleet-agent), for a build configured with
# -DCMAKE_INSTALL_PREFIX=/usr (docs/install.md; tests/integration/
# test_packages.sh builds, lints, installs and purges them).
#
# Dependencies come from dpkg-shlibdeps; the maintainer scripts in
# deploy/debian/ create the service user (fleetd) and never start a
# service that has no configuration; /etc/default/<pkg> are the conffiles;
# every package carries copyright and changelog.Debian.gz as Debian policy
# asks.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME fleetd)
set(CPACK_PACKAGE_VENDOR "fleetd")
set(CPACK_PACKAGE_CONTACT "fleetd maintainers <fleetd-maintainers@fleetd.dev>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL fleetd fleetctl fleet-agent)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://fleetd.dev/")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})

set(CPACK_DEBIAN_FLEETD_PACKAGE_NAME fleetd)
# lws dlopens its libev plugin (the net worker's loop, docs/internals/
# event-loop.md): dpkg-shlibdeps cannot see it.
set(CPACK_DEBIAN_FLEETD_PACKAGE_DEPENDS "adduser, libwebsockets-evlib-ev")
set(CPACK_DEBIAN_FLEETD_PACKAGE_RECOMMENDS "postgresql, fleetctl")
# Descriptions: the synopsis, then the long text; CPack indents each line
# and turns an empty one into " .".
set(CPACK_DEBIAN_FLEETD_DESCRIPTION
"secure device provisioning and fleet manager
fleetd issues an X.509 identity to every device from its own CSR, renews
and revokes it, keeps a mutually-authenticated websocket channel to each
device's fleet-agent, and serves a JSON API for operators (fleetctl) and
integrations. Its state lives in PostgreSQL.

The service starts once /etc/fleetd/fleetd.conf exists; see fleetd(8).")
set(CPACK_DEBIAN_FLEETCTL_PACKAGE_NAME fleetctl)
set(CPACK_DEBIAN_FLEETCTL_DESCRIPTION
"admin command line for fleetd
fleetctl is a client of the fleetd JSON API: enrollment and admin
tokens, devices, configuration profiles, the audit log, and offline
update-signing keys. Shell completions for bash, zsh and fish included.")
set(CPACK_DEBIAN_FLEET-AGENT_PACKAGE_NAME fleet-agent)
set(CPACK_DEBIAN_FLEET-AGENT_DESCRIPTION
"device agent for fleetd
fleet-agent enrolls a device with fleetd (its key never leaves the
device), keeps a mutually-authenticated channel to the server, renews its
certificate, and applies configuration and signed updates.

The service starts once /etc/fleet-agent.conf exists; see fleet-agent(8).")

# Control files per package: the maintainer scripts and conffiles under
# the names dpkg wants, with the modes lintian wants.
string(TIMESTAMP _deb_date "%a, %d %b %Y %H:%M:%S +0000" UTC)
foreach(_pkg fleetd fleetctl fleet-agent)
	string(TOUPPER ${_pkg} _PKG)
	set(_ctl ${PROJECT_BINARY_DIR}/deploy/debian/${_pkg})
	set(_extra "")
	foreach(_script postinst prerm postrm)
		set(_src ${PROJECT_SOURCE_DIR}/deploy/debian/${_pkg}.${_script})
		if(EXISTS ${_src})
			configure_file(${_src} ${_ctl}/${_script} COPYONLY)
			file(CHMOD ${_ctl}/${_script} PERMISSIONS OWNER_READ
				OWNER_WRITE OWNER_EXECUTE GROUP_READ
				GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
			list(APPEND _extra ${_ctl}/${_script})
		endif()
	endforeach()
	set(_src ${PROJECT_SOURCE_DIR}/deploy/debian/${_pkg}.conffiles)
	if(EXISTS ${_src})
		configure_file(${_src} ${_ctl}/conffiles COPYONLY)
		list(APPEND _extra ${_ctl}/conffiles)
	endif()
	set(CPACK_DEBIAN_${_PKG}_PACKAGE_CONTROL_EXTRA "${_extra}")

	# /usr/share/doc/<pkg>: copyright and the Debian changelog.
	set(PKG ${_pkg})
	set(DEB_VERSION ${PROJECT_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE})
	set(DEB_DATE ${_deb_date})
	configure_file(${PROJECT_SOURCE_DIR}/deploy/debian/changelog.in
		${_ctl}-doc/changelog.Debian @ONLY)
	add_custom_command(OUTPUT ${_ctl}-doc/changelog.Debian.gz
		COMMAND gzip -9nf -k ${_ctl}-doc/changelog.Debian
		DEPENDS ${_ctl}-doc/changelog.Debian VERBATIM)
	add_custom_target(fleet_deb_changelog_${_pkg} ALL
		DEPENDS ${_ctl}-doc/changelog.Debian.gz)
	install(FILES ${_ctl}-doc/changelog.Debian.gz
		${PROJECT_SOURCE_DIR}/deploy/debian/copyright
		DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${_pkg}
		COMPONENT ${_pkg})
	# lintian overrides, each with its reason in the file.
	install(FILES ${PROJECT_SOURCE_DIR}/deploy/debian/${_pkg}.lintian-overrides
		DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides
		RENAME ${_pkg} COMPONENT ${_pkg})
endforeach()

include(CPack)
