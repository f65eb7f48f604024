import API
import Foundation
import Projections
import TestSupport
import Testing
import Workers

@testable import Events

@Suite("Migrations", .timeLimit(.minutes(5)))
struct MigrationTests {
    @Test("migrate applies everything once; a second run is a no-op")
    func twice() async throws {
        let (name, url) = try await TestDatabase.create(migrated: false)
        defer { Task { await TestDatabase.drop(name) } }
        let migrator = Migrator(databaseURL: url, migrations: Migration.product)
        #expect(try await migrator.status().map(\.state) == Migration.product.map { _ in .pending })
        #expect(try await migrator.migrate().map(\.version) == Migration.product.map(\.version))
        #expect(try await migrator.migrate().isEmpty)
        #expect(try await migrator.status().allSatisfy { $0.state == .applied && $0.appliedAt != nil })
    }

    /// Every migration as a database migrated before the migrations moved to their modules recorded it in
    /// `schema_migrations` (read from one): version, name and checksum must never change.
    static let recorded: [(Int, String, String)] = [
        (1, "event_log", "68d9dc1780340197f73d8964c83c93efb04d5c86f2223b07dabdf7ee74d00549"),
        (2, "projection_checkpoints", "3fbbf4d18b2c6098f3f33fd63bbcb531be52012e88ee458c504f6be130c43814"),
        (3, "idempotency_keys", "c706cd408d3d5a4d19fcf8339ecb0c92136168b2924b0d57193db43bfd68ce4d"),
        (4, "stripe_events", "bc949a3aed77052da09ef32c7c239fb4d472612edd3a6cb6ad4d2e575c922c86"),
        (5, "tenant_keys", "f22ec204e8cd28a7b02bc161e0877a2ecf85d1c16285d450c768581aaf5ddab5"),
        (6, "workers", "d09f136ea9462ca076bd7aa0ad08fb94ce319076d555f1fcdcccc5db0677deea"),
        (7, "feed_order", "d90bbd13fb2cff350e3ac52e25a791d21b60caff0480555a0abbcf8ad15da39c"),
        (8, "tenant_isolation", "65ceee6989c3e3cd208262b9d6bf7c581c467e346d19ba915da13d23466be4ba"),
        (9, "log_identity", "8b58612001b22d66c5b24e73309b459f364abcae5e0fc5d6773b23651eafeaea"),
        (10, "schema_usage", "1335dadd78355747abc3a049b71587cacef5e055f7199061c1505e1984a6cb3c"),
        (11, "leader_leases", "7a48a4514e9a1614076b0694b086b76f24ce0860e92ef15b4417623567fa881d"),
        (12, "service_roles", "58a49bd251e38b4ad52e1bbbc9673fbf07a312f4d8b35d1a5516723e68566f0d"),
        (13, "rate_budgets", "113184dc286e75385c8be2150c0cf84551f2cb5e7fddc5bccfb8e48a87846726"),
        (14, "quota_grants", "d9d7318898f5261b2a428f9300987b79d0bc9f0ef899e3e6a0de2aff0c1d090e"),
    ]

    @Test("each module owns its migrations; together they are the versions, names and checksums databases recorded")
    func ownedAndUnchanged() async throws {
        let lists = [Migration.events, Migration.projections, Migration.workers, Migration.api]
        #expect(Migration.product.map(\.version) == Array(1...Migration.product.count))
        #expect(lists.map(\.count).reduce(0, +) == Migration.product.count)
        #expect(Migration.workers.map(\.name) == ["workers"])
        #expect(Migration.projections.map(\.name) == ["projection_checkpoints"])
        #expect(
            Set(Migration.api.map(\.name)) == ["idempotency_keys", "stripe_events", "rate_budgets", "quota_grants"])
        #expect(
            Migration.product.map { "\($0.version) \($0.name) \($0.checksum)" }
                == Self.recorded.map { "\($0.0) \($0.1) \($0.2)" })

        // A database whose log says it was migrated that way has nothing pending and nothing unknown.
        let (name, url) = try await TestDatabase.create()
        defer { Task { await TestDatabase.drop(name) } }
        let connection = try await PostgresConnection.connect(PostgresConfiguration(url: url))
        defer { connection.close() }
        let stored = try await connection.query(
            "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
        ).map { "\(try $0.int64(0)) \(try $0.string(1)) \(try $0.string(2))" }
        #expect(stored == Self.recorded.map { "\($0.0) \($0.1) \($0.2)" })
        let migrator = Migrator(databaseURL: url, migrations: Migration.product)
        #expect(try await migrator.migrate().isEmpty)
        #expect(try await migrator.status().allSatisfy { $0.state == .applied })
    }

    @Test("concurrent migrate runs take turns and apply each migration exactly once")
    func concurrent() async throws {
        let (name, url) = try await TestDatabase.create(migrated: false)
        defer { Task { await TestDatabase.drop(name) } }
        let applied = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<4 {
                group.addTask { try await Migrator(databaseURL: url, migrations: Migration.product).migrate().count }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        // Each run applies what is pending when its turn comes: together they apply each migration once.
        #expect(applied.reduce(0, +) == Migration.product.count)
        let connection = try await PostgresConnection.connect(PostgresConfiguration(url: url))
        defer { connection.close() }
        #expect(
            try await connection.query("SELECT count(*) FROM schema_migrations").first?.int64(0)
                == Int64(Migration.product.count))
    }

    @Test("an applied migration whose SQL changed stops migrate with a clear error and applies nothing")
    func tamperedChecksum() async throws {
        let (name, url) = try await TestDatabase.create(migrated: false)
        defer { Task { await TestDatabase.drop(name) } }
        let original = Migration(version: 1, name: "one", sql: "CREATE TABLE one (id int)")
        try await Migrator(databaseURL: url, migrations: [original]).migrate()

        let edited = Migration(version: 1, name: "one", sql: "CREATE TABLE one (id bigint)")
        let next = Migration(version: 2, name: "two", sql: "CREATE TABLE two (id int)")
        let migrator = Migrator(databaseURL: url, migrations: [edited, next])
        await #expect { try await migrator.migrate() } throws: { error in
            guard let error = error as? EventsError else { return false }
            return error.code == .migrationChecksumMismatch && error.message.contains("migration 1 (one)")
        }
        #expect(try await migrator.status().map(\.state) == [.checksumMismatch, .pending])
        let connection = try await PostgresConnection.connect(PostgresConfiguration(url: url))
        defer { connection.close() }
        #expect(try await connection.query("SELECT to_regclass('two') IS NULL").first?.bool(0) == true)
    }

    @Test("a failing migration rolls back entirely and is not recorded")
    func failingMigration() async throws {
        let (name, url) = try await TestDatabase.create(migrated: false)
        defer { Task { await TestDatabase.drop(name) } }
        let broken = Migration(version: 1, name: "broken", sql: "CREATE TABLE half (id int); SELECT no_such_function()")
        await #expect(throws: EventsError.self) { try await Migrator(databaseURL: url, migrations: [broken]).migrate() }
        let connection = try await PostgresConnection.connect(PostgresConfiguration(url: url))
        defer { connection.close() }
        #expect(try await connection.query("SELECT to_regclass('half') IS NULL").first?.bool(0) == true)
        #expect(try await connection.query("SELECT count(*) FROM schema_migrations").first?.int64(0) == 0)
    }

    @Test("a database with a migration this binary does not know is refused")
    func unknownMigration() async throws {
        let (name, url) = try await TestDatabase.create(migrated: false)
        defer { Task { await TestDatabase.drop(name) } }
        let newer = [
            Migration(version: 1, name: "one", sql: "SELECT 1"), Migration(version: 2, name: "two", sql: "SELECT 2"),
        ]
        try await Migrator(databaseURL: url, migrations: newer).migrate()
        await #expect { try await Migrator(databaseURL: url, migrations: [newer[0]]).migrate() } throws: {
            EventsError.Code.migrationUnknown.matches($0)
        }
    }
}
