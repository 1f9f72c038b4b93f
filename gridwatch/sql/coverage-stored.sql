-- Stored coverage summed over a region's townships and grids, leaving out the townships whose
-- figures a what-if recomputes (%(skip)s).
SELECT
    (SELECT count(*) FROM township_coverage tc
      WHERE tc.township_code LIKE %(pattern)s AND NOT (tc.township_code = ANY (%(skip)s::text[]))) AS townships,
    t.area_km2, t.covered_township_km2, t.covered_county_km2, t.covered_any_km2, t.gap_km2,
    g.grids, g.grids_township, g.grids_county, g.grids_any,
    g.population, g.people_township, g.people_county, g.people_any
FROM (
    SELECT COALESCE(sum(area_km2), 0) AS area_km2,
           COALESCE(sum(covered_township_km2), 0) AS covered_township_km2,
           COALESCE(sum(covered_county_km2), 0) AS covered_county_km2,
           COALESCE(sum(covered_any_km2), 0) AS covered_any_km2,
           COALESCE(sum(gap_km2), 0) AS gap_km2
    FROM township_coverage
    WHERE township_code LIKE %(pattern)s AND NOT (township_code = ANY (%(skip)s::text[]))
) t, (
    SELECT count(*) AS grids,
           count(*) FILTER (WHERE covered_township) AS grids_township,
           count(*) FILTER (WHERE covered_county) AS grids_county,
           count(*) FILTER (WHERE covered_township OR covered_county) AS grids_any,
           sum(population) AS population,
           sum(population) FILTER (WHERE covered_township) AS people_township,
           sum(population) FILTER (WHERE covered_county) AS people_county,
           sum(population) FILTER (WHERE covered_township OR covered_county) AS people_any
    FROM grid_coverage
    WHERE grid_code LIKE %(pattern)s AND NOT (township_code = ANY (%(skip)s::text[]))
) g
