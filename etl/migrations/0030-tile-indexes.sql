-- Vector tiles and the drill-down map read open cases and hazards by place and by stamped region
-- code, and aggregated layers find regions by their label point. Partial indexes keep those reads
-- proportional to what is open, not to the whole history.
CREATE INDEX cases_open_geom ON cases USING gist (geom) WHERE state NOT IN ('closed', 'rejected');
CREATE INDEX cases_open_county ON cases (county_code) WHERE state NOT IN ('closed', 'rejected');
CREATE INDEX cases_open_township ON cases (township_code) WHERE state NOT IN ('closed', 'rejected');
CREATE INDEX cases_open_grid ON cases (grid_code) WHERE state NOT IN ('closed', 'rejected');
CREATE INDEX hazard_open_geom ON hazard USING gist (geom) WHERE state <> 'closed';
CREATE INDEX region_label_point_gist ON region USING gist (label_point);
