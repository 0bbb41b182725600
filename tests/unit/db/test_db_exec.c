/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetd/db/db.c's db_exec against the test suite's PostgreSQL (the
 * testpg fixture; libpq finds it through PGHOST). A COMMIT after a failed
 * statement is answered by the server with success and the tag ROLLBACK:
 * db_exec reports it as the failure it is, and nothing was written. A
 * transaction whose statements all succeeded commits. The commit timeout:
 * a COMMIT, or a statement outside a transaction, that takes longer is
 * cancelled and fails as unconfirmed (a commit that sleeps in a deferred
 * trigger stands in for one waiting for a standby, which needs a
 * replication set-up: test_commit_timeout.sh has that).
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

/* A COMMIT that takes 5 s: a deferred constraint trigger sleeps. */
static void
test_commit_past_the_timeout_fails(void **state)
{
	struct db *db = db_new("");
	PGconn *conn = db_conn(db);

	(void)state;
	assert_non_null(conn);
	assert_int_equal(
		db_exec(conn,
			"CREATE TEMP TABLE slow (x integer); "
			"CREATE FUNCTION pg_temp.sleepy() RETURNS trigger "
			"LANGUAGE plpgsql AS 'BEGIN PERFORM pg_sleep(5); "
			"RETURN NULL; END'; "
			"CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON "
			"slow DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
			"EXECUTE FUNCTION pg_temp.sleepy()"),
		0);
	db_commit_timeout_set(1);
	assert_int_equal(db_exec(conn, "BEGIN"), 0);
	assert_int_equal(db_exec(conn, "INSERT INTO slow VALUES (1)"), 0);
	assert_false(db_commit_unconfirmed());
	assert_int_equal(db_exec(conn, "COMMIT"), -1);
	assert_true(db_commit_unconfirmed());
	assert_true(db_lost(db)); /* answered 503 */
	db_commit_timeout_set(0);
	/* the next unit of work starts afresh, on a usable connection */
	conn = db_conn(db);
	assert_non_null(conn);
	assert_false(db_commit_unconfirmed());
	assert_false(db_lost(db));
	db_free(db);
}

/* A statement outside a transaction commits itself: bounded the same. */
static void
test_statement_past_the_timeout_fails(void **state)
{
	struct db *db = db_new("");
	PGconn *conn = db_conn(db);

	(void)state;
	assert_non_null(conn);
	db_commit_timeout_set(1);
	assert_true(db_bounded(conn));
	assert_int_equal(PQsendQuery(conn, "SELECT pg_sleep(5)"), 1);
	assert_null(db_bounded_result(conn));
	assert_true(db_commit_unconfirmed());
	/* inside a transaction only the COMMIT is bounded */
	assert_non_null(db_conn(db));
	assert_int_equal(db_exec(conn, "BEGIN"), 0);
	assert_false(db_bounded(conn));
	assert_int_equal(db_exec(conn, "ROLLBACK"), 0);
	db_commit_timeout_set(0);
	assert_false(db_bounded(conn));
	db_free(db);
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
		cmocka_unit_test(test_commit_past_the_timeout_fails),
		cmocka_unit_test(test_statement_past_the_timeout_fails),
	};

	log_setup("test_db_exec", LOG_LEVEL_WARN, false);
	return cmocka_run_group_tests(tests, setup, teardown);
}
