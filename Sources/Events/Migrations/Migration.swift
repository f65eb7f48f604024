/// One versioned schema change built into the binary. Its checksum is recorded when applied; changing the
/// SQL of an applied migration is refused, so a database never silently diverges from the code.
public struct Migration: Sendable, Hashable {
    public let version: Int
    public let name: String
    public let sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// SHA-256 of the SQL text, hex.
    public var checksum: String { Sodium.hex(Sodium.sha256(Array(sql.utf8))) }

    /// Every migration of this build, in order.
    public static let all: [Migration] = [
        eventLog, projections, idempotency, stripeEvents, tenantKeys, workers, feedOrder, tenantIsolation, logIdentity,
    ]
}
