extension Migration {
    /// The feed's guarantees, enforced by the database (docs/architecture.md, "The commit-order feed"):
    ///
    /// - every stream remembers the transaction of its last append (`streams.last_tx`), and an append from an
    ///   older transaction is refused with SQLSTATE 40001, so no event sorts in the feed before an earlier
    ///   version of its own stream;
    /// - `tally_feed_horizon()`: the feed's horizon, held back only by transactions that may append to this log
    ///   (in this database, by a role that may insert into `events`);
    /// - `feed_order_inversions`: the streams whose order an earlier Tally already broke, found once here;
    /// - `parked_streams`: streams a reader could not apply, kept aside while the reader goes on with the others;
    /// - `work_claim` no longer claims a step whose run stream a newer transaction appended to.
    static let feedOrder = Migration(
        version: 7, name: "feed_order",
        sql: #"""
            ALTER TABLE streams ADD COLUMN last_tx xid8 NOT NULL DEFAULT '0';
            UPDATE streams s SET last_tx = e.tx
            FROM (SELECT stream_id, max(tx_id) AS tx FROM events GROUP BY stream_id) e
            WHERE e.stream_id = s.stream_id;

            -- Every append advances its stream's row, so this trigger sees every append. A transaction's id is
            -- taken at its first write, not at its commit: a transaction that took its id, then (READ COMMITTED)
            -- saw and appended after a newer transaction's append, would sort before it in the feed. Such an
            -- append is refused as a serialization failure, which the writer retries in a new transaction.
            CREATE FUNCTION tally_stream_order() RETURNS trigger LANGUAGE plpgsql AS $fn$
            DECLARE
                mine xid8 := pg_current_xact_id();
            BEGIN
                IF TG_OP = 'UPDATE' AND OLD.last_tx > mine THEN
                    RAISE EXCEPTION 'stream % was appended to by a newer transaction', OLD.stream_id
                        USING ERRCODE = '40001', DETAIL = 'tally.stream_order|' || OLD.stream_id,
                              HINT = 'Retry the whole transaction: a new transaction sorts after that append.';
                END IF;
                NEW.last_tx := mine;
                RETURN NEW;
            END;
            $fn$;
            CREATE TRIGGER streams_order BEFORE INSERT OR UPDATE ON streams
                FOR EACH ROW EXECUTE FUNCTION tally_stream_order();

            -- Events that sort in the feed before the previous version of their own stream, written before the
            -- trigger above existed (a stream is in order exactly when each version sorts after the one before).
            -- Readers park such a stream and apply it in version order.
            CREATE TABLE feed_order_inversions (
                stream_id text NOT NULL,
                stream_version bigint NOT NULL,
                global_position bigint NOT NULL,
                PRIMARY KEY (stream_id, stream_version)
            );
            INSERT INTO feed_order_inversions (stream_id, stream_version, global_position)
            SELECT stream_id, stream_version, global_position FROM (
                SELECT stream_id, stream_version, global_position, tx_id,
                       lag(tx_id) OVER w AS before_tx, lag(global_position) OVER w AS before_position
                FROM events
                WINDOW w AS (PARTITION BY stream_id ORDER BY stream_version)
            ) ordered
            WHERE (before_tx, before_position) > (tx_id, global_position);

            -- The feed's horizon: every event with a transaction id below it is committed or will never exist.
            -- pg_snapshot_xmin is the oldest running transaction of the whole cluster; this only counts running
            -- transactions that may append here: not those of other databases, nor those of roles that cannot
            -- insert into `events`. It looks at the backends first and takes its snapshot after, so a transaction
            -- it cannot place began after that look (newer than every event committed before the call) or is
            -- one pg_stat_activity does not show (a prepared transaction): both count, so the answer errs only
            -- towards waiting. VOLATILE: each query takes a snapshot of its own; call it in a statement of its own
            -- and read with the result in a later one (docs/architecture.md has the argument).
            CREATE FUNCTION tally_feed_horizon() RETURNS xid8 LANGUAGE plpgsql VOLATILE AS $fn$
            DECLARE
                s pg_snapshot := pg_current_snapshot();
                here oid;
                appenders oid[];
                placed bigint[];
                holder xid8;
            BEGIN
                IF pg_snapshot_xmin(s) = pg_snapshot_xmax(s) THEN
                    RETURN pg_snapshot_xmax(s);
                END IF;
                -- Nothing committed waits behind the oldest running transaction: it cannot hold anything back.
                -- (max() is one probe at the end of the feed index; EXISTS with a variable bound may scan.)
                IF coalesce((SELECT max(tx_id) FROM events) < pg_snapshot_xmin(s), true) THEN
                    RETURN pg_snapshot_xmin(s);
                END IF;
                SELECT oid INTO here FROM pg_database WHERE datname = current_database();
                SELECT array_agg(oid) INTO appenders FROM pg_roles WHERE has_table_privilege(oid, 'events', 'INSERT');
                -- The running transactions that cannot append here: pg_stat_get_activity shows every backend's
                -- database, role and transaction id to any role. A transaction id shared by several backends
                -- (a parallel query) is placed only when none of them may append.
                SELECT coalesce(array_agg(x), '{}') INTO placed FROM (
                    SELECT a.backend_xid::text::bigint AS x
                    FROM pg_stat_get_activity(NULL) AS a
                    WHERE a.backend_xid IS NOT NULL
                    GROUP BY a.backend_xid
                    HAVING bool_and(CASE
                        WHEN a.datid IS DISTINCT FROM here OR a.usesysid IS NULL THEN true
                        ELSE NOT EXISTS (SELECT 1 FROM unnest(appenders) AS r WHERE pg_has_role(a.usesysid, r, 'MEMBER'))
                    END)
                ) others;
                s := pg_current_snapshot();
                SELECT min(x) INTO holder FROM pg_snapshot_xip(s) AS x WHERE (x::text::bigint % 4294967296) <> ALL (placed);
                RETURN least(pg_snapshot_xmax(s), holder);
            END;
            $fn$;

            -- Streams a reader could not apply: the first event it failed on, and why. Until the stream is retried
            -- (tally projections retry), the reader holds every later event of it and goes on with the others.
            CREATE TABLE parked_streams (
                reader text NOT NULL,
                stream_id text NOT NULL,
                tenant_id uuid,
                tx_id xid8 NOT NULL,
                global_position bigint NOT NULL,
                stream_version bigint NOT NULL,
                event_type text NOT NULL,
                -- The lowest version a retry applies from: the failed event's, or a held one's that sorts before it.
                from_version bigint NOT NULL,
                error text NOT NULL,
                held_events bigint NOT NULL DEFAULT 0,
                attempts integer NOT NULL DEFAULT 0,
                retry_requested_at timestamptz,
                parked_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (reader, stream_id)
            );
            CREATE INDEX parked_streams_tenant_idx ON parked_streams (tenant_id);
            ALTER TABLE parked_streams ENABLE ROW LEVEL SECURITY;
            ALTER TABLE parked_streams FORCE ROW LEVEL SECURITY;
            CREATE POLICY tenant_isolation ON parked_streams
                USING (current_setting('tally.operator', true) = 'on'
                    OR tenant_id = nullif(current_setting('tally.tenant_id', true), '')::uuid);

            DO $do$
            BEGIN
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tally_app') THEN
                    GRANT SELECT ON feed_order_inversions TO tally_app;
                    GRANT SELECT, INSERT, UPDATE, DELETE ON parked_streams TO tally_app;
                END IF;
            END;
            $do$;

            -- As in migration 6, and a step is not claimed while its run stream's last append is newer than this
            -- transaction: appending its StepStarted would be refused (tally_stream_order). The next claim, in a
            -- newer transaction, takes it.
            CREATE OR REPLACE FUNCTION work_claim(p_worker text, p_slots integer, p_lease_ms integer)
            RETURNS TABLE (
                run_id uuid, tenant_id uuid, step integer, attempt integer, kind text, vendor text,
                fencing_token bigint, stream_version bigint, definition jsonb, input jsonb, email text,
                transient_failures integer, fingerprint text, secret_version integer, tenant_key_version integer,
                sealed bytea)
            LANGUAGE plpgsql AS $fn$
            #variable_conflict use_column
            DECLARE
                k record;
                lim record;
                v_now timestamptz;
                v_left integer := p_slots;
                v_cap integer;
                v_count integer;
                v_xid xid8 := pg_current_xact_id();
                i integer;
            BEGIN
                UPDATE work_queue SET state = CASE WHEN cancelled THEN 'done' ELSE 'waiting' END,
                       lease_owner = NULL, lease_until = NULL,
                       leased_fingerprint = NULL, updated_at = clock_timestamp()
                WHERE state = 'leased' AND lease_until < clock_timestamp();

                FOR k IN
                    SELECT vk.tenant_id, vk.vendor, vk.fingerprint, vk.secret_version, vk.tenant_key_version, vk.sealed
                    FROM work_vendor_keys vk
                    LEFT JOIN flow_keys fk
                      ON fk.vendor = vk.vendor AND fk.tenant_id = vk.tenant_id AND fk.fingerprint = vk.fingerprint
                    WHERE vk.fingerprint IS NOT NULL AND vk.suspended_reason IS NULL
                      AND (fk.paused_until IS NULL OR fk.paused_until <= clock_timestamp())
                      AND EXISTS (
                          SELECT 1 FROM work_queue q
                          WHERE q.tenant_id = vk.tenant_id AND q.vendor = vk.vendor AND q.state = 'waiting'
                            AND q.not_before <= clock_timestamp())
                    ORDER BY fk.last_claim_at ASC NULLS FIRST, vk.tenant_id, vk.vendor
                    LIMIT 256
                LOOP
                    EXIT WHEN v_left <= 0;
                    IF NOT EXISTS (SELECT 1 FROM flow_keys fk
                                   WHERE fk.vendor = k.vendor AND fk.tenant_id = k.tenant_id AND fk.fingerprint = k.fingerprint) THEN
                        INSERT INTO flow_keys (vendor, tenant_id, fingerprint) VALUES (k.vendor, k.tenant_id, k.fingerprint)
                        ON CONFLICT DO NOTHING;
                    END IF;
                    PERFORM 1 FROM flow_keys fk
                    WHERE fk.vendor = k.vendor AND fk.tenant_id = k.tenant_id AND fk.fingerprint = k.fingerprint
                      AND (fk.paused_until IS NULL OR fk.paused_until <= clock_timestamp())
                    FOR UPDATE SKIP LOCKED;
                    CONTINUE WHEN NOT FOUND;
                    v_now := clock_timestamp();
                    SELECT * INTO lim FROM flow_limits_for(k.vendor, k.tenant_id);
                    SELECT count(*) INTO v_count FROM work_queue q
                    WHERE q.state = 'leased' AND q.tenant_id = k.tenant_id AND q.vendor = k.vendor
                      AND q.leased_fingerprint = k.fingerprint;
                    v_cap := least(v_left, lim.parallelism - v_count);
                    FOR i IN 1 .. coalesce(cardinality(lim.window_limits), 0) LOOP
                        SELECT count(*) INTO v_count FROM flow_starts s
                        WHERE s.vendor = k.vendor AND s.tenant_id = k.tenant_id AND s.fingerprint = k.fingerprint
                          AND s.started_at > v_now - make_interval(secs => lim.window_seconds[i]);
                        v_cap := least(v_cap, lim.window_limits[i] - v_count);
                    END LOOP;
                    CONTINUE WHEN v_cap <= 0;
                    RETURN QUERY
                    WITH picked AS (
                        SELECT q.run_id FROM work_queue q
                        WHERE q.tenant_id = k.tenant_id AND q.vendor = k.vendor AND q.state = 'waiting'
                          AND q.not_before <= v_now
                          AND NOT EXISTS (SELECT 1 FROM streams st
                                          WHERE st.stream_id = 'run-' || q.run_id::text AND st.last_tx > v_xid)
                        ORDER BY q.waiting_since, q.run_id
                        LIMIT v_cap
                        FOR UPDATE OF q SKIP LOCKED
                    ), leased AS (
                        UPDATE work_queue q
                        SET state = 'leased', fencing_token = q.fencing_token + 1, lease_owner = p_worker,
                            lease_until = v_now + make_interval(secs => p_lease_ms / 1000.0),
                            leased_fingerprint = k.fingerprint, updated_at = v_now
                        FROM picked WHERE q.run_id = picked.run_id
                        RETURNING q.run_id, q.tenant_id, q.step, q.attempt, q.kind, q.vendor, q.fencing_token,
                                  q.stream_version, q.definition, q.input, q.email, q.transient_failures
                    ), started AS (
                        INSERT INTO flow_starts (vendor, tenant_id, fingerprint, started_at, run_id, step, attempt, worker)
                        SELECT k.vendor, k.tenant_id, k.fingerprint, v_now, l.run_id, l.step, l.attempt, p_worker
                        FROM leased l
                    )
                    SELECT l.run_id, l.tenant_id, l.step, l.attempt, l.kind, l.vendor, l.fencing_token, l.stream_version,
                           l.definition, l.input, l.email, l.transient_failures, k.fingerprint, k.secret_version,
                           k.tenant_key_version, k.sealed
                    FROM leased l;
                    GET DIAGNOSTICS v_count = ROW_COUNT;
                    IF v_count > 0 THEN
                        v_left := v_left - v_count;
                        UPDATE flow_keys fk SET last_claim_at = v_now
                        WHERE fk.vendor = k.vendor AND fk.tenant_id = k.tenant_id AND fk.fingerprint = k.fingerprint;
                    END IF;
                END LOOP;
            END;
            $fn$;
            REVOKE ALL ON FUNCTION work_claim(text, integer, integer) FROM PUBLIC;
            """#)
}
