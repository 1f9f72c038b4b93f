-- Escalation (超时未处置自动上报, PagerDuty's escalation policy): every live red alert that nobody
-- acknowledged, that no silence covers and no stronger alert inhibits, and that has waited
-- the escalation period since it was raised or last escalated, goes one level up the hierarchy. The first
-- level is the township centre of a grid's or village's alert (the region itself above that);
-- an alert already at the top stays there. Each step is written in the alert's trail.
WITH due AS (
    SELECT a.id, COALESCE(a.escalated_to, CASE WHEN length(a.region_code) > 9 THEN left(a.region_code, 9)
                                               ELSE a.region_code END) AS from_region
    FROM alert a JOIN alert_triage(%(as_of)s) tr ON tr.alert_id = a.id
    WHERE a.resolved_at IS NULL AND a.severity = 'red' AND a.acknowledged_at IS NULL
      AND tr.inhibited_by IS NULL AND tr.silence_id IS NULL
      AND COALESCE(a.escalated_at, a.raised_at) <= %(as_of)s - %(after)s
    FOR UPDATE OF a
), up AS (
    UPDATE alert a SET escalation_level = a.escalation_level + 1, escalated_to = r.parent_code, escalated_at = %(as_of)s
    FROM due JOIN region r ON r.code = due.from_region
    WHERE a.id = due.id AND r.parent_code IS NOT NULL
    RETURNING a.id, due.from_region, a.escalated_to, a.escalation_level
), trail AS (
    INSERT INTO alert_event (alert_id, at, actor, action, from_region, to_region, level, note)
    SELECT up.id, %(as_of)s, %(actor)s, 'escalate', up.from_region, up.escalated_to, up.escalation_level, %(note)s
    FROM up
    RETURNING alert_id
)
SELECT up.id, up.from_region, up.escalated_to, up.escalation_level, f.name AS from_name, t.name AS to_name
FROM up JOIN region f ON f.code = up.from_region JOIN region t ON t.code = up.escalated_to
ORDER BY up.id
