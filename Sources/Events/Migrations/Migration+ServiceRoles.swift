extension Migration {
    /// The roles a least-privilege deployment runs with (docs/operations.md, "Database roles"):
    ///
    /// - `tally_service` (NOLOGIN): what `tally serve` and `tally work` do and nothing more. It appends to the
    ///   log (the triggers refuse any change to it, for every role), writes the read models, checkpoints,
    ///   leases, queues and idempotency records, and is a member of `tally_app` (tenant transactions `SET
    ///   ROLE` to it), `tally_operator` (the operator's scope) and `tally_keys` (the wrapped tenant keys). It
    ///   owns nothing, so it cannot change the schema; tables the owner creates later in the schema (the
    ///   projections', a rebuild's) are granted to it by default privileges. The service logs in as any plain
    ///   role that is a member of it.
    /// - `tally_reporting` (NOLOGIN): reads the read models and billing of every tenant (each reportable
    ///   projection table grants it SELECT and a policy of its own), and nothing else: not the log, not
    ///   `tenant_keys`, not the key hashes or vendor secrets' read models.
    ///
    /// The schema is the one the migration runs in, `current_schema()`.
    static let serviceRoles = Migration(
        version: 12, name: "service_roles",
        sql: #"""
            DO $do$
            DECLARE
                s text := current_schema();
                r text;
            BEGIN
                FOREACH r IN ARRAY ARRAY['tally_service', 'tally_reporting'] LOOP
                    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
                        IF NOT (SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user) THEN
                            RAISE EXCEPTION 'the role % does not exist and % may not create roles', r, current_user
                                USING HINT = 'As an administrator: CREATE ROLE tally_service NOLOGIN; CREATE ROLE '
                                    || 'tally_reporting NOLOGIN; GRANT tally_app, tally_operator, tally_keys TO '
                                    || 'tally_service; then run tally migrate again (docs/operations.md).';
                        END IF;
                        BEGIN
                            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
                        EXCEPTION WHEN duplicate_object OR unique_violation THEN
                            NULL; -- another database's migration created it at the same moment
                        END;
                    END IF;
                END LOOP;
                IF NOT pg_has_role('tally_service', 'tally_app', 'MEMBER')
                   OR NOT pg_has_role('tally_service', 'tally_operator', 'MEMBER')
                   OR NOT pg_has_role('tally_service', 'tally_keys', 'MEMBER') THEN
                    BEGIN
                        GRANT tally_app, tally_operator, tally_keys TO tally_service;
                    EXCEPTION WHEN unique_violation OR duplicate_object THEN
                        NULL;
                    END;
                END IF;

                EXECUTE format('GRANT USAGE ON SCHEMA %I TO tally_service, tally_reporting', s);
                EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO tally_service', s);
                EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA %I TO tally_service', s);
                -- The log is appended to; schema_migrations is the owner's; tenant_keys comes with tally_keys.
                REVOKE UPDATE, DELETE ON events FROM tally_service;
                REVOKE DELETE ON streams FROM tally_service;
                REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM tally_service;
                REVOKE ALL ON tenant_keys FROM tally_service;
                -- What the owner creates here later: the projections' tables, a rebuild's.
                EXECUTE format(
                    'ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO tally_service', s);
                EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I_rebuild GRANT SELECT, INSERT, UPDATE, DELETE '
                               || 'ON TABLES TO tally_service', s);
            END;
            $do$;
            """#)
}
