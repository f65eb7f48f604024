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

    /// The migrations this module owns: the event log and the feed, tenant data keys, the log's identity,
    /// leader leases, and the platform's roles and row-level security that every module's tables rely on.
    /// Feed order (7) also replaced the workers' `work_claim`, and tenant isolation (8), schema usage (10)
    /// and service roles (12) reach every module's tables: they were applied as one text each and keep it.
    public static let events: [Migration] = [
        eventLog, tenantKeys, feedOrder, tenantIsolation, logIdentity, schemaUsage, leaderLeases, serviceRoles,
    ]

    /// Every module's own list as one, in version order, for a component that sees all the modules (the API
    /// assembles the product's). Versions are global: each number belongs to one module's migration.
    public static func composed(_ lists: [[Migration]]) -> [Migration] {
        lists.joined().sorted { $0.version < $1.version }
    }
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
