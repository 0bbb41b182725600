-- SPDX-License-Identifier: Apache-2.0
-- fleet_cursor(t, id), the page cursor of every list row, is declared
-- IMMUTABLE, but its body used extract(epoch FROM timestamptz), which
-- PostgreSQL marks STABLE. A SQL function whose body is more volatile
-- than its declaration is never inlined, so every row of every list page
-- ran the function through the SQL-function executor, which planned its
-- body again on each execution (8 % of PostgreSQL's samples during
-- enrollments before the token lookups stopped computing it;
-- docs/internals/enroll-rate.md). The epoch of t taken as a UTC
-- timestamp is the same number in every session time zone, and
-- extract(epoch FROM timestamp) and AT TIME ZONE 'UTC' are IMMUTABLE:
-- the body is now inlined into the list statements. Same text for every
-- timestamp (checked over 100,000 timestamps and the edges around the
-- epoch, in two session time zones).
CREATE OR REPLACE FUNCTION fleet_cursor(t timestamptz, id uuid) RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN (extract(epoch FROM t AT TIME ZONE 'UTC') * 1000000)::bigint::text
		|| ' ' || id::text;
