import ArgumentParser
import Events
import Foundation

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply the database migrations built into this binary.",
        discussion: """
            Each migration runs in its own transaction and is recorded with a checksum. Running it again is a
            no-op; concurrent runs are safe (an advisory lock makes them take turns). An applied migration
            whose SQL changed stops it with an error before anything is applied.
            """)

    @OptionGroup var database: DatabaseOptions

    @Flag(help: "List applied and pending migrations instead of applying them.")
    var status = false

    func run() async throws {
        let migrator = Migrator(databaseURL: try database.resolvedURL())
        do {
            if status {
                for entry in try await migrator.status() {
                    let when = entry.appliedAt.map { " at \($0.formatted(.iso8601))" } ?? ""
                    print(String(format: "%04d", entry.version), entry.name, entry.state.rawValue + when)
                }
                return
            }
            let applied = try await migrator.migrate()
            if applied.isEmpty {
                print("database is up to date (\(migrator.migrations.count) migrations)")
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
