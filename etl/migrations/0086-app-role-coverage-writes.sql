-- The app role recomputes coverage when a planner saves a scenario or an admin changes a centre
-- (issue 11): it writes the stored thresholds and the road travel cache too. Both are derived,
-- region-wide tables without people's data (no row-level security).
GRANT INSERT, UPDATE ON coverage_params TO gridwatch_app;
GRANT INSERT, UPDATE, DELETE ON grid_travel TO gridwatch_app;
