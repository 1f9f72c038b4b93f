-- Alert triage (gridwatch/triage.py), modelled on Prometheus Alertmanager and PagerDuty:
-- silences with their history, escalation of unacknowledged red alerts up the hierarchy, the
-- alert's own trail, and one function that says which live alerts are inhibited or silenced.

-- Escalation (超时未处置自动上报): how many levels an alert has gone up, and to which region.
ALTER TABLE alert
    ADD COLUMN escalation_level smallint NOT NULL DEFAULT 0 CHECK (escalation_level >= 0),
    ADD COLUMN escalated_to     text REFERENCES region (code) ON DELETE SET NULL,
    ADD COLUMN escalated_at     timestamptz,
    ADD CONSTRAINT alert_escalation_has_target CHECK ((escalation_level = 0) = (escalated_to IS NULL));
CREATE INDEX alert_escalated_to ON alert (escalated_to) WHERE escalated_to IS NOT NULL AND resolved_at IS NULL;

-- A silence: one rule in one region and everything under it, from starts_at to ends_at, who and
-- why. Rows are never deleted: expiring one early sets expired_at/expired_by (the history stays).
CREATE TABLE alert_silence (
    id           bigserial PRIMARY KEY,
    rule         text NOT NULL CHECK (rule IN ('deadline_near', 'deadline_past', 'red_case', 'red_hazard', 'spike',
                                               'hotspot', 'repeat_place', 'repeat_party', 'silent_grid',
                                               'hazard_overdue', 'department_returns')),
    region_code  text NOT NULL REFERENCES region (code) ON DELETE CASCADE,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    reason       text NOT NULL CHECK (length(btrim(reason)) > 0),
    created_by   text NOT NULL CHECK (length(btrim(created_by)) > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expired_at   timestamptz,
    expired_by   text,
    CONSTRAINT alert_silence_period CHECK (ends_at > starts_at),
    CONSTRAINT alert_silence_expiry_has_who CHECK ((expired_at IS NULL) = (expired_by IS NULL))
);
CREATE INDEX alert_silence_active ON alert_silence (rule, region_code text_pattern_ops) WHERE expired_at IS NULL;

INSERT INTO data_version (name) VALUES ('alert_silence') ON CONFLICT (name) DO NOTHING;
CREATE TRIGGER alert_silence_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON alert_silence
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();

-- The alert's trail: escalations, silences that covered it, acknowledgements. Append-only.
CREATE TABLE alert_event (
    id           bigserial PRIMARY KEY,
    alert_id     bigint NOT NULL REFERENCES alert (id) ON DELETE CASCADE,
    at           timestamptz NOT NULL,
    actor        text NOT NULL,
    action       text NOT NULL CHECK (action IN ('escalate', 'acknowledge')),
    from_region  text,
    to_region    text,
    level        smallint,
    note         text
);
CREATE INDEX alert_event_alert ON alert_event (alert_id, at);

-- Which live alerts are inhibited (a stronger live alert on the same case or hazard: Alertmanager's
-- inhibit rule with equal: [subject]) and which are silenced, as of ``as_of``.
-- Strength: severity first (red > orange > yellow), then the rule (past deadline / hazard overdue
-- say more than red grade, which says more than near deadline), then the older alert.
CREATE FUNCTION alert_triage(as_of timestamptz DEFAULT now())
RETURNS TABLE (alert_id bigint, subject_key text, inhibited_by bigint, silence_id bigint, silenced_until timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH live AS (
        SELECT a.id, a.rule, a.region_code,
               CASE WHEN a.rule IN ('deadline_near', 'deadline_past', 'red_case') AND a.subject ? 'case_id'
                        THEN 'case:' || (a.subject ->> 'case_id')
                    WHEN a.rule IN ('red_hazard', 'hazard_overdue') AND a.subject ? 'hazard_id'
                        THEN 'hazard:' || (a.subject ->> 'hazard_id') END AS subject_key,
               CASE a.severity WHEN 'red' THEN 0 WHEN 'orange' THEN 1 ELSE 2 END AS sev_rank,
               CASE a.rule WHEN 'deadline_past' THEN 0 WHEN 'hazard_overdue' THEN 0
                           WHEN 'red_case' THEN 1 WHEN 'red_hazard' THEN 1 ELSE 2 END AS rule_rank
        FROM alert a
        WHERE a.resolved_at IS NULL
    ), ranked AS (
        SELECT l.*, first_value(l.id) OVER (PARTITION BY l.subject_key ORDER BY l.sev_rank, l.rule_rank, l.id) AS strongest
        FROM live l
    )
    SELECT r.id, r.subject_key,
           CASE WHEN r.subject_key IS NOT NULL AND r.strongest <> r.id THEN r.strongest END,
           s.id, s.ends_at
    FROM ranked r
    LEFT JOIN LATERAL (
        SELECT si.id, si.ends_at FROM alert_silence si
        WHERE si.rule = r.rule AND si.expired_at IS NULL AND si.starts_at <= as_of AND si.ends_at > as_of
          AND r.region_code LIKE si.region_code || '%'
        ORDER BY si.ends_at DESC LIMIT 1
    ) s ON true
$$;
