-- Staging table for a bulk region load: COPY rows in, then one INSERT … SELECT (one statement, so
-- the statement-level data_version trigger fires once, not once per row). Dropped at commit.
CREATE TEMP TABLE region_stage (
    code         text PRIMARY KEY,
    name         text NOT NULL,
    level        text NOT NULL,
    kind         text,
    parent_code  text,
    source       text NOT NULL,
    geom         bytea NOT NULL,       -- WKB, SRID 4326
    geom_simple  bytea,                -- WKB, SRID 4326
    sort_key     integer
) ON COMMIT DROP
