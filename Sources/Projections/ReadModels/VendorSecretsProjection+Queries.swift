package import Events
public import Foundation

/// One row of `vendor_secrets` without the sealed value's reference: what a tenant may see of its vendor key.
public struct VendorSecretRow: Sendable, Hashable {
    /// The vendor.
    public var vendor: String
    /// The fingerprint that identifies the key without revealing it.
    public var fingerprint: String
    /// `active` or `suspended` (the vendor refused it).
    public var status: String
    /// Why it is suspended.
    public var statusReason: String?
    /// The version of the tenant's secret for this vendor.
    public var secretVersion: Int
    /// When it last changed.
    public var updatedAt: Date

    init(_ row: PostgresRow) throws {
        vendor = try row.string(0)
        fingerprint = try row.string(1)
        status = try row.string(2)
        statusReason = try row.optionalString(3)
        secretVersion = try row.int(4)
        updatedAt = try row.date(5)
    }
}

extension VendorSecretsProjection {
    /// The tenant's vendor keys by vendor.
    package static func secrets(ofTenant tenant: UUID, on connection: PostgresConnection) async throws
        -> [VendorSecretRow]
    {
        try await connection.query(
            """
            SELECT vendor, fingerprint, status, status_reason, secret_version, updated_at FROM vendor_secrets
            WHERE tenant_id = $1 ORDER BY vendor
            """, [.uuid(tenant)]
        ).map(VendorSecretRow.init)
    }
}
