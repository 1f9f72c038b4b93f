-- The demo registry, generated from the loaded hierarchy (deterministic):
--   a county's seat is the label point of its first township (lowest code: 街道 come first),
--   a prefecture's seat is that of its first county (or of its own first township: 嘉峪关),
--   the provincial centre sits at 城关区's seat (兰州), prefecture and province centres a few
--   hundred metres east/west of the county centre sharing their seat, so the map shows each.
-- Counties in %(established_only)s get an established centre, every other centre is an entity.
WITH first_town AS (
    SELECT DISTINCT ON (parent_code) parent_code, label_point
    FROM region WHERE level = 'township'
    ORDER BY parent_code, code
),
county AS (
    SELECT c.code, c.name, c.parent_code, COALESCE(t.label_point, c.label_point) AS seat
    FROM region c LEFT JOIN first_town t ON t.parent_code = c.code
    WHERE c.level = 'county'
),
prefecture AS (
    SELECT DISTINCT ON (p.code) p.code, p.name, COALESCE(c.seat, t.label_point, p.label_point) AS seat
    FROM region p
    LEFT JOIN county c ON c.parent_code = p.code
    LEFT JOIN first_town t ON t.parent_code = p.code
    WHERE p.level = 'prefecture'
    ORDER BY p.code, c.code
),
province AS (
    SELECT p.code, p.name,
           COALESCE((SELECT seat FROM county WHERE code = '620102'),
                    (SELECT seat FROM prefecture ORDER BY code LIMIT 1), p.label_point) AS seat
    FROM region p WHERE p.level = 'province'
),
rows AS (
    SELECT 1 AS ord, code, name || '综治中心' AS name, 'province' AS level, 'entity' AS status, 60 AS staff,
           ST_Translate(seat, -0.004, 0.0) AS geom FROM province
    UNION ALL
    SELECT 2, code, name || '综治中心', 'prefecture', 'entity', 24 + (code::bigint %% 7)::int,
           ST_Translate(seat, 0.004, 0.0) FROM prefecture
    UNION ALL
    SELECT 3, code, name || '综治中心', 'county',
           CASE WHEN code = ANY (%(established_only)s::text[]) THEN 'established' ELSE 'entity' END,
           12 + (code::bigint %% 9)::int, seat FROM county
    UNION ALL
    SELECT 4, code, name || '综治中心', 'township', 'entity', 4 + (code::bigint %% 5)::int, label_point
    FROM region WHERE level = 'township'
)
INSERT INTO centre (name, level, region_code, status, staff, geom)
SELECT name, level, code, status, staff, geom FROM rows ORDER BY ord, code
