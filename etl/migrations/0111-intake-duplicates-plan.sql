-- Intake's batch duplicate check (0110's case_possible_duplicates()) with the plan it needs (issue 13).
-- The planner guesses a few hundred of the batch's 5,000 cases survive the idempotency filter, so it
-- (1) pairs the batch's cases through their 0.001° cells by a merge join whose sort of 45,000 rows with
--     their points spills to disk (~100 ms a batch), instead of a hash join on the same keys (~15 ms);
-- (2) probes cases for each point with a BitmapAnd of the geometry GiST index and the (category, time)
--     btree — one bitmap built per point, and thousands of btree entries read per probe for the
--     category — instead of a plain GiST index scan that checks category and time on the few rows found.
-- Measured on a 5,000 batch against 55,000 cases (backend CPU): 110 ms → 70 ms. The settings hold only
-- while this function runs (function-level SET), the answers are the same rows.
ALTER FUNCTION case_possible_duplicates(bigint[], text[], text[], float8[], float8[], timestamptz[])
    SET enable_mergejoin = off;
ALTER FUNCTION case_possible_duplicates(bigint[], text[], text[], float8[], float8[], timestamptz[])
    SET enable_bitmapscan = off;
