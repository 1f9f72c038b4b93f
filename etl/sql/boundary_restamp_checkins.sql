-- Check-ins of removed grids follow the old grid's representative point into the new grid. Where
-- the new grid already has the same worker's check-in of that kind that day (or two land on the
-- same key), the first is kept and the rest are merged into it: deleted, their rows kept whole in
-- region_restamp.new_codes ("merged_into_existing", "row"). Returns the merged ids.
WITH m AS (
    SELECT DISTINCT ON (r.new_grid, k.worker, k.day, k.kind) k.id, r.new_grid
    FROM gw_restamp r JOIN checkin k ON k.id = r.row_id
    WHERE r.kind = 'checkin' AND r.new_grid IS NOT NULL AND r.new_grid IS DISTINCT FROM r.old_grid
      AND NOT EXISTS (SELECT 1 FROM checkin x WHERE x.grid_code = r.new_grid AND x.worker = k.worker
                                               AND x.day = k.day AND x.kind = k.kind)
    ORDER BY r.new_grid, k.worker, k.day, k.kind, k.id
)
UPDATE checkin k SET grid_code = m.new_grid FROM m WHERE k.id = m.id
