-- The statistics (stat_figure) get a data version like every live table, so that a page showing them
-- (the wall's year-on-year panel) reloads them when they change, not on every refresh of its other
-- panels. Statements on stat_figure are rare (a statistics load); the notification names no region:
-- every page hears of it.
INSERT INTO data_version (name) VALUES ('stat_figure') ON CONFLICT (name) DO NOTHING;
CREATE TRIGGER stat_figure_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON stat_figure
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
