-- Cases reported in [start, end) in region %(code)s, counted by today's units and by the units of
-- their time (the codes they had when reported: view reported_codes).
SELECT count(*) FILTER (WHERE %(code)s IN (c.grid_code, c.village_code, c.township_code, c.county_code, c.prefecture_code)
                             OR %(code)s = left(c.prefecture_code, 2)) AS today,
       count(*) FILTER (WHERE %(code)s IN (r.grid_code, r.village_code, r.township_code, r.county_code, r.prefecture_code)
                             OR %(code)s = left(r.prefecture_code, 2)) AS at_the_time
FROM cases c
JOIN reported_codes r ON r.kind = 'case' AND r.row_id = c.id
WHERE c.reported_at >= %(start)s AND c.reported_at < %(end)s
