@testable import Events
import Foundation
import Testing

@Suite("The log is append-only, enforced by the database", .timeLimit(.minutes(5)))
struct AppendOnlyTests {
    @Test("UPDATE, DELETE and TRUNCATE of events fail, and the rows are unchanged", arguments: [
        "UPDATE events SET event_type = 'Tampered'",
        "DELETE FROM events",
        "TRUNCATE events",
    ])
    func rejectsChanges(sql: String) async throws {
        try await TestDatabase.withStore { store, _ in
            let stream = StreamName.run(UUID())
            try await store.append([try Fixtures.runStarted(), try Fixtures.runStarted()], to: stream, tenantID: nil, expected: .noStream)
            let before = try await store.read(stream: stream).map { "\($0.id) \($0.type) \($0.storedPayload)" }

            // Even the table owner (here a superuser) is stopped by the triggers.
            await #expect { try await store.pool.query(sql) } throws: { error in
                guard let error = error as? EventsError else { return false }
                return error.code == .appendOnly && error.message.contains("append-only")
            }
            // The application role has no UPDATE, DELETE or TRUNCATE privilege in the first place.
            await #expect { try await store.pool.withTransaction { connection in
                try await connection.execute("SET LOCAL ROLE tally_app")
                try await connection.execute(sql)
            } } throws: { ($0 as? EventsError)?.sqlState == "42501" }

            let after = try await store.read(stream: stream).map { "\($0.id) \($0.type) \($0.storedPayload)" }
            #expect(after == before)
        }
    }

    @Test("the application role can append and read with only SELECT and INSERT on the log")
    func applicationRoleAppends() async throws {
        try await TestDatabase.withStore { store, _ in
            let privileges = try await store.pool.query(
                """
                SELECT privilege_type FROM information_schema.role_table_grants
                WHERE grantee = 'tally_app' AND table_name = 'events' ORDER BY privilege_type
                """
            ).map { try $0.string(0) }
            #expect(privileges == ["INSERT", "SELECT"])
            let event = try Fixtures.runStarted()
            let stream = StreamName.run(UUID())
            try await store.pool.withTransaction { connection in
                try await connection.execute("SET LOCAL ROLE tally_app")
                _ = try await store.append(
                    [StreamAppend(stream: stream, tenantID: nil, expected: .noStream, events: [event])], on: connection)
            }
            #expect(try await store.read(stream: stream).map(\.id) == [event.id])
        }
    }
}
