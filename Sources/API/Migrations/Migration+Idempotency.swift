import Events

extension Migration {
    /// The API's Idempotency-Key records: a small mutable table outside the log (a stored response is not a
    /// fact about the domain, and it expires). Rows are scoped by tenant and protected by row-level security
    /// like the projections.
    static let idempotency = Migration(
        version: 3, name: "idempotency_keys",
        sql: #"""
            CREATE TABLE idempotency_keys (
                tenant_id uuid NOT NULL,
                key text NOT NULL,
                method text NOT NULL,
                path text NOT NULL,
                fingerprint text NOT NULL,
                state text NOT NULL CHECK (state IN ('in_flight', 'complete')),
                status integer,
                headers jsonb,
                body bytea,
                locked_until timestamptz NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                expires_at timestamptz NOT NULL,
                PRIMARY KEY (tenant_id, key)
            );
            CREATE INDEX idempotency_keys_expiry_idx ON idempotency_keys (expires_at);
            ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
            ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
            CREATE POLICY tenant_isolation ON idempotency_keys
                USING (current_setting('tally.operator', true) = 'on'
                    OR tenant_id = nullif(current_setting('tally.tenant_id', true), '')::uuid);

            DO $do$
            BEGIN
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tally_app') THEN
                    GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO tally_app;
                END IF;
            END;
            $do$;
            """#)
}
