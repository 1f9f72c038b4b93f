-- What moved: per kind, from each old unit to each new one at the loaded level (code length %(n)s).
SELECT kind, left(old_code, %(n)s) AS from_code, left(new_code, %(n)s) AS to_code, count(*) AS n
FROM region_restamp
WHERE adjustment_id = %(adjustment)s
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
