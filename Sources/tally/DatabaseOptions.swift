import ArgumentParser
import Events
import Foundation

/// `--database-url`, falling back to `DATABASE_URL`.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .customLong("database-url"), help: "libpq URL of the database (default: $DATABASE_URL).")
    var databaseURL: String?

    func resolvedURL() throws -> String {
        if let databaseURL, !databaseURL.isEmpty { return databaseURL }
        if let url = ProcessInfo.processInfo.environment["DATABASE_URL"], !url.isEmpty { return url }
        throw ValidationError("No database: pass --database-url or set DATABASE_URL.")
    }

    func makeStore(applicationName: String, maxConnections: Int = 16) throws -> EventStore {
        EventStore(
            configuration: .init(
                databaseURL: try resolvedURL(), maxConnections: maxConnections, applicationName: applicationName))
    }
}

/// Writes `error: <description>` to standard error. `EventsError.description` never contains parameter
/// values, payloads or secrets.
func reportError(_ error: any Error) {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
}

/// Refuses to start on a database that was restored or rewound under its log (`EventStore.restoreProblems`),
/// printing each problem with its repair. A database that cannot be reached yet, or is not migrated to this
/// build yet, is not refused here: the service starts and reports it unready, as it does for any outage.
func refuseRestoredDatabase(_ store: EventStore) async throws {
    let problems: [String]
    do {
        problems = try await store.restoreProblems()
    } catch let error as EventsError where error.code == .unavailable || error.code == .timeout {
        return
    } catch let error as EventsError where error.sqlState == "42P01" {
        // Not migrated to this build yet (no log_identity): nothing restored can be told; tally migrate comes first.
        return
    }
    guard !problems.isEmpty else { return }
    for problem in problems {
        FileHandle.standardError.write(Data("error: \(problem)\n".utf8))
    }
    throw ExitCode(1)
}
