import Foundation
import TestSupport
import Testing

@testable import Events

@Suite("The log is append-only, enforced by the database", .timeLimit(.minutes(5)))
struct AppendOnlyTests {
    @Test(
        "UPDATE, DELETE and TRUNCATE of events fail, and the rows are unchanged",
        arguments: [
            "UPDATE events SET event_type = 'Tampered'",
            "DELETE FROM events",
            "TRUNCATE events",
        ])
    func rejectsChanges(sql: String) async throws {
        try await TestDatabase.withStore { store, _ in
            let stream = StreamName.run(UUID())
            try await store.append(
                [try Fixtures.runStarted(), try Fixtures.runStarted()], to: stream, tenantID: nil, expected: .noStream)
            let before = try await store.read(stream: stream).map { "\($0.id) \($0.type) \($0.storedPayload)" }

            // Even the table owner (here a superuser) is stopped by the triggers.
            await #expect { try await store.pool.query(sql) } throws: { error in
                guard let error = error as? EventsError else { return false }
                return error.code == .appendOnly && error.message.contains("append-only")
            }
            // The application role has no UPDATE, DELETE or TRUNCATE privilege in the first place.
            await #expect {
                try await store.pool.withTransaction { connection in
                    try await connection.execute("SET LOCAL ROLE tally_app")
                    try await connection.execute(sql)
                }
            } throws: { ($0 as? EventsError)?.sqlState == "42501" }

            let after = try await store.read(stream: stream).map { "\($0.id) \($0.type) \($0.storedPayload)" }
            #expect(after == before)
        }
    }

    @Test("a tenant session (the application role) reads its own tenant's events only and cannot append")
    func applicationRoleReadsOnly() async throws {
        try await TestDatabase.withStore { store, _ in
            let privileges = try await store.pool.query(
                """
                SELECT privilege_type FROM information_schema.role_table_grants
                WHERE grantee = 'tally_app' AND table_name IN ('events', 'streams') ORDER BY privilege_type
                """
            ).map { try $0.string(0) }
            #expect(privileges == ["SELECT", "SELECT"])
            let (mine, theirs) = (UUID(), UUID())
            for tenant in [mine, theirs] {
                try await store.append(
                    [try Fixtures.runStarted(tenant: tenant)], to: .run(UUID()), tenantID: tenant, expected: .noStream)
            }
            try await store.append([try Fixtures.runStarted()], to: .run(UUID()), tenantID: nil, expected: .noStream)
            try await store.pool.withTransaction { connection in
                try await connection.execute(
                    "SET LOCAL ROLE tally_app; SET LOCAL tally.tenant_id = '\(mine.lowercased)'")
                // A query that forgot its WHERE sees this tenant's rows only: no other tenant's, no platform stream.
                let seen = try await connection.query(
                    "SELECT (SELECT array_agg(DISTINCT coalesce(tenant_id::text, 'none'))::text FROM events), "
                        + "(SELECT array_agg(DISTINCT coalesce(tenant_id::text, 'none'))::text FROM streams)"
                ).first
                #expect(try seen?.string(0) == "{\(mine.lowercased)}")
                #expect(try seen?.string(1) == "{\(mine.lowercased)}")
            }
            let event = try Fixtures.runStarted(tenant: mine)
            await #expect {
                try await store.pool.withTransaction { connection in
                    try await connection.execute(
                        "SET LOCAL ROLE tally_app; SET LOCAL tally.tenant_id = '\(mine.lowercased)'")
                    _ = try await store.append(
                        [StreamAppend(stream: .run(UUID()), tenantID: mine, expected: .noStream, events: [event])],
                        on: connection)
                }
            } throws: { ($0 as? EventsError)?.sqlState == "42501" }
        }
    }
}
