-- 综治中心 of the real registry (no planners' what-ifs): county and above at every zoom,
-- township centres from z7, village centres from z10.
SELECT c.id, c.geom, c.name, c.level, c.status, c.region_code
FROM centre c, tile
WHERE c.scenario IS NULL
  AND c.geom && tile.env4326
  AND (c.level IN ('province', 'prefecture', 'county')
       OR (c.level = 'township' AND %(z)s::int >= 7)
       OR %(z)s::int >= 10)
