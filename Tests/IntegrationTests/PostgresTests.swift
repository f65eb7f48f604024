import Foundation
import TestSupport
import Testing

@testable import Events

@Suite("The libpq layer", .timeLimit(.minutes(5)))
struct PostgresTests {
    @Test("typed parameters and binary results round-trip")
    func typedRoundTrip() async throws {
        let connection = try await PostgresConnection.connect(PostgresConfiguration(url: TestDatabase.adminURL))
        defer { connection.close() }
        let id = UUID()
        let date = Date(timeIntervalSince1970: 1_800_000_000.25)
        let rows = try await connection.query(
            "SELECT $1::int8, $2::text, $3::uuid, $4::timestamptz, $5::bytea, $6::bool, NULL::text, $7::int8[], pg_current_xact_id()",
            [
                .int64(-42), .string("héllo"), .uuid(id), .timestamp(date), .bytes([0, 1, 255]), .bool(true),
                .int64Array([1, 2]),
            ])
        let row = try #require(rows.first)
        #expect(try row.int64(0) == -42)
        #expect(try row.string(1) == "héllo")
        #expect(try row.uuid(2) == id)
        #expect(try row.date(3) == date)
        #expect(try row.bytes(4) == [0, 1, 255])
        #expect(try row.bool(5))
        #expect(try row.optionalString(6) == nil)
        #expect(try row.uint64(8) > 0)
        #expect(throws: EventsError.self) { try row.int64(1) }
        #expect(throws: EventsError.self) { try row.string(6) }
    }

    @Test("errors carry the SQLSTATE and never the query's parameter values")
    func errorsRedactParameters() async throws {
        let connection = try await PostgresConnection.connect(PostgresConfiguration(url: TestDatabase.adminURL))
        defer { connection.close() }
        let secret = "tly_Sup3rSecretValue0123456789"
        await #expect { try await connection.query("SELECT $1::text::uuid", [.string(secret)]) } throws: { error in
            guard let error = error as? EventsError else { return false }
            return error.sqlState == "22P02" && error.code == .query
                && !error.description.contains(secret) && !error.debugDescription.contains(secret)
        }
        // The connection is still usable after a statement error.
        #expect(try await connection.query("SELECT 1").first?.int64(0) == 1)
    }

    @Test("COPY in and out move rows in bulk")
    func copy() async throws {
        let connection = try await PostgresConnection.connect(PostgresConfiguration(url: TestDatabase.adminURL))
        defer { connection.close() }
        try await connection.execute("CREATE TEMP TABLE copy_test (id int, name text)")
        let chunks = (1...1000).map { Array("\($0),name \($0)\n".utf8) }
        let copied = try await connection.copyIn("COPY copy_test FROM STDIN (FORMAT csv)", chunks: chunks)
        #expect(copied == 1000)
        let collected = CollectedBytes()
        try await connection.copyOut("COPY (SELECT * FROM copy_test ORDER BY id) TO STDOUT (FORMAT csv)") {
            collected.append($0)
        }
        #expect(collected.text == chunks.map { String(decoding: $0, as: UTF8.self) }.joined())
        // A malformed row fails the whole COPY; nothing is copied.
        await #expect(throws: EventsError.self) {
            try await connection.copyIn(
                "COPY copy_test FROM STDIN (FORMAT csv)", chunks: [Array("1,a\nnot-a-number,b\n".utf8)])
        }
        #expect(try await connection.query("SELECT count(*) FROM copy_test").first?.int64(0) == 1000)
    }

    @Test("LISTEN receives NOTIFY from another session")
    func listenNotify() async throws {
        let listener = try await PostgresConnection.connect(PostgresConfiguration(url: TestDatabase.adminURL))
        let sender = try await PostgresConnection.connect(PostgresConfiguration(url: TestDatabase.adminURL))
        defer {
            listener.close()
            sender.close()
        }
        let channel = "test_\(UUID().uuidString.prefix(8).lowercased())"
        try await listener.execute("LISTEN \(channel)")
        #expect(try await listener.waitForNotifications(timeoutMilliseconds: 10).isEmpty)
        try await sender.query("SELECT pg_notify($1, $2)", [.string(channel), .string("hello")])
        var received: [PostgresConnection.Notification] = []
        for _ in 0..<20 where received.isEmpty {
            received = try await listener.waitForNotifications(timeoutMilliseconds: 250)
        }
        #expect(received.map(\.payload) == ["hello"])
        #expect(received.first?.senderPID == sender.backendPID)
    }

    @Test("a caller waits at most the acquire timeout for a connection")
    func acquireTimeout() async throws {
        let pool = PostgresPool(
            configuration: PostgresConfiguration(url: TestDatabase.adminURL),
            options: .init(maxConnections: 1, acquireTimeout: .milliseconds(200)))
        defer { pool.close() }
        let holder = Task { try await pool.withConnection { _ in try await Task.sleep(for: .seconds(2)) } }
        try await Task.sleep(for: .milliseconds(100))
        await #expect { try await pool.query("SELECT 1") } throws: { EventsError.Code.timeout.matches($0) }
        try await holder.value
        #expect(try await pool.query("SELECT 1").first?.int64(0) == 1)
    }

    @Test("a connection left inside a transaction is not reused")
    func abandonedTransaction() async throws {
        let pool = PostgresPool(
            configuration: PostgresConfiguration(url: TestDatabase.adminURL), options: .init(maxConnections: 1))
        defer { pool.close() }
        let first = try await pool.withConnection { connection in
            try await connection.execute("BEGIN")
            return connection.backendPID
        }
        let second = try await pool.withConnection { connection in
            #expect(!connection.isInTransaction)
            return connection.backendPID
        }
        #expect(first != second)
    }

    @Test("the pool survives a PostgreSQL restart: fails fast while it is down, recovers without a restart of ours")
    func poolSurvivesRestart() async throws {
        try await PrivateServer.with { try await exerciseRestart($0) }
    }

    private func exerciseRestart(_ server: PrivateServer) async throws {
        try await server.run("start")
        let pool = PostgresPool(
            configuration: PostgresConfiguration(url: server.url),
            options: .init(maxConnections: 4, acquireTimeout: .seconds(30)))
        defer { pool.close() }
        // Open several connections so that the pool holds idle ones from before the outage.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 { group.addTask { try await pool.query("SELECT pg_sleep(0.05)") } }
            try await group.waitForAll()
        }
        #expect(pool.statistics.open == 4)

        try await server.run("stop")
        for _ in 0..<5 {
            // `.unavailable`, not `.timeout`: the caller learns at once instead of waiting 30 s.
            await #expect { try await pool.query("SELECT 1") } throws: { EventsError.Code.unavailable.matches($0) }
        }

        try await server.run("start")
        #expect(try await pool.query("SELECT 1").first?.int64(0) == 1)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 { group.addTask { try await pool.query("SELECT 1") } }
            try await group.waitForAll()
        }

        // A restart while connections sit idle: at most the first call sees the broken connection.
        try await server.run("restart")
        var failures = 0
        for _ in 0..<3 {
            do { try await pool.query("SELECT 1") } catch { failures += 1 }
        }
        #expect(failures <= 1)
        #expect(try await pool.query("SELECT 1").first?.int64(0) == 1)
    }
}

/// Bytes gathered from a COPY OUT callback.
final class CollectedBytes: @unchecked Sendable {
    private let lock = NSLock()
    private var bytes: [UInt8] = []
    func append(_ chunk: [UInt8]) { lock.withLock { bytes += chunk } }
    var text: String { lock.withLock { String(decoding: bytes, as: UTF8.self) } }
}

/// A PostgreSQL server of the test's own (scripts/pg.sh), for tests that stop and restart it.
struct PrivateServer {
    let directory: String

    init() throws {
        let scratch = ProcessInfo.processInfo.environment["TALLY_TEST_SCRATCH"] ?? NSTemporaryDirectory()
        directory = scratch + "/pg-" + UUID().uuidString.prefix(8).lowercased()
    }

    var url: String { url(database: "postgres") }

    func url(database: String) -> String { "postgresql://postgres@/\(database)?host=\(directory)" }

    /// Runs `body` with a new server (not started yet), then stops and removes it, whatever `body` did.
    static func with<T>(_ body: (PrivateServer) async throws -> T) async throws -> T {
        let server = try PrivateServer()
        do {
            let result = try await body(server)
            await server.destroy()
            return result
        } catch {
            await server.destroy()
            throw error
        }
    }

    func run(_ command: String) async throws {
        let script =
            ProcessInfo.processInfo.environment["TALLY_PG_SCRIPT"]
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../scripts/pg.sh")
            .path
        let result = try await Subprocess.run(
            script, [command, directory, "--fast"], environment: ProcessInfo.processInfo.environment)
        guard result.status == 0 else {
            throw EventsError(.unavailable, "pg.sh \(command) failed with status \(result.status): \(result.stderr)")
        }
    }

    func destroy() async {
        try? await run("stop")
        try? FileManager.default.removeItem(atPath: directory)
    }
}
