# SPDX-License-Identifier: Apache-2.0
# pki_bench: device certificates issued per second (CSR check + sign + DER
# encode) beside the raw ECDSA P-256 sign+verify rate of the same run.
add_executable(pki_bench ${CMAKE_CURRENT_LIST_DIR}/pki_bench.c)
target_link_libraries(pki_bench PRIVATE fleet_build_flags fleetpki)
