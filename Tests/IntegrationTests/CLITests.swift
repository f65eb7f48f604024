import Foundation
import TestSupport
import Testing

@testable import Events

/// The `tally` executable run end to end: exit codes, help, output.
struct CLIResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

enum CLI {
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["TALLY_BIN"] { return path }
        // `swift test` runs from the package root; the binary sits next to the test bundle.
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(
            "tally"
        ).path
    }

    static func environment(_ extra: [String: String]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "DATABASE_URL")
        env.merge(extra) { $1 }
        return env
    }

    static func run(_ arguments: [String], environment extra: [String: String] = [:]) async throws -> CLIResult {
        let result = try await Subprocess.run(binary, arguments, environment: environment(extra))
        return CLIResult(status: result.status, stdout: result.stdout, stderr: result.stderr)
    }
}

@Suite("The tally CLI", .timeLimit(.minutes(5)))
struct CLITests {
    @Test("help lists the commands and exits 0")
    func help() async throws {
        let result = try await CLI.run(["--help"])
        #expect(result.status == 0)
        for command in ["serve", "migrate", "log", "bench"] {
            #expect(result.stdout.contains(command))
        }
        let log = try await CLI.run(["log", "tail", "--help"])
        #expect(log.status == 0)
        #expect(log.stdout.contains("--follow"))
    }

    @Test("without a database URL, commands say so and exit with a usage error")
    func missingDatabase() async throws {
        let result = try await CLI.run(["migrate"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("DATABASE_URL"))
    }

    @Test("an unreachable database is a clear error and exit code 1")
    func unreachable() async throws {
        let result = try await CLI.run(["migrate", "--database-url", "postgresql://postgres@/nope?host=/nonexistent"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("unavailable"))
    }

    @Test("migrate applies, then reports up to date; --status lists every migration")
    func migrate() async throws {
        let (name, url) = try await TestDatabase.create(migrated: false)
        defer { Task { await TestDatabase.drop(name) } }
        let first = try await CLI.run(["migrate"], environment: ["DATABASE_URL": url])
        #expect(first.status == 0)
        #expect(first.stdout.contains("applied 0001 event_log"))
        let second = try await CLI.run(["migrate", "--database-url", url])
        #expect(second.status == 0)
        #expect(second.stdout.contains("up to date"))
        let status = try await CLI.run(["migrate", "--status", "--database-url", url])
        #expect(status.status == 0)
        #expect(status.stdout.contains("0001 event_log applied at "))
    }

    @Test("TALLY_SCHEMA puts a second installation beside the first; a bad schema or pool mode is a usage error")
    func schemas() async throws {
        let (name, url) = try await TestDatabase.create()
        defer { Task { await TestDatabase.drop(name) } }
        let second = try await CLI.run(["migrate"], environment: ["DATABASE_URL": url, "TALLY_SCHEMA": "tally_two"])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stdout.contains("applied 0001 event_log"))
        let both = try await TestDatabase.count(
            url, "SELECT count(*) FROM pg_tables WHERE tablename = 'events' AND schemaname IN ('tally', 'tally_two')")
        #expect(both == 2)
        let status = try await CLI.run(
            ["log", "tail"], environment: ["DATABASE_URL": url, "TALLY_SCHEMA": "tally_two"])
        #expect(status.status == 0 && status.stdout.isEmpty, "\(status.stderr)")
        for bad in ["public", "Tally", "1tally", "pg_tally", "tally;drop"] {
            let refused = try await CLI.run(["migrate"], environment: ["DATABASE_URL": url, "TALLY_SCHEMA": bad])
            #expect(
                refused.status == 64 && refused.stderr.contains("TALLY_SCHEMA must be"), "\(bad): \(refused.stderr)")
        }
        let mode = try await CLI.run(["migrate"], environment: ["DATABASE_URL": url, "TALLY_POOL_MODE": "statement"])
        #expect(mode.status == 64 && mode.stderr.contains("TALLY_POOL_MODE must be"))
    }

    @Test("log show prints a stream as JSON lines with decoded payloads; log tail filters by type and tenant")
    func logViews() async throws {
        try await TestDatabase.withStore { store, url in
            let tenant = UUID()
            let stream = StreamName.tenant(tenant)
            try await store.append(
                [try Fixtures.tenantCreated(tenant, name: "Initech")], to: stream, tenantID: tenant, expected: .noStream
            )
            try await store.append(
                [try Fixtures.usage(tenant: tenant, calls: 3)], to: .usage(tenant: tenant), tenantID: tenant,
                expected: .any)
            try await store.append([try Fixtures.runStarted()], to: .run(UUID()), tenantID: UUID(), expected: .noStream)
            try await TestDatabase.settle(store)

            let show = try await CLI.run(["log", "show", stream.rawValue, "--database-url", url])
            #expect(show.status == 0)
            let lines = show.stdout.split(separator: "\n")
            #expect(lines.count == 1)
            let line = try JSONDecoder().decode(JSONValue.self, from: Data(lines[0].utf8))
            #expect(line["type"] == .string("TenantCreated"))
            #expect(line["payload"]?["name"] == .string("Initech"))
            #expect(line["stream"] == .string(stream.rawValue))

            let tail = try await CLI.run(["log", "tail", "--type", "UsageRecorded", "--database-url", url])
            #expect(tail.status == 0)
            #expect(tail.stdout.split(separator: "\n").count == 1)
            #expect(tail.stdout.contains("\"apiCalls\":3"))

            let byTenant = try await CLI.run(["log", "tail", "--tenant", tenant.lowercased, "--database-url", url])
            #expect(byTenant.stdout.split(separator: "\n").count == 2)

            let missing = try await CLI.run(["log", "show", "run-doesnotexist", "--database-url", url])
            #expect(missing.status == 1)
            #expect(missing.stderr.contains("no events"))

            let invalid = try await CLI.run(["log", "show", "Not A Stream", "--database-url", url])
            #expect(invalid.status == 64)
            let badTenant = try await CLI.run(["log", "tail", "--tenant", "nope", "--database-url", url])
            #expect(badTenant.status == 64)
        }
    }

    @Test("an event that does not decode is printed with an error naming its position; the others still print")
    func corruptEvent() async throws {
        try await TestDatabase.withStore { store, url in
            let stream = StreamName.run(UUID())
            try await store.append([try Fixtures.runStarted()], to: stream, tenantID: nil, expected: .noStream)
            // A row written by a future build with a codec this one does not know, then a good one after it.
            let rows = try await store.pool.query(
                """
                INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, codec, payload)
                VALUES ($1, 2, gen_random_uuid(), 'RunStarted', 1, 9, '\\x00'::bytea) RETURNING global_position
                """, [.string(stream.rawValue)])
            let position = try rows[0].int64(0)
            try await store.pool.query(
                "UPDATE streams SET version = 2 WHERE stream_id = $1", [.string(stream.rawValue)])
            try await store.append([try Fixtures.runStarted()], to: stream, tenantID: nil, expected: .exactly(2))

            let show = try await CLI.run(["log", "show", stream.rawValue, "--database-url", url])
            #expect(show.status == 0)
            let lines = try show.stdout.split(separator: "\n").map {
                try JSONDecoder().decode(JSONValue.self, from: Data($0.utf8))
            }
            #expect(lines.count == 3)
            #expect(lines[0]["error"] == nil)
            guard case .string(let error)? = lines[1]["error"] else {
                Issue.record("the corrupt event has no error field")
                return
            }
            #expect(error.contains("codec 9") && error.contains("position \(position)"))
            #expect(lines[2]["payload"]?["input"] != nil)

            // A reader of typed events gets the same clear error.
            let recorded = try await store.read(stream: stream)
            #expect { try store.catalog.decode(recorded[1]) } throws: { ($0 as? EventsError)?.position == position }
        }
    }

    @Test("log tail --follow prints events appended after it started")
    func follow() async throws {
        try await TestDatabase.withStore { store, url in
            let process = try Subprocess(
                CLI.binary, ["log", "tail", "--follow", "--database-url", url], environment: CLI.environment([:]))
            // Whether the process reads its tail before or after this append, it prints the event once.
            let event = try Fixtures.runStarted()
            try await store.append([event], to: .run(UUID()), tenantID: nil, expected: .noStream)
            let text = try await process.readStdout(timeout: .seconds(60)) { $0.contains("\n") }
            process.terminate()
            _ = try await process.finish()
            #expect(text.contains(event.id.lowercased))
        }
    }
}
