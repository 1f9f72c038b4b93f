-- 行政区划调整 in force after a day that touch region %(code)s: a changed unit inside it, or it inside one.
SELECT id, effective_date, level, source, replaced, new_codes, deleted, moves
FROM boundary_adjustment a
WHERE a.effective_date > %(start)s
  AND EXISTS (SELECT 1 FROM unnest(a.replaced || a.new_codes || a.deleted) c
              WHERE starts_with(c, %(code)s) OR starts_with(%(code)s, c))
ORDER BY effective_date, id
