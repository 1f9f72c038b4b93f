-- Point-in-polygon at intake ("which grid, and is it in Gansu?") reads small subdivided pieces
-- of the grid and province polygons instead of whole outlines with thousands of vertices.
CREATE FUNCTION region_subdivide() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM region_subdivided WHERE code = OLD.code;
    END IF;
    IF NEW.level IN ('province', 'grid') THEN
        INSERT INTO region_subdivided (code, level, geom)
        SELECT NEW.code, NEW.level, (ST_Dump(ST_Subdivide(NEW.geom, 96))).geom;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER region_subdivide AFTER INSERT OR UPDATE OF geom ON region
    FOR EACH ROW EXECUTE FUNCTION region_subdivide();
