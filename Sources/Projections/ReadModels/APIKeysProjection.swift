public import Events
import Foundation

/// `api_keys`: every key's keyed hash, display prefix and state. Never a plaintext key: the log has none.
public struct APIKeysProjection: Projection {
    public let name = "api_keys"
    public let version = 1
    public let eventTypes: Set<String> = [KeyIssued.eventType, KeyRevoked.eventType, KeyRotated.eventType]
    public let tables = [
        ProjectionTable(
            name: "api_keys",
            columns: """
                key_id uuid PRIMARY KEY,
                tenant_id uuid NOT NULL,
                name text NOT NULL,
                display_prefix text NOT NULL,
                key_hash text NOT NULL UNIQUE,
                status text NOT NULL,
                expires_at timestamptz,
                replaced_by uuid,
                grace_until timestamptz,
                created_at timestamptz NOT NULL,
                revoked_at timestamptz
                """,
            indexes: ["CREATE INDEX IF NOT EXISTS {table}_tenant_idx ON {table} (tenant_id)"],
            // Key hashes are not for reporting.
            reportable: false)
    ]

    public init() {}

    public func apply(_ events: [RecordedEvent], in context: ProjectionContext) async throws {
        for recorded in events {
            let at = PostgresValue.timestamp(recorded.recordedAt)
            let rows: PostgresRows
            switch try context.decode(recorded) {
            case let event as KeyIssued:
                rows = try await context.execute(
                    """
                    INSERT INTO api_keys (key_id, tenant_id, name, display_prefix, key_hash, status, expires_at, created_at)
                    VALUES ($1, $2, $3, $4, $5, 'active', $6, $7)
                    """,
                    [
                        .uuid(event.keyID), .uuid(event.tenantID), .string(event.name), .string(event.displayPrefix),
                        .string(event.keyHash), event.expiresAt.map(PostgresValue.timestamp) ?? .null, at,
                    ])
            case let event as KeyRevoked:
                rows = try await context.execute(
                    "UPDATE api_keys SET status = 'revoked', revoked_at = $2 WHERE key_id = $1",
                    [.uuid(event.keyID), at])
            case let event as KeyRotated:
                rows = try await context.execute(
                    "UPDATE api_keys SET status = 'rotated', replaced_by = $2, grace_until = $3 WHERE key_id = $1",
                    [.uuid(event.keyID), .uuid(event.replacementKeyID), .timestamp(event.graceUntil)])
            default:
                throw ProjectionsError(
                    .unexpectedEvent, "api_keys cannot apply \(recorded.type) at position \(recorded.globalPosition)")
            }
            guard rows.affectedRows == 1 else {
                throw ProjectionsError(
                    .unexpectedEvent, "the \(recorded.type) at position \(recorded.globalPosition) names an unknown key"
                )
            }
        }
    }
}
