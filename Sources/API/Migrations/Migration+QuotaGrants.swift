import Events

extension Migration {
    /// Monthly quotas shared by every instance: a row per tenant, billing period and meter (`api_calls`,
    /// `runs`) holding how much of the quota instances have taken. `claim_quota` hands out chunks under the
    /// row's lock and never lets the total pass the quota it is given, so across all instances a tenant is
    /// admitted at most its quota in a period, whatever their number. `return_quota` gives back what an
    /// instance took and did not spend (when the tenant goes idle there, and at shutdown); what an instance
    /// that died held stays taken, so the tenant may be refused that much before its quota, never admitted
    /// more. A row starts at what `usage_counters` already counted (`used`), and is never below it.
    static let quotaGrants = Migration(
        version: 14, name: "quota_grants",
        sql: #"""
            CREATE TABLE quota_grants (
                tenant_id uuid NOT NULL,
                period text NOT NULL,
                meter text NOT NULL CHECK (meter IN ('api_calls', 'runs')),
                granted bigint NOT NULL CHECK (granted >= 0),
                PRIMARY KEY (tenant_id, period, meter)
            );

            -- Grants min(want, quota - granted) of the tenant's period, counting from at least `used`; returns
            -- what it gave and the period's total taken now.
            CREATE FUNCTION claim_quota(p_tenant uuid, p_period text, p_meter text, p_want bigint, p_quota bigint,
                                        p_used bigint)
            RETURNS TABLE (given bigint, taken bigint)
            LANGUAGE plpgsql AS $fn$
            DECLARE
                have bigint;
            BEGIN
                INSERT INTO quota_grants AS g (tenant_id, period, meter, granted)
                VALUES (p_tenant, p_period, p_meter, greatest(p_used, 0))
                ON CONFLICT ON CONSTRAINT quota_grants_pkey DO NOTHING;
                SELECT greatest(g.granted, p_used) INTO have FROM quota_grants g
                WHERE g.tenant_id = p_tenant AND g.period = p_period AND g.meter = p_meter FOR UPDATE;
                given := least(greatest(p_want, 0), greatest(p_quota - have, 0));
                taken := have + given;
                UPDATE quota_grants g SET granted = taken
                WHERE g.tenant_id = p_tenant AND g.period = p_period AND g.meter = p_meter AND g.granted <> taken;
                RETURN NEXT;
            END;
            $fn$;

            -- Gives back what an instance took and did not spend.
            CREATE FUNCTION return_quota(p_tenant uuid, p_period text, p_meter text, p_amount bigint)
            RETURNS void
            LANGUAGE sql AS $fn$
                UPDATE quota_grants SET granted = greatest(granted - greatest(p_amount, 0), 0)
                WHERE tenant_id = p_tenant AND period = p_period AND meter = p_meter;
            $fn$;

            ALTER TABLE quota_grants ENABLE ROW LEVEL SECURITY;
            ALTER TABLE quota_grants FORCE ROW LEVEL SECURITY;
            CREATE POLICY tenant_isolation ON quota_grants
                USING ((SELECT tally_is_operator()) OR tenant_id = (SELECT tally_session_tenant()))
                WITH CHECK ((SELECT tally_is_operator()) OR tenant_id = (SELECT tally_session_tenant()));
            GRANT SELECT, INSERT, UPDATE, DELETE ON quota_grants TO tally_service;
            GRANT SELECT ON quota_grants TO tally_app;
            """#)
}
