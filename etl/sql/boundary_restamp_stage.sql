-- Every case and hazard under a changed or removed unit, and every check-in of a removed grid, with
-- its codes before and the codes of the new units at its point: the case's point, a hazard's
-- ST_PointOnSurface, a check-in's old grid's representative point (gw_old_point). A check-in
-- belongs to its grid (the worker's patrol unit) and stays with it while the grid exists.
-- Units being removed (%(gone)s) are left out.
CREATE TEMP TABLE gw_restamp ON COMMIT DROP AS
WITH affected AS (
    SELECT 'case'::text AS kind, c.id AS row_id, c.geom AS p,
           c.grid_code, c.village_code, c.township_code, c.county_code, c.prefecture_code
    FROM cases c
    WHERE coalesce(c.grid_code, c.village_code, c.township_code, c.county_code, c.prefecture_code) LIKE ANY(%(patterns)s)
    UNION ALL
    SELECT 'hazard', h.id, ST_PointOnSurface(h.geom),
           h.grid_code, h.village_code, h.township_code, h.county_code, h.prefecture_code
    FROM hazard h
    WHERE coalesce(h.grid_code, h.village_code, h.township_code, h.county_code, h.prefecture_code) LIKE ANY(%(patterns)s)
    UNION ALL
    SELECT 'checkin', k.id, o.p, ol.grid_code, ol.village_code, ol.township_code, ol.county_code, ol.prefecture_code
    FROM checkin k
    JOIN gw_old_point o ON o.code = k.grid_code
    LEFT JOIN LATERAL region_lineage(k.grid_code) ol ON true
    WHERE EXISTS (SELECT 1 FROM unnest(%(gone)s::text[]) g WHERE starts_with(k.grid_code, g))
)
SELECT a.kind, a.row_id, lf.leaf,
       a.grid_code AS old_grid, a.village_code AS old_village, a.township_code AS old_township,
       a.county_code AS old_county, a.prefecture_code AS old_prefecture,
       l.grid_code AS new_grid, l.village_code AS new_village, l.township_code AS new_township,
       l.county_code AS new_county, l.prefecture_code AS new_prefecture,
       coalesce(a.grid_code, a.village_code, a.township_code, a.county_code, a.prefecture_code) AS old_finest,
       coalesce(l.grid_code, l.village_code, l.township_code, l.county_code, l.prefecture_code) AS new_finest
FROM affected a
CROSS JOIN LATERAL (SELECT boundary_leaf(a.p, %(gone)s) AS leaf) lf
LEFT JOIN LATERAL region_lineage(lf.leaf) l ON true
