-- Live path, region-aware: the one notification of a statement also names the regions it touched,
-- so a page showing 甘州区 refreshes for a case in 甘州区 and not for one in 敦煌. Still one
-- pg_notify('gridwatch', …) per statement (a batch insert is one), never the data:
--
--   {"table": "cases", "version": 812, "regions": ["620702", "620902"]}
--
-- regions are the distinct county-level prefixes (first 6 digits) of the touched rows' codes, old
-- and new images both (a case moved between counties touches both). A statement touching more than
-- 200 of them names prefectures (4 digits), then provinces (2), then null; null (or a row without
-- a code) means "anything may have changed". A statement that changed no row (an UPDATE matching
-- nothing, an upsert that found everything in place) bumps nothing and notifies nobody: a page
-- that sees no change makes no request. TRUNCATE keeps bump_data_version() (regions absent = all).
--
-- Transition tables are only visible to the trigger function itself, hence EXECUTE with the code
-- columns (trigger arguments, quoted by format's %I).

CREATE FUNCTION bump_data_version_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v bigint;
    n bigint;
    unknown boolean;
    codes text[];
    c1 text := TG_ARGV[0];
    c2 text := COALESCE(TG_ARGV[1], TG_ARGV[0]);
    touched text;
BEGIN
    touched := CASE TG_OP
        WHEN 'INSERT' THEN format('SELECT COALESCE(%I, %I) AS code FROM new_rows', c1, c2)
        WHEN 'DELETE' THEN format('SELECT COALESCE(%I, %I) AS code FROM old_rows', c1, c2)
        ELSE format('SELECT COALESCE(%I, %I) AS code FROM new_rows UNION ALL SELECT COALESCE(%I, %I) FROM old_rows',
                    c1, c2, c1, c2)
    END;
    EXECUTE 'SELECT count(*), bool_or(t.code IS NULL), array_agg(DISTINCT left(t.code, 6)) FILTER (WHERE t.code IS NOT NULL) FROM ('
            || touched || ') t' INTO n, unknown, codes;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    UPDATE data_version SET version = version + 1, changed_at = clock_timestamp()
        WHERE name = TG_TABLE_NAME RETURNING version INTO v;
    IF cardinality(codes) > 200 THEN
        codes := ARRAY(SELECT DISTINCT left(x, 4) FROM unnest(codes) x ORDER BY 1);
    END IF;
    IF cardinality(codes) > 200 THEN
        codes := ARRAY(SELECT DISTINCT left(x, 2) FROM unnest(codes) x ORDER BY 1);
    END IF;
    IF unknown OR cardinality(codes) > 200 THEN
        codes := NULL;
    END IF;
    PERFORM pg_notify('gridwatch', json_build_object('table', TG_TABLE_NAME, 'version', v, 'regions', codes)::text);
    RETURN NULL;
END $$;

-- One helper so the table list below stays one line each.
CREATE FUNCTION live_region_triggers(tbl regclass, c1 text, c2 text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    name text := (SELECT relname FROM pg_class WHERE oid = tbl);
BEGIN
    EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', name || '_version', tbl);
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version_rows(%L, %L)', name || '_version_ins', tbl, c1, c2);
    EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version_rows(%L, %L)', name || '_version_upd', tbl, c1, c2);
    EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version_rows(%L, %L)', name || '_version_del', tbl, c1, c2);
    EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version()',
                   name || '_version_trunc', tbl);
END $$;

SELECT live_region_triggers('region', 'code', 'code');
SELECT live_region_triggers('centre', 'region_code', 'region_code');
SELECT live_region_triggers('department', 'region_code', 'region_code');
SELECT live_region_triggers('cases', 'county_code', 'prefecture_code');
SELECT live_region_triggers('hazard', 'county_code', 'prefecture_code');
SELECT live_region_triggers('checkin', 'grid_code', 'grid_code');
SELECT live_region_triggers('alert', 'region_code', 'region_code');
SELECT live_region_triggers('township_coverage', 'township_code', 'township_code');
