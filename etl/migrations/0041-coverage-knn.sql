-- Nearest-centre lookups per tier: KNN on geography (true distances) over the centres of one tier.
-- coverage-grids.sql orders by geom::geography <-> point and takes the best two; with these partial
-- indexes a full Gansu recompute of 30,000 grids reads a handful of index entries per grid.
CREATE INDEX centre_township_tier_geog ON centre USING gist ((geom::geography)) WHERE level IN ('township', 'village');
CREATE INDEX centre_county_tier_geog ON centre USING gist ((geom::geography)) WHERE level IN ('county', 'prefecture', 'province');
