-- Insert a batch of checked cases in one statement (one notification), idempotent on
-- client_request_id, stamped from the leaf region's lineage, flagged as a possible duplicate of an
-- earlier case of the same category within 50 m in 72 h (possible_duplicate_of; it still counts), and write each new case's 'report' event.
WITH input AS (
    SELECT *
    FROM unnest(%(id)s::bigint[], %(crid)s::text[], %(category)s::text[], %(family)s::text[], %(title)s::text[],
                %(description)s::text[], %(channel)s::text[], %(reporter_name)s::text[], %(reporter_phone)s::text[],
                %(parties)s::jsonb[], %(grade)s::text[], %(lon)s::float8[], %(lat)s::float8[], %(leaf)s::text[],
                %(coord_system)s::text[], %(address)s::text[], %(level)s::text[], %(reported_at)s::timestamptz[])
         AS i(id, crid, category, family, title, description, channel, reporter_name, reporter_phone, parties,
              grade, lon, lat, leaf, coord_system, address, level, reported_at)
), placed AS (
    SELECT i.*, ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326) AS p, coalesce(i.reported_at, now()) AS at,
           l.grid_code, l.village_code, l.township_code, l.county_code, l.prefecture_code
    FROM input i
    LEFT JOIN LATERAL region_lineage(i.leaf) l ON true
), ins AS (
    INSERT INTO cases (id, client_request_id, category_code, family, title, description, channel, reporter_name,
                       reporter_phone, parties, grade, geom, grid_code, village_code, township_code, county_code,
                       prefecture_code, handling_level, reported_at, updated_at, respond_by, coord_system, address,
                       possible_duplicate_of)
    SELECT pl.id, pl.crid, pl.category, pl.family, pl.title, pl.description, pl.channel, pl.reporter_name,
           pl.reporter_phone, pl.parties, pl.grade, pl.p, pl.grid_code, pl.village_code, pl.township_code,
           pl.county_code, pl.prefecture_code,
           case_level_fit(coalesce(pl.level, gp.start_level), pl.village_code, pl.township_code, pl.county_code,
                          pl.prefecture_code),
           pl.at, pl.at, grade_respond_by(pl.grade, pl.at), pl.coord_system, pl.address,
           -- nearby cases first, through the GiST index (0.001° ≥ 50 m at Gansu's latitudes); OFFSET 0
           -- keeps the planner from scanning every recent case of the category instead
           (SELECT coalesce(d.possible_duplicate_of, d.id)
              FROM (SELECT n.id, n.possible_duplicate_of, n.category_code, n.reported_at, n.state, n.geom FROM cases n
                     WHERE n.geom && ST_Expand(pl.p, 0.001) OFFSET 0) d
             WHERE d.category_code = pl.category
               AND d.reported_at > pl.at - interval '72 hours' AND d.reported_at <= pl.at
               AND d.state <> 'rejected'
               AND ST_DWithin(d.geom::geography, pl.p::geography, 50)
             ORDER BY d.reported_at, d.id LIMIT 1)
    FROM placed pl
    JOIN grade_policy gp ON gp.grade = pl.grade
    ORDER BY pl.id
    ON CONFLICT (client_request_id) DO NOTHING
    RETURNING id, reported_at, handling_level, channel, grade, possible_duplicate_of
)
INSERT INTO case_event (case_id, at, actor, action, from_state, to_state, level, note, data)
SELECT ins.id, ins.reported_at, %(actor)s, 'report', NULL, 'reported', ins.handling_level, NULL,
       jsonb_build_object('channel', ins.channel, 'grade', ins.grade, 'possible_duplicate_of', ins.possible_duplicate_of)
FROM ins
RETURNING case_id
