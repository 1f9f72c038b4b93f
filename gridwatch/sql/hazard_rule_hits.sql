-- Spatial rule hits: for each open target hazard (ids, or all when NULL), every open hazard of a
-- kind its rules name within the rule's distance, with the distance in metres. The && prefilter
-- (metres / 50,000 degrees: ≥ the distance at Gansu's latitudes) lets the GiST index answer.
SELECT t.id, r.code AS rule, r.grade, r.reason_zh, r.reason_en,
       n.id AS near_id, n.title AS near_title, n.kind AS near_kind,
       ST_Distance(t.geom::geography, n.geom::geography) AS distance_m
FROM hazard t
JOIN hazard_rule r ON r.kind = t.kind
JOIN hazard n ON n.kind = ANY (r.near_kinds) AND n.id <> t.id AND hazard_is_open(n.state)
             AND n.geom && ST_Expand(t.geom, r.within_m / 50000.0 + 1e-9)
             AND ST_DWithin(t.geom::geography, n.geom::geography, r.within_m)
WHERE hazard_is_open(t.state) AND (%(ids)s::bigint[] IS NULL OR t.id = ANY (%(ids)s))
