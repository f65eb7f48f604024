extension Migration {
    /// The log: `events`, `streams`, the append function, append-only triggers, the application role.
    static let eventLog = Migration(
        version: 1, name: "event_log",
        sql: #"""
            CREATE TABLE streams (
                stream_id text PRIMARY KEY,
                tenant_id uuid,
                version bigint NOT NULL CHECK (version > 0)
            );

            CREATE TABLE events (
                global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                tx_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
                tenant_id uuid,
                stream_id text NOT NULL,
                stream_version bigint NOT NULL CHECK (stream_version > 0),
                event_id uuid NOT NULL,
                event_type text NOT NULL,
                schema_version integer NOT NULL CHECK (schema_version > 0),
                codec smallint NOT NULL,
                payload bytea NOT NULL,
                metadata jsonb NOT NULL DEFAULT '{}',
                recorded_at timestamptz NOT NULL DEFAULT now(),
                CONSTRAINT events_event_id_key UNIQUE (event_id),
                CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
            );

            -- The commit-order feed reads (tx_id, global_position) ranges below the snapshot's xmin.
            CREATE INDEX events_feed_idx ON events (tx_id, global_position);

            -- Appends are single statements built by the store (AppendStatement.swift): a data-modifying CTE
            -- checks and advances each stream's version in `streams`, then inserts the events. A multi-stream
            -- append whose expectations do not all hold calls this function with the streams it could advance;
            -- it raises TL409 with DETAIL 'stream|actual' for the first other one, so that the whole statement,
            -- and every stream it already advanced, rolls back. VOLATILE: its query sees versions committed
            -- after the outer statement began.
            CREATE FUNCTION tally_append_conflict(p_streams text[], p_granted text[]) RETURNS bigint
            LANGUAGE plpgsql VOLATILE AS $fn$
            DECLARE
                failed text;
                actual bigint;
            BEGIN
                SELECT s INTO failed FROM unnest(p_streams) AS s WHERE s <> ALL (p_granted) LIMIT 1;
                SELECT version INTO actual FROM streams WHERE stream_id = failed;
                RAISE EXCEPTION 'stream % is not at the expected version', failed
                    USING ERRCODE = 'TL409', DETAIL = failed || '|' || coalesce(actual, 0);
            END;
            $fn$;

            -- The log only grows: no UPDATE, DELETE or TRUNCATE, whoever asks.
            CREATE FUNCTION tally_reject_log_change() RETURNS trigger LANGUAGE plpgsql AS $fn$
            BEGIN
                RAISE EXCEPTION 'the event log is append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
                    USING ERRCODE = 'TL405';
            END;
            $fn$;
            CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events
                FOR EACH ROW EXECUTE FUNCTION tally_reject_log_change();
            CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
                FOR EACH STATEMENT EXECUTE FUNCTION tally_reject_log_change();

            -- The application role needs no more than SELECT and INSERT on the log. It is created when the
            -- migrating role may create roles; otherwise an administrator creates it (docs/operations.md).
            DO $do$
            BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tally_app')
                   AND (SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user) THEN
                    BEGIN
                        CREATE ROLE tally_app NOLOGIN;
                    EXCEPTION WHEN duplicate_object OR unique_violation THEN
                        NULL; -- another database's migration created it at the same moment
                    END;
                END IF;
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tally_app') THEN
                    GRANT SELECT, INSERT ON events TO tally_app;
                    GRANT SELECT, INSERT, UPDATE ON streams TO tally_app;
                END IF;
            END;
            $do$;
            """#)
}
