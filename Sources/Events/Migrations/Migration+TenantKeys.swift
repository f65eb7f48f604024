extension Migration {
    /// The tenants' data keys, each wrapped under the master key (which is never in the database): a small
    /// mutable table outside the log, so that erasing a tenant can destroy its key, and with it every sealed
    /// byte of the tenant in the log, its replicas and backups. `tally_app`, the role tenant-scoped
    /// transactions run as, gets nothing here; the service's login role reaches the table through
    /// `tally_keys` (docs/operations.md).
    static let tenantKeys = Migration(
        version: 5, name: "tenant_keys",
        sql: #"""
            CREATE TABLE tenant_keys (
                tenant_id uuid NOT NULL,
                key_version integer NOT NULL CHECK (key_version > 0),
                -- Nonce and XChaCha20-Poly1305 ciphertext of the 32-byte data key; tenant and key version are
                -- the associated data. Overwritten with zeros when the tenant is erased.
                wrapped bytea NOT NULL,
                -- A short keyed fingerprint of the master key that wrapped it (never the key).
                master_key_id text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                destroyed_at timestamptz,
                PRIMARY KEY (tenant_id, key_version)
            );

            DO $do$
            BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tally_keys')
                   AND (SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user) THEN
                    BEGIN
                        CREATE ROLE tally_keys NOLOGIN;
                    EXCEPTION WHEN duplicate_object OR unique_violation THEN
                        NULL; -- another database's migration created it at the same moment
                    END;
                END IF;
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tally_keys') THEN
                    GRANT SELECT, INSERT, UPDATE ON tenant_keys TO tally_keys;
                END IF;
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tally_app') THEN
                    REVOKE ALL ON tenant_keys FROM tally_app;
                END IF;
            END;
            $do$;
            """#)
}
