-- The check-ins left on removed grids after boundary_restamp_checkins are duplicates of one now in
-- their new grid: keep each whole in its history row, then remove it.
WITH dup AS (
    DELETE FROM checkin k USING gw_restamp r
    WHERE r.kind = 'checkin' AND r.row_id = k.id AND k.grid_code = r.old_grid
      AND r.new_grid IS NOT NULL AND r.new_grid <> r.old_grid
    RETURNING k.*
)
UPDATE region_restamp h SET new_codes = h.new_codes || jsonb_build_object('merged_into_existing', true, 'row', to_jsonb(d))
FROM dup d
WHERE h.adjustment_id = %(adjustment)s AND h.kind = 'checkin' AND h.row_id = d.id
