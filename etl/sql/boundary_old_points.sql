-- Before a boundary load rewrites the units: a representative point of every unit it may change
-- or remove (check-ins and departments have no point of their own; they follow their unit's).
CREATE TEMP TABLE gw_old_point ON COMMIT DROP AS
SELECT code, level, ST_PointOnSurface(geom) AS p
FROM region
WHERE code LIKE ANY(%(patterns)s)
