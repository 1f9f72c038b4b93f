-- Regions under a code prefix that the staged load no longer has (children go with their parent).
DELETE FROM region r
WHERE starts_with(r.code, %(prefix)s)
  AND NOT EXISTS (SELECT 1 FROM region_stage s WHERE s.code = r.code)
