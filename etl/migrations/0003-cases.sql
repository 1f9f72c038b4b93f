-- Cases (one dispute or event), their append-only event trail, and mediation attempts.

CREATE TABLE cases (
    id                 bigserial PRIMARY KEY,
    ref                text UNIQUE,                 -- human reference, e.g. GW202611260001
    client_request_id  text UNIQUE,                 -- idempotency key from the client
    category_code      text NOT NULL REFERENCES category (code),
    family             text NOT NULL CHECK (family IN ('dispute', 'event')),
    title              text NOT NULL,
    description        text,
    channel            text NOT NULL DEFAULT 'window' CHECK (channel IN
                         ('grid_worker', 'window', 'hotline', 'online', 'open311', 'petition', 'referral', 'simulator')),
    reporter_name      text,                        -- people's data: RLS will scope it
    reporter_phone     text,
    parties            jsonb NOT NULL DEFAULT '[]'::jsonb,
    grade              text NOT NULL DEFAULT 'yellow' CHECK (grade IN ('red', 'orange', 'yellow')),
    state              text NOT NULL DEFAULT 'reported' CHECK (state IN
                         ('reported', 'accepted', 'rejected', 'dispatched', 'returned', 'in_progress',
                          'feedback', 'closed', 'parked')),
    geom               geometry(Point, 4326) NOT NULL CHECK (ST_IsValid(geom)),
    grid_code          text REFERENCES region (code),
    village_code       text,
    township_code      text,
    county_code        text,
    prefecture_code    text,
    handling_level     text NOT NULL DEFAULT 'village' CHECK (handling_level IN ('village', 'township', 'county', 'prefecture', 'province')),
    department_id      bigint REFERENCES department (id),
    deadline           timestamptz,
    reported_at        timestamptz NOT NULL DEFAULT now(),
    accepted_at        timestamptz,
    dispatched_at      timestamptz,
    closed_at          timestamptz,
    closed_level       text CHECK (closed_level IN ('village', 'township', 'county', 'prefecture', 'province')),
    closed_on_time     boolean,
    escalations        integer NOT NULL DEFAULT 0,
    returns            integer NOT NULL DEFAULT 0,
    reworks            integer NOT NULL DEFAULT 0,
    extensions         integer NOT NULL DEFAULT 0,
    resolved           boolean,                     -- 化解: a dispute settled (not merely closed)
    satisfaction       smallint CHECK (satisfaction BETWEEN 1 AND 5),
    duplicate_of       bigint REFERENCES cases (id),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT cases_closed_has_time CHECK ((state = 'closed') = (closed_at IS NOT NULL) OR state = 'rejected')
);
CREATE INDEX cases_geom_gist ON cases USING gist (geom);
CREATE INDEX cases_grid ON cases (grid_code);
CREATE INDEX cases_village ON cases (village_code);
CREATE INDEX cases_township ON cases (township_code);
CREATE INDEX cases_county ON cases (county_code);
CREATE INDEX cases_prefecture ON cases (prefecture_code);
CREATE INDEX cases_reported_at ON cases (reported_at);
CREATE INDEX cases_open_deadline ON cases (deadline) WHERE state NOT IN ('closed', 'rejected');
CREATE INDEX cases_category_time ON cases (category_code, reported_at);

CREATE TABLE case_event (
    id            bigserial PRIMARY KEY,
    case_id       bigint NOT NULL REFERENCES cases (id),
    at            timestamptz NOT NULL DEFAULT now(),
    actor         text NOT NULL,
    action        text NOT NULL,
    from_state    text,
    to_state      text NOT NULL,
    level         text,
    department_id bigint REFERENCES department (id),
    note          text,
    data          jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX case_event_case ON case_event (case_id, at);
CREATE INDEX case_event_action_at ON case_event (action, at);

-- The trail is append-only: every duration and KPI is computed from it.
CREATE FUNCTION case_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'case_event is append-only: % is not allowed', TG_OP
        USING HINT = 'Record a new event instead of changing an old one.';
END $$;
CREATE TRIGGER case_event_append_only BEFORE UPDATE OR DELETE ON case_event
    FOR EACH ROW EXECUTE FUNCTION case_event_append_only();

CREATE TABLE mediation (
    id          bigserial PRIMARY KEY,
    case_id     bigint NOT NULL REFERENCES cases (id),
    kind        text NOT NULL CHECK (kind IN ('people', 'administrative', 'judicial')),  -- 人民/行政/司法调解
    mediator    text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz,
    outcome     text NOT NULL DEFAULT 'ongoing' CHECK (outcome IN ('ongoing', 'agreed', 'failed')),
    agreement   text
);
CREATE INDEX mediation_case ON mediation (case_id);
