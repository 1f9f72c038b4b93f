-- Accounts (issue 11): users with one role each, API tokens and login sessions (only sha256
-- hashes of their secrets are stored), and the append-only audit of personal-data access.
-- Who may do what per role is gridwatch/auth.py's CAPABILITIES table; scope is enforced by the
-- row-level security of migration 0081.

CREATE TABLE app_user (
    id             bigserial PRIMARY KEY,
    username       text NOT NULL UNIQUE CHECK (username ~ '^[^[:space:][:cntrl:]]{1,64}$'),
    display_name   text CHECK (length(display_name) <= 200),
    role           text NOT NULL CHECK (role IN ('province_leader', 'operator', 'department', 'grid_worker',
                                                 'planner', 'wall', 'open311_client', 'admin')),
    -- Deferred: a boundary reload deletes and re-inserts region codes in one transaction.
    region_code    text REFERENCES region (code) ON UPDATE CASCADE DEFERRABLE INITIALLY DEFERRED,
    department_id  bigint REFERENCES department (id) DEFERRABLE INITIALLY DEFERRED,
    password_hash  text,                              -- argon2id; NULL: token-only account
    disabled       boolean NOT NULL DEFAULT false,
    failed_logins  integer NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- operators hold a prefecture (4), county (6) or township (9) code; grid workers a grid (15)
    CONSTRAINT app_user_operator_region CHECK (role <> 'operator' OR length(region_code) IN (4, 6, 9)),
    CONSTRAINT app_user_grid_worker_grid CHECK (role <> 'grid_worker' OR length(region_code) = 15),
    CONSTRAINT app_user_department_has_one CHECK (role <> 'department' OR department_id IS NOT NULL)
);
CREATE INDEX app_user_region ON app_user (region_code);

CREATE TABLE api_token (
    id            bigserial PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    token_sha256  bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    last_used_at  timestamptz
);
CREATE INDEX api_token_user ON api_token (user_id);

CREATE TABLE user_session (
    session_sha256  bytea PRIMARY KEY CHECK (length(session_sha256) = 32),
    user_id         bigint NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz
);
CREATE INDEX user_session_user ON user_session (user_id);

-- Who opened which person's details, when, and what (append-only like case_event).
CREATE TABLE personal_data_access (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    user_id   bigint REFERENCES app_user (id),
    username  text NOT NULL,
    case_id   bigint REFERENCES cases (id),
    what      text NOT NULL CHECK (length(what) BETWEEN 1 AND 200)   -- e.g. 'reporter', 'parties', 'export'
);
CREATE INDEX personal_data_access_case ON personal_data_access (case_id, at);
CREATE INDEX personal_data_access_user ON personal_data_access (user_id, at);

-- Append-only tables refuse UPDATE and DELETE for everyone (the app role has no such grant either).
CREATE FUNCTION append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING HINT = 'Record a new row instead of changing an old one.';
END $$;
CREATE TRIGGER personal_data_access_append_only BEFORE UPDATE OR DELETE ON personal_data_access
    FOR EACH ROW EXECUTE FUNCTION append_only();
