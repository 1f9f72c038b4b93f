-- The region_subdivide() trigger's INSERT … SELECT ST_Dump(ST_Subdivide(…)) is estimated at
-- millions of rows (1000 × 1000 for the two set-returning functions), so with jit = on (the
-- default) PostgreSQL JIT-compiles it for every single row: 40–65 ms per grid, about 50 minutes
-- for Gansu's 30,000 grids. The real work takes well under a millisecond. Never JIT it.
ALTER FUNCTION region_subdivide() SET jit = off;
