-- Check-ins follow their old grid's representative point into the new grid.
UPDATE checkin x SET grid_code = m.new_grid
FROM gw_restamp m
WHERE m.kind = 'checkin' AND m.row_id = x.id AND m.new_grid IS NOT NULL AND m.new_grid IS DISTINCT FROM m.old_grid
