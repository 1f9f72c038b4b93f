-- Early-warning alerts raised by `gridwatch alerts run` (gridwatch/alerts.py), and the grid
-- neighbour table (queen contiguity) that the hotspot rule's Getis-Ord Gi* reads.

CREATE TABLE alert (
    id               bigserial PRIMARY KEY,
    rule             text NOT NULL CHECK (rule IN ('deadline_near', 'deadline_past', 'red_case', 'red_hazard', 'spike',
                                                   'hotspot', 'repeat_place', 'repeat_party', 'silent_grid',
                                                   'hazard_overdue', 'department_returns')),
    region_code      text NOT NULL REFERENCES region (code) ON DELETE CASCADE,
    subject          jsonb NOT NULL DEFAULT '{}'::jsonb,   -- case/hazard/grid/department/category ids
    explanation_zh   text NOT NULL CHECK (length(explanation_zh) > 0),
    explanation_en   text NOT NULL CHECK (length(explanation_en) > 0),
    numbers          jsonb NOT NULL DEFAULT '{}'::jsonb,   -- every figure the explanation cites
    severity         text NOT NULL CHECK (severity IN ('red', 'orange', 'yellow')),
    geom             geometry(Geometry, 4326),              -- where to draw it on the map
    dedup_key        text NOT NULL,                         -- one live alert per condition
    raised_at        timestamptz NOT NULL DEFAULT now(),
    last_seen_at     timestamptz NOT NULL DEFAULT now(),    -- last run that still found the condition
    resolved_at      timestamptz,                           -- first run that no longer found it
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    CONSTRAINT alert_ack_has_who CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL))
);
-- Re-running the rules never duplicates: while a condition holds, its alert is updated in place;
-- once resolved, the same condition arising again raises a new alert.
CREATE UNIQUE INDEX alert_live_dedup ON alert (dedup_key) WHERE resolved_at IS NULL;
CREATE INDEX alert_region ON alert (region_code text_pattern_ops);
CREATE INDEX alert_raised ON alert (raised_at DESC);
CREATE INDEX alert_geom_gist ON alert USING gist (geom);

INSERT INTO data_version (name) VALUES ('alert') ON CONFLICT (name) DO NOTHING;
CREATE TRIGGER alert_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON alert
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();

-- Queen contiguity between grids (share a boundary point or edge), computed once per region
-- data version by gridwatch.alerts.refresh_neighbours (ST_Intersects of grid polygons).
CREATE TABLE grid_neighbour (
    code       text NOT NULL REFERENCES region (code) ON DELETE CASCADE,
    neighbour  text NOT NULL REFERENCES region (code) ON DELETE CASCADE,
    PRIMARY KEY (code, neighbour)
);
CREATE TABLE grid_neighbour_state (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    region_version  bigint NOT NULL,
    grids           integer NOT NULL,
    pairs           integer NOT NULL,
    computed_at     timestamptz NOT NULL DEFAULT now()
);

-- Repeat-party rule groups cases by reporter phone over 30 days.
CREATE INDEX cases_reporter_phone ON cases (reporter_phone, reported_at) WHERE reporter_phone IS NOT NULL;
