import API
package import Foundation
import Projections
import Testing

@testable package import Events

/// A fresh database per test, cloned from a migrated template, so tests run in parallel and never see each
/// other's rows. `make test` starts the server and exports TALLY_TEST_PGHOST.
package enum TestDatabase {
    package static var host: String {
        guard let host = ProcessInfo.processInfo.environment["TALLY_TEST_PGHOST"] else {
            fatalError("TALLY_TEST_PGHOST is not set: run the suite with `make test`")
        }
        return host
    }

    package static var user: String { ProcessInfo.processInfo.environment["TALLY_TEST_PGUSER"] ?? "postgres" }

    package static func url(_ database: String, host: String = TestDatabase.host) -> String {
        "postgresql://\(user)@/\(database)?host=\(host)"
    }

    package static var adminURL: String { url("postgres") }

    package static let template = Task<String, any Error> {
        let name = "tally_template_\(ProcessInfo.processInfo.processIdentifier)"
        try await admin("DROP DATABASE IF EXISTS \(name)")
        try await admin("CREATE DATABASE \(name)")
        try await Migrator(databaseURL: url(name), migrations: Migration.product).migrate()
        // Migrating created tally_service; the login the suite runs `tally serve` and `tally work` as joins it.
        // Roles are the cluster's, so an earlier run on the same cluster may have made it already.
        try await admin(
            """
            DO $$ BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '\(serviceLogin)') THEN
                    CREATE ROLE \(serviceLogin) LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE
                        IN ROLE tally_service;
                END IF;
            END $$
            """)
        return name
    }

    /// The plain login (NOSUPERUSER, NOBYPASSRLS, a member of tally_service and nothing else) that the suite's
    /// `tally serve` and `tally work` processes connect as: the service runs with the grants it runs with in
    /// production, while the tests themselves inspect and sabotage as the superuser.
    package static let serviceLogin = "tally_suite_service"

    /// Creates the projections' tables in the database at `url`, as the superuser: what `tally migrate` does
    /// as the schema's owner before the service, which may not create tables, first starts.
    package static func createProjectionTables(_ url: String) async throws {
        try await ProjectionTables.create(ProductProjections.all, databaseURL: url, schema: .default)
    }

    /// `url` (one of ours, as `url(_:)` makes them) with the service login instead of the superuser.
    package static func serviceURL(_ url: String) -> String {
        let prefix = "postgresql://\(user)@"
        precondition(url.hasPrefix(prefix), "not a suite URL: \(url)")
        return "postgresql://\(serviceLogin)@" + url.dropFirst(prefix.count)
    }

    package static func admin(_ sql: String, url: String = TestDatabase.adminURL) async throws {
        let connection = try await PostgresConnection.connect(PostgresConfiguration(url: url))
        defer { connection.close() }
        try await connection.execute(sql)
    }

    /// Creates a database (migrated unless `migrated` is false) and returns its name and URL.
    package static func create(migrated: Bool = true) async throws -> (name: String, url: String) {
        let name = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20)
        if migrated {
            try await admin("CREATE DATABASE \(name) TEMPLATE \(try await template.value)")
        } else {
            try await admin("CREATE DATABASE \(name)")
        }
        return (String(name), url(String(name)))
    }

    package static func drop(_ name: String) async {
        try? await admin("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }

    /// Waits until every committed event of this database is below the horizon. The horizon is cluster-wide,
    /// so tests running in parallel in other databases can hold it back for a moment.
    package static func settle(_ store: EventStore) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while try await store.hasEventsBeyondHorizon() {
            guard ContinuousClock.now < deadline else {
                Issue.record("the horizon did not move for 20 s")
                return
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Runs `body` with a store on a fresh migrated database, then drops it.
    package static func withStore<T>(
        maxConnections: Int = 16, pollInterval: Duration = .milliseconds(200),
        _ body: (EventStore, String) async throws -> T
    ) async throws -> T {
        let (name, url) = try await create()
        let store = EventStore(
            configuration: .init(
                databaseURL: url, maxConnections: maxConnections, acquireTimeout: .seconds(20),
                pollInterval: pollInterval))
        do {
            let result = try await body(store, url)
            store.close()
            await drop(name)
            return result
        } catch {
            store.close()
            await drop(name)
            throw error
        }
    }
}

/// Helpers to build events quickly in tests.
package enum Fixtures {
    package static let catalog = EventCatalog.tally

    package static func tenantCreated(_ id: UUID = UUID(), name: String = "Acme") throws -> EventData {
        try catalog.encode(TenantCreated(tenantID: id, name: name, slug: name.lowercased(), plan: "free"))
    }

    package static func runStarted(run: UUID = UUID(), tenant: UUID = UUID(), id: UUID = UUID()) throws -> EventData {
        try catalog.encode(
            RunStarted(
                runID: run, tenantID: tenant, workflowID: UUID(),
                definition: WorkflowDefinition(
                    finders: [.prospeo, .findymail], validator: .zerobounce, maxAttempts: 3),
                input: PersonInput(fullName: "Ada Lovelace", domain: "example.com"), batchID: nil),
            id: id)
    }

    package static func usage(tenant: UUID, calls: Int) throws -> EventData {
        let now = Date()
        return try catalog.encode(
            UsageRecorded(
                tenantID: tenant, keyID: UUID(), windowStart: now, windowEnd: now, apiCalls: calls, instanceID: "test"))
    }
}

extension EventsError.Code {
    /// For `#expect(throws:)` checks on the code only.
    package func matches(_ error: any Error) -> Bool {
        (error as? EventsError)?.code == self
    }
}

/// Runs blocking work (waiting for a process, reading a pipe) on a thread of its own: blocking one of the
/// few cooperative threads would stall every other test.
package func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    let thread = BlockingThread(name: "test-blocking")
    defer { thread.stop() }
    return try await thread.run(body)
}
