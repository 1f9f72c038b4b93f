-- Intake in sets (issue 13): a batch of cases costs a few statements whose work grows with the
-- batch, not a function call, a trigger call or a credential check per case.
--
-- 1. Grids are found through a GiST index of the grid pieces alone: the province's 918 large
--    pieces overlap every point, and in the shared index they doubled the cost of each lookup.
-- 2. case_possible_duplicates(): the 50 m / 72 h duplicate check of a whole batch in one call
--    (0085's case_possible_duplicate() did one case per call), against earlier cases and — new —
--    against earlier cases of the same batch, as if the batch had been reported one case at a time.
-- 3. The trail's two per-row checks (0081's actor, 0085's authenticated user) become one cheap
--    per-row test plus checks once per statement; what they guarantee is unchanged.
-- 4. cases_ref() runs only for a case inserted without a ref (intake now writes the same ref).

-- 1 -------------------------------------------------------------------------------------------
CREATE INDEX region_subdivided_grid_gist ON region_subdivided USING gist (geom) WHERE level = 'grid';

-- 2 -------------------------------------------------------------------------------------------
-- For each case of a batch (ids in input order, as nextval gave them): the possible duplicate it is
-- flagged with — the earliest (reported_at, id) case of the same category within 50 m reported in
-- the 72 h up to it and not rejected, whoever may see it (definer; it answers ids only), or an
-- earlier case of the batch itself; a flagged case points at the case its match points at (the
-- first report), as 0085's function does. A case whose client_request_id this creator already used,
-- or an earlier case of the batch used, is not written (the insert's ON CONFLICT), so it is no
-- match for others. Nearby cases of the batch are paired through 0.001° cells (at least 81 m wide
-- anywhere in Gansu, so 50 m never skips a cell) with a hash join, not a pairwise scan.
CREATE FUNCTION case_possible_duplicates(ids bigint[], crids text[], categories text[], lons float8[], lats float8[],
                                         reported_ats timestamptz[])
RETURNS TABLE (id bigint, possible_duplicate_of bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH RECURSIVE b AS MATERIALIZED (
        SELECT i.id, i.crid, i.category, coalesce(i.at, now()) AS at, ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326) AS p,
               floor(i.lon * 1000)::int AS cx, floor(i.lat * 1000)::int AS cy
        FROM unnest(ids, crids, categories, lons, lats, reported_ats) AS i(id, crid, category, lon, lat, at)
    ), known AS (
        SELECT DISTINCT c.client_request_id AS crid
        FROM cases c
        WHERE c.client_request_id = ANY (crids)
          AND coalesce(c.created_by, 0) = coalesce(gridwatch_user_id(), 0)
    ), fresh AS MATERIALIZED (      -- the cases of the batch that will be written
        SELECT b.*
        FROM b
        WHERE b.crid IS NULL
           OR (NOT EXISTS (SELECT 1 FROM known k WHERE k.crid = b.crid)
               AND NOT EXISTS (SELECT 1 FROM b e WHERE e.crid = b.crid AND e.id < b.id))
    ), old AS (
        SELECT DISTINCT ON (b.id) b.id, d.reported_at AS at, d.id AS cand, coalesce(d.possible_duplicate_of, d.id) AS root
        FROM fresh b
        JOIN cases d ON d.geom && ST_Expand(b.p, 0.001)
        WHERE d.category_code = b.category AND d.reported_at > b.at - interval '72 hours' AND d.reported_at <= b.at
          AND d.state <> 'rejected' AND ST_DWithin(d.geom::geography, b.p::geography, 50)
        ORDER BY b.id, d.reported_at, d.id
    ), near AS (
        SELECT DISTINCT ON (b.id) b.id, j.at, j.id AS cand
        FROM fresh b
        CROSS JOIN (VALUES (-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 0), (0, 1), (1, -1), (1, 0), (1, 1)) AS n(dx, dy)
        JOIN fresh j ON j.cx = b.cx + n.dx AND j.cy = b.cy + n.dy AND j.category = b.category
        WHERE j.id < b.id AND j.at > b.at - interval '72 hours' AND j.at <= b.at
          AND ST_DWithin(j.p::geography, b.p::geography, 50)
        ORDER BY b.id, j.at, j.id
    ), best AS MATERIALIZED (       -- per case: the root of an earlier case, or the batch case to follow
        SELECT b.id,
               CASE WHEN n.cand IS NULL OR (o.cand IS NOT NULL AND (o.at, o.cand) < (n.at, n.cand)) THEN o.root END AS root,
               CASE WHEN n.cand IS NOT NULL AND (o.cand IS NULL OR (n.at, n.cand) < (o.at, o.cand)) THEN n.cand END AS next
        FROM fresh b
        LEFT JOIN old o ON o.id = b.id
        LEFT JOIN near n ON n.id = b.id
        WHERE o.id IS NOT NULL OR n.id IS NOT NULL
    ), chase AS (                   -- follow batch matches back to their first report
        SELECT x.id, x.next AS cur, 1 AS depth FROM best x WHERE x.next IS NOT NULL
        UNION ALL
        SELECT c.id, x.next, c.depth + 1 FROM chase c JOIN best x ON x.id = c.cur WHERE x.next IS NOT NULL
    ), ends AS (
        SELECT DISTINCT ON (c.id) c.id, c.cur FROM chase c ORDER BY c.id, c.depth DESC
    )
    SELECT x.id, coalesce(x.root, y.root, e.cur)
    FROM best x
    LEFT JOIN ends e ON e.id = x.id
    LEFT JOIN best y ON y.id = e.cur
$$;

-- 3 -------------------------------------------------------------------------------------------
-- The signed-in user's name (their own; app_user itself stays unreadable to the app role).
CREATE FUNCTION gridwatch_username() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT u.username FROM app_user u WHERE u.id = gridwatch_user_id()
$$;

-- The actor: a row whose actor already equals gridwatch.trail_actor (a hint a writer may set to
-- the signed-in user's name for a whole batch) skips the per-row rewrite; once per statement every
-- new event must then carry the signed-in user's name, or the statement fails — a wrong hint
-- cannot put another name on the trail.
DROP TRIGGER case_event_actor ON case_event;
CREATE TRIGGER case_event_actor BEFORE INSERT ON case_event
    FOR EACH ROW WHEN (coalesce(current_setting('gridwatch.grant', true), '') <> ''
                       AND NEW.actor IS DISTINCT FROM nullif(current_setting('gridwatch.trail_actor', true), ''))
    EXECUTE FUNCTION case_event_actor();

CREATE FUNCTION case_event_actor_check() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    who text := gridwatch_username();
BEGIN
    IF who IS NOT NULL AND EXISTS (SELECT 1 FROM new_rows WHERE actor IS DISTINCT FROM who) THEN
        RAISE EXCEPTION 'case_event: an event''s actor is the signed-in user (%)', who
            USING ERRCODE = '42501', HINT = 'leave gridwatch.trail_actor unset, or set it to the signed-in user''s name';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER case_event_actor_check AFTER INSERT ON case_event REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT WHEN (coalesce(current_setting('gridwatch.grant', true), '') <> '')
    EXECUTE FUNCTION case_event_actor_check();

-- An authenticated user, checked once per statement (0085 checked each row; the same error).
CREATE FUNCTION trail_needs_user_rows() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows) AND gridwatch_user_id() IS NULL THEN
        RAISE EXCEPTION '%: an event needs an authenticated user', TG_TABLE_NAME
            USING ERRCODE = '42501', HINT = 'open the transaction with the user''s credential (gridwatch.db.transaction)';
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER case_event_needs_user ON case_event;
CREATE TRIGGER case_event_needs_user AFTER INSERT ON case_event REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT WHEN (current_user = 'gridwatch_app') EXECUTE FUNCTION trail_needs_user_rows();

-- 4 -------------------------------------------------------------------------------------------
DROP TRIGGER cases_ref ON cases;
CREATE TRIGGER cases_ref BEFORE INSERT ON cases FOR EACH ROW WHEN (NEW.ref IS NULL) EXECUTE FUNCTION cases_ref();
