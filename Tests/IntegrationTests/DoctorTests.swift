import Foundation
import Projections
import TestSupport
import Testing

@testable import Events

/// `tally doctor` against real databases: what a fresh one reports, and each sabotage named.
@Suite("tally doctor", .timeLimit(.minutes(5)))
struct DoctorTests {
    /// A migrated database whose projections a runner has started (their tables exist).
    static func withStartedDatabase(_ body: (EventStore, String) async throws -> Void) async throws {
        try await TestDatabase.withStore { store, url in
            let runner = Task {
                await ProjectionRunner(
                    store: store, projections: ProductProjections.all, options: ProjectionRunner.Options.forTests
                ).run()
            }
            try await Eventually.wait("every projection to start") {
                try await store.pool.query("SELECT count(*) FROM projection_checkpoints").first?.int(0)
                    == ProductProjections.all.count
            }
            runner.cancel()
            await runner.value
            try await body(store, url)
        }
    }

    static func doctor(_ url: String) async throws -> (status: Int32, checks: [DoctorCheck], text: String) {
        let result = try await CLI.run(["doctor", "--format", "json", "--database-url", url])
        let checks = try JSONDecoder().decode([DoctorCheck].self, from: Data(result.stdout.utf8))
        return (result.status, checks, result.stdout + result.stderr)
    }

    @Test("a fresh database passes every check but the login role's, which a superuser fails, and the text names each")
    func fresh() async throws {
        try await Self.withStartedDatabase { _, url in
            let (status, checks, text) = try await Self.doctor(url)
            #expect(status == 1)
            let failed = checks.filter { $0.status == .fail }
            #expect(!failed.isEmpty && failed.allSatisfy { $0.check == "login role" }, "\(text)")
            #expect(failed.contains { $0.detail.contains("is a superuser") })
            for name in [
                "migrations", "tables", "indexes", "functions", "row-level security", "grants", "pooler", "connections",
                "horizon", "projections", "feed order", "restore",
            ] {
                #expect(checks.contains { $0.check == name && $0.status == .pass }, "\(name): \(text)")
            }
            let plain = try await CLI.run(["doctor", "--database-url", url])
            #expect(plain.status == 1)
            #expect(plain.stdout.contains("PASS  migrations"))
            #expect(plain.stdout.contains("FAIL  login role"))
        }
    }

    @Test(
        "each sabotage is named and fails: a dropped policy, RLS off, a revoked or an extra grant, a dropped index, column or migration",
        arguments: [
            ("DROP POLICY tenant_isolation ON tally.tenants", "tally.tenants: policy tenant_isolation is missing"),
            ("ALTER TABLE tally.events NO FORCE ROW LEVEL SECURITY", "tally.events: row-level security is not forced"),
            ("ALTER TABLE tally.api_keys DISABLE ROW LEVEL SECURITY", "tally.api_keys: row-level security is off"),
            ("REVOKE SELECT ON tally.events FROM tally_app", "tally_app lacks SELECT on tally.events"),
            ("GRANT INSERT ON tally.events TO tally_app", "tally_app may INSERT tally.events"),
            ("GRANT SELECT ON tally.tenant_keys TO tally_app", "tally_app may SELECT tally.tenant_keys"),
            ("DROP INDEX tally.events_feed_idx", "index tally.events_feed_idx is missing"),
            ("DROP INDEX tally.workflow_runs_status_idx", "index tally.workflow_runs_status_idx is missing"),
            (
                "ALTER TABLE tally.work_queue DROP COLUMN leased_fingerprint",
                "column tally.work_queue.leased_fingerprint is missing"
            ),
            ("DELETE FROM tally.schema_migrations WHERE version = 11", "migration 11 (leader_leases) is not applied"),
        ])
    func sabotage(sql: String, named: String) async throws {
        try await Self.withStartedDatabase { store, url in
            try await TestDatabase.admin(sql, url: url)
            let (status, checks, text) = try await Self.doctor(url)
            #expect(status == 1)
            #expect(checks.contains { $0.status == .fail && $0.detail.contains(named) }, "\(text)")
        }
    }
}
