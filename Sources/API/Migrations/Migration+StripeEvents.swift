import Events

extension Migration {
    /// Every Stripe webhook event the API accepted, by Stripe's event id: the durable deduplication of
    /// deliveries (Stripe repeats them) and what each one did. A row is written in the transaction that
    /// appends the events it caused, so a delivery is applied exactly once or not at all. This is operator
    /// data, not a tenant's: row-level security shows it only to sessions with `tally.operator` set, and the
    /// application role may read and insert, never change or delete (it is an audit trail).
    static let stripeEvents = Migration(
        version: 4, name: "stripe_events",
        sql: #"""
            CREATE TABLE stripe_events (
                id text PRIMARY KEY,
                type text NOT NULL,
                stripe_created timestamptz NOT NULL,
                received_at timestamptz NOT NULL DEFAULT now(),
                outcome text NOT NULL,
                tenant_id uuid
            );
            -- The newest Stripe change considered for a tenant (last writer wins by Stripe's time).
            CREATE INDEX stripe_events_tenant_idx ON stripe_events (tenant_id, stripe_created) WHERE tenant_id IS NOT NULL;
            ALTER TABLE stripe_events ENABLE ROW LEVEL SECURITY;
            ALTER TABLE stripe_events FORCE ROW LEVEL SECURITY;
            CREATE POLICY operator_only ON stripe_events
                USING (current_setting('tally.operator', true) = 'on')
                WITH CHECK (current_setting('tally.operator', true) = 'on');

            DO $do$
            BEGIN
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tally_app') THEN
                    GRANT SELECT, INSERT ON stripe_events TO tally_app;
                END IF;
            END;
            $do$;
            """#)
}
