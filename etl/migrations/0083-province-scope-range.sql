-- The province fast path of 0082 as a range on the indexed prefecture column instead of a bare
-- boolean: still two comparisons per row for a province-wide scope, and the policy stays a
-- BitmapOr of index scans for narrower scopes (a bare boolean arm cannot use an index).
-- gridwatch_scope_province(): the province code when the effective scope holds it, else NULL
-- (then the range arm is NULL, i.e. false).
CREATE FUNCTION gridwatch_scope_province() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT min(r.code) FROM unnest(gridwatch_scope()) AS p JOIN region r ON r.code = p AND r.level = 'province'
$$;

ALTER POLICY cases_region ON cases USING (
       (prefecture_code >= (SELECT gridwatch_scope_province()) AND prefecture_code < (SELECT gridwatch_scope_province() || '~'))
    OR prefecture_code = ANY ((SELECT gridwatch_scope_codes(4))::text[])
    OR county_code     = ANY ((SELECT gridwatch_scope_codes(6))::text[])
    OR township_code   = ANY ((SELECT gridwatch_scope_codes(9))::text[])
    OR village_code    = ANY ((SELECT gridwatch_scope_codes(12))::text[])
    OR grid_code       = ANY ((SELECT gridwatch_scope_codes(15))::text[]));

ALTER POLICY hazard_region ON hazard USING (
       (prefecture_code >= (SELECT gridwatch_scope_province()) AND prefecture_code < (SELECT gridwatch_scope_province() || '~'))
    OR prefecture_code = ANY ((SELECT gridwatch_scope_codes(4))::text[])
    OR county_code     = ANY ((SELECT gridwatch_scope_codes(6))::text[])
    OR township_code   = ANY ((SELECT gridwatch_scope_codes(9))::text[])
    OR village_code    = ANY ((SELECT gridwatch_scope_codes(12))::text[])
    OR grid_code       = ANY ((SELECT gridwatch_scope_codes(15))::text[]));
