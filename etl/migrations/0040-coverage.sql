-- Spatial coverage of the centre registry, stored so the dashboard and API read aggregates fast.
-- Refreshed by `gridwatch coverage recompute`, at the end of `gridwatch etl centres`, and for the
-- affected townships whenever the registry changes through the API. What-ifs are never stored
-- here: they are computed for the affected townships and combined with these rows.

-- The reach thresholds the stored rows were computed with (one row).
CREATE TABLE coverage_params (
    id           boolean PRIMARY KEY DEFAULT true CHECK (id),
    township_m   double precision NOT NULL CHECK (township_m > 0),   -- reach of township (and village) centres
    county_m     double precision NOT NULL CHECK (county_m > 0),     -- reach of county, prefecture, province centres
    computed_at  timestamptz NOT NULL DEFAULT now(),
    seconds      double precision                                    -- how long the last full recompute took
);

-- One row per grid: straight-line distance (metres, on the ellipsoid) from the grid's label point
-- to the nearest township-tier and county-tier centre, and whether it is within reach.
CREATE TABLE grid_coverage (
    grid_code           text PRIMARY KEY REFERENCES region (code) ON DELETE CASCADE,
    township_code       text NOT NULL,
    township_centre_id  bigint,
    township_m          double precision,
    county_centre_id    bigint,
    county_m            double precision,
    covered_township    boolean NOT NULL,
    covered_county      boolean NOT NULL,
    area_km2            double precision NOT NULL,
    population          integer
);
CREATE INDEX grid_coverage_code_prefix ON grid_coverage (grid_code text_pattern_ops);
CREATE INDEX grid_coverage_township ON grid_coverage (township_code);

-- One row per township: covered areas per tier and the gap (the part beyond every centre's reach).
CREATE TABLE township_coverage (
    township_code        text PRIMARY KEY REFERENCES region (code) ON DELETE CASCADE,
    area_km2             double precision NOT NULL,
    covered_township_km2 double precision NOT NULL,
    covered_county_km2   double precision NOT NULL,
    covered_any_km2      double precision NOT NULL,
    gap_km2              double precision NOT NULL,
    gap                  geometry(MultiPolygon, 4326),   -- NULL: no gap
    gap_simple           geometry(MultiPolygon, 4326)    -- simplified for display
);
CREATE INDEX township_coverage_code_prefix ON township_coverage (township_code text_pattern_ops);
CREATE INDEX township_coverage_gap_gist ON township_coverage USING gist (gap);

INSERT INTO data_version (name) VALUES ('township_coverage') ON CONFLICT (name) DO NOTHING;
CREATE TRIGGER township_coverage_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON township_coverage
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();

-- Scenario centres are looked up by name.
CREATE INDEX centre_scenario ON centre (scenario) WHERE scenario IS NOT NULL;
