-- Insert a batch of checked cases in one statement (one notification), idempotent on
-- client_request_id per creator (the granted user; 0085), stamped from the leaf region's lineage
-- (looked up once per distinct leaf, not once per case), flagged as a possible duplicate of an
-- earlier case of the same category within 50 m in 72 h — or of an earlier case of the same batch
-- (case_possible_duplicates(), one definer call for the batch answering ids only, 0110; it still
-- counts). Returns the new cases (CASE_COLUMNS); intake_events.sql writes their 'report' events in a
-- second statement (row-level security checks an event against its case, which a statement cannot
-- see while it inserts it). The ref is cases_ref()'s (0020), written here so that trigger is skipped.
WITH input AS (
    SELECT *
    FROM unnest(%(id)b::bigint[], %(crid)b::text[], %(category)b::text[], %(family)b::text[], %(title)b::text[],
                %(description)b::text[], %(channel)b::text[], %(reporter_name)b::text[], %(reporter_phone)b::text[],
                %(parties)b::jsonb[], %(grade)b::text[], %(lon)b::float8[], %(lat)b::float8[], %(leaf)b::text[],
                %(coord_system)b::text[], %(address)b::text[], %(level)b::text[], %(reported_at)b::timestamptz[])
         AS i(id, crid, category, family, title, description, channel, reporter_name, reporter_phone, parties,
              grade, lon, lat, leaf, coord_system, address, level, reported_at)
), lineage AS (
    SELECT l.leaf, x.grid_code, x.village_code, x.township_code, x.county_code, x.prefecture_code
    FROM (SELECT DISTINCT leaf FROM input WHERE leaf IS NOT NULL) l
    CROSS JOIN LATERAL region_lineage(l.leaf) x
), placed AS (
    SELECT i.*, ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326) AS p, coalesce(i.reported_at, now()) AS at,
           l.grid_code, l.village_code, l.township_code, l.county_code, l.prefecture_code
    FROM input i
    LEFT JOIN lineage l ON l.leaf = i.leaf
), dup AS (
    SELECT d.id, d.possible_duplicate_of
    FROM case_possible_duplicates(%(id)b::bigint[], %(crid)b::text[], %(category)b::text[], %(lon)b::float8[],
                                  %(lat)b::float8[], %(reported_at)b::timestamptz[]) d
), ins AS (
    INSERT INTO cases (id, ref, client_request_id, category_code, family, title, description, channel, reporter_name,
                       reporter_phone, parties, grade, geom, grid_code, village_code, township_code, county_code,
                       prefecture_code, handling_level, reported_at, updated_at, respond_by, coord_system, address,
                       possible_duplicate_of, created_by)
    SELECT pl.id, 'GW' || to_char(pl.at AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD') || '-' || pl.id,
           pl.crid, pl.category, pl.family, pl.title, pl.description, pl.channel, pl.reporter_name,
           pl.reporter_phone, pl.parties, pl.grade, pl.p, pl.grid_code, pl.village_code, pl.township_code,
           pl.county_code, pl.prefecture_code,
           case_level_fit(coalesce(pl.level, gp.start_level), pl.village_code, pl.township_code, pl.county_code,
                          pl.prefecture_code),
           pl.at, pl.at,
           -- grade_respond_by(grade, at) (0021), written out so it is no function call per case
           CASE WHEN gp.respond_hours IS NULL
                THEN (date_trunc('day', pl.at AT TIME ZONE 'Asia/Shanghai') + interval '1 day') AT TIME ZONE 'Asia/Shanghai'
                ELSE pl.at + make_interval(hours => gp.respond_hours) END,
           pl.coord_system, pl.address, d.possible_duplicate_of,
           (SELECT gridwatch_user_id())          -- once per statement
    FROM placed pl
    JOIN grade_policy gp ON gp.grade = pl.grade
    LEFT JOIN dup d ON d.id = pl.id
    ORDER BY pl.id
    ON CONFLICT ((coalesce(created_by, 0)), client_request_id) DO NOTHING
    RETURNING {columns}, ST_X(geom) AS lon, ST_Y(geom) AS lat
)
SELECT * FROM ins
