-- Where is not who: centres and departments are organisations linked to regions by code.

CREATE TABLE department (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL,
    kind         text NOT NULL,     -- water, power, police, justice, letters, land, environment, housing, labour, market, urban, emergency, civil, township_gov, village_committee
    region_code  text NOT NULL REFERENCES region (code) ON DELETE CASCADE,
    phone        text,
    UNIQUE (region_code, kind, name)
);
CREATE INDEX department_region ON department (region_code);

CREATE TABLE centre (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL,
    level        text NOT NULL CHECK (level IN ('province', 'prefecture', 'county', 'township', 'village')),
    region_code  text NOT NULL REFERENCES region (code) ON DELETE CASCADE,
    status       text NOT NULL DEFAULT 'established' CHECK (status IN ('planned', 'established', 'entity')),
    staff        integer CHECK (staff IS NULL OR staff >= 0),
    address      text,
    phone        text,
    geom         geometry(Point, 4326) NOT NULL CHECK (ST_IsValid(geom)),
    scenario     text,              -- NULL: the real registry; otherwise a planner's what-if
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX centre_unique_real ON centre (region_code, name) WHERE scenario IS NULL;
CREATE INDEX centre_region ON centre (region_code);
CREATE INDEX centre_geom_gist ON centre USING gist (geom);

CREATE TABLE centre_department (
    centre_id      bigint NOT NULL REFERENCES centre (id) ON DELETE CASCADE,
    department_id  bigint NOT NULL REFERENCES department (id) ON DELETE CASCADE,
    PRIMARY KEY (centre_id, department_id)
);

-- Categories of disputes (矛盾纠纷) and events (GB/T 30428 classes); each names the kind of
-- department it goes to by default, its time limit and its default grade.
CREATE TABLE category (
    code              text PRIMARY KEY CHECK (code ~ '^[a-z0-9_.]+$'),
    family            text NOT NULL CHECK (family IN ('dispute', 'event')),
    name_zh           text NOT NULL,
    name_en           text NOT NULL,
    department_kind   text NOT NULL,
    time_limit_hours  integer NOT NULL CHECK (time_limit_hours > 0),
    default_grade     text NOT NULL DEFAULT 'yellow' CHECK (default_grade IN ('red', 'orange', 'yellow'))
);
