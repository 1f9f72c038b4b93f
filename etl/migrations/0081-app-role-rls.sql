-- Region scope enforced by PostgreSQL (issue 11). The server connects as `gridwatch_app`, which
-- owns nothing and has no BYPASSRLS; every table holding cases, events, mediations, hazards,
-- check-ins, alerts or people's data has row-level security ENABLED and FORCED.
--
-- Unforgeable scope. Any role can call set_config(), so policies never trust
-- `gridwatch.region_scope` alone. A transaction gets its scope from gridwatch_open(secret): a
-- SECURITY DEFINER function that takes the caller's session id or bearer token, checks its sha256
-- against user_session/api_token, and sets (SET LOCAL) gridwatch.region_scope, gridwatch.user_id,
-- gridwatch.department_id and gridwatch.grant = the granted values plus a MAC over them, the
-- backend pid and the transaction's start time, keyed by a random secret only the owner can read.
-- Policies read the scope through gridwatch_scope() (SECURITY DEFINER, STABLE), which admits a
-- prefix of gridwatch.region_scope only when the grant's MAC is valid for THIS transaction and the
-- prefix lies inside the granted scope. SQL a request causes to run can narrow its scope but not
-- widen it, cannot reuse a grant in another transaction, and cannot mint one without another
-- user's secret. No grant or no scope: no rows. The owner (the migrating role; a superuser in the
-- embedded cluster) keeps full access for ETL and maintenance.

-- ---------------------------------------------------------------------------------------------
-- Roles (cluster-wide: tolerate them existing; no password here — see docs/ARCHITECTURE.md).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gridwatch_app') THEN
        BEGIN
            CREATE ROLE gridwatch_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;   -- another database migrating at once
        END;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gridwatch_maintainer') THEN
        BEGIN
            CREATE ROLE gridwatch_maintainer NOLOGIN NOSUPERUSER;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    -- A non-superuser owner (external server) keeps full access through the maintenance policies.
    IF NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT gridwatch_maintainer TO %I', current_user);
    END IF;
END $$;

-- ---------------------------------------------------------------------------------------------
-- The MAC key: random (pg_strong_random via gen_random_uuid), readable by the owner only.
CREATE TABLE gridwatch_secret (
    id   boolean PRIMARY KEY DEFAULT true CHECK (id),
    key  bytea NOT NULL CHECK (length(key) >= 32)
);
INSERT INTO gridwatch_secret (key)
VALUES (decode(replace(gen_random_uuid()::text || gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));
REVOKE ALL ON gridwatch_secret FROM PUBLIC;

-- MAC of a grant: nested sha256 with the key on both sides (no length extension).
CREATE FUNCTION gridwatch_grant_mac(scope text, user_id text, department_id text, pid integer, started timestamptz)
RETURNS text LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT encode(sha256(s.key || sha256(s.key || convert_to(
               concat_ws(E'\x1f', scope, user_id, department_id, pid::text,
                         to_char(started AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')), 'UTF8'))), 'hex')
    FROM gridwatch_secret s
$$;
REVOKE ALL ON FUNCTION gridwatch_grant_mac(text, text, text, integer, timestamptz) FROM PUBLIC;

-- Region scope of a role: province-wide roles get the province code(s); operators and grid
-- workers their own region; departments none (their own policy reads gridwatch.department_id).
CREATE FUNCTION gridwatch_role_scope(role text, region_code text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT CASE
        WHEN role IN ('operator', 'grid_worker') THEN coalesce(region_code, '')
        WHEN role = 'department' THEN ''
        ELSE coalesce((SELECT string_agg(code, ',' ORDER BY code) FROM region WHERE level = 'province'), '')
    END
$$;

-- The account behind a session id or bearer token (NULL when unknown, expired, revoked, disabled).
CREATE FUNCTION gridwatch_principal(secret text)
RETURNS TABLE (user_id bigint, username text, role text, region_code text, department_id bigint,
               region_scope text, via text, credential_id text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH h AS (SELECT sha256(convert_to(coalesce(secret, ''), 'UTF8')) AS d),
    cred AS (
        SELECT s.user_id, 'session'::text AS via, encode(s.session_sha256, 'hex') AS credential_id
          FROM user_session s, h
         WHERE s.session_sha256 = h.d AND s.revoked_at IS NULL AND s.expires_at > now()
        UNION ALL
        SELECT t.user_id, 'token', t.id::text
          FROM api_token t, h
         WHERE t.token_sha256 = h.d AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
    )
    SELECT u.id, u.username, u.role, u.region_code, u.department_id,
           gridwatch_role_scope(u.role, u.region_code), c.via, c.credential_id
      FROM cred c JOIN app_user u ON u.id = c.user_id
     WHERE NOT u.disabled
     LIMIT 1
$$;

-- A token was used: note when (at most once a minute; skipped in read-only transactions).
CREATE FUNCTION gridwatch_token_used(secret text) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    UPDATE api_token SET last_used_at = now()
     WHERE token_sha256 = sha256(convert_to(coalesce(secret, ''), 'UTF8'))
       AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
       AND current_setting('transaction_read_only') = 'off'
$$;

-- Open the current transaction for the holder of `secret`: sets the scope, the user and the
-- department with SET LOCAL, and the grant that makes them count. Returns the principal (no row:
-- nothing set, the transaction sees no protected rows).
CREATE FUNCTION gridwatch_open(secret text)
RETURNS TABLE (user_id bigint, username text, role text, region_code text, department_id bigint,
               region_scope text, via text, credential_id text)
-- No SET clause here (it would undo the SET LOCALs at function exit): every name is qualified,
-- so a temporary table of the caller's (pg_temp comes first by default) cannot stand in. The
-- other definer functions put pg_temp last in their search_path for the same reason.
LANGUAGE plpgsql VOLATILE SECURITY DEFINER AS $$
DECLARE
    p record;
    dept text;
BEGIN
    SELECT * INTO p FROM public.gridwatch_principal(secret);
    IF NOT FOUND THEN
        PERFORM pg_catalog.set_config('gridwatch.grant', '', true);
        PERFORM pg_catalog.set_config('gridwatch.region_scope', '', true);
        PERFORM pg_catalog.set_config('gridwatch.user_id', '', true);
        PERFORM pg_catalog.set_config('gridwatch.department_id', '', true);
        RETURN;
    END IF;
    dept := coalesce(p.department_id::text, '');
    PERFORM pg_catalog.set_config('gridwatch.region_scope', p.region_scope, true);
    PERFORM pg_catalog.set_config('gridwatch.user_id', p.user_id::text, true);
    PERFORM pg_catalog.set_config('gridwatch.department_id', dept, true);
    PERFORM pg_catalog.set_config('gridwatch.grant', concat_ws(';', p.region_scope, p.user_id::text, dept,
        public.gridwatch_grant_mac(p.region_scope, p.user_id::text, dept, pg_catalog.pg_backend_pid(),
                                   pg_catalog.transaction_timestamp())), true);
    RETURN QUERY SELECT p.user_id, p.username, p.role, p.region_code, p.department_id, p.region_scope, p.via, p.credential_id;
END $$;

-- The validated grant of this transaction: (scope prefixes, user id, department id), or NULLs.
CREATE FUNCTION gridwatch_grant() RETURNS TABLE (scope text[], user_id bigint, department_id bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    g text[] := string_to_array(coalesce(current_setting('gridwatch.grant', true), ''), ';');
BEGIN
    IF array_length(g, 1) IS DISTINCT FROM 4
       OR g[4] IS DISTINCT FROM gridwatch_grant_mac(g[1], g[2], g[3], pg_backend_pid(), transaction_timestamp()) THEN
        RETURN QUERY SELECT '{}'::text[], NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    RETURN QUERY SELECT coalesce(string_to_array(nullif(g[1], ''), ','), '{}'),
                        nullif(g[2], '')::bigint, nullif(g[3], '')::bigint;
END $$;

-- Effective region prefixes: those of gridwatch.region_scope that lie inside the validated grant.
CREATE FUNCTION gridwatch_scope() RETURNS text[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT coalesce(array_agg(DISTINCT p), '{}')
      FROM unnest(string_to_array(nullif(btrim(coalesce(current_setting('gridwatch.region_scope', true), '')), ''), ',')) AS p,
           gridwatch_grant() AS g
     WHERE p ~ '^[0-9]{2,15}$' AND EXISTS (SELECT 1 FROM unnest(g.scope) AS gp WHERE starts_with(p, gp))
$$;

-- Is a region code inside the effective scope? (prefix test; for tables with one code column)
CREATE FUNCTION gridwatch_in_scope(code text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM unnest(gridwatch_scope()) AS p WHERE starts_with(code, p))
$$;

-- Codes of exactly `len` digits covering the effective scope: a scope of that length itself, and
-- a shorter scope expanded to its descendants of that length (the province to its prefectures).
-- Policies compare each level column with `= ANY ((SELECT gridwatch_scope_codes(n)))`: the
-- function runs once per query (an InitPlan) and the comparison uses the column's index.
CREATE FUNCTION gridwatch_scope_codes(len integer) RETURNS text[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH s AS (SELECT unnest(gridwatch_scope()) AS p)
    SELECT coalesce(array_agg(DISTINCT c), '{}') FROM (
        SELECT p AS c FROM s WHERE length(p) = len
        UNION ALL
        SELECT r.code FROM s JOIN region r ON length(r.code) = len AND starts_with(r.code, s.p)
         WHERE length(s.p) < len AND len = 4
    ) x
$$;

-- The user and department of this transaction, when granted (and not contradicted by the GUCs).
CREATE FUNCTION gridwatch_user_id() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT g.user_id FROM gridwatch_grant() g
     WHERE g.user_id::text = coalesce(current_setting('gridwatch.user_id', true), '')
$$;
CREATE FUNCTION gridwatch_department_id() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT g.department_id FROM gridwatch_grant() g
     WHERE g.department_id::text = coalesce(current_setting('gridwatch.department_id', true), '')
$$;

-- ---------------------------------------------------------------------------------------------
-- Histories kept by triggers (the app role can read them in scope, never write them directly).
CREATE TABLE mediation_history (
    id            bigserial PRIMARY KEY,
    mediation_id  bigint NOT NULL,
    case_id       bigint NOT NULL REFERENCES cases (id),
    changed_at    timestamptz NOT NULL DEFAULT now(),
    changed_by    bigint,                        -- gridwatch.user_id when granted
    old           jsonb NOT NULL
);
CREATE INDEX mediation_history_case ON mediation_history (case_id, changed_at);
CREATE TRIGGER mediation_history_append_only BEFORE UPDATE OR DELETE ON mediation_history
    FOR EACH ROW EXECUTE FUNCTION append_only();

CREATE FUNCTION mediation_keep_history() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO mediation_history (mediation_id, case_id, changed_by, old)
    VALUES (OLD.id, OLD.case_id, gridwatch_user_id(), to_jsonb(OLD));
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER mediation_keep_history BEFORE UPDATE OR DELETE ON mediation
    FOR EACH ROW EXECUTE FUNCTION mediation_keep_history();

CREATE TABLE alert_ack_history (
    id               bigserial PRIMARY KEY,
    alert_id         bigint NOT NULL,
    region_code      text NOT NULL,
    at               timestamptz NOT NULL DEFAULT now(),
    user_id          bigint,
    acknowledged_at  timestamptz,
    acknowledged_by  text
);
CREATE INDEX alert_ack_history_alert ON alert_ack_history (alert_id, at);
CREATE TRIGGER alert_ack_history_append_only BEFORE UPDATE OR DELETE ON alert_ack_history
    FOR EACH ROW EXECUTE FUNCTION append_only();

CREATE FUNCTION alert_keep_ack_history() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO alert_ack_history (alert_id, region_code, user_id, acknowledged_at, acknowledged_by)
    VALUES (NEW.id, NEW.region_code, gridwatch_user_id(), NEW.acknowledged_at, NEW.acknowledged_by);
    RETURN NEW;
END $$;
CREATE TRIGGER alert_keep_ack_history AFTER UPDATE OF acknowledged_at, acknowledged_by ON alert
    FOR EACH ROW WHEN (OLD.acknowledged_at IS DISTINCT FROM NEW.acknowledged_at
                       OR OLD.acknowledged_by IS DISTINCT FROM NEW.acknowledged_by)
    EXECUTE FUNCTION alert_keep_ack_history();

-- The actor of an event is the authenticated user when the transaction has one. Without a grant
-- (ETL, CLI, the phase-1 API) the caller's actor stays: the WHEN clause keeps bulk loads cheap.
CREATE FUNCTION case_event_actor() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    who text;
BEGIN
    SELECT u.username INTO who FROM app_user u WHERE u.id = gridwatch_user_id();
    IF who IS NOT NULL THEN
        NEW.actor := who;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER case_event_actor BEFORE INSERT ON case_event
    FOR EACH ROW WHEN (coalesce(current_setting('gridwatch.grant', true), '') <> '')
    EXECUTE FUNCTION case_event_actor();

-- ---------------------------------------------------------------------------------------------
-- Row-level security. Level-coded tables (cases, hazard) compare each stamped level column with
-- the scope's codes of that length; child tables follow their parent row (the parent's policy
-- applies inside the EXISTS); single-code tables use the prefix test.
ALTER TABLE cases ENABLE ROW LEVEL SECURITY;
ALTER TABLE cases FORCE ROW LEVEL SECURITY;
CREATE POLICY cases_region ON cases USING (
       prefecture_code = ANY ((SELECT gridwatch_scope_codes(4))::text[])
    OR county_code     = ANY ((SELECT gridwatch_scope_codes(6))::text[])
    OR township_code   = ANY ((SELECT gridwatch_scope_codes(9))::text[])
    OR village_code    = ANY ((SELECT gridwatch_scope_codes(12))::text[])
    OR grid_code       = ANY ((SELECT gridwatch_scope_codes(15))::text[]));
CREATE POLICY cases_department ON cases USING (department_id = (SELECT gridwatch_department_id()));
CREATE POLICY cases_maintenance ON cases TO gridwatch_maintainer USING (true) WITH CHECK (true);

ALTER TABLE hazard ENABLE ROW LEVEL SECURITY;
ALTER TABLE hazard FORCE ROW LEVEL SECURITY;
CREATE POLICY hazard_region ON hazard USING (
       prefecture_code = ANY ((SELECT gridwatch_scope_codes(4))::text[])
    OR county_code     = ANY ((SELECT gridwatch_scope_codes(6))::text[])
    OR township_code   = ANY ((SELECT gridwatch_scope_codes(9))::text[])
    OR village_code    = ANY ((SELECT gridwatch_scope_codes(12))::text[])
    OR grid_code       = ANY ((SELECT gridwatch_scope_codes(15))::text[]));
CREATE POLICY hazard_department ON hazard USING (owner_department_id = (SELECT gridwatch_department_id()));
CREATE POLICY hazard_maintenance ON hazard TO gridwatch_maintainer USING (true) WITH CHECK (true);

ALTER TABLE case_event ENABLE ROW LEVEL SECURITY;
ALTER TABLE case_event FORCE ROW LEVEL SECURITY;
CREATE POLICY case_event_case ON case_event USING (EXISTS (SELECT 1 FROM cases c WHERE c.id = case_event.case_id));
CREATE POLICY case_event_maintenance ON case_event TO gridwatch_maintainer USING (true) WITH CHECK (true);

ALTER TABLE mediation ENABLE ROW LEVEL SECURITY;
ALTER TABLE mediation FORCE ROW LEVEL SECURITY;
CREATE POLICY mediation_case ON mediation USING (EXISTS (SELECT 1 FROM cases c WHERE c.id = mediation.case_id));
CREATE POLICY mediation_maintenance ON mediation TO gridwatch_maintainer USING (true) WITH CHECK (true);

ALTER TABLE mediation_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE mediation_history FORCE ROW LEVEL SECURITY;
CREATE POLICY mediation_history_case ON mediation_history FOR SELECT
    USING (EXISTS (SELECT 1 FROM cases c WHERE c.id = mediation_history.case_id));
CREATE POLICY mediation_history_write ON mediation_history FOR INSERT WITH CHECK (true);   -- no INSERT grant to the app
CREATE POLICY mediation_history_maintenance ON mediation_history TO gridwatch_maintainer USING (true) WITH CHECK (true);

ALTER TABLE hazard_event ENABLE ROW LEVEL SECURITY;
ALTER TABLE hazard_event FORCE ROW LEVEL SECURITY;
CREATE POLICY hazard_event_hazard ON hazard_event USING (EXISTS (SELECT 1 FROM hazard h WHERE h.id = hazard_event.hazard_id));
CREATE POLICY hazard_event_maintenance ON hazard_event TO gridwatch_maintainer USING (true) WITH CHECK (true);

ALTER TABLE checkin ENABLE ROW LEVEL SECURITY;
ALTER TABLE checkin FORCE ROW LEVEL SECURITY;
CREATE POLICY checkin_region ON checkin USING (gridwatch_in_scope(grid_code));
CREATE POLICY checkin_maintenance ON checkin TO gridwatch_maintainer USING (true) WITH CHECK (true);

ALTER TABLE alert ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert FORCE ROW LEVEL SECURITY;
CREATE POLICY alert_region ON alert USING (gridwatch_in_scope(region_code));
CREATE POLICY alert_maintenance ON alert TO gridwatch_maintainer USING (true) WITH CHECK (true);

ALTER TABLE alert_ack_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_ack_history FORCE ROW LEVEL SECURITY;
CREATE POLICY alert_ack_history_region ON alert_ack_history FOR SELECT USING (gridwatch_in_scope(region_code));
CREATE POLICY alert_ack_history_write ON alert_ack_history FOR INSERT WITH CHECK (true);   -- no INSERT grant to the app
CREATE POLICY alert_ack_history_maintenance ON alert_ack_history TO gridwatch_maintainer USING (true) WITH CHECK (true);

-- People's data: the app role reaches accounts only through the SECURITY DEFINER functions above.
ALTER TABLE app_user ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_token ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_session ENABLE ROW LEVEL SECURITY;
ALTER TABLE personal_data_access ENABLE ROW LEVEL SECURITY;
ALTER TABLE personal_data_access FORCE ROW LEVEL SECURITY;
CREATE POLICY personal_data_access_own ON personal_data_access FOR INSERT
    WITH CHECK (user_id = gridwatch_user_id());                     -- audit rows only as oneself
CREATE POLICY personal_data_access_maintenance ON personal_data_access TO gridwatch_maintainer USING (true) WITH CHECK (true);

-- Tables added by other work in this release, when present (the alert's own trail, silences).
DO $$
BEGIN
    IF to_regclass('public.alert_event') IS NOT NULL THEN
        ALTER TABLE alert_event ENABLE ROW LEVEL SECURITY;
        ALTER TABLE alert_event FORCE ROW LEVEL SECURITY;
        CREATE POLICY alert_event_alert ON alert_event USING (EXISTS (SELECT 1 FROM alert a WHERE a.id = alert_event.alert_id));
        CREATE POLICY alert_event_maintenance ON alert_event TO gridwatch_maintainer USING (true) WITH CHECK (true);
    END IF;
END $$;

-- ---------------------------------------------------------------------------------------------
-- Grants: read everything but the secrets and accounts; write what request paths write; the
-- trails (case_event, hazard_event, alert_event, the histories) INSERT only or nothing; no
-- TRUNCATE anywhere.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM gridwatch_app;
GRANT USAGE ON SCHEMA public TO gridwatch_app;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO gridwatch_app;
REVOKE ALL ON gridwatch_secret, app_user, api_token, user_session, personal_data_access FROM gridwatch_app;
GRANT INSERT ON personal_data_access TO gridwatch_app;
GRANT INSERT, UPDATE ON cases, hazard, checkin, mediation, alert, centre, centre_department, data_version TO gridwatch_app;
GRANT INSERT, UPDATE, DELETE ON case_day, grid_coverage, township_coverage, grid_neighbour, grid_neighbour_state TO gridwatch_app;
GRANT DELETE ON centre, centre_department TO gridwatch_app;   -- a planner's what-if scenarios
GRANT INSERT ON case_event, hazard_event TO gridwatch_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO gridwatch_app;
DO $$
BEGIN
    IF to_regclass('public.alert_event') IS NOT NULL THEN
        GRANT INSERT ON alert_event TO gridwatch_app;
    END IF;
    IF to_regclass('public.alert_silence') IS NOT NULL THEN
        GRANT INSERT, UPDATE ON alert_silence TO gridwatch_app;
    END IF;
END $$;
REVOKE ALL ON FUNCTION gridwatch_grant_mac(text, text, text, integer, timestamptz) FROM gridwatch_app;
