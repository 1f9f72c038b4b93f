-- Record the codes each re-stamped row had (region_restamp), then give cases and hazards the new
-- units' codes. Rows whose codes do not change are left alone. Check-ins: boundary_restamp_checkins.
WITH moved AS (
    SELECT * FROM gw_restamp
    WHERE leaf IS NOT NULL
      AND (old_grid, old_village, old_township, old_county, old_prefecture)
          IS DISTINCT FROM (new_grid, new_village, new_township, new_county, new_prefecture)
), history AS (
    INSERT INTO region_restamp (adjustment_id, kind, row_id, old_code, new_code, old_codes, new_codes)
    SELECT %(adjustment)s, kind, row_id, old_finest, new_finest,
           jsonb_build_object('grid_code', old_grid, 'village_code', old_village, 'township_code', old_township,
                              'county_code', old_county, 'prefecture_code', old_prefecture),
           jsonb_build_object('grid_code', new_grid, 'village_code', new_village, 'township_code', new_township,
                              'county_code', new_county, 'prefecture_code', new_prefecture)
    FROM moved
), c AS (
    UPDATE cases x SET grid_code = m.new_grid, village_code = m.new_village, township_code = m.new_township,
                       county_code = m.new_county, prefecture_code = m.new_prefecture, updated_at = now()
    FROM moved m WHERE m.kind = 'case' AND m.row_id = x.id
    RETURNING x.id
), h AS (
    UPDATE hazard x SET grid_code = m.new_grid, village_code = m.new_village, township_code = m.new_township,
                        county_code = m.new_county, prefecture_code = m.new_prefecture, updated_at = now()
    FROM moved m WHERE m.kind = 'hazard' AND m.row_id = x.id
    RETURNING x.id
)
SELECT (SELECT count(*) FROM c) AS cases, (SELECT count(*) FROM h) AS hazards
