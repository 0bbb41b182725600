/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One table of devices and selectors with the answers a user expects,
 * shared by the in-memory semantics test (test_selector.c) and the
 * contract test that runs the same table against PostgreSQL through
 * fleetd/db (selector_contract.c, driven by test_devices.sh). Test code.
 *
 * Devices are named by a letter; their ids end in that letter. Presence
 * uses SELECTOR_CASES_HEARTBEAT_S; session ages stay at least half a
 * second away from it so the time a test takes cannot move a device
 * across the boundary.
 */
#ifndef FLEET_TEST_SELECTOR_CASES_H
#define FLEET_TEST_SELECTOR_CASES_H

#include <stdint.h>

#define SELECTOR_CASES_HEARTBEAT_S 6
#define SC_LABELS 4

struct sc_device {
	char letter;
	const char *id;
	const char *model; /* NULL: none */
	const char *fw_version; /* NULL: none */
	int64_t session_age_ms; /* -1: no session */
	const char *labels[SC_LABELS][2]; /* {key, value}, {NULL} ends */
	const char *status; /* NULL: active */
};

static const struct sc_device sc_devices[] = {
	{'A',
	 "0b0e1c9a-8d7e-4c6b-9a8f-00000000000a",
	 "plc-x",
	 "1.0",
	 1000,
	 {{"site", "b7"}, {"room", "12"}, {NULL, NULL}},
	 NULL},
	{'B',
	 "0b0e1c9a-8d7e-4c6b-9a8f-00000000000b",
	 "plc-x",
	 "1.1",
	 100000,
	 {{"site", "b8"}, {NULL, NULL}},
	 NULL},
	{'C',
	 "0b0e1c9a-8d7e-4c6b-9a8f-00000000000c",
	 "plc-y",
	 NULL,
	 -1,
	 {{"site", "b7"}, {"retired", ""}, {NULL, NULL}},
	 NULL},
	{'D',
	 "0b0e1c9a-8d7e-4c6b-9a8f-00000000000d",
	 NULL,
	 "2.0",
	 5500,
	 {{NULL, NULL}},
	 NULL},
	{'E',
	 "0b0e1c9a-8d7e-4c6b-9a8f-00000000000e",
	 "plc-z",
	 "1.0",
	 6500,
	 {{"site", "b7"},
	  {"tier", "gold"},
	  {"model", "label-model"},
	  {NULL, NULL}},
	 NULL},
	{'F',
	 "0b0e1c9a-8d7e-4c6b-9a8f-00000000000f",
	 "plc-x",
	 "1.0",
	 -1,
	 {{"online", "yes"}, {"id", "x"}, {"status", "x"}, {NULL, NULL}},
	 "decommissioned"},
	{'G',
	 "0b0e1c9a-8d7e-4c6b-9a8f-000000000001",
	 NULL,
	 NULL,
	 0,
	 {{"a.b/c-d_e", "\xc3\xbc-value"}, {"site", ""}, {NULL, NULL}},
	 NULL},
};

#define SC_NDEVICES (sizeof(sc_devices) / sizeof(sc_devices[0]))

struct sc_selector {
	const char *text;
	const char *want; /* letters of the devices it matches, in order */
};

static const struct sc_selector sc_selectors[] = {
	{"", "ABCDEFG"},
	{"site=b7", "ACE"},
	{"site==b7", "ACE"},
	{" site = b7 ", "ACE"},
	{"site=B7", ""},
	{"site!=b7", "BDFG"},
	{"site=", "G"},
	{"retired", "C"},
	{"!retired", "ABDEFG"},
	{"retired=", "C"},
	{"site in (b7,b8)", "ABCE"},
	{"site in (b8, zz)", "B"},
	{"site notin (b7)", "BDFG"},
	{"site notin (b7,b8)", "DFG"},
	{"model=plc-x", "ABF"},
	{"model!=plc-x", "CDEG"},
	{"model", "ABCEF"},
	{"!model", "DG"},
	{"model in (plc-x,plc-y)", "ABCF"},
	{"model notin (plc-x)", "CDEG"},
	{"model=label-model", ""},
	{"fw_version=1.0", "AEF"},
	{"!fw_version", "CG"},
	{"fw_version notin (1.0)", "BCDG"},
	{"fw_version in (1.0,1.1,2.0)", "ABDEF"},
	{"online", "ADG"},
	{"!online", "BCEF"},
	{"online=true", "ADG"},
	{"online=false", "BCEF"},
	{"online!=true", "BCEF"},
	{"online!=false", "ADG"},
	{"online in (true,false)", "ABCDEFG"},
	{"online in (false)", "BCEF"},
	{"online notin (true)", "BCEF"},
	{"online notin (true,false)", ""},
	{"id=0b0e1c9a-8d7e-4c6b-9a8f-00000000000a", "A"},
	{"id!=0b0e1c9a-8d7e-4c6b-9a8f-00000000000a", "BCDEFG"},
	{"id in (0b0e1c9a-8d7e-4c6b-9a8f-00000000000b,"
	 "0b0e1c9a-8d7e-4c6b-9a8f-00000000000c)",
	 "BC"},
	{"id=0B0E1C9A-8D7E-4C6B-9A8F-00000000000A", ""},
	{"id", "ABCDEFG"},
	{"!id", ""},
	{"tier", "E"},
	{"site=b7,!tier", "AC"},
	{"site=b7,online", "A"},
	{"site=b7, model=plc-x, fw_version=1.0", "A"},
	{"site in (b7, b8), model notin (plc-y)", "ABE"},
	{"a.b/c-d_e=\xc3\xbc-value", "G"},
	{"a.b/c-d_e!=\xc3\xbc-value", "ABCDEF"},
	{"nosuchkey!=x", "ABCDEFG"},
	{"nosuchkey notin (x)", "ABCDEFG"},
	{"!nosuchkey", "ABCDEFG"},
	{"nosuchkey", ""},
	{"nosuchkey=x", ""},
	{"nosuchkey in (x)", ""},
	{"room=12,room!=12", ""},
	/* status is a built-in key every device has (F is decommissioned
	 * and offline; its label "status" is shadowed) */
	{"status=active", "ABCDEG"},
	{"status=decommissioned", "F"},
	{"status!=active", "F"},
	{"status", "ABCDEFG"},
	{"!status", ""},
	{"status in (active,decommissioned)", "ABCDEFG"},
	{"status notin (active)", "F"},
	{"status=active,online=false", "BCE"},
};

#define SC_NSELECTORS (sizeof(sc_selectors) / sizeof(sc_selectors[0]))

#endif
