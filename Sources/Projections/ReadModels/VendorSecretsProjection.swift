public import Events
import Foundation

/// `vendor_secrets`: per tenant and vendor, the current key's fingerprint, version and state, and which
/// event holds its sealed bytes. Never the secret, sealed or not.
public struct VendorSecretsProjection: Projection {
    public let name = "vendor_secrets"
    public let version = 1
    public let eventTypes: Set<String> = [
        VendorSecretSealed.eventType, VendorSecretRemoved.eventType, VendorKeySuspended.eventType,
    ]
    public let tables = [
        ProjectionTable(
            name: "vendor_secrets",
            columns: """
                tenant_id uuid NOT NULL,
                vendor text NOT NULL,
                secret_version integer NOT NULL,
                tenant_key_version integer NOT NULL,
                fingerprint text NOT NULL,
                status text NOT NULL,
                status_reason text,
                sealed_event_id uuid NOT NULL,
                updated_at timestamptz NOT NULL,
                PRIMARY KEY (tenant_id, vendor)
                """,
            // Nothing about secrets is for reporting.
            reportable: false)
    ]

    public init() {}

    public func apply(_ events: [RecordedEvent], in context: ProjectionContext) async throws {
        for recorded in events {
            let at = PostgresValue.timestamp(recorded.recordedAt)
            switch try context.decode(recorded) {
            case let event as VendorSecretSealed:
                try await context.execute(
                    """
                    INSERT INTO vendor_secrets AS v (tenant_id, vendor, secret_version, tenant_key_version, fingerprint, status,
                                                     sealed_event_id, updated_at)
                    VALUES ($1, $2, $3, $4, $5, 'active', $6, $7)
                    ON CONFLICT (tenant_id, vendor) DO UPDATE SET secret_version = excluded.secret_version,
                        tenant_key_version = excluded.tenant_key_version, fingerprint = excluded.fingerprint,
                        status = 'active', status_reason = NULL, sealed_event_id = excluded.sealed_event_id,
                        updated_at = excluded.updated_at
                    """,
                    [
                        .uuid(event.tenantID), .string(event.vendor.rawValue), .int32(Int32(event.secretVersion)),
                        .int32(Int32(event.tenantKeyVersion)), .string(event.fingerprint), .uuid(recorded.id), at,
                    ])
            case let event as VendorSecretRemoved:
                try await setStatus(
                    "removed", reason: nil, event.tenantID, event.vendor, event.secretVersion, at, context)
            case let event as VendorKeySuspended:
                try await setStatus(
                    "suspended", reason: event.reason, event.tenantID, event.vendor, event.secretVersion, at, context)
            default:
                throw ProjectionsError(
                    .unexpectedEvent,
                    "vendor_secrets cannot apply \(recorded.type) at position \(recorded.globalPosition)")
            }
        }
    }

    /// Only the key version the event names changes state: a suspension reported for a key that has since
    /// been replaced leaves the new key active.
    private func setStatus(
        _ status: String, reason: String?, _ tenant: UUID, _ vendor: Vendor, _ secretVersion: Int, _ at: PostgresValue,
        _ context: ProjectionContext
    ) async throws {
        try await context.execute(
            """
            UPDATE vendor_secrets SET status = $4, status_reason = $5, updated_at = $6
            WHERE tenant_id = $1 AND vendor = $2 AND secret_version = $3
            """,
            [
                .uuid(tenant), .string(vendor.rawValue), .int32(Int32(secretVersion)), .string(status), .string(reason),
                at,
            ])
    }
}
