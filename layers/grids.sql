-- Grid (网格) outlines, only from zoom 11: a low-zoom tile never reads or carries grid geometry.
SELECT r.code::bigint AS id, r.geom_3857 AS geom, r.code, r.name, r.source
FROM region r, tile
WHERE %(z)s::int >= 11
  AND r.level = 'grid'
  AND r.geom_3857 && tile.env3857
