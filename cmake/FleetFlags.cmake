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
