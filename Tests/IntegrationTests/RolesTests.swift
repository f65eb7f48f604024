import API
import Foundation
import Projections
import TestSupport
import Testing

@testable import Events

/// The service as its own least-privilege login, migrations as the owner, and the reporting role.
@Suite("Roles: the service, the owner and reporting", .serialized, .timeLimit(.minutes(5)))
struct RolesTests {
    /// A migrated database with the projections' tables (as `tally migrate` leaves it), and a login that is a
    /// member of `group`; both are dropped afterwards.
    static func with(
        login group: String, _ body: (_ url: String, _ ownerURL: String, _ login: String) async throws -> Void
    ) async throws {
        let (name, ownerURL) = try await TestDatabase.create()
        let login = "t_login_" + UUID().uuidString.lowercased().prefix(8)
        try await TestDatabase.admin("CREATE ROLE \(login) LOGIN NOSUPERUSER NOBYPASSRLS IN ROLE \(group)")
        do {
            try await ProjectionTables.create(ProductProjections.all, databaseURL: ownerURL, schema: .default)
            let url = "postgresql://\(login)@/\(name)?host=\(TestDatabase.host)"
            try await body(url, ownerURL, login)
        } catch {
            await TestDatabase.drop(name)
            try? await TestDatabase.admin("DROP ROLE IF EXISTS \(login)")
            throw error
        }
        await TestDatabase.drop(name)
        try await TestDatabase.admin("DROP ROLE IF EXISTS \(login)")
    }

    @Test(
        "the service as a plain member of tally_service: tenant, key, secrets, a batch of runs and an event stream work, doctor passes, migrate is refused"
    )
    func serviceLogin() async throws {
        try await Self.with(login: "tally_service") { url, ownerURL, login in
            let store = EventStore(
                configuration: .init(
                    databaseURL: url, maxConnections: 8, acquireTimeout: .seconds(20), pollInterval: .milliseconds(100),
                    applicationName: "tally-service-login"))
            defer { store.close() }
            #expect(
                try await store.pool.query("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
                    .first?.bool(0) == false)
            try await PoolerTests.driveFlow(store: store) {}

            let doctor = try await CLI.run(["doctor", "--database-url", url])
            #expect(doctor.status == 0, "\(doctor.stdout)\(doctor.stderr)")
            #expect(doctor.stdout.contains("PASS  login role"), "\(doctor.stdout)")

            let migrate = try await CLI.run(["migrate", "--database-url", url])
            #expect(migrate.status == 1)
            #expect(migrate.stderr.contains("\(login) is a service login"), "\(migrate.stderr)")
            // As the owner (TALLY_MIGRATE_DATABASE_URL) beside the service's DATABASE_URL, it runs.
            let owner = try await CLI.run(
                ["migrate"], environment: ["DATABASE_URL": url, "TALLY_MIGRATE_DATABASE_URL": ownerURL])
            #expect(owner.status == 0 && owner.stdout.contains("up to date"), "\(owner.stderr)")
            // A rebuild creates tables: as the login it cannot, with the owner's URL beside it, it can.
            let denied = try await CLI.run(["projections", "rebuild", "tenants"], environment: ["DATABASE_URL": url])
            #expect(denied.status == 1 && denied.stderr.contains("42501"), "\(denied.stderr)")
            let rebuilt = try await CLI.run(
                ["projections", "rebuild", "--all"],
                environment: ["DATABASE_URL": url, "TALLY_MIGRATE_DATABASE_URL": ownerURL])
            #expect(rebuilt.status == 0 && rebuilt.stdout.contains("tenants: rebuilt from"), "\(rebuilt.stderr)")
            // The service cannot change the schema.
            await #expect(throws: EventsError.self) {
                try await store.pool.query("CREATE TABLE tally.intruder (id int)")
            }
            await #expect(throws: EventsError.self) { try await store.pool.query("DROP TABLE tally.tenants") }
        }
    }

    @Test(
        "serve --migrate as a service login is refused; with TALLY_MIGRATE_DATABASE_URL it migrates as the owner, then runs as the login"
    )
    func serveMigrate() async throws {
        // The group roles are the cluster's: migrating the template makes sure they exist.
        _ = try await TestDatabase.template.value
        let (name, ownerURL) = try await TestDatabase.create(migrated: false)
        let login = "t_login_" + UUID().uuidString.lowercased().prefix(8)
        try await TestDatabase.admin("CREATE ROLE \(login) LOGIN NOSUPERUSER NOBYPASSRLS IN ROLE tally_service")
        let url = "postgresql://\(login)@/\(name)?host=\(TestDatabase.host)"
        let owner = try await PostgresConnection.connect(PostgresConfiguration(url: ownerURL))
        func cleanUp() async {
            owner.close()
            await TestDatabase.drop(name)
            try? await TestDatabase.admin("DROP ROLE IF EXISTS \(login)")
        }
        do {
            let arguments = ["serve", "--no-api", "--migrate", "--database-url", url]
            let refused = try await CLI.run(arguments, environment: ProjectionTakeoverTests.environment)
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("\(login) is a service login"), "\(refused.stderr)")
            #expect(
                try await owner.query("SELECT count(*) FROM pg_namespace WHERE nspname = 'tally'").first?.int(0) == 0)

            let serve = try Subprocess(
                CLI.binary, arguments,
                environment: ProjectionTakeoverTests.environment.merging(["TALLY_MIGRATE_DATABASE_URL": ownerURL]) {
                    $1
                })
            // Every projection leads, as the login: the checkpoint rows are the service's writes.
            try await Eventually.wait("every projection to start as the service login") {
                try await owner.query("SELECT count(*) FROM tally.projection_checkpoints").first?.int(0)
                    == ProductProjections.all.count
            }
            #expect(
                try await owner.query("SELECT count(*) FROM tally.schema_migrations").first?.int(0)
                    == Migration.product.count)
            #expect(
                try await owner.query(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND usename = $2",
                    [.string(name), .string(login)]
                ).first?.int(0) ?? 0 > 0)
            serve.terminate()
            let exit = try await serve.finish(timeout: .seconds(60))
            #expect(exit.status == 0, "\(exit.stderr)")
        } catch {
            await cleanUp()
            throw error
        }
        await cleanUp()
    }

    @Test("the reporting role reads every tenant's read models and billing, and not the log, tenant_keys or key hashes")
    func reporting() async throws {
        try await Self.with(login: "tally_reporting") { url, ownerURL, _ in
            let owner = EventStore(configuration: .init(databaseURL: ownerURL, maxConnections: 4))
            defer { owner.close() }
            for name in ["Initech", "Hooli"] {
                let tenant = UUID()
                try await owner.append(
                    [try Fixtures.tenantCreated(tenant, name: name)], to: .tenant(tenant), tenantID: tenant,
                    expected: .noStream)
            }
            let runner = Task {
                await ProjectionRunner(
                    store: owner, projections: ProductProjections.all, options: ProjectionRunner.Options.forTests
                )
                .run()
            }
            defer { runner.cancel() }
            try await Eventually.wait("both tenants in the read model") {
                try await owner.pool.query("SELECT count(*) FROM tenants").first?.int(0) == 2
            }
            let reporting = try await PostgresConnection.connect(PostgresConfiguration(url: url))
            defer { reporting.close() }
            #expect(try await reporting.query("SELECT count(*) FROM tally.tenants").first?.int(0) == 2)
            for table in ["usage_counters", "workflow_runs", "workflows"] {
                #expect(try await reporting.query("SELECT count(*) FROM tally.\(table)").count == 1, "\(table)")
            }
            for table in ["events", "tenant_keys", "api_keys", "vendor_secrets", "streams"] {
                await #expect("\(table) is not readable") {
                    try await reporting.query("SELECT count(*) FROM tally.\(table)")
                } throws: { error in
                    (error as? EventsError)?.sqlState == "42501"
                }
            }
        }
    }
}
