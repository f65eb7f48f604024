public import Foundation

/// Applies the built-in migrations in order, each in its own transaction, recording version, name and
/// checksum in `schema_migrations`. A session advisory lock makes concurrent runs safe: the second waits,
/// then finds nothing to do.
public struct Migrator: Sendable {
    /// One migration as the database and this binary know it.
    public struct Status: Sendable, Hashable {
        public enum State: String, Sendable, Hashable {
            case applied, pending
            /// Applied, but the SQL built into this binary differs.
            case checksumMismatch = "checksum mismatch"
            /// Applied, but this binary does not know it (the binary is older than the schema).
            case unknown
        }

        public let version: Int
        public let name: String
        public let state: State
        public let appliedAt: Date?
    }

    /// `pg_advisory_lock` key: "tally" in ASCII.
    static let lockKey: Int64 = 0x74_61_6c_6c_79

    let configuration: PostgresConfiguration
    public let migrations: [Migration]

    public init(databaseURL: String, migrations: [Migration] = Migration.all) {
        self.configuration = PostgresConfiguration(url: databaseURL, applicationName: "tally-migrate")
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// Applies what is pending and returns it; throws before applying anything when an applied migration's
    /// checksum changed or the database has one this binary does not know.
    @discardableResult
    public func migrate() async throws -> [Migration] {
        try await withLockedConnection { connection in
            let statuses = try await status(on: connection)
            if let bad = statuses.first(where: { $0.state == .checksumMismatch }) {
                throw EventsError(
                    .migrationChecksumMismatch,
                    "migration \(bad.version) (\(bad.name)) was applied with different SQL than this binary has; "
                        + "restore the original migration or the database from backup")
            }
            if let unknown = statuses.first(where: { $0.state == .unknown }) {
                throw EventsError(
                    .migrationUnknown,
                    "the database has migration \(unknown.version) (\(unknown.name)), which this binary does not know; run a newer tally")
            }
            let pending = migrations.filter { migration in
                statuses.contains { $0.version == migration.version && $0.state == .pending }
            }
            for migration in pending {
                try await connection.withTransaction {
                    try await connection.execute(migration.sql)
                    try await connection.query(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        [.int64(Int64(migration.version)), .string(migration.name), .string(migration.checksum)])
                }
            }
            return pending
        }
    }

    /// Every migration, applied or pending, in version order.
    public func status() async throws -> [Status] {
        try await withLockedConnection { try await status(on: $0) }
    }

    private func status(on connection: PostgresConnection) async throws -> [Status] {
        let rows = try await connection.query("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version")
        var applied: [Int: (name: String, checksum: String, at: Date)] = [:]
        for row in rows {
            applied[try row.int(0)] = (try row.string(1), try row.string(2), try row.date(3))
        }
        var statuses = migrations.map { migration -> Status in
            guard let record = applied[migration.version] else {
                return Status(version: migration.version, name: migration.name, state: .pending, appliedAt: nil)
            }
            let state: Status.State = record.checksum == migration.checksum ? .applied : .checksumMismatch
            return Status(version: migration.version, name: migration.name, state: state, appliedAt: record.at)
        }
        let known = Set(migrations.map(\.version))
        for (version, record) in applied where !known.contains(version) {
            statuses.append(Status(version: version, name: record.name, state: .unknown, appliedAt: record.at))
        }
        return statuses.sorted { $0.version < $1.version }
    }

    private func withLockedConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await PostgresConnection.connect(configuration)
        defer { connection.close() }
        // Held for the whole session; closing the connection (also on error) releases it.
        try await connection.query("SELECT pg_advisory_lock($1)", [.int64(Self.lockKey)])
        try await connection.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """)
        return try await body(connection)
    }
}
