-- The aggregated tile layers (case_counts, hazard_counts) count open cases and hazards per region
-- together with their deadline and grade. With those columns in the partial indexes the counts are
-- index-only scans instead of one heap visit per open case.
DROP INDEX IF EXISTS cases_open_county;
DROP INDEX IF EXISTS cases_open_township;
DROP INDEX IF EXISTS cases_open_grid;
CREATE INDEX cases_open_county ON cases (county_code) INCLUDE (deadline, grade) WHERE state NOT IN ('closed', 'rejected');
CREATE INDEX cases_open_township ON cases (township_code) INCLUDE (deadline, grade) WHERE state NOT IN ('closed', 'rejected');
CREATE INDEX cases_open_grid ON cases (grid_code) INCLUDE (deadline, grade) WHERE state NOT IN ('closed', 'rejected');
CREATE INDEX hazard_open_county ON hazard (county_code) INCLUDE (grade) WHERE state <> 'closed';
CREATE INDEX hazard_open_township ON hazard (township_code) INCLUDE (grade) WHERE state <> 'closed';
