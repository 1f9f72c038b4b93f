-- Live orange (橙色) alerts at every zoom, coloured by grade on the map and clickable (details in the
-- feature); an alert inhibited by a stronger one on the same case or hazard is left out (one item).
SELECT a.id, ST_PointOnSurface(a.geom) AS geom, a.rule, a.severity, a.region_code,
       left(a.explanation_zh, 160) AS text, left(a.explanation_en, 200) AS text_en,
       to_char(a.raised_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI') AS raised,
       (a.acknowledged_at IS NOT NULL) AS acknowledged, a.escalation_level AS escalated,
       to_char(tr.silenced_until AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI') AS silenced_until
FROM alert a JOIN alert_triage() tr ON tr.alert_id = a.id, tile
WHERE a.resolved_at IS NULL AND a.severity = 'orange' AND tr.inhibited_by IS NULL
  AND a.geom && tile.env4326
