# SPDX-License-Identifier: Apache-2.0
# Warning, hardening and sanitizer flags. Every fleet target links
# fleet_build_flags; nothing else sets compile flags.
add_library(fleet_build_flags INTERFACE)
target_compile_options(fleet_build_flags INTERFACE
	-Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes
	-Wmissing-prototypes -Wformat=2 -Wcast-qual
	-fstack-protector-strong)
target_compile_definitions(fleet_build_flags INTERFACE
	_POSIX_C_SOURCE=200809L _DEFAULT_SOURCE
	OPENSSL_API_COMPAT=0x30000000L)
if(FLEET_WERROR)
	target_compile_options(fleet_build_flags INTERFACE -Werror)
endif()

if(FLEET_SANITIZE)
	string(REPLACE ";" "," _san "${FLEET_SANITIZE}")
	add_compile_options(-fsanitize=${_san} -fno-sanitize-recover=all
		-fno-omit-frame-pointer)
	add_link_options(-fsanitize=${_san} -fno-sanitize-recover=all)
else()
	# _FORTIFY_SOURCE needs optimisation and fights ASan's interceptors.
	target_compile_definitions(fleet_build_flags INTERFACE
		$<$<NOT:$<CONFIG:Debug>>:_FORTIFY_SOURCE=2>)
endif()

include(CheckPIESupported)
check_pie_supported()
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
add_link_options(-Wl,-z,relro,-z,now)

if(FLEET_FUZZ)
	if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
		message(FATAL_ERROR "FLEET_FUZZ needs clang: cmake -DCMAKE_C_COMPILER=clang")
	endif()
	# Coverage instrumentation in every library, so that libFuzzer sees
	# the code a harness reaches, not only the harness itself.
	add_compile_options(-fsanitize=fuzzer-no-link)
endif()

# Code that runs on devices (fleet-agent and the libraries it links:
# libfleetagent, libfleetcommon, libfleetpki) is built for size in
# optimised builds: issue 11 keeps the stripped agent under 200 KiB.
# Every library is compiled with one section per function and datum so
# the agent's link drops what it does not call (libfleetpki's CA code, for
# one). fleetd links the two shared libraries too; their hot work is in
# OpenSSL, libpq and lws, which keep their own flags. No unwind tables: C,
# no exceptions; debuggers use DWARF.
add_library(fleet_device_flags INTERFACE)
if(NOT FLEET_SANITIZE AND NOT FLEET_FUZZ)
	set(_opt $<OR:$<CONFIG:Release>,$<CONFIG:MinSizeRel>,$<CONFIG:RelWithDebInfo>>)
	add_compile_options($<${_opt}:-ffunction-sections>
		$<${_opt}:-fdata-sections>)
	target_compile_options(fleet_device_flags INTERFACE $<${_opt}:-Os>
		$<${_opt}:-fno-asynchronous-unwind-tables>
		$<${_opt}:-fno-unwind-tables>)
	target_link_options(fleet_device_flags INTERFACE
		$<${_opt}:-Wl,--gc-sections>)
endif()
