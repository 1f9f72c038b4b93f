-- Insert or update real-registry centres matched by (region_code, name); returns each row's id.
INSERT INTO centre AS c (name, level, region_code, status, staff, address, phone, geom)
SELECT u.name, u.level, u.code, u.status, u.staff, u.address, u.phone, ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326)
FROM unnest(%(nos)s::int[], %(names)s::text[], %(levels)s::text[], %(codes)s::text[], %(statuses)s::text[],
            %(staff)s::int[], %(addresses)s::text[], %(phones)s::text[], %(lons)s::float8[], %(lats)s::float8[])
     AS u(no, name, level, code, status, staff, address, phone, lon, lat)
ORDER BY u.no
ON CONFLICT (region_code, name) WHERE scenario IS NULL DO UPDATE SET
    level = EXCLUDED.level, status = EXCLUDED.status, staff = EXCLUDED.staff, address = EXCLUDED.address,
    phone = EXCLUDED.phone, geom = EXCLUDED.geom, updated_at = now()
RETURNING c.id, c.region_code, c.name
