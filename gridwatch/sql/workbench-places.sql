-- Regions whose names contain every word of an address (no outside geocoder): a region's name must
-- hold one of the words and the names of it and its parents (county and below) all of them; finest
-- level first, each with its parents' names and a point inside it. params: words (text[]), within
-- (a code prefix or ''), limit
WITH hit AS (
    SELECT r.code, r.name, r.level, r.label_point,
           ARRAY[left(r.code, 6), left(r.code, 9), left(r.code, 12), r.code] AS line
      FROM region r
     WHERE r.level IN ('county', 'township', 'village', 'grid')
       AND starts_with(r.code, %(within)s)
       AND EXISTS (SELECT 1 FROM unnest(%(words)s::text[]) AS w WHERE position(w IN r.name) > 0)
), named AS (
    SELECT h.*, (SELECT string_agg(a.name, ' ' ORDER BY length(a.code)) FROM region a
                  WHERE a.code = ANY(h.line) AND a.code <> h.code) AS parents,
                (SELECT string_agg(a.name, '') FROM region a WHERE a.code = ANY(h.line)) AS all_names
      FROM hit h
)
SELECT code, name, level, parents, ST_X(label_point) AS lon, ST_Y(label_point) AS lat
  FROM named
 WHERE NOT EXISTS (SELECT 1 FROM unnest(%(words)s::text[]) AS w WHERE position(w IN coalesce(all_names, '')) = 0)
 ORDER BY length(code) DESC, code
 LIMIT %(limit)s
