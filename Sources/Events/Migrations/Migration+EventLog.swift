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

            -- Appends events to one or more streams in the calling transaction. Expected versions: -1 any,
            -- 0 no stream, n exactly n. A stream not at its expected version raises TL409 with DETAIL
            -- 'stream|actual' before any event row is written. Event ids already in the log with the same
            -- content return the original rows (an idempotent retry); with other content raise TL422.
            CREATE FUNCTION tally_append(
                p_streams text[], p_tenants uuid[], p_expected bigint[],
                p_stream_index integer[], p_ids uuid[], p_types text[], p_schema_versions integer[],
                p_codecs smallint[], p_payloads bytea[], p_metadata jsonb[]
            ) RETURNS TABLE (stream_index integer, stream_version bigint, global_position bigint, tx_id xid8)
            LANGUAGE plpgsql AS $fn$
            #variable_conflict use_column
            DECLARE
                stream_count integer := cardinality(p_streams);
                counts integer[] := array_fill(0, ARRAY[cardinality(p_streams)]);
                bases bigint[] := array_fill(0::bigint, ARRAY[cardinality(p_streams)]);
                new_version bigint;
                actual bigint;
                matching integer;
                i integer;
            BEGIN
                IF EXISTS (SELECT 1 FROM events e WHERE e.event_id = ANY (p_ids)) THEN
                    SELECT count(*) INTO matching
                    FROM unnest(p_stream_index, p_ids, p_types, p_schema_versions, p_codecs, p_payloads)
                         AS x(si, id, t, sv, c, p)
                    JOIN events e ON e.event_id = x.id
                    WHERE e.stream_id = p_streams[x.si] AND e.event_type = x.t AND e.schema_version = x.sv
                      AND e.codec = x.c AND e.payload = x.p;
                    IF matching <> cardinality(p_ids) THEN
                        RAISE EXCEPTION 'these event ids were already appended with different content'
                            USING ERRCODE = 'TL422';
                    END IF;
                    RETURN QUERY
                        SELECT x.si, e.stream_version, e.global_position, e.tx_id
                        FROM unnest(p_stream_index, p_ids) WITH ORDINALITY AS x(si, id, ord)
                        JOIN events e ON e.event_id = x.id
                        ORDER BY x.ord;
                    RETURN;
                END IF;

                FOR i IN 1 .. cardinality(p_stream_index) LOOP
                    counts[p_stream_index[i]] := counts[p_stream_index[i]] + 1;
                END LOOP;

                FOR i IN 1 .. stream_count LOOP
                    new_version := NULL;
                    IF p_expected[i] = -1 THEN
                        INSERT INTO streams AS s (stream_id, tenant_id, version)
                        VALUES (p_streams[i], p_tenants[i], counts[i])
                        ON CONFLICT (stream_id) DO UPDATE SET version = s.version + counts[i]
                        RETURNING s.version INTO new_version;
                    ELSIF p_expected[i] = 0 THEN
                        INSERT INTO streams (stream_id, tenant_id, version)
                        VALUES (p_streams[i], p_tenants[i], counts[i])
                        ON CONFLICT (stream_id) DO NOTHING
                        RETURNING version INTO new_version;
                    ELSE
                        UPDATE streams SET version = version + counts[i]
                        WHERE stream_id = p_streams[i] AND version = p_expected[i]
                        RETURNING version INTO new_version;
                    END IF;
                    IF new_version IS NULL THEN
                        SELECT s.version INTO actual FROM streams s WHERE s.stream_id = p_streams[i];
                        RAISE EXCEPTION 'stream % is not at the expected version', p_streams[i]
                            USING ERRCODE = 'TL409', DETAIL = p_streams[i] || '|' || coalesce(actual, 0);
                    END IF;
                    bases[i] := new_version - counts[i];
                END LOOP;

                RETURN QUERY
                    WITH inserted AS (
                        INSERT INTO events (tenant_id, stream_id, stream_version, event_id, event_type,
                                            schema_version, codec, payload, metadata)
                        SELECT p_tenants[x.si], p_streams[x.si],
                               bases[x.si] + row_number() OVER (PARTITION BY x.si ORDER BY x.ord),
                               x.id, x.t, x.sv, x.c, x.p, x.m
                        FROM unnest(p_stream_index, p_ids, p_types, p_schema_versions, p_codecs, p_payloads,
                                    p_metadata) WITH ORDINALITY AS x(si, id, t, sv, c, p, m, ord)
                        ORDER BY x.ord
                        RETURNING events.stream_id, events.stream_version, events.global_position, events.tx_id
                    )
                    SELECT array_position(p_streams, i2.stream_id), i2.stream_version, i2.global_position, i2.tx_id
                    FROM inserted i2
                    ORDER BY i2.global_position;
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
                    GRANT EXECUTE ON FUNCTION tally_append(text[], uuid[], bigint[], integer[], uuid[], text[],
                        integer[], smallint[], bytea[], jsonb[]) TO tally_app;
                END IF;
            END;
            $do$;
            """#)
}
