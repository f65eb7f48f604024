extension Migration {
    /// The cluster this log's transaction ids belong to: `log_identity` records
    /// `pg_control_system().system_identifier` of the cluster the database was migrated in (NULL where a
    /// platform does not let roles read it). A database restored from a dump into another cluster carries the
    /// old value, so `serve` and `work` can tell (`EventStore.restoreProblems(readers:)`) and `tally log reanchor`
    /// records the new one once the log is known to be sound there.
    static let logIdentity = Migration(
        version: 9, name: "log_identity",
        sql: #"""
            CREATE TABLE log_identity (
                singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                system_identifier text,
                anchored_at timestamptz NOT NULL DEFAULT now()
            );
            DO $do$
            BEGIN
                INSERT INTO log_identity (system_identifier) SELECT system_identifier::text FROM pg_control_system();
            EXCEPTION WHEN insufficient_privilege THEN
                INSERT INTO log_identity (system_identifier) VALUES (NULL);
            END;
            $do$;
            GRANT SELECT, UPDATE ON log_identity TO tally_operator;
            """#)
}
