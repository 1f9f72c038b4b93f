-- 行政区划调整: every boundary load that changes units records an adjustment with its effective
-- date, what moved (counts from each old unit to each new one), and, per re-stamped row, the codes
-- it had before. The live rows (cases, hazards, check-ins, centres, departments) carry today's
-- units; region_restamp keeps the units of the time, so a row's codes when reported are its
-- oldest restamp's old codes, or its current codes when it was never re-stamped (reported_codes).

CREATE TABLE boundary_adjustment (
    id              bigserial PRIMARY KEY,
    effective_date  date NOT NULL,
    level           text NOT NULL,
    source          text NOT NULL,          -- the file the new boundaries came from
    note            text,
    replaced        text[] NOT NULL DEFAULT '{}',
    new_codes       text[] NOT NULL DEFAULT '{}',
    deleted         text[] NOT NULL DEFAULT '{}',
    moves           jsonb NOT NULL DEFAULT '[]'::jsonb,   -- [{"kind", "level", "from", "to", "n"}]
    loaded_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX boundary_adjustment_effective ON boundary_adjustment (effective_date);

CREATE TABLE region_restamp (
    adjustment_id  bigint NOT NULL REFERENCES boundary_adjustment (id),
    kind           text NOT NULL CHECK (kind IN ('case', 'hazard', 'checkin', 'centre', 'department')),
    row_id         bigint NOT NULL,
    old_code       text,                   -- the finest code before: grid (case/hazard/check-in) or region_code
    new_code       text,
    old_codes      jsonb NOT NULL,         -- {"grid_code", "village_code", "township_code", "county_code", "prefecture_code"}
    new_codes      jsonb NOT NULL,
    PRIMARY KEY (adjustment_id, kind, row_id)
);
CREATE INDEX region_restamp_row ON region_restamp (kind, row_id, adjustment_id);

-- The codes each case and hazard had when it was reported (the units of that time).
CREATE VIEW reported_codes AS
SELECT k.kind, k.id AS row_id,
       CASE WHEN first.old_codes IS NULL THEN k.grid_code ELSE first.old_codes ->> 'grid_code' END AS grid_code,
       CASE WHEN first.old_codes IS NULL THEN k.village_code ELSE first.old_codes ->> 'village_code' END AS village_code,
       CASE WHEN first.old_codes IS NULL THEN k.township_code ELSE first.old_codes ->> 'township_code' END AS township_code,
       CASE WHEN first.old_codes IS NULL THEN k.county_code ELSE first.old_codes ->> 'county_code' END     AS county_code,
       CASE WHEN first.old_codes IS NULL THEN k.prefecture_code ELSE first.old_codes ->> 'prefecture_code' END AS prefecture_code,
       first.adjustment_id IS NOT NULL AS restamped
FROM (SELECT 'case'::text AS kind, id, grid_code, village_code, township_code, county_code, prefecture_code FROM cases
      UNION ALL
      SELECT 'hazard', id, grid_code, village_code, township_code, county_code, prefecture_code FROM hazard) k
LEFT JOIN LATERAL (SELECT r.adjustment_id, r.old_codes FROM region_restamp r
                   WHERE r.kind = k.kind AND r.row_id = k.id ORDER BY r.adjustment_id LIMIT 1) first ON true;

-- The deepest region holding point p, leaving out the units under any of the code prefixes in
-- `gone` (units a boundary load is about to remove). region_leaf with an exclusion list.
CREATE FUNCTION boundary_leaf(p geometry, gone text[]) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        (SELECT s.code FROM region_subdivided s
          WHERE s.level = 'grid' AND ST_Intersects(s.geom, p)
            AND NOT EXISTS (SELECT 1 FROM unnest(gone) g WHERE starts_with(s.code, g))
          ORDER BY s.code LIMIT 1),
        (SELECT r.code FROM region r
          WHERE r.level <> 'province' AND ST_Intersects(r.geom, p)
            AND NOT EXISTS (SELECT 1 FROM unnest(gone) g WHERE starts_with(r.code, g))
          ORDER BY length(r.code) DESC, r.code LIMIT 1))
$$;
