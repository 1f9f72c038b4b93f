-- Identity, phase 2 (issue 11): what the server needs now that every request runs as gridwatch_app.
--
-- 1. Operators may also hold the province code (省综治中心 duty operators act province-wide).
-- 2. Open311 clients see only their own reports: no region scope, an own-reports policy.
-- 3. Idempotency per client: client_request_id is unique per creator (cases.created_by /
--    hazard.created_by, the granted user id), so replaying another client's id never answers
--    that client's case.
-- 4. Departments keep sight of every case ever dispatched to them (escalation and hand-down clear
--    cases.department_id; the trail keeps it).
-- 5. Trails refuse an event without an authenticated user when written by the app role.
-- 6. Possible-duplicate detection sees every case (through a definer function that answers an id
--    only), not just the reporter's scope.
-- 7. Tables created later by the owner are readable by the app role (like every table in 0081);
--    writes stay explicit grants. tests/test_auth_grants.py lists every table.

ALTER TABLE app_user DROP CONSTRAINT app_user_operator_region;
ALTER TABLE app_user ADD CONSTRAINT app_user_operator_region
    CHECK (role <> 'operator' OR length(region_code) IN (2, 4, 6, 9));

CREATE OR REPLACE FUNCTION gridwatch_role_scope(role text, region_code text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT CASE
        WHEN role IN ('operator', 'grid_worker') THEN coalesce(region_code, '')
        WHEN role IN ('department', 'open311_client') THEN ''
        ELSE coalesce((SELECT string_agg(code, ',' ORDER BY code) FROM region WHERE level = 'province'), '')
    END
$$;

-- 3. creators and per-creator idempotency keys (NULL creator: ETL, CLI, demo → key 0)
ALTER TABLE cases ADD COLUMN created_by bigint;
ALTER TABLE hazard ADD COLUMN created_by bigint;
ALTER TABLE cases DROP CONSTRAINT cases_client_request_id_key;
ALTER TABLE hazard DROP CONSTRAINT hazard_client_request_id_key;
CREATE UNIQUE INDEX cases_client_request ON cases ((coalesce(created_by, 0)), client_request_id);
CREATE UNIQUE INDEX hazard_client_request ON hazard ((coalesce(created_by, 0)), client_request_id);
CREATE INDEX cases_created_by ON cases (created_by) WHERE created_by IS NOT NULL;

-- 2. own reports: read by their creator; inserted as oneself only by accounts without a region
--    scope (Open311 clients) — everyone else inserts through the region policy.
CREATE POLICY cases_own_reports ON cases FOR SELECT USING (created_by = (SELECT gridwatch_user_id()));
CREATE POLICY cases_own_reports_insert ON cases FOR INSERT
    WITH CHECK (created_by = (SELECT gridwatch_user_id()) AND cardinality((SELECT gridwatch_scope())) = 0);

-- 4. cases a department was ever dispatched (the trail's department_id), as one array per query
CREATE INDEX case_event_department ON case_event (department_id, case_id) WHERE department_id IS NOT NULL;
CREATE FUNCTION gridwatch_department_cases() RETURNS bigint[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT coalesce(array_agg(DISTINCT e.case_id), '{}')
      FROM case_event e
     WHERE e.department_id = gridwatch_department_id()
$$;
CREATE POLICY cases_department_history ON cases FOR SELECT
    USING (id = ANY ((SELECT gridwatch_department_cases())::bigint[]));

-- 5. no anonymous events from the app role
CREATE FUNCTION trail_needs_user() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF gridwatch_user_id() IS NULL THEN
        RAISE EXCEPTION '%: an event needs an authenticated user', TG_TABLE_NAME
            USING ERRCODE = '42501', HINT = 'open the transaction with the user''s credential (gridwatch.db.transaction)';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER case_event_needs_user BEFORE INSERT ON case_event
    FOR EACH ROW WHEN (current_user = 'gridwatch_app') EXECUTE FUNCTION trail_needs_user();
CREATE TRIGGER hazard_event_needs_user BEFORE INSERT ON hazard_event
    FOR EACH ROW WHEN (current_user = 'gridwatch_app') EXECUTE FUNCTION trail_needs_user();
DO $$
BEGIN
    IF to_regclass('public.alert_event') IS NOT NULL THEN
        CREATE TRIGGER alert_event_needs_user BEFORE INSERT ON alert_event
            FOR EACH ROW WHEN (current_user = 'gridwatch_app') EXECUTE FUNCTION trail_needs_user();
    END IF;
END $$;

-- 6. an earlier case of the same category within 50 m in 72 h, whoever may see it (an id only)
CREATE FUNCTION case_possible_duplicate(category text, p geometry, at timestamptz) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT coalesce(d.possible_duplicate_of, d.id)
      FROM (SELECT n.id, n.possible_duplicate_of, n.category_code, n.reported_at, n.state, n.geom FROM cases n
             WHERE n.geom && ST_Expand(p, 0.001) OFFSET 0) d
     WHERE d.category_code = category
       AND d.reported_at > at - interval '72 hours' AND d.reported_at <= at
       AND d.state <> 'rejected'
       AND ST_DWithin(d.geom::geography, p::geography, 50)
     ORDER BY d.reported_at, d.id LIMIT 1
$$;

-- 7. later tables readable by the app role; their writes need explicit grants
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO gridwatch_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO gridwatch_app;
