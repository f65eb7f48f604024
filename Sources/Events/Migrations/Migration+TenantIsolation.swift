extension Migration {
    /// Row-level security that a tenant session cannot switch off, and on the log itself.
    ///
    /// - The operator scope is a role, `tally_operator`, not a setting: before this migration any session could
    ///   `SET LOCAL tally.operator = 'on'` and see every tenant. A policy now asks `tally_is_operator()`, true
    ///   when the current role has `tally_operator`'s privileges. A tenant's transaction runs `SET LOCAL ROLE
    ///   tally_app`, which has not, whatever it sets. The migrating role grants itself `tally_operator`.
    /// - `events` and `streams` get the same policy as every other table: a tenant session reads its own
    ///   events and streams only, never a platform stream (their tenant is NULL).
    /// - `tally_app` keeps only what tenant sessions use: reading, and writing idempotency records.
    ///
    /// Each policy calls the function through a scalar subquery, so PostgreSQL evaluates it once per statement,
    /// not once per row (a feed read of 5,000 rows pays for one role check).
    static let tenantIsolation = Migration(
        version: 8, name: "tenant_isolation",
        sql: #"""
            DO $do$
            BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tally_operator') THEN
                    IF NOT (SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user) THEN
                        RAISE EXCEPTION 'the role tally_operator does not exist and % may not create roles', current_user
                            USING HINT = 'As an administrator: CREATE ROLE tally_operator NOLOGIN; GRANT tally_operator TO '
                                || current_user || '; then run tally migrate again (docs/operations.md).';
                    END IF;
                    BEGIN
                        CREATE ROLE tally_operator NOLOGIN;
                    EXCEPTION WHEN duplicate_object OR unique_violation THEN
                        NULL; -- another database's migration created it at the same moment
                    END;
                END IF;
                IF NOT pg_has_role(current_user, 'tally_operator', 'USAGE') THEN
                    BEGIN
                        EXECUTE format('GRANT tally_operator TO %I', current_user);
                    EXCEPTION WHEN unique_violation OR duplicate_object THEN
                        NULL;
                    END;
                END IF;
            END;
            $do$;

            CREATE FUNCTION tally_is_operator() RETURNS boolean LANGUAGE sql STABLE
                AS $$ SELECT pg_has_role('tally_operator', 'USAGE') $$;
            CREATE FUNCTION tally_session_tenant() RETURNS uuid LANGUAGE sql STABLE
                AS $$ SELECT nullif(current_setting('tally.tenant_id', true), '')::uuid $$;

            -- Every tenant_isolation and operator_only policy of this schema, rewritten to the role.
            DO $do$
            DECLARE
                p record;
                tenant_rule text := '(SELECT tally_is_operator()) OR tenant_id = (SELECT tally_session_tenant())';
            BEGIN
                FOR p IN SELECT tablename, policyname FROM pg_policies
                         WHERE schemaname = current_schema() AND policyname IN ('tenant_isolation', 'operator_only')
                LOOP
                    EXECUTE format('DROP POLICY %I ON %I', p.policyname, p.tablename);
                    IF p.policyname = 'operator_only' THEN
                        EXECUTE format('CREATE POLICY operator_only ON %I USING ((SELECT tally_is_operator())) '
                            || 'WITH CHECK ((SELECT tally_is_operator()))', p.tablename);
                    ELSIF p.tablename = 'flow_limits' THEN
                        -- Tenants also see the defaults their keys inherit.
                        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (%s OR tenant_id IN '
                            || '(''00000000-0000-0000-0000-000000000000'', ''ffffffff-ffff-ffff-ffff-ffffffffffff'')) '
                            || 'WITH CHECK ((SELECT tally_is_operator()))', p.tablename, tenant_rule);
                    ELSE
                        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (%s) WITH CHECK (%s)',
                            p.tablename, tenant_rule, tenant_rule);
                    END IF;
                END LOOP;
            END;
            $do$;

            ALTER TABLE events ENABLE ROW LEVEL SECURITY;
            ALTER TABLE events FORCE ROW LEVEL SECURITY;
            CREATE POLICY tenant_isolation ON events
                USING ((SELECT tally_is_operator()) OR tenant_id = (SELECT tally_session_tenant()))
                WITH CHECK ((SELECT tally_is_operator()) OR tenant_id = (SELECT tally_session_tenant()));
            ALTER TABLE streams ENABLE ROW LEVEL SECURITY;
            ALTER TABLE streams FORCE ROW LEVEL SECURITY;
            CREATE POLICY tenant_isolation ON streams
                USING ((SELECT tally_is_operator()) OR tenant_id = (SELECT tally_session_tenant()))
                WITH CHECK ((SELECT tally_is_operator()) OR tenant_id = (SELECT tally_session_tenant()));

            -- tally_app reads; of all writes it keeps only the idempotency records of its own tenant.
            DO $do$
            DECLARE
                t record;
            BEGIN
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tally_app') THEN
                    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() LOOP
                        EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON %I FROM tally_app', t.tablename);
                    END LOOP;
                    GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO tally_app;
                END IF;
            END;
            $do$;
            """#)
}
