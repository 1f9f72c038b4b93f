-- Hazards (安全隐患): point, line or polygon; and grid workers' daily check-ins.

CREATE TABLE hazard (
    id                   bigserial PRIMARY KEY,
    client_request_id    text UNIQUE,
    kind                 text NOT NULL CHECK (kind IN ('power_line', 'dilapidated_house', 'gas', 'fire', 'flood',
                                                       'geological', 'traffic', 'building', 'livestock_shed', 'other')),
    title                text NOT NULL,
    description          text,
    grade                text NOT NULL DEFAULT 'yellow' CHECK (grade IN ('red', 'orange', 'yellow')),
    grade_reason         text,
    state                text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'rectifying', 'closed', 'reopened')),
    geom                 geometry(Geometry, 4326) NOT NULL CHECK (ST_IsValid(geom) AND
                             GeometryType(geom) IN ('POINT', 'LINESTRING', 'POLYGON', 'MULTIPOINT', 'MULTILINESTRING', 'MULTIPOLYGON')),
    grid_code            text REFERENCES region (code),
    village_code         text,
    township_code        text,
    county_code          text,
    prefecture_code      text,
    owner_department_id  bigint REFERENCES department (id),
    case_id              bigint REFERENCES cases (id),
    deadline             timestamptz,
    reported_at          timestamptz NOT NULL DEFAULT now(),
    closed_at            timestamptz,                 -- 销号
    reinspected_at       timestamptz,
    recurrence           integer NOT NULL DEFAULT 0,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hazard_geom_gist ON hazard USING gist (geom);
CREATE INDEX hazard_county ON hazard (county_code);
CREATE INDEX hazard_township ON hazard (township_code);
CREATE INDEX hazard_grid ON hazard (grid_code);

CREATE TABLE checkin (
    id         bigserial PRIMARY KEY,
    grid_code  text NOT NULL REFERENCES region (code),
    worker     text NOT NULL,
    day        date NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('report', 'all_clear')),   -- 有事早报告，无事报平安
    note       text,
    case_id    bigint REFERENCES cases (id),
    at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (grid_code, worker, day, kind)
);
CREATE INDEX checkin_grid_day ON checkin (grid_code, day);
CREATE INDEX checkin_day ON checkin (day);
