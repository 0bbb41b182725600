# SPDX-License-Identifier: Apache-2.0
# `cmake --install`: what an installed fleetd needs, in the GNUInstallDirs
# layout (docs/install.md). Components are the Debian packages
# (cmake/FleetPackaging.cmake): fleetd, fleetctl, fleet-agent. fleet-sim is
# a test and benchmark tool and is not installed.
#
#   bin/fleetctl                      sbin/fleetd, sbin/fleet-agent
#   share/fleetd/migrations/*.sql     (fleetd finds them by default)
#   share/fleetd/fleetd.conf.example  share/fleet-agent/fleet-agent.conf.example
#   share/fleetd/fleetd-api.socket.example, fleetd-device.socket.example
#   <unitdir>/fleetd.service, fleet-agent.service
#   lib/sysusers.d/fleetd.conf        <sysconfdir>/default/fleetd, fleet-agent
#   (sysconfdir is /etc for the prefix /usr, as GNUInstallDirs has it)
#   share/man/man{1,5,8}/...          bash, zsh and fish completions
option(FLEET_MAN "Build man pages with help2man (needs the help2man package)"
	ON)

# Debian 12 keeps units in /lib/systemd/system (lintian); other prefixes
# get their own lib/systemd/system.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
	set(_unitdir /lib/systemd/system)
	set(_sysusersdir /usr/lib/sysusers.d)
else()
	set(_unitdir ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
	set(_sysusersdir ${CMAKE_INSTALL_PREFIX}/lib/sysusers.d)
endif()
set(FLEET_SYSTEMD_UNITDIR ${_unitdir} CACHE PATH
	"Where the systemd units are installed")
set(FLEET_SYSUSERSDIR ${_sysusersdir} CACHE PATH
	"Where the sysusers.d file is installed")

install(TARGETS fleetd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR}
	COMPONENT fleetd)
install(TARGETS fleetctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
	COMPONENT fleetctl)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/migrations/
	DESTINATION ${CMAKE_INSTALL_DATADIR}/fleetd/migrations
	COMPONENT fleetd
	FILES_MATCHING PATTERN "[0-9][0-9][0-9][0-9]_*.sql")
install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/fleetd.conf.example
	${PROJECT_SOURCE_DIR}/deploy/systemd/fleetd-api.socket.example
	${PROJECT_SOURCE_DIR}/deploy/systemd/fleetd-device.socket.example
	DESTINATION ${CMAKE_INSTALL_DATADIR}/fleetd COMPONENT fleetd)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/fleet-agent.conf.example
	DESTINATION ${CMAKE_INSTALL_DATADIR}/fleet-agent
	COMPONENT fleet-agent)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/fleetd.default
	DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/default RENAME fleetd
	COMPONENT fleetd)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/fleet-agent.default
	DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/default RENAME fleet-agent
	COMPONENT fleet-agent)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/fleetd.sysusers
	DESTINATION ${FLEET_SYSUSERSDIR} RENAME fleetd.conf COMPONENT fleetd)

# Units with the installed paths.
set(FLEET_SBINDIR ${CMAKE_INSTALL_FULL_SBINDIR})
set(FLEET_SYSCONFDIR ${CMAKE_INSTALL_FULL_SYSCONFDIR})
foreach(_unit fleetd fleet-agent)
	configure_file(${PROJECT_SOURCE_DIR}/deploy/systemd/${_unit}.service.in
		${PROJECT_BINARY_DIR}/deploy/systemd/${_unit}.service @ONLY)
	install(FILES ${PROJECT_BINARY_DIR}/deploy/systemd/${_unit}.service
		DESTINATION ${FLEET_SYSTEMD_UNITDIR} COMPONENT ${_unit})
endforeach()

# Shell completions, from fleetctl's own command table.
set(_compl ${PROJECT_BINARY_DIR}/completions)
add_custom_command(
	OUTPUT ${_compl}/fleetctl ${_compl}/_fleetctl ${_compl}/fleetctl.fish
	COMMAND ${CMAKE_COMMAND} -E make_directory ${_compl}
	COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=0
		$<TARGET_FILE:fleetctl> completion bash > ${_compl}/fleetctl
	COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=0
		$<TARGET_FILE:fleetctl> completion zsh > ${_compl}/_fleetctl
	COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=0
		$<TARGET_FILE:fleetctl> completion fish > ${_compl}/fleetctl.fish
	DEPENDS fleetctl
	COMMENT "Generating fleetctl's shell completions" VERBATIM)
add_custom_target(fleet_completions ALL DEPENDS ${_compl}/fleetctl
	${_compl}/_fleetctl ${_compl}/fleetctl.fish)
install(FILES ${_compl}/fleetctl
	DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
	COMPONENT fleetctl)
install(FILES ${_compl}/_fleetctl
	DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions
	COMPONENT fleetctl)
install(FILES ${_compl}/fleetctl.fish
	DESTINATION ${CMAKE_INSTALL_DATADIR}/fish/vendor_completions.d
	COMPONENT fleetctl)

# Man pages: the programs' --help plus docs/man/*.h2m, and fleetd.conf(5)
# from docs/config.md.
if(FLEET_MAN)
	find_program(HELP2MAN help2man)
	if(NOT HELP2MAN)
		message(FATAL_ERROR "help2man not found (apt-get install "
			"help2man), or configure with -DFLEET_MAN=OFF")
	endif()
	set(_man ${PROJECT_BINARY_DIR}/man)
	file(GLOB _man_src CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/man/*)
	add_custom_command(
		OUTPUT ${_man}/fleetd.8.gz ${_man}/fleetctl.1.gz
			${_man}/fleet-agent.8.gz ${_man}/fleetd.conf.5.gz
		COMMAND sh ${PROJECT_SOURCE_DIR}/cmake/fleet_man.sh ${_man}
			${PROJECT_SOURCE_DIR} ${PROJECT_VERSION}
			$<TARGET_FILE:fleetd> $<TARGET_FILE:fleetctl>
			$<TARGET_FILE:fleet-agent>
		DEPENDS fleetd fleetctl fleet-agent ${_man_src}
			${PROJECT_SOURCE_DIR}/docs/config.md
			${PROJECT_SOURCE_DIR}/cmake/fleet_man.sh
		COMMENT "Generating man pages" VERBATIM)
	add_custom_target(fleet_man ALL DEPENDS ${_man}/fleetd.8.gz
		${_man}/fleetctl.1.gz ${_man}/fleet-agent.8.gz
		${_man}/fleetd.conf.5.gz)
	install(FILES ${_man}/fleetd.8.gz
		DESTINATION ${CMAKE_INSTALL_MANDIR}/man8 COMPONENT fleetd)
	install(FILES ${_man}/fleetd.conf.5.gz
		DESTINATION ${CMAKE_INSTALL_MANDIR}/man5 COMPONENT fleetd)
	install(FILES ${_man}/fleetctl.1.gz
		DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT fleetctl)
	install(FILES ${_man}/fleet-agent.8.gz
		DESTINATION ${CMAKE_INSTALL_MANDIR}/man8 COMPONENT fleet-agent)
endif()
