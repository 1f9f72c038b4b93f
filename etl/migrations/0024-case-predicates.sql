-- Shared predicates of cases and hazards, defined once. Every query that asks "is it open?",
-- "is it overdue?" or "was it due in this period?" calls these instead of spelling out the states.
--
-- They are plain `LANGUAGE sql IMMUTABLE` one-expression functions, so the planner inlines them:
-- `case_is_open(c.state)` becomes `c.state <> ALL ('{closed,rejected}')`, the very predicate of
-- the partial indexes (cases_open_*, hazard_open_*: migrations 0003, 0030, 0031), which it still
-- proves and uses. (No STRICT, no SET, no SECURITY DEFINER: any of those would stop the inlining.)
-- The partial indexes keep their literal predicates: applied migrations never change.

-- A case is open until it is closed or rejected (a parked or returned case is still open).
CREATE FUNCTION case_is_open(state text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT state NOT IN ('closed', 'rejected') $$;

-- A hazard is open until it is closed.
CREATE FUNCTION hazard_is_open(state text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT state <> 'closed' $$;

-- An open case (or hazard: pass its open flag) past its deadline at `as_of`. NULL deadline: not overdue.
CREATE FUNCTION case_is_overdue(state text, deadline timestamptz, as_of timestamptz) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT state NOT IN ('closed', 'rejected') AND deadline < as_of $$;

CREATE FUNCTION hazard_is_overdue(state text, deadline timestamptz, as_of timestamptz) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT state <> 'closed' AND deadline < as_of $$;

-- Due in [period_start, period_end): a case falls due when it closes or at its deadline, whichever
-- comes first (the KPI definition of "due in a period"; cases_department_due indexes the same LEAST).
CREATE FUNCTION case_due_at(closed_at timestamptz, deadline timestamptz) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT LEAST(closed_at, deadline) $$;

CREATE FUNCTION case_is_due_in(closed_at timestamptz, deadline timestamptz,
                               period_start timestamptz, period_end timestamptz) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT LEAST(closed_at, deadline) >= period_start AND LEAST(closed_at, deadline) < period_end $$;
