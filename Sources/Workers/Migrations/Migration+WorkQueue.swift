public import Events

extension Migration {
    /// The workers' operational state, outside the log and derived from it where it can be: the run queue (one
    /// row per run, with the lease and fencing token of the step in flight), the current vendor key of each
    /// tenant and vendor, flow limits, flow keys (pauses, fairness), the starts that rate windows count, and the
    /// dispatcher's feed checkpoint. Claiming is one function, `work_claim`, so that a claim is one round trip
    /// and every rule of flow control is checked under the flow key's row lock (docs/architecture.md, Workers).
    static let workQueue = Migration(
        version: 6, name: "workers",
        sql: #"""
            CREATE TABLE work_queue (
                run_id uuid PRIMARY KEY,
                tenant_id uuid NOT NULL,
                -- new: started, first step not scheduled yet; waiting: due from not_before; leased: a worker holds
                -- the step until lease_until; done: finished or cancelled.
                state text NOT NULL CHECK (state IN ('new', 'waiting', 'leased', 'done')),
                definition jsonb NOT NULL,
                input jsonb NOT NULL,
                step integer NOT NULL DEFAULT 0,
                attempt integer NOT NULL DEFAULT 0,
                kind text NOT NULL DEFAULT '',
                vendor text NOT NULL DEFAULT '',
                not_before timestamptz NOT NULL DEFAULT '-infinity',
                -- Transient failures of the current step (key-fatal ones do not count).
                transient_failures integer NOT NULL DEFAULT 0,
                -- The address an earlier step found, for validation.
                email text,
                -- The run stream's version this row reflects; events at or below it change nothing here.
                stream_version bigint NOT NULL,
                -- The run was cancelled while its step was in flight: the step's outcome is still recorded (the
                -- vendor may have billed it), but nothing follows it.
                cancelled boolean NOT NULL DEFAULT false,
                -- Raised by every claim; a commit carrying an older token is refused.
                fencing_token bigint NOT NULL DEFAULT 0,
                lease_owner text,
                lease_until timestamptz,
                leased_fingerprint text,
                -- When the step began to wait: first come, first served within a flow key.
                waiting_since timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX work_queue_waiting_idx ON work_queue (tenant_id, vendor, waiting_since, run_id) WHERE state = 'waiting';
            CREATE INDEX work_queue_leased_idx ON work_queue (tenant_id, vendor, leased_fingerprint) WHERE state = 'leased';
            CREATE INDEX work_queue_expiry_idx ON work_queue (lease_until) WHERE state = 'leased';

            -- Each tenant's current key per vendor, from the vendor secret streams (sealed: the workers open it
            -- with the tenant's data key only for the length of a call).
            CREATE TABLE work_vendor_keys (
                tenant_id uuid NOT NULL,
                vendor text NOT NULL,
                secret_version integer NOT NULL,
                tenant_key_version integer,
                sealed bytea,
                fingerprint text,
                suspended_reason text,
                suspended_at timestamptz,
                stream_version bigint NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, vendor)
            );

            -- Flow limits: built in (tenant ffffffff-…), the vendor's default (tenant 00000000-…), or one tenant's
            -- override. NULL inherits from the level above; an empty window list means no rate limit.
            CREATE TABLE flow_limits (
                vendor text NOT NULL,
                tenant_id uuid NOT NULL,
                window_limits integer[],
                window_seconds integer[],
                parallelism integer CHECK (parallelism > 0),
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (vendor, tenant_id),
                CHECK ((window_limits IS NULL) = (window_seconds IS NULL)),
                CHECK (coalesce(cardinality(window_limits), 0) = coalesce(cardinality(window_seconds), 0))
            );
            INSERT INTO flow_limits (vendor, tenant_id, window_limits, window_seconds, parallelism) VALUES
                ('prospeo', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '{10,300}', '{1,60}', 10),
                ('findymail', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '{}', '{}', 300),
                ('zerobounce', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '{20}', '{1}', 50);

            -- One row per vendor:tenant:fingerprint that was ever claimed from.
            CREATE TABLE flow_keys (
                vendor text NOT NULL,
                tenant_id uuid NOT NULL,
                fingerprint text NOT NULL,
                paused_until timestamptz,
                pause_reason text,
                last_claim_at timestamptz,
                PRIMARY KEY (vendor, tenant_id, fingerprint)
            );

            -- Every start, for the sliding rate windows (pruned past the longest window by the workers).
            CREATE TABLE flow_starts (
                vendor text NOT NULL,
                tenant_id uuid NOT NULL,
                fingerprint text NOT NULL,
                started_at timestamptz NOT NULL,
                run_id uuid NOT NULL,
                step integer NOT NULL,
                attempt integer NOT NULL,
                worker text NOT NULL
            );
            CREATE INDEX flow_starts_key_idx ON flow_starts (vendor, tenant_id, fingerprint, started_at);
            CREATE INDEX flow_starts_age_idx ON flow_starts (started_at);

            CREATE TABLE worker_checkpoints (
                name text PRIMARY KEY,
                tx_id xid8 NOT NULL DEFAULT '0',
                global_position bigint NOT NULL DEFAULT 0,
                updated_at timestamptz NOT NULL DEFAULT now()
            );

            -- The limits in force for a tenant's key of a vendor.
            CREATE FUNCTION flow_limits_for(p_vendor text, p_tenant uuid)
            RETURNS TABLE (window_limits integer[], window_seconds integer[], parallelism integer)
            LANGUAGE sql STABLE AS $fn$
                SELECT coalesce(t.window_limits, d.window_limits, b.window_limits),
                       coalesce(t.window_seconds, d.window_seconds, b.window_seconds),
                       coalesce(t.parallelism, d.parallelism, b.parallelism, 1)
                FROM (SELECT 1) AS one
                LEFT JOIN flow_limits b ON b.vendor = p_vendor AND b.tenant_id = 'ffffffff-ffff-ffff-ffff-ffffffffffff'
                LEFT JOIN flow_limits d ON d.vendor = p_vendor AND d.tenant_id = '00000000-0000-0000-0000-000000000000'
                LEFT JOIN flow_limits t ON t.vendor = p_vendor AND t.tenant_id = p_tenant
            $fn$;

            -- Claims up to p_slots due steps for p_worker. Keys are served least recently claimed first (fair
            -- across tenants); each key is locked while its limits are checked (one claimer per key at a time,
            -- others skip it), so starts within every window and calls in flight never exceed its limits across
            -- all workers. Expired leases are rescued first. Returns the claimed steps with their new tokens.
            CREATE FUNCTION work_claim(p_worker text, p_slots integer, p_lease_ms integer)
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
                    -- The dispatcher creates the row with the key; this is the fallback. An INSERT that meets a
                    -- row another claimer has locked would wait for it (and two claimers could wait for each
                    -- other), so it only runs when the row is missing.
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
                        ORDER BY q.waiting_since, q.run_id
                        LIMIT v_cap
                        FOR UPDATE SKIP LOCKED
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

            -- What the flow-keys routes show: per tenant and vendor, the current key and its flow state.
            CREATE VIEW flow_key_status WITH (security_invoker = true) AS
            SELECT lanes.tenant_id, lanes.vendor, vk.fingerprint, vk.secret_version,
                   vk.suspended_reason, vk.suspended_at,
                   CASE WHEN fk.paused_until > now() THEN fk.paused_until END AS paused_until,
                   CASE WHEN fk.paused_until > now() THEN fk.pause_reason END AS pause_reason,
                   lim.parallelism, lim.window_limits, lim.window_seconds,
                   ARRAY(
                       SELECT (SELECT count(*) FROM flow_starts s
                               WHERE s.vendor = lanes.vendor AND s.tenant_id = lanes.tenant_id
                                 AND s.fingerprint = vk.fingerprint AND s.started_at > now() - make_interval(secs => w.seconds))::integer
                       FROM unnest(lim.window_seconds) WITH ORDINALITY AS w(seconds, n) ORDER BY w.n
                   ) AS window_used,
                   (SELECT count(*) FROM work_queue q
                    WHERE q.tenant_id = lanes.tenant_id AND q.vendor = lanes.vendor AND q.state = 'waiting')::integer AS waiting,
                   (SELECT count(*) FROM work_queue q
                    WHERE q.tenant_id = lanes.tenant_id AND q.vendor = lanes.vendor AND q.state = 'leased')::integer AS in_flight,
                   (SELECT min(q.waiting_since) FROM work_queue q
                    WHERE q.tenant_id = lanes.tenant_id AND q.vendor = lanes.vendor AND q.state = 'waiting') AS oldest_waiting_since
            FROM (
                SELECT tenant_id, vendor FROM work_vendor_keys
                UNION
                SELECT DISTINCT tenant_id, vendor FROM work_queue WHERE state IN ('waiting', 'leased')
            ) AS lanes
            LEFT JOIN work_vendor_keys vk ON vk.tenant_id = lanes.tenant_id AND vk.vendor = lanes.vendor
            LEFT JOIN flow_keys fk
              ON fk.vendor = lanes.vendor AND fk.tenant_id = lanes.tenant_id AND fk.fingerprint = vk.fingerprint
            CROSS JOIN LATERAL flow_limits_for(lanes.vendor, lanes.tenant_id) AS lim;

            ALTER TABLE work_queue ENABLE ROW LEVEL SECURITY;
            ALTER TABLE work_queue FORCE ROW LEVEL SECURITY;
            ALTER TABLE work_vendor_keys ENABLE ROW LEVEL SECURITY;
            ALTER TABLE work_vendor_keys FORCE ROW LEVEL SECURITY;
            ALTER TABLE flow_keys ENABLE ROW LEVEL SECURITY;
            ALTER TABLE flow_keys FORCE ROW LEVEL SECURITY;
            ALTER TABLE flow_starts ENABLE ROW LEVEL SECURITY;
            ALTER TABLE flow_starts FORCE ROW LEVEL SECURITY;
            ALTER TABLE flow_limits ENABLE ROW LEVEL SECURITY;
            ALTER TABLE flow_limits FORCE ROW LEVEL SECURITY;
            ALTER TABLE worker_checkpoints ENABLE ROW LEVEL SECURITY;
            ALTER TABLE worker_checkpoints FORCE ROW LEVEL SECURITY;
            CREATE POLICY tenant_isolation ON work_queue
                USING (current_setting('tally.operator', true) = 'on'
                    OR tenant_id = nullif(current_setting('tally.tenant_id', true), '')::uuid);
            CREATE POLICY tenant_isolation ON work_vendor_keys
                USING (current_setting('tally.operator', true) = 'on'
                    OR tenant_id = nullif(current_setting('tally.tenant_id', true), '')::uuid);
            CREATE POLICY tenant_isolation ON flow_keys
                USING (current_setting('tally.operator', true) = 'on'
                    OR tenant_id = nullif(current_setting('tally.tenant_id', true), '')::uuid);
            CREATE POLICY tenant_isolation ON flow_starts
                USING (current_setting('tally.operator', true) = 'on'
                    OR tenant_id = nullif(current_setting('tally.tenant_id', true), '')::uuid);
            -- Tenants also see the defaults their keys inherit.
            CREATE POLICY tenant_isolation ON flow_limits
                USING (current_setting('tally.operator', true) = 'on'
                    OR tenant_id = nullif(current_setting('tally.tenant_id', true), '')::uuid
                    OR tenant_id IN ('00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff'));
            CREATE POLICY operator_only ON worker_checkpoints
                USING (current_setting('tally.operator', true) = 'on');
            REVOKE ALL ON FUNCTION work_claim(text, integer, integer) FROM PUBLIC;

            DO $do$
            BEGIN
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tally_app') THEN
                    GRANT SELECT ON work_queue, work_vendor_keys, flow_keys, flow_starts, flow_limits, flow_key_status
                        TO tally_app;
                END IF;
            END;
            $do$;
            """#)
}

extension Migration {
    /// The migrations this module owns: the run queue and flow control.
    public static let workers: [Migration] = [workQueue]
}
