import Foundation
import Testing

@testable import Events

@Suite("Migrations", .timeLimit(.minutes(5)))
struct MigrationTests {
    @Test("migrate applies everything once; a second run is a no-op")
    func twice() async throws {
        let (name, url) = try await TestDatabase.create(migrated: false)
        defer { Task { await TestDatabase.drop(name) } }
        let migrator = Migrator(databaseURL: url)
        #expect(try await migrator.status().map(\.state) == Migration.all.map { _ in .pending })
        #expect(try await migrator.migrate().map(\.version) == Migration.all.map(\.version))
        #expect(try await migrator.migrate().isEmpty)
        #expect(try await migrator.status().allSatisfy { $0.state == .applied && $0.appliedAt != nil })
    }

    @Test("concurrent migrate runs take turns and apply each migration exactly once")
    func concurrent() async throws {
        let (name, url) = try await TestDatabase.create(migrated: false)
        defer { Task { await TestDatabase.drop(name) } }
        let applied = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<4 {
                group.addTask { try await Migrator(databaseURL: url).migrate().count }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        // Each run applies what is pending when its turn comes: together they apply each migration once.
        #expect(applied.reduce(0, +) == Migration.all.count)
        let connection = try await PostgresConnection.connect(PostgresConfiguration(url: url))
        defer { connection.close() }
        #expect(
            try await connection.query("SELECT count(*) FROM schema_migrations").first?.int64(0)
                == Int64(Migration.all.count))
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
