public import Events

extension Migration {
    /// Where each projection is in the feed, and why it stopped if it did. The projections' own tables are
    /// created by the projections (their shape belongs to a projection version, and a rebuild creates new ones).
    static let projectionCheckpoints = Migration(
        version: 2, name: "projection_checkpoints",
        sql: #"""
            CREATE TABLE projection_checkpoints (
                projection text PRIMARY KEY,
                version integer NOT NULL,
                tx_id xid8 NOT NULL DEFAULT '0',
                global_position bigint NOT NULL DEFAULT 0,
                events_applied bigint NOT NULL DEFAULT 0,
                status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'failed')),
                error text,
                error_position bigint,
                updated_at timestamptz NOT NULL DEFAULT now()
            );

            -- A rebuild in progress: where it is, so that it resumes after an interruption. Its tables live in
            -- the schema tally_rebuild until they are swapped in.
            CREATE TABLE projection_rebuilds (
                projection text PRIMARY KEY,
                version integer NOT NULL,
                tx_id xid8 NOT NULL DEFAULT '0',
                global_position bigint NOT NULL DEFAULT 0,
                events_applied bigint NOT NULL DEFAULT 0,
                started_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE SCHEMA tally_rebuild;

            DO $do$
            BEGIN
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tally_app') THEN
                    GRANT SELECT, INSERT, UPDATE ON projection_checkpoints TO tally_app;
                END IF;
            END;
            $do$;
            """#)
}

extension Migration {
    /// The migrations this module owns: the projections' checkpoints and rebuilds. The read models' own tables
    /// are created by their projections.
    public static let projections: [Migration] = [projectionCheckpoints]
}
