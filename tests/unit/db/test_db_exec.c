/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetd/db/db.c's db_exec against the test suite's PostgreSQL (the
 * testpg fixture; libpq finds it through PGHOST). A COMMIT after a failed
 * statement is answered by the server with success and the tag ROLLBACK:
 * db_exec reports it as the failure it is, and nothing was written. A
 * transaction whose statements all succeeded commits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static int
setup(void **state)
{
	PGconn *conn = PQconnectdb("");

	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "cannot connect: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return -1;
	}
	if (db_exec(conn, "CREATE TEMP TABLE t (x integer PRIMARY KEY)") != 0) {
		PQfinish(conn);
		return -1;
	}
	*state = conn;
	return 0;
}

static int
teardown(void **state)
{
	PQfinish(*state);
	return 0;
}

static long
rows(PGconn *conn)
{
	PGresult *res = PQexec(conn, "SELECT count(*) FROM t");
	long n = -1;

	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return n;
}

static void
test_commit_after_a_failed_statement_fails(void **state)
{
	PGconn *conn = *state;

	assert_int_equal(db_exec(conn, "BEGIN"), 0);
	assert_int_equal(db_exec(conn, "INSERT INTO t VALUES (1)"), 0);
	/* a unique violation the caller does not look at */
	(void)db_exec(conn, "INSERT INTO t VALUES (1)");
	assert_int_equal(db_exec(conn, "COMMIT"), -1);
	assert_int_equal(rows(conn), 0);
	assert_int_equal(PQtransactionStatus(conn), PQTRANS_IDLE);
}

static void
test_commit_of_good_statements_succeeds(void **state)
{
	PGconn *conn = *state;

	assert_int_equal(db_exec(conn, "BEGIN"), 0);
	assert_int_equal(db_exec(conn, "INSERT INTO t VALUES (2)"), 0);
	assert_int_equal(db_exec(conn, "INSERT INTO t VALUES (3)"), 0);
	assert_int_equal(db_exec(conn, "COMMIT"), 0);
	assert_int_equal(rows(conn), 2);
}

static void
test_rollback_and_bad_sql(void **state)
{
	PGconn *conn = *state;

	assert_int_equal(db_exec(conn, "BEGIN"), 0);
	assert_int_equal(db_exec(conn, "INSERT INTO t VALUES (4)"), 0);
	assert_int_equal(db_exec(conn, "ROLLBACK"), 0);
	assert_int_equal(db_exec(conn, "SELEC 1"), -1);
	assert_int_equal(rows(conn), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commit_after_a_failed_statement_fails),
		cmocka_unit_test(test_commit_of_good_statements_succeeds),
		cmocka_unit_test(test_rollback_and_bad_sql),
	};

	log_setup("test_db_exec", LOG_LEVEL_WARN, false);
	return cmocka_run_group_tests(tests, setup, teardown);
}
