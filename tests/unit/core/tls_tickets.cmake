# The TLS ticket key schedule and the resumption rule
# (fleetd/core/tls_tickets.c): which key is made, encrypts, decrypts and is
# removed when; ticket lifetimes; when a decrypted ticket may resume.
fleet_add_unit_test(test_tls_tickets
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_tls_tickets.c
	LIBS fleetd_core fleetcommon)
