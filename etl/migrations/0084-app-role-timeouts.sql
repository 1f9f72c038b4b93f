-- The app role's own limits, and a token's last use noted only where writing is possible.

-- statement_timeout per role: a request can never hold a connection for minutes. Needs the right
-- to alter the role (superuser or CREATEROLE); elsewhere the DBA runs these two lines once.
DO $$
BEGIN
    ALTER ROLE gridwatch_app SET statement_timeout = '30s';
    ALTER ROLE gridwatch_app SET idle_in_transaction_session_timeout = '60s';
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'not allowed to set gridwatch_app''s timeouts here; ask the DBA to run: ALTER ROLE gridwatch_app SET statement_timeout = ''30s''';
END $$;

-- 0081's version was one UPDATE, which a read-only transaction refuses before any WHERE is read.
CREATE OR REPLACE FUNCTION gridwatch_token_used(secret text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF current_setting('transaction_read_only') = 'on' OR pg_is_in_recovery() THEN
        RETURN;
    END IF;
    UPDATE api_token SET last_used_at = now()
     WHERE token_sha256 = sha256(convert_to(coalesce(secret, ''), 'UTF8'))
       AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute');
END $$;
