-- KPI support: the moment a case "falls due" is LEAST(closed_at, deadline) (LEAST ignores NULLs:
-- a closed case without deadline falls due when it closes; an open case with no deadline never does).
-- Indexed so that a period's due cases are found by range, not by scanning the whole table.
CREATE INDEX cases_due_at ON cases ((LEAST(closed_at, deadline)));
CREATE INDEX cases_closed_at ON cases (closed_at) WHERE closed_at IS NOT NULL;
CREATE INDEX cases_department_due ON cases (department_id, (LEAST(closed_at, deadline))) WHERE department_id IS NOT NULL;
