-- KPI rollup: per county-level unit and local day, the counts the drill-down KPIs sum, kept exact
-- by statement-level triggers on cases (one grouped upsert per INSERT/UPDATE/DELETE statement,
-- whatever its row count). gridwatch/kpi.py reads it for the province, prefectures and counties
-- (whole past days; today still comes from the cases table), so their KPIs no longer scan the
-- tens of thousands of cases of a 30-day window.
--
-- unit = COALESCE(county_code, prefecture_code, '') (嘉峪关's townships roll up into 6202).
-- A case contributes on up to four days (Asia/Shanghai): its reported day (reported), its closed
-- day (closed), its due day LEAST(closed_at, deadline) (due … closed_beyond, as kpi.py defines
-- them), and while open its deadline day (open; 'infinity' when it has no deadline).
-- Rejected and duplicate cases count nowhere.

CREATE TABLE case_day (
    unit               text NOT NULL,
    day                date NOT NULL,
    reported           integer NOT NULL DEFAULT 0,
    closed             integer NOT NULL DEFAULT 0,
    due                integer NOT NULL DEFAULT 0,
    due_closed         integer NOT NULL DEFAULT 0,
    due_on_time        integer NOT NULL DEFAULT 0,
    reworked           integer NOT NULL DEFAULT 0,
    extended           integer NOT NULL DEFAULT 0,
    returned           integer NOT NULL DEFAULT 0,
    escalated          integer NOT NULL DEFAULT 0,
    disputes_closed    integer NOT NULL DEFAULT 0,
    disputes_resolved  integer NOT NULL DEFAULT 0,
    closed_village     integer NOT NULL DEFAULT 0,
    closed_township    integer NOT NULL DEFAULT 0,
    closed_county      integer NOT NULL DEFAULT 0,
    closed_beyond      integer NOT NULL DEFAULT 0,
    open               integer NOT NULL DEFAULT 0,
    PRIMARY KEY (unit, day)
);

-- The contribution of the case rows in relation %I, signed %s (+1 add, −1 take away), grouped by unit and
-- day and added into case_day. A format() template: the trigger runs it over its transition tables
-- (which only the trigger function itself can see), the backfill over the cases table.
CREATE FUNCTION case_day_sql() RETURNS text LANGUAGE sql IMMUTABLE AS $f$ SELECT $q$
    WITH counted AS (
        SELECT c.*, %s AS s, COALESCE(c.county_code, c.prefecture_code, '') AS unit, (c.state = 'closed') AS is_closed,
               COALESCE(c.closed_level, c.handling_level) AS lvl
        FROM %I c
        WHERE c.duplicate_of IS NULL AND c.state <> 'rejected'
    ), parts AS (
        SELECT unit, (reported_at AT TIME ZONE 'Asia/Shanghai')::date AS day, s AS reported, 0 AS closed, 0 AS due,
               0 AS due_closed, 0 AS due_on_time, 0 AS reworked, 0 AS extended, 0 AS returned, 0 AS escalated,
               0 AS disputes_closed, 0 AS disputes_resolved, 0 AS closed_village, 0 AS closed_township,
               0 AS closed_county, 0 AS closed_beyond, 0 AS open
        FROM counted
        UNION ALL
        SELECT unit, (closed_at AT TIME ZONE 'Asia/Shanghai')::date, 0, s, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
        FROM counted WHERE is_closed AND closed_at IS NOT NULL
        UNION ALL
        SELECT unit, (LEAST(closed_at, deadline) AT TIME ZONE 'Asia/Shanghai')::date, 0, 0, s,
               s * is_closed::int,
               s * (is_closed AND COALESCE(closed_on_time, deadline IS NULL OR closed_at <= deadline))::int,
               s * (is_closed AND reworks > 0)::int,
               s * (extensions > 0)::int,
               s * (returns > 0)::int,
               s * (escalations > 0)::int,
               s * (is_closed AND family = 'dispute')::int,
               s * (is_closed AND family = 'dispute' AND COALESCE(resolved, false))::int,
               s * (is_closed AND lvl = 'village')::int,
               s * (is_closed AND lvl = 'township')::int,
               s * (is_closed AND lvl = 'county')::int,
               s * (is_closed AND lvl IN ('prefecture', 'province'))::int,
               0
        FROM counted WHERE LEAST(closed_at, deadline) IS NOT NULL
        UNION ALL
        SELECT unit, COALESCE((deadline AT TIME ZONE 'Asia/Shanghai')::date, 'infinity'::date), 0, 0, 0, 0, 0, 0, 0, 0,
               0, 0, 0, 0, 0, 0, 0, s
        FROM counted WHERE NOT is_closed
    )
    INSERT INTO case_day AS d (unit, day, reported, closed, due, due_closed, due_on_time, reworked, extended, returned,
                               escalated, disputes_closed, disputes_resolved, closed_village, closed_township,
                               closed_county, closed_beyond, open)
    SELECT unit, day, sum(reported), sum(closed), sum(due), sum(due_closed), sum(due_on_time), sum(reworked),
           sum(extended), sum(returned), sum(escalated), sum(disputes_closed), sum(disputes_resolved),
           sum(closed_village), sum(closed_township), sum(closed_county), sum(closed_beyond), sum(open)
    FROM parts GROUP BY unit, day
    ORDER BY unit, day   -- a fixed lock order: concurrent writers never deadlock on case_day rows
    ON CONFLICT (unit, day) DO UPDATE SET
        reported = d.reported + EXCLUDED.reported, closed = d.closed + EXCLUDED.closed, due = d.due + EXCLUDED.due,
        due_closed = d.due_closed + EXCLUDED.due_closed, due_on_time = d.due_on_time + EXCLUDED.due_on_time,
        reworked = d.reworked + EXCLUDED.reworked, extended = d.extended + EXCLUDED.extended,
        returned = d.returned + EXCLUDED.returned, escalated = d.escalated + EXCLUDED.escalated,
        disputes_closed = d.disputes_closed + EXCLUDED.disputes_closed,
        disputes_resolved = d.disputes_resolved + EXCLUDED.disputes_resolved,
        closed_village = d.closed_village + EXCLUDED.closed_village,
        closed_township = d.closed_township + EXCLUDED.closed_township,
        closed_county = d.closed_county + EXCLUDED.closed_county,
        closed_beyond = d.closed_beyond + EXCLUDED.closed_beyond,
        open = d.open + EXCLUDED.open
$q$ $f$;

CREATE FUNCTION case_day_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        TRUNCATE case_day;
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        EXECUTE format(case_day_sql(), -1, 'old_rows');
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        EXECUTE format(case_day_sql(), 1, 'new_rows');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER case_day_insert AFTER INSERT ON cases REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION case_day_sync();
CREATE TRIGGER case_day_update AFTER UPDATE ON cases REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION case_day_sync();
CREATE TRIGGER case_day_delete AFTER DELETE ON cases REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION case_day_sync();
CREATE TRIGGER case_day_truncate AFTER TRUNCATE ON cases
    FOR EACH STATEMENT EXECUTE FUNCTION case_day_sync();

-- Backfill from the cases already there (one grouped pass).
DO $$ BEGIN EXECUTE format(case_day_sql(), 1, 'cases'); END $$;

-- The children ranking counts grids per child: an index-only scan of grid codes, not the region heap.
CREATE INDEX region_grid_code ON region (code) WHERE level = 'grid';
