import Foundation

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
        schemaUsage, leaderLeases, serviceRoles, rateBudgets, quotaGrants,
    ]
}

extension Migration {
    /// The SQL as applied in `schema`: the text itself for the default schema (so the checksum stays what
    /// every existing database recorded), with the rebuild schema's name changed for another.
    func sql(in schema: DatabaseSchema) -> String {
        schema == .default ? sql : sql.replacingOccurrences(of: DatabaseSchema.default.rebuild, with: schema.rebuild)
    }

    /// The tables, views and functions the migrations create, by name.
    static func createdObjects(_ migrations: [Migration]) -> (relations: Set<String>, functions: Set<String>) {
        let schema = ExpectedSchema(migrations)
        return (Set(schema.tables.keys).union(schema.views), schema.functions)
    }
}
