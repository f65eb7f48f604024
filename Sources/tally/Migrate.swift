import ArgumentParser
import Events
import Foundation
import Projections

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply the database migrations built into this binary.",
        discussion: """
            Everything Tally creates lives in one schema ($TALLY_SCHEMA, default tally), created here when
            missing; other schemas (public included) are left alone. Run it as the schema's owner: with
            $TALLY_MIGRATE_DATABASE_URL when set, else through the direct URL when one is set; a service login
            (a member of tally_service) is refused. It also creates the projections' tables. Each migration
            runs in its own transaction and is recorded with a checksum.
            Running it again is a no-op; concurrent runs are safe (a transaction-level advisory lock makes
            them take turns, so this works through a pooler too). An applied migration whose SQL changed stops
            it with an error before anything is applied.

            A database migrated by an earlier Tally holds its tables in public; migrate refuses it until
            --move-from-public has moved them (one transaction; stop serve and work first).
            """)

    @OptionGroup var database: DatabaseOptions

    @Flag(help: "List applied and pending migrations instead of applying them.")
    var status = false

    @Flag(help: "Move an earlier Tally's tables and functions from the schema public into $TALLY_SCHEMA, then migrate.")
    var moveFromPublic = false

    /// The migrations, then the projections' tables with their policies and grants (the service's login may
    /// not create them); what `tally migrate` and `tally serve --migrate` do.
    static func apply(_ migrator: Migrator) async throws -> [Migration] {
        let applied = try await migrator.migrate()
        try await ProjectionTables.create(
            ProductProjections.all, databaseURL: migrator.databaseURL, schema: migrator.schema)
        return applied
    }

    func run() async throws {
        let migrator = try database.makeMigrator()
        do {
            if status {
                for entry in try await migrator.status() {
                    let when = entry.appliedAt.map { " at \($0.formatted(.iso8601))" } ?? ""
                    print(String(format: "%04d", entry.version), entry.name, entry.state.rawValue + when)
                }
                return
            }
            if moveFromPublic {
                let tables = ProductProjections.all.flatMap { $0.tables.map(\.name) }
                let moved = try await migrator.moveFromPublic(tables: tables)
                print("moved into \(moved[0]): \(moved.dropFirst().joined(separator: ", "))")
            }
            let applied = try await Self.apply(migrator)
            if applied.isEmpty {
                print("database is up to date (\(migrator.migrations.count) migrations in schema \(migrator.schema))")
            } else {
                for migration in applied {
                    print("applied", String(format: "%04d", migration.version), migration.name)
                }
            }
        } catch {
            reportError(error)
            throw ExitCode(1)
        }
    }
}
