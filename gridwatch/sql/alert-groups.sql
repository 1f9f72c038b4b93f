-- Live alerts of a region grouped by rule × region (Alertmanager's group_by: [rule, region]).
-- The group's region is the alert's region at the level below the one asked for (the prefectures
-- of the province, the counties of a prefecture …), or the asked region itself. Inhibited alerts
-- are counted apart (they are one item with their stronger alert); silenced ones are counted and
-- the group says until when when all of its alerts are silenced.
-- Parameters: region (code), prefix (the region's code followed by a LIKE wildcard), child_len (code length of the level below), as_of.
WITH t AS (
    SELECT a.id, a.rule, a.severity, a.raised_at, a.acknowledged_at, a.escalation_level,
           tr.inhibited_by, tr.silenced_until,
           CASE WHEN length(a.region_code) >= %(child_len)s THEN left(a.region_code, %(child_len)s) ELSE a.region_code END AS child
    FROM alert a JOIN alert_triage(%(as_of)s) tr ON tr.alert_id = a.id
    WHERE a.resolved_at IS NULL AND a.region_code LIKE %(prefix)s
), g AS (
    SELECT t.rule, COALESCE(r.code, %(region)s) AS region_code,
           count(*) FILTER (WHERE t.inhibited_by IS NULL) AS count,
           count(*) FILTER (WHERE t.inhibited_by IS NOT NULL) AS inhibited,
           count(*) FILTER (WHERE t.inhibited_by IS NULL AND t.acknowledged_at IS NOT NULL) AS acknowledged,
           count(*) FILTER (WHERE t.inhibited_by IS NULL AND t.escalation_level > 0) AS escalated,
           count(*) FILTER (WHERE t.inhibited_by IS NULL AND t.silenced_until IS NOT NULL) AS silenced,
           min(CASE t.severity WHEN 'red' THEN 0 WHEN 'orange' THEN 1 ELSE 2 END) FILTER (WHERE t.inhibited_by IS NULL) AS sev_rank,
           min(t.raised_at) FILTER (WHERE t.inhibited_by IS NULL) AS oldest_raised_at,
           max(t.raised_at) FILTER (WHERE t.inhibited_by IS NULL) AS newest_raised_at,
           CASE WHEN bool_and(t.silenced_until IS NOT NULL) FILTER (WHERE t.inhibited_by IS NULL)
                THEN min(t.silenced_until) FILTER (WHERE t.inhibited_by IS NULL) END AS silenced_until
    FROM t LEFT JOIN region r ON r.code = t.child
    GROUP BY t.rule, COALESCE(r.code, %(region)s)
)
SELECT g.rule, g.region_code, r.name AS region_name, r.name_en AS region_name_en, r.level AS region_level,
       g.count, g.inhibited, g.acknowledged, g.escalated, g.silenced,
       (ARRAY['red', 'orange', 'yellow'])[g.sev_rank + 1] AS worst_severity,
       g.oldest_raised_at, g.newest_raised_at, g.silenced_until,
       ST_X(r.label_point) AS lon, ST_Y(r.label_point) AS lat
FROM g JOIN region r ON r.code = g.region_code
WHERE g.count > 0
ORDER BY g.sev_rank, g.count DESC, g.oldest_raised_at, g.rule, g.region_code
