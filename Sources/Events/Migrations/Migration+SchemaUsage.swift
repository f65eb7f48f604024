extension Migration {
    /// Tally's objects live in a schema of their own (`TALLY_SCHEMA`, `tally` by default) instead of `public`:
    /// the group roles get USAGE on it (a role without it sees none of the tables it was granted). The schema
    /// is the one the migration runs in, `current_schema()`, so the text is the same for every schema.
    static let schemaUsage = Migration(
        version: 10, name: "schema_usage",
        sql: #"""
            DO $do$
            DECLARE
                r text;
            BEGIN
                FOREACH r IN ARRAY ARRAY['tally_app', 'tally_operator', 'tally_keys'] LOOP
                    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
                        EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), r);
                    END IF;
                END LOOP;
            END;
            $do$;
            """#)
}
