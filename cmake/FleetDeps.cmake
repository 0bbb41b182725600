# SPDX-License-Identifier: Apache-2.0
# Finds the libraries fleetd builds on, with pkg-config, and fails with a
# message that says which package to install.
find_package(PkgConfig)
if(NOT PKG_CONFIG_FOUND)
	message(FATAL_ERROR "pkg-config not found: apt-get install pkg-config")
endif()

function(fleet_require_module var module debpkg)
	pkg_check_modules(${var} IMPORTED_TARGET ${module})
	if(NOT ${var}_FOUND)
		message(FATAL_ERROR
			"${module} not found by pkg-config: apt-get install ${debpkg}")
	endif()
endfunction()

fleet_require_module(OPENSSL "openssl>=3.0" libssl-dev)
fleet_require_module(LWS "libwebsockets>=4.1" libwebsockets-dev)
fleet_require_module(PQ libpq libpq-dev)
fleet_require_module(JANSSON "jansson>=2.13" libjansson-dev)
if(FLEET_TESTS)
	fleet_require_module(CMOCKA cmocka libcmocka-dev)
endif()

# libwebsockets can be built without TLS, server or client roles; fleetd
# needs all three, so say so now rather than fail at run time.
include(CheckSymbolExists)
set(CMAKE_REQUIRED_INCLUDES ${LWS_INCLUDE_DIRS})
foreach(feature LWS_WITH_TLS LWS_WITH_SERVER LWS_WITH_CLIENT LWS_ROLE_WS)
	check_symbol_exists(${feature} "lws_config.h" HAVE_${feature})
	if(NOT HAVE_${feature})
		message(FATAL_ERROR
			"libwebsockets was built without ${feature}; fleetd needs TLS, server, client and websocket support")
	endif()
endforeach()
unset(CMAKE_REQUIRED_INCLUDES)
