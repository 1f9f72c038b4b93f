-- The wall's takeover: red items of the wall's scope reported in the last N minutes (span) —
-- red cases and hazards read straight from their tables (they need not wait for the next rules
-- run), and red signals raised in that window (a spike, a hotspot …). An old case or hazard going
-- past its deadline is not a fresh report: it is grouped and escalated (gridwatch.triage), not shouted.
-- Left out: what was acknowledged, silenced or is inhibited by a stronger alert. Newest first; the
-- caller keeps the first M.
WITH tr AS (SELECT * FROM alert_triage(%(as_of)s)),
items AS (
    SELECT 'case' AS kind, NULL::text AS rule, c.id, c.title, NULL::text AS title_en, c.reported_at, c.county_code AS county_code,
           COALESCE(c.village_code, c.township_code, c.county_code) AS place_code,
           ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat
    FROM cases c
    WHERE c.grade = 'red' AND c.state NOT IN ('closed', 'rejected') AND c.duplicate_of IS NULL
      AND c.reported_at >= %(as_of)s - %(span)s AND c.reported_at <= %(as_of)s
      AND COALESCE(c.grid_code, c.prefecture_code, '') LIKE %(prefix)s
      AND NOT EXISTS (SELECT 1 FROM alert a LEFT JOIN tr ON tr.alert_id = a.id
                      WHERE a.rule = 'red_case' AND a.dedup_key = 'red_case:' || c.id AND a.resolved_at IS NULL
                        AND (a.acknowledged_at IS NOT NULL OR tr.silence_id IS NOT NULL))
    UNION ALL
    SELECT 'hazard', NULL, h.id, h.title, NULL, h.reported_at, h.county_code,
           COALESCE(h.village_code, h.township_code, h.county_code),
           ST_X(ST_PointOnSurface(h.geom)), ST_Y(ST_PointOnSurface(h.geom))
    FROM hazard h
    WHERE h.grade = 'red' AND h.state <> 'closed'
      AND h.reported_at >= %(as_of)s - %(span)s AND h.reported_at <= %(as_of)s
      AND COALESCE(h.grid_code, h.prefecture_code, '') LIKE %(prefix)s
      AND NOT EXISTS (SELECT 1 FROM alert a LEFT JOIN tr ON tr.alert_id = a.id
                      WHERE a.rule IN ('red_hazard', 'hazard_overdue') AND a.subject ->> 'hazard_id' = h.id::text
                        AND a.resolved_at IS NULL AND (a.acknowledged_at IS NOT NULL OR tr.silence_id IS NOT NULL))
    UNION ALL
    SELECT 'alert', a.rule, a.id, a.explanation_zh, a.explanation_en, a.raised_at, left(a.region_code, 6), a.region_code,
           ST_X(ST_PointOnSurface(a.geom)), ST_Y(ST_PointOnSurface(a.geom))
    FROM alert a JOIN tr ON tr.alert_id = a.id
    WHERE a.severity = 'red' AND a.resolved_at IS NULL AND a.acknowledged_at IS NULL
      AND tr.inhibited_by IS NULL AND tr.silence_id IS NULL
      AND a.rule NOT IN ('red_case', 'red_hazard', 'deadline_past', 'hazard_overdue')
      AND a.raised_at >= %(as_of)s - %(span)s
      AND a.region_code LIKE %(prefix)s
)
SELECT i.kind, i.rule, i.id, i.title, i.title_en, i.reported_at, i.lon, i.lat,
       COALESCE(k.name, '') AS county, COALESCE(p.name, '') AS place
FROM items i LEFT JOIN region k ON k.code = i.county_code LEFT JOIN region p ON p.code = i.place_code
ORDER BY i.reported_at DESC, i.id DESC
LIMIT %(limit)s
