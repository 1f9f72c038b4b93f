-- The cluster-wide roles of migration 0081, created when missing (no password): a dump restored
-- into a fresh cluster names them in its grants and policies.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gridwatch_app') THEN
        BEGIN
            CREATE ROLE gridwatch_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gridwatch_maintainer') THEN
        BEGIN
            CREATE ROLE gridwatch_maintainer NOLOGIN NOSUPERUSER;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
END $$
