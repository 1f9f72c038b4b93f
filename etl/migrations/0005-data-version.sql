-- Live path: a data version per table, bumped once per statement that changes it, and one
-- NOTIFY carrying the version (not the data). Tile URLs and dashboard refreshes key on it.

CREATE TABLE data_version (
    name        text PRIMARY KEY,
    version     bigint NOT NULL DEFAULT 1,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO data_version (name) VALUES ('region'), ('centre'), ('cases'), ('hazard'), ('checkin'), ('department');

CREATE FUNCTION bump_data_version() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v bigint;
BEGIN
    UPDATE data_version SET version = version + 1, changed_at = clock_timestamp()
        WHERE name = TG_TABLE_NAME RETURNING version INTO v;
    PERFORM pg_notify('gridwatch', json_build_object('table', TG_TABLE_NAME, 'version', v)::text);
    RETURN NULL;
END $$;

CREATE TRIGGER region_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON region
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
CREATE TRIGGER centre_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON centre
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
CREATE TRIGGER cases_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON cases
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
CREATE TRIGGER hazard_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON hazard
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
CREATE TRIGGER checkin_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON checkin
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
CREATE TRIGGER department_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON department
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
