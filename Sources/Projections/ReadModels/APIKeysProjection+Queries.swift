package import Events
public import Foundation

/// One row of `api_keys`, as ``APIKeysProjection`` keeps it: the keyed hash, never a plaintext key.
public struct APIKeyRow: Sendable, Hashable {
    /// The key's id.
    public var id: UUID
    /// The tenant it belongs to.
    public var tenantID: UUID
    /// Its name.
    public var name: String
    /// The prefix shown to identify it.
    public var displayPrefix: String
    /// The keyed hash its plaintext is looked up by.
    public var hash: String
    /// `active`, `rotated`, `revoked` or `expired`.
    public var status: String
    /// When it stops working, if it was issued with an end.
    public var expiresAt: Date?
    /// A rotated key's end of grace.
    public var graceUntil: Date?
    /// The key that replaced it.
    public var replacedBy: UUID?
    /// When it was issued.
    public var createdAt: Date

    /// A key as its events describe it.
    public init(
        id: UUID, tenantID: UUID, name: String, displayPrefix: String, hash: String, status: String,
        expiresAt: Date?, graceUntil: Date?, replacedBy: UUID?, createdAt: Date
    ) {
        self.id = id
        self.tenantID = tenantID
        self.name = name
        self.displayPrefix = displayPrefix
        self.hash = hash
        self.status = status
        self.expiresAt = expiresAt
        self.graceUntil = graceUntil
        self.replacedBy = replacedBy
        self.createdAt = createdAt
    }

    static let columns =
        "key_id, tenant_id, name, display_prefix, key_hash, status, expires_at, grace_until, replaced_by, created_at"

    init(_ row: PostgresRow) throws {
        self.init(
            id: try row.uuid(0), tenantID: try row.uuid(1), name: try row.string(2), displayPrefix: try row.string(3),
            hash: try row.string(4), status: try row.string(5), expiresAt: try row.optionalDate(6),
            graceUntil: try row.optionalDate(7), replacedBy: try row.optionalUUID(8), createdAt: try row.date(9))
    }
}

extension APIKeysProjection {
    /// The tenant's keys in issue order.
    package static func keys(ofTenant tenant: UUID, on connection: PostgresConnection) async throws -> [APIKeyRow] {
        try await connection.query(
            "SELECT \(APIKeyRow.columns) FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, key_id",
            [.uuid(tenant)]
        ).map(APIKeyRow.init)
    }

    /// Every key (the key directory's snapshot).
    package static func allKeys(on connection: PostgresConnection) async throws -> [APIKeyRow] {
        try await connection.query("SELECT \(APIKeyRow.columns) FROM api_keys").map(APIKeyRow.init)
    }

    /// Whether a key with this keyed hash was issued (one index lookup); false before the table exists.
    package static func isIssued(hash: String, on connection: PostgresConnection) async throws -> Bool {
        do {
            return try await !connection.query("SELECT 1 FROM api_keys WHERE key_hash = $1", [.string(hash)]).isEmpty
        } catch let error as EventsError where error.isUndefinedTable {
            return false
        }
    }
}
