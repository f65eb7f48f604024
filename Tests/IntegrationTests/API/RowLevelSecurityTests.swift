import Foundation
import Hummingbird
import HummingbirdTesting
import TestSupport
import Testing

@testable import API
@testable import Events
@testable import Projections

/// Row-level security as the last line: a tenant's session that forgot its WHERE, or that tries to make
/// itself the operator, sees its own rows only; and each policy is what stops it (replaced by `USING (true)`,
/// the same probe sees the other tenant).
@Suite("Row-level security holds without the queries' WHERE", .timeLimit(.minutes(5)))
struct RowLevelSecurityTests {
    /// Rows of other tenants that a session of `tenant` sees in `table`, after trying to forge the operator
    /// scope with the old setting.
    static func foreignRows(_ table: String, tenant: String, on connection: PostgresConnection) async throws -> Int64 {
        try await connection.execute(
            "SET LOCAL ROLE tally_app; SET LOCAL tally.tenant_id = '\(tenant)'; SET LOCAL tally.operator = 'on'")
        return try await connection.query(
            "SELECT count(*) FROM \(table) WHERE tenant_id IS DISTINCT FROM $1::uuid", [.text(tenant)]
        ).first?.int64(0) ?? -1
    }

    @Test("every policy of every table is load-bearing, the log's included, and no setting grants the operator scope")
    func policiesAreLoadBearing() async throws {
        try await APIHarness.with { harness, client in
            var tenants: [String] = []
            for slug in ["alpha", "bravo"] {
                let (tenant, key, _) = try await client.tenantWithKey(slug)
                tenants.append(tenant)
                let workflow = try #require(
                    try await client.call(
                        .post, "/v1/workflows", token: key, json: #"{"name":"wf","finders":["prospeo"]}"#,
                        headers: [.idempotencyKey: #""define-\#(slug)""#]
                    ).string("id"))
                let run = try await client.call(
                    .post, "/v1/runs", token: key,
                    json: #"{"workflowId":"\#(workflow)","input":{"linkedinUrl":"https://www.linkedin.com/in/a"}}"#)
                #expect(run.status == .accepted, "\(run.text)")
            }
            let store = harness.store
            let tables = try await store.pool.query(
                "SELECT tablename, policyname FROM pg_policies WHERE schemaname = 'tally' ORDER BY tablename"
            ).map { (try $0.string(0), try $0.string(1)) }
            var proven: [String] = []
            for (table, policy) in tables where policy == "tenant_isolation" {
                // Only where both tenants have rows can a leak be seen.
                let owners = try await store.pool.query(
                    "SELECT count(DISTINCT tenant_id) FROM \(table) WHERE tenant_id = ANY($1::uuid[])",
                    [.stringArray(tenants)]
                ).first?.int64(0)
                guard owners == 2 else { continue }
                let guarded = try await store.pool.withTransaction { connection in
                    try await Self.foreignRows(table, tenant: tenants[0], on: connection)
                }
                #expect(guarded == 0, "\(table): a tenant session sees other tenants' rows")
                // The same probe with the policy opened up: the other tenant shows, so the policy is what hid it.
                let opened = try await store.pool.withConnection { connection in
                    try await connection.execute("BEGIN; ALTER POLICY \(policy) ON \(table) USING (true)")
                    do {
                        let seen = try await Self.foreignRows(table, tenant: tenants[0], on: connection)
                        try await connection.execute("ROLLBACK")
                        return seen
                    } catch {
                        try? await connection.execute("ROLLBACK")
                        throw error
                    }
                }
                #expect(opened > 0, "\(table): the probe cannot tell whether the policy matters")
                proven.append(table)
            }
            let required: Set = [
                "events", "streams", "tenants", "api_keys", "workflows", "workflow_runs", "idempotency_keys",
            ]
            #expect(required.isSubset(of: Set(proven)), "checked: \(proven.sorted())")

            // What the service does not use, the application role does not have.
            let writable = try await store.pool.query(
                """
                SELECT tablename FROM pg_tables WHERE schemaname = 'tally'
                  AND (has_table_privilege('tally_app', format('%I.%I', schemaname, tablename), 'INSERT')
                    OR has_table_privilege('tally_app', format('%I.%I', schemaname, tablename), 'UPDATE')
                    OR has_table_privilege('tally_app', format('%I.%I', schemaname, tablename), 'DELETE'))
                ORDER BY 1
                """
            ).map { try $0.string(0) }
            #expect(writable == ["idempotency_keys"])
        }
    }
}
