-- Insert a batch of checked cases in one statement (one notification), idempotent on
-- client_request_id per creator (the granted user; 0085), stamped from the leaf region's lineage, flagged as a possible duplicate of an
-- earlier case of the same category within 50 m in 72 h (possible_duplicate_of; it still counts). Returns
-- the new cases; intake_events.sql writes their 'report' events in a second statement (row-level security
-- checks an event against its case, which a statement cannot see while it inserts it).
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
                       possible_duplicate_of, created_by)
    SELECT pl.id, pl.crid, pl.category, pl.family, pl.title, pl.description, pl.channel, pl.reporter_name,
           pl.reporter_phone, pl.parties, pl.grade, pl.p, pl.grid_code, pl.village_code, pl.township_code,
           pl.county_code, pl.prefecture_code,
           case_level_fit(coalesce(pl.level, gp.start_level), pl.village_code, pl.township_code, pl.county_code,
                          pl.prefecture_code),
           pl.at, pl.at, grade_respond_by(pl.grade, pl.at), pl.coord_system, pl.address,
           -- an earlier case nearby, whoever may see it (a definer function answering an id only, 0085)
           case_possible_duplicate(pl.category, pl.p, pl.at),
           gridwatch_user_id()
    FROM placed pl
    JOIN grade_policy gp ON gp.grade = pl.grade
    ORDER BY pl.id
    ON CONFLICT ((coalesce(created_by, 0)), client_request_id) DO NOTHING
    RETURNING id, reported_at, handling_level, channel, grade, possible_duplicate_of
)
SELECT ins.id AS case_id, ins.reported_at, ins.handling_level, ins.channel, ins.grade, ins.possible_duplicate_of
FROM ins
