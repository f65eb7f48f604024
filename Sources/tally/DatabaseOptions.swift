import API
import ArgumentParser
import Events
import Foundation

/// Where the database is and how it is reached: `--database-url` (else `DATABASE_URL`), `--direct-database-url`
/// (else `TALLY_DIRECT_DATABASE_URL`), and from the environment only `TALLY_SCHEMA` and `TALLY_POOL_MODE`.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .customLong("database-url"), help: "libpq URL of the database (default: $DATABASE_URL).")
    var databaseURL: String?

    @Option(
        name: .customLong("direct-database-url"),
        help: """
            libpq URL of a direct session when --database-url is a pooler in transaction mode, for LISTEN and             migrations (default: $TALLY_DIRECT_DATABASE_URL).
            """)
    var directDatabaseURL: String?

    private var environment: [String: String] { ProcessEnvironment.values }

    func resolvedURL() throws -> String {
        if let databaseURL, !databaseURL.isEmpty { return databaseURL }
        if let url = environment["DATABASE_URL"], !url.isEmpty { return url }
        throw ValidationError("No database: pass --database-url or set DATABASE_URL.")
    }

    /// The direct URL, when one is configured.
    func resolvedDirectURL() -> String? {
        if let directDatabaseURL, !directDatabaseURL.isEmpty { return directDatabaseURL }
        if let url = environment["TALLY_DIRECT_DATABASE_URL"], !url.isEmpty { return url }
        return nil
    }

    /// `TALLY_SCHEMA`, default `tally`.
    func resolvedSchema() throws -> DatabaseSchema {
        guard let text = environment["TALLY_SCHEMA"], !text.isEmpty else { return .default }
        guard let schema = DatabaseSchema(text) else {
            throw ValidationError(
                "TALLY_SCHEMA must be 1 to 48 characters of a-z, 0-9 and _, not starting with a digit, and not public, "
                    + "information_schema or pg_*; got \(text.debugDescription)")
        }
        return schema
    }

    /// `TALLY_POOL_MODE`: auto (default), transaction or session.
    func resolvedPoolMode() throws -> PoolMode {
        guard let text = environment["TALLY_POOL_MODE"], !text.isEmpty else { return .automatic }
        guard let mode = PoolMode(rawValue: text) else {
            throw ValidationError("TALLY_POOL_MODE must be auto, transaction or session; got \(text.debugDescription)")
        }
        return mode
    }

    /// `TALLY_LEADER_LEASE_SECONDS`: how long a leader's lease lasts unrenewed (2 to 300, default 10).
    func resolvedLeaderLease() throws -> Duration {
        guard let text = environment["TALLY_LEADER_LEASE_SECONDS"], !text.isEmpty else { return .seconds(10) }
        guard let seconds = Int(text), (2...300).contains(seconds) else {
            throw ValidationError(
                "TALLY_LEADER_LEASE_SECONDS must be a whole number from 2 to 300; got \(text.debugDescription)")
        }
        return .seconds(seconds)
    }

    func makeStore(applicationName: String, maxConnections: Int = 16) throws -> EventStore {
        EventStore(
            configuration: .init(
                databaseURL: try resolvedURL(), maxConnections: maxConnections, applicationName: applicationName,
                schema: try resolvedSchema(), poolMode: try resolvedPoolMode(), directDatabaseURL: resolvedDirectURL()))
    }

    /// A store as the schema's owner, for what creates tables (rebuilds): `TALLY_MIGRATE_DATABASE_URL` when set,
    /// else the same store as `makeStore`.
    func makeOwnerStore(applicationName: String, maxConnections: Int = 16) throws -> EventStore {
        guard let owner = resolvedMigrateURL() else {
            return try makeStore(applicationName: applicationName, maxConnections: maxConnections)
        }
        return EventStore(
            configuration: .init(
                databaseURL: owner, maxConnections: maxConnections, applicationName: applicationName,
                schema: try resolvedSchema()))
    }

    /// `TALLY_MIGRATE_DATABASE_URL`: the schema owner's URL, for migrations while the service runs as itself.
    func resolvedMigrateURL() -> String? {
        guard let url = environment["TALLY_MIGRATE_DATABASE_URL"], !url.isEmpty else { return nil }
        return url
    }

    /// Migrates as the owner (`TALLY_MIGRATE_DATABASE_URL`) when set, else through the direct URL when there is
    /// one, else through `DATABASE_URL`.
    func makeMigrator() throws -> Migrator {
        let mode = try resolvedPoolMode()
        if let owner = resolvedMigrateURL() {
            return Migrator(databaseURL: owner, schema: try resolvedSchema(), migrations: Migration.product)
        }
        if let direct = resolvedDirectURL() {
            return Migrator(
                databaseURL: direct, schema: try resolvedSchema(), poolMode: .session, migrations: Migration.product)
        }
        return Migrator(
            databaseURL: try resolvedURL(), schema: try resolvedSchema(), poolMode: mode, migrations: Migration.product)
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
        problems = try await store.restoreProblems(readers: try await ProductReaders.positions(store))
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
