package import Foundation

/// A vendor secret sealed for the log: what `VendorSecretSealed` carries besides its names.
package struct SealedSecret: Sendable, Hashable {
    /// Nonce and XChaCha20-Poly1305 ciphertext.
    package var sealed: [UInt8]
    /// Which of the tenant's data keys sealed it.
    package var tenantKeyVersion: Int
    /// 16 hex digits of HMAC-SHA-256 of the plaintext under a key derived from the tenant's data key.
    package var fingerprint: String
}

/// Envelope encryption of vendor secrets (docs/architecture.md, "Sealed secrets").
///
/// The master key wraps one random 32-byte data key per tenant, kept in `tenant_keys` (outside the log);
/// the data key seals the tenant's vendor secrets with XChaCha20-Poly1305, binding tenant, vendor and
/// secret version as associated data, so a blob moved to another tenant, vendor or version does not open.
/// Data keys are unwrapped for one call and wiped after it; nothing is cached, so an erasure holds on every
/// instance at once.
package struct SecretVault: Sendable {
    let pool: PostgresPool
    package let masterKey: MasterKey

    package init(pool: PostgresPool, masterKey: MasterKey) {
        self.pool = pool
        self.masterKey = masterKey
    }

    /// The longest plaintext `seal` accepts, in bytes.
    package static let maxPlaintextBytes = 4096

    // MARK: - Sealing and opening

    /// Seals `plaintext` with the tenant's current data key, creating that key the first time (two instances
    /// doing so at once end up with the same key). The caller wipes `plaintext` afterwards.
    package func seal(_ plaintext: [UInt8], tenant: UUID, vendor: Vendor, secretVersion: Int) async throws
        -> SealedSecret
    {
        guard plaintext.count <= Self.maxPlaintextBytes else {
            throw EventsError(.invalidArgument, "a vendor secret is at most \(Self.maxPlaintextBytes) bytes")
        }
        var (keyVersion, dataKey) = try await currentDataKey(tenant)
        defer { Sodium.memzero(&dataKey) }
        let sealed = plaintext.withUnsafeBytes {
            Sodium.seal($0, key: dataKey, associatedData: Self.secretAssociatedData(tenant, vendor, secretVersion))
        }
        return SealedSecret(
            sealed: sealed, tenantKeyVersion: keyVersion, fingerprint: Self.fingerprint(plaintext, dataKey: dataKey))
    }

    /// Opens a sealed secret for the length of `body`; the plaintext buffer is wiped when `body` returns or
    /// throws and must not escape it. Throws `tenantKeyDestroyed` after the tenant's erasure,
    /// `secretUnopenable` when the blob is not the one sealed for this tenant, vendor and version, and
    /// `masterKeyMismatch` when the tenant key is wrapped under another master key.
    package func withPlaintext<T>(
        _ sealed: [UInt8], tenant: UUID, vendor: Vendor, secretVersion: Int, tenantKeyVersion: Int,
        _ body: (UnsafeRawBufferPointer) async throws -> T
    ) async throws -> T {
        guard sealed.count >= Sodium.aeadOverheadBytes else { throw Self.unopenable }
        var dataKey = try await dataKey(tenant, version: tenantKeyVersion)
        defer { Sodium.memzero(&dataKey) }
        let plaintext = UnsafeMutableRawBufferPointer.allocate(
            byteCount: max(1, sealed.count - Sodium.aeadOverheadBytes), alignment: 1)
        let buffer = UnsafeMutableRawBufferPointer(rebasing: plaintext[0..<(sealed.count - Sodium.aeadOverheadBytes)])
        defer {
            Sodium.memzero(plaintext)
            plaintext.deallocate()
        }
        guard
            Sodium.open(
                sealed, key: dataKey, associatedData: Self.secretAssociatedData(tenant, vendor, secretVersion),
                into: buffer)
        else { throw Self.unopenable }
        return try await body(UnsafeRawBufferPointer(buffer))
    }

    /// `withPlaintext` for the secret an event carries.
    package func withPlaintext<T>(of event: VendorSecretSealed, _ body: (UnsafeRawBufferPointer) async throws -> T)
        async throws -> T
    {
        try await withPlaintext(
            Array(event.sealed), tenant: event.tenantID, vendor: event.vendor, secretVersion: event.secretVersion,
            tenantKeyVersion: event.tenantKeyVersion, body)
    }

    // MARK: - Erasure

    /// Crypto-shredding: overwrites the tenant's wrapped data keys and marks them destroyed, so nothing
    /// sealed for the tenant opens again, wherever its bytes are; no key is created for the tenant from then
    /// on. Needs no master key. Repeatable; returns how many keys this call destroyed.
    @discardableResult
    package static func destroyKeys(of tenant: UUID, pool: PostgresPool) async throws -> Int {
        // A destroyed placeholder first, so that a tenant erased before it ever sealed anything cannot get a
        // key later either.
        try await pool.withTransaction { connection in
            try await connection.query(
                """
                INSERT INTO tenant_keys (tenant_id, key_version, wrapped, master_key_id, destroyed_at)
                VALUES ($1, 1, '\\x'::bytea, '', now()) ON CONFLICT (tenant_id, key_version) DO NOTHING
                """, [.uuid(tenant)])
            return try await connection.query(
                """
                UPDATE tenant_keys SET wrapped = '\\x'::bytea, destroyed_at = now(), updated_at = now()
                WHERE tenant_id = $1 AND destroyed_at IS NULL RETURNING key_version
                """, [.uuid(tenant)]
            ).count
        }
    }

    // MARK: - Master-key rotation

    /// What a rotation did.
    package struct Rotation: Sendable, Hashable {
        /// Tenant keys now wrapped under the new master key that were under the old one.
        package var rewrapped = 0
        /// Tenant keys that were already under the new master key (an earlier, interrupted run).
        package var alreadyCurrent = 0
        /// Destroyed keys of erased tenants, left as they are.
        package var destroyed = 0
    }

    /// Re-wraps every tenant key under `newKey` in one transaction, checking that `oldKey` opens each first;
    /// the log is not touched. A key already under `newKey` is checked and skipped, so running it again is
    /// harmless. Throws, changing nothing, when a key is under neither master key or does not open.
    package static func rotateMasterKey(pool: PostgresPool, from oldKey: MasterKey, to newKey: MasterKey) async throws
        -> Rotation
    {
        guard oldKey.id != newKey.id else {
            throw EventsError(.invalidArgument, "the new master key is the current one")
        }
        return try await pool.withTransaction { connection in
            let rows = try await connection.query(
                """
                SELECT tenant_id, key_version, wrapped, master_key_id, destroyed_at IS NOT NULL FROM tenant_keys
                ORDER BY tenant_id, key_version FOR UPDATE
                """)
            var rotation = Rotation()
            for row in rows {
                let tenant = try row.uuid(0)
                let version = try row.int(1)
                guard try !row.bool(4) else {
                    rotation.destroyed += 1
                    continue
                }
                let wrapped = try row.bytes(2)
                switch try row.string(3) {
                case newKey.id:
                    var key = try unwrap(wrapped, tenant: tenant, version: version, masterKey: newKey)
                    Sodium.memzero(&key)
                    rotation.alreadyCurrent += 1
                case oldKey.id:
                    var key = try unwrap(wrapped, tenant: tenant, version: version, masterKey: oldKey)
                    defer { Sodium.memzero(&key) }
                    try await connection.query(
                        "UPDATE tenant_keys SET wrapped = $3, master_key_id = $4, updated_at = now() WHERE tenant_id = $1 AND key_version = $2",
                        [
                            .uuid(tenant), .int32(Int32(version)),
                            .bytes(wrap(key, tenant: tenant, version: version, masterKey: newKey)), .string(newKey.id),
                        ])
                    rotation.rewrapped += 1
                case let other:
                    throw EventsError(
                        .masterKeyMismatch,
                        "tenant \(tenant.lowercased) key \(version) is wrapped under master key \(other), neither \(oldKey.id) nor \(newKey.id); nothing was changed"
                    )
                }
            }
            return rotation
        }
    }

    // MARK: - Tenant data keys

    /// The tenant's newest data key, created on first use: a race between instances is settled by the
    /// primary key, and every racer then reads the one that won.
    private func currentDataKey(_ tenant: UUID) async throws -> (Int, [UInt8]) {
        let select = """
            SELECT key_version, wrapped, master_key_id, destroyed_at IS NOT NULL FROM tenant_keys WHERE tenant_id = $1
            ORDER BY key_version DESC LIMIT 1
            """
        var row = try await pool.query(select, [.uuid(tenant)]).first
        if row == nil {
            var key = Sodium.randomBytes(Sodium.aeadKeyBytes)
            defer { Sodium.memzero(&key) }
            try await pool.query(
                """
                INSERT INTO tenant_keys (tenant_id, key_version, wrapped, master_key_id) VALUES ($1, 1, $2, $3)
                ON CONFLICT (tenant_id, key_version) DO NOTHING
                """,
                [
                    .uuid(tenant), .bytes(Self.wrap(key, tenant: tenant, version: 1, masterKey: masterKey)),
                    .string(masterKey.id),
                ])
            row = try await pool.query(select, [.uuid(tenant)]).first
        }
        guard let row else { throw EventsError(.query, "the tenant key row vanished after it was written") }
        let version = try row.int(0)
        return (
            version,
            try unwrapRow(
                tenant, version, wrapped: try row.bytes(1), masterKeyID: try row.string(2), destroyed: try row.bool(3))
        )
    }

    private func dataKey(_ tenant: UUID, version: Int) async throws -> [UInt8] {
        guard
            let row = try await pool.query(
                "SELECT wrapped, master_key_id, destroyed_at IS NOT NULL FROM tenant_keys WHERE tenant_id = $1 AND key_version = $2",
                [.uuid(tenant), .int32(Int32(version))]
            ).first
        else { throw Self.unopenable }
        return try unwrapRow(
            tenant, version, wrapped: try row.bytes(0), masterKeyID: try row.string(1), destroyed: try row.bool(2))
    }

    private func unwrapRow(_ tenant: UUID, _ version: Int, wrapped: [UInt8], masterKeyID: String, destroyed: Bool)
        throws -> [UInt8]
    {
        guard !destroyed else {
            throw EventsError(
                .tenantKeyDestroyed, "the tenant was erased: its data key is destroyed and its secrets cannot be opened"
            )
        }
        guard masterKeyID == masterKey.id else {
            throw EventsError(
                .masterKeyMismatch,
                "the tenant key is wrapped under master key \(masterKeyID); this process has \(masterKey.id) (rotated? restart with the new key)"
            )
        }
        return try Self.unwrap(wrapped, tenant: tenant, version: version, masterKey: masterKey)
    }

    static func wrap(_ key: [UInt8], tenant: UUID, version: Int, masterKey: MasterKey) -> [UInt8] {
        key.withUnsafeBytes {
            Sodium.seal($0, key: masterKey.bytes, associatedData: keyAssociatedData(tenant, version))
        }
    }

    static func unwrap(_ wrapped: [UInt8], tenant: UUID, version: Int, masterKey: MasterKey) throws -> [UInt8] {
        var key = [UInt8](repeating: 0, count: Sodium.aeadKeyBytes)
        let opened = key.withUnsafeMutableBytes {
            Sodium.open(wrapped, key: masterKey.bytes, associatedData: keyAssociatedData(tenant, version), into: $0)
        }
        guard opened else {
            throw EventsError(
                .masterKeyMismatch,
                "tenant \(tenant.lowercased) key \(version) does not open under master key \(masterKey.id)")
        }
        return key
    }

    // MARK: - Associated data and fingerprints

    static func keyAssociatedData(_ tenant: UUID, _ version: Int) -> [UInt8] {
        Array("tally.tenant-key.v1|\(tenant.lowercased)|\(version)".utf8)
    }

    static func secretAssociatedData(_ tenant: UUID, _ vendor: Vendor, _ secretVersion: Int) -> [UInt8] {
        Array("tally.vendor-secret.v1|\(tenant.lowercased)|\(vendor.rawValue)|\(secretVersion)".utf8)
    }

    /// Keyed by a key derived from the data key, so it survives master-key rotation, differs between tenants
    /// for the same secret, and cannot be computed (to confirm a guess) without the tenant's key.
    static func fingerprint(_ plaintext: [UInt8], dataKey: [UInt8]) -> String {
        var fingerprintKey = Sodium.hmacSHA256(key: dataKey, message: Array("tally.vendor-secret-fingerprint.v1".utf8))
        defer { Sodium.memzero(&fingerprintKey) }
        return String(Sodium.hex(Sodium.hmacSHA256(key: fingerprintKey, message: plaintext)).prefix(16))
    }

    private static let unopenable = EventsError(
        .secretUnopenable,
        "the sealed secret does not open: it was not sealed for this tenant, vendor and version, or its bytes changed")
}
