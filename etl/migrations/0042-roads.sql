-- An optional road network: when loaded, each grid also gets its travel time over the roads to the
-- nearest township-tier and county-tier centre (gridwatch etl roads FILE). Without roads, coverage
-- is straight-line only.
CREATE TABLE road (
    id         bigserial PRIMARY KEY,
    name       text,
    speed_kmh  double precision NOT NULL CHECK (speed_kmh > 0 AND speed_kmh <= 150),
    source     text NOT NULL,                          -- 'file:<name>'
    geom       geometry(LineString, 4326) NOT NULL CHECK (ST_IsValid(geom) AND NOT ST_IsEmpty(geom))
);
CREATE INDEX road_geom_gist ON road USING gist (geom);

-- Minutes over the roads (access legs off the road at coverage_params.access_kmh) per grid.
CREATE TABLE grid_travel (
    grid_code          text PRIMARY KEY REFERENCES region (code) ON DELETE CASCADE,
    township_minutes   double precision,
    county_minutes     double precision
);
CREATE INDEX grid_travel_code_prefix ON grid_travel (grid_code text_pattern_ops);

ALTER TABLE coverage_params ADD COLUMN access_kmh double precision;
ALTER TABLE coverage_params ADD COLUMN travel_computed_at timestamptz;
