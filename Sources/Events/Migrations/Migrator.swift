public import Foundation

/// Applies the built-in migrations in order, each in its own transaction, recording version, name and
/// checksum in `schema_migrations`, in the installation's schema (created when missing).
///
/// Each migration's transaction first takes a transaction-level advisory lock and reads what is applied, so
/// concurrent runs take turns and the second finds nothing to do; nothing relies on a session, so it works
/// through a pooler in transaction mode as well as on a direct connection.
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

    /// `pg_advisory_xact_lock` key: "tally" in ASCII.
    static let lockKey: Int64 = 0x74_61_6c_6c_79

    let configuration: PostgresConfiguration
    public let migrations: [Migration]
    /// The URL it migrates through.
    public var databaseURL: String { configuration.url }
    /// Where the migrations go.
    public let schema: DatabaseSchema

    public init(
        databaseURL: String, schema: DatabaseSchema = .default, poolMode: PoolMode = .automatic,
        migrations: [Migration]
    ) {
        self.configuration = PostgresConfiguration(
            url: databaseURL, applicationName: "tally-migrate", schema: schema, poolMode: poolMode)
        self.schema = schema
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// Applies what is pending and returns it; throws before applying anything when an applied migration's
    /// checksum changed or the database has one this binary does not know.
    @discardableResult
    public func migrate() async throws -> [Migration] {
        let connection = try await PostgresConnection.connect(configuration)
        defer { connection.close() }
        var applied: [Migration] = []
        while true {
            let next = try await locked(on: connection) { statuses -> Migration? in
                if let bad = statuses.first(where: { $0.state == .checksumMismatch }) {
                    throw EventsError(
                        .migrationChecksumMismatch,
                        "migration \(bad.version) (\(bad.name)) was applied with different SQL than this binary has; "
                            + "restore the original migration or the database from backup")
                }
                if let unknown = statuses.first(where: { $0.state == .unknown }) {
                    throw EventsError(
                        .migrationUnknown,
                        "the database has migration \(unknown.version) (\(unknown.name)), which this binary does not "
                            + "know; run a newer tally")
                }
                guard let pending = statuses.first(where: { $0.state == .pending }),
                    let migration = migrations.first(where: { $0.version == pending.version })
                else { return nil }
                try await connection.execute(migration.sql(in: schema))
                try await connection.query(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    [.int64(Int64(migration.version)), .string(migration.name), .string(migration.checksum)])
                return migration
            }
            guard let next else { return applied }
            applied.append(next)
        }
    }

    /// Every migration, applied or pending, in version order.
    public func status() async throws -> [Status] {
        let connection = try await PostgresConnection.connect(configuration)
        defer { connection.close() }
        return try await locked(on: connection) { $0 }
    }

    /// Runs `body` with the statuses in one transaction that holds the migration lock. The schema and
    /// `schema_migrations` are put in place first, in a transaction of their own (a failing migration leaves
    /// them), after refusing a database whose Tally lives in `public`.
    private func locked<T: Sendable>(
        on connection: PostgresConnection, _ body: ([Status]) async throws -> T
    ) async throws -> T {
        try await connection.withTransaction {
            try await connection.query("SELECT pg_advisory_xact_lock($1)", [.int64(Self.lockKey)])
            try await refuseServiceLogin(on: connection)
            try await refuseInstallationInPublic(on: connection)
            try await connection.execute(
                """
                CREATE SCHEMA IF NOT EXISTS \(schema.name);
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    checksum text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """)
        }
        return try await connection.withTransaction {
            try await connection.query("SELECT pg_advisory_xact_lock($1)", [.int64(Self.lockKey)])
            return try await body(try await status(on: connection))
        }
    }

    /// The service's login may not change the schema: migrations run as the schema's owner.
    private func refuseServiceLogin(on connection: PostgresConnection) async throws {
        let rows = try await connection.query(
            """
            SELECT current_user::text,
                   NOT r.rolsuper AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tally_service')
                   AND pg_has_role(current_user, 'tally_service', 'MEMBER')
                   AND NOT coalesce((SELECT pg_has_role(current_user, n.nspowner, 'USAGE')
                                     FROM pg_namespace n WHERE n.nspname = $1), false)
            FROM pg_roles r WHERE r.rolname = current_user
            """, [.string(schema.name)])
        guard let row = rows.first, try row.bool(1) else { return }
        throw EventsError(
            .invalidArgument,
            "\(try row.string(0)) is a service login (a member of tally_service), and migrations change the schema: "
                + "run tally migrate as the owner of the schema \(schema.name) (TALLY_MIGRATE_DATABASE_URL, or "
                + "--database-url with the owner's URL)")
    }

    /// An earlier Tally kept everything in `public`; migrating again would start a second, empty log beside it.
    private func refuseInstallationInPublic(on connection: PostgresConnection) async throws {
        let rows = try await connection.query(
            """
            SELECT to_regclass($1) IS NULL
               AND to_regclass('public.schema_migrations') IS NOT NULL
               AND to_regclass('public.events') IS NOT NULL
               AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('public.events') AND attname = 'tx_id')
            """,
            [.string("\(schema.name).schema_migrations")])
        guard try rows.first?.bool(0) == true else { return }
        throw EventsError(
            .migrationUnknown,
            "this database holds a Tally log in the schema public (an earlier version); move it into the schema "
                + "\(schema.name) with `tally migrate --move-from-public`, then migrate")
    }

    private func status(on connection: PostgresConnection) async throws -> [Status] {
        let rows = try await connection.query(
            "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version")
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
}
