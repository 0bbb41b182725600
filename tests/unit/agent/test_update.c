/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The update journal and the decisions taken from it (agent/update.c):
 * a journal survives a save and a load field by field, an unreadable one
 * is an error (never a silent "no update"), every step resumes where
 * docs/internals/agent-update.md says, and offers are resumed, ignored,
 * superseded or taken as new by the table below. firmware.json too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent_int.h"
#include "agent_test_util.h"
#include "atomicfile.h"
#include "update.h"

static void
write_text(const char *dir, const char *name, const char *text)
{
	char path[512], err[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(atomic_write_file(path, text, strlen(text), 0600, err,
					   sizeof(err)),
			 0);
}

static void
test_journal_roundtrip(void **state)
{
	const char *dir = *state;
	struct upd_journal j, k;
	char err[256];

	memset(&j, 0, sizeof(j));
	assert_int_equal(upd_journal_load(dir, &k, err, sizeof(err)), 0);
	j.step = UPD_REBOOTING;
	j.envelope = strdup("{\"payload\":\"e30=\"}");
	snprintf(j.deployment_id, sizeof(j.deployment_id),
		 "11111111-2222-4333-8444-555555555555");
	snprintf(j.url, sizeof(j.url), "/artifacts/%064d", 0);
	snprintf(j.sha256, sizeof(j.sha256), "%064d", 7);
	j.size = 5u * 1024u * 1024u * 1024u; /* past 32 bits */
	j.version_int = 42;
	snprintf(j.version, sizeof(j.version), "4.2");
	snprintf(j.name, sizeof(j.name), "fw");
	snprintf(j.installer, sizeof(j.installer), "dir-ab");
	j.prev_version_int = 41;
	snprintf(j.prev_version, sizeof(j.prev_version), "4.1");
	j.needs_reboot = true;
	j.supports_rollback = true;
	j.rebooted = true;
	j.verify_since = 1700000000;
	snprintf(j.reported, sizeof(j.reported), "rebooting");
	assert_int_equal(upd_journal_save(dir, &j, err, sizeof(err)), 0);
	assert_int_equal(upd_journal_load(dir, &k, err, sizeof(err)), 1);
	assert_int_equal(k.step, UPD_REBOOTING);
	assert_string_equal(k.envelope, j.envelope);
	assert_string_equal(k.deployment_id, j.deployment_id);
	assert_string_equal(k.url, j.url);
	assert_string_equal(k.sha256, j.sha256);
	assert_true(k.size == j.size);
	assert_int_equal(k.version_int, 42);
	assert_string_equal(k.version, "4.2");
	assert_string_equal(k.installer, "dir-ab");
	assert_int_equal(k.prev_version_int, 41);
	assert_string_equal(k.prev_version, "4.1");
	assert_true(k.needs_reboot);
	assert_false(k.automatic_reboot);
	assert_true(k.supports_rollback);
	assert_true(k.rebooted);
	assert_false(k.rb_rebooting);
	assert_int_equal(k.verify_since, 1700000000);
	assert_string_equal(k.reported, "rebooting");
	upd_journal_clear(&j);
	upd_journal_clear(&k);
}

static void
test_journal_unreadable(void **state)
{
	const char *dir = *state;
	struct upd_journal j;
	char err[256];

	write_text(dir, AGENT_UPDATE_JOURNAL, "{\"step\": \"downloading\"");
	assert_int_equal(upd_journal_load(dir, &j, err, sizeof(err)), -1);
	write_text(dir, AGENT_UPDATE_JOURNAL, "{\"step\": \"exploded\"}");
	assert_int_equal(upd_journal_load(dir, &j, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown step"));
	write_text(dir, AGENT_UPDATE_JOURNAL,
		   "{\"step\": \"done\", \"step\": \"verified\"}");
	assert_int_equal(upd_journal_load(dir, &j, err, sizeof(err)), -1);
	upd_journal_clear(&j);
}

static void
test_resume_table(void **state)
{
	static const struct {
		enum upd_step step;
		enum upd_resume_action want;
	} rows[] = {
		{UPD_NONE, UPD_RESUME_NOTHING},
		{UPD_VERIFIED, UPD_RESUME_DOWNLOAD},
		{UPD_DOWNLOADING, UPD_RESUME_DOWNLOAD},
		{UPD_DOWNLOADED, UPD_RESUME_INSTALL},
		{UPD_INSTALLING, UPD_RESUME_INSTALL},
		{UPD_INSTALLED, UPD_RESUME_AFTER_INSTALL},
		{UPD_REBOOTING, UPD_RESUME_VERIFY_REBOOT},
		{UPD_VERIFYING, UPD_RESUME_HEALTH},
		{UPD_COMMITTING, UPD_RESUME_COMMIT},
		{UPD_ROLLING_BACK, UPD_RESUME_ROLLBACK},
		{UPD_DONE, UPD_RESUME_NOTHING},
	};
	struct upd_journal j;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		memset(&j, 0, sizeof(j));
		j.step = rows[i].step;
		assert_int_equal(upd_resume_decide(&j), rows[i].want);
		/* every step has a name that parses back */
		if (rows[i].step != UPD_NONE)
			assert_int_equal(
				upd_step_parse(upd_step_name(rows[i].step)),
				rows[i].step);
	}
	assert_int_equal(upd_step_parse("bogus"), UPD_NONE);
	assert_int_equal(upd_step_parse(NULL), UPD_NONE);
}

static void
test_offer_table(void **state)
{
	static const char *dep = "11111111-2222-4333-8444-555555555555";
	static const char *other = "99999999-2222-4333-8444-555555555555";
	char sha[65], sha2[65];
	struct upd_journal j;

	(void)state;
	snprintf(sha, sizeof(sha), "%064d", 1);
	snprintf(sha2, sizeof(sha2), "%064d", 2);
	memset(&j, 0, sizeof(j));
	/* nothing journaled: new */
	assert_int_equal(upd_offer_decide(&j, dep, sha, 5), UPD_OFFER_NEW);
	snprintf(j.deployment_id, sizeof(j.deployment_id), "%s", dep);
	snprintf(j.sha256, sizeof(j.sha256), "%s", sha);
	j.version_int = 5;
	/* the same offer in progress: resume, at every step */
	for (j.step = UPD_VERIFIED; j.step < UPD_DONE; j.step++)
		assert_int_equal(upd_offer_decide(&j, dep, sha, 5),
				 UPD_OFFER_RESUME);
	/* the same offer finished (committed, refused, rolled back):
	 * fleetd re-sends until it has our report; never again */
	j.step = UPD_DONE;
	assert_int_equal(upd_offer_decide(&j, dep, sha, 5), UPD_OFFER_IGNORE);
	/* another deployment, even of the same file: new */
	assert_int_equal(upd_offer_decide(&j, other, sha, 5), UPD_OFFER_NEW);
	assert_int_equal(upd_offer_decide(&j, dep, sha2, 6), UPD_OFFER_NEW);
	/* another offer before anything is installed: supersede */
	for (j.step = UPD_VERIFIED; j.step <= UPD_DOWNLOADED; j.step++)
		assert_int_equal(upd_offer_decide(&j, other, sha2, 6),
				 UPD_OFFER_SUPERSEDE);
	/* from the install on, the device finishes first */
	for (j.step = UPD_INSTALLING; j.step < UPD_DONE; j.step++)
		assert_int_equal(upd_offer_decide(&j, other, sha2, 6),
				 UPD_OFFER_IGNORE);
	/* an offer without a deployment id matches on file and version */
	j.deployment_id[0] = '\0';
	j.step = UPD_DOWNLOADING;
	assert_int_equal(upd_offer_decide(&j, NULL, sha, 5), UPD_OFFER_RESUME);
	assert_int_equal(upd_offer_decide(&j, "", sha, 5), UPD_OFFER_RESUME);
	assert_int_equal(upd_offer_decide(&j, NULL, sha, 4),
			 UPD_OFFER_SUPERSEDE);
}

static void
test_firmware_file(void **state)
{
	const char *dir = *state;
	struct agent_firmware fw, got;
	char err[256], ver[129] = "configured";

	/* none yet: the configuration's version */
	assert_int_equal(agent_firmware_read(dir, &got), 0);
	assert_int_equal(agent_update_fw_version_num(dir, 7, ver, sizeof(ver)),
			 7);
	assert_string_equal(ver, "configured");
	memset(&fw, 0, sizeof(fw));
	fw.version_int = 9;
	snprintf(fw.version, sizeof(fw.version), "1.9");
	snprintf(fw.name, sizeof(fw.name), "fw");
	assert_int_equal(agent_firmware_write(dir, &fw, err, sizeof(err)), 0);
	assert_int_equal(agent_firmware_read(dir, &got), 1);
	assert_int_equal(got.version_int, 9);
	assert_string_equal(got.version, "1.9");
	assert_string_equal(got.name, "fw");
	/* firmware.json, written at commit, wins over the configuration */
	assert_int_equal(agent_update_fw_version_num(dir, 7, ver, sizeof(ver)),
			 9);
	assert_string_equal(ver, "1.9");
	write_text(dir, AGENT_FIRMWARE_FILE, "{\"version\": 3}");
	assert_int_equal(agent_firmware_read(dir, &got), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_journal_roundtrip,
						atu_dir_setup,
						atu_dir_teardown),
		cmocka_unit_test_setup_teardown(test_journal_unreadable,
						atu_dir_setup,
						atu_dir_teardown),
		cmocka_unit_test(test_resume_table),
		cmocka_unit_test(test_offer_table),
		cmocka_unit_test_setup_teardown(
			test_firmware_file, atu_dir_setup, atu_dir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
