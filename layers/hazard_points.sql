-- Point hazards (dilapidated houses, gas, fire …), open ones, from zoom 10.
SELECT h.id, h.geom, h.kind, h.title, h.grade, h.state,
       to_char(h.reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI') AS reported
FROM hazard h, tile
WHERE %(z)s::int >= 10
  AND hazard_is_open(h.state)
  AND h.geom && tile.env4326
  AND GeometryType(h.geom) IN ('POINT', 'MULTIPOINT')
