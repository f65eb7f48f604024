import Commands
import Foundation
import Projections
import TestSupport
import Testing

@testable import API
@testable import Events

@Suite("The tally CLI: projections and serve", .timeLimit(.minutes(5)))
struct ProjectionCLITests {
    @Test("projections list names every projection with its version and tables")
    func list() async throws {
        let result = try await CLI.run(["projections", "list"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("tenants v1 tenants"))
        #expect(result.stdout.contains("api_keys v1 api_keys"))
    }

    @Test(
        "serve keeps projections current, projections status reports them, and SIGTERM stops serve cleanly after appending the counted API calls"
    )
    func serveAndStatus() async throws {
        try await TestDatabase.withStore { store, url in
            let before = try await CLI.run(["projections", "status", "--database-url", url])
            #expect(before.status == 1, "not started yet")
            #expect(before.stdout.contains("not started"))

            let tenant = UUID()
            try await store.append(
                [try Fixtures.tenantCreated(tenant, name: "Globex")], to: .tenant(tenant), tenantID: tenant,
                expected: .noStream)
            let port = Int.random(in: 20_000..<40_000)
            // A key for the tenant, hashed under the pepper serve is given.
            let pepper = "serve-test-pepper-0123456789abcdef"
            let key = APIKeyFormat.generate()
            let keyID = UUID()
            try await store.append(
                [
                    try Fixtures.catalog.encode(
                        KeyIssued(
                            keyID: keyID, tenantID: tenant, name: "k", displayPrefix: APIKeyFormat.displayPrefix(key),
                            keyHash: APIKeyFormat.keyedHash(key, pepper: Array(pepper.utf8)), expiresAt: nil))
                ], to: .apiKey(keyID), tenantID: tenant, expected: .noStream)
            try await TestDatabase.createProjectionTables(url)
            let serve = try Subprocess(
                CLI.binary, ["serve", "--listen", "127.0.0.1:\(port)", "--database-url", TestDatabase.serviceURL(url)],
                environment: CLI.environment([
                    "TALLY_OPERATOR_TOKEN": String(repeating: "t", count: 40), "TALLY_KEY_PEPPER": pepper,
                ]))
            try await Eventually.wait("the tenants projection") {
                try await store.pool.query("SELECT name FROM tenants").first.map { try $0.string(0) } == "Globex"
            }
            try await Eventually.wait("the API to answer") {
                try await SSE.status(port: port, path: "/healthz", token: "") == 200
            }
            // The tenant is on the free plan (5 requests per second per key): count what was admitted.
            var admitted = 0
            for _ in 0..<7 {
                let status = try await SSE.status(port: port, path: "/v1/tenant", token: key)
                #expect(status == 200 || status == 429)
                if status == 200 { admitted += 1 }
            }
            #expect(admitted >= 5)
            let status = try await CLI.run(["projections", "status", "--json", "--database-url", url])
            #expect(status.status == 0, "\(status.stdout)")
            let json = try JSONDecoder().decode(JSONValue.self, from: Data(status.stdout.utf8))
            guard case .array(let projections)? = json["projections"] else {
                Issue.record("no projections in \(status.stdout)")
                return
            }
            #expect(projections.count == ProductProjections.all.count)
            #expect(projections.allSatisfy { $0["state"] == .string("running") })
            // Each names its leader: serve's lease, `pid=<serve's pid> <suffix>`.
            #expect(
                projections.allSatisfy { $0["leader"]?.stringValue?.hasPrefix("pid=\(serve.pid) ") == true },
                "\(status.stdout)")

            serve.terminate()
            let exit = try await serve.finish()
            #expect(exit.status == 0, "\(exit.stderr)")
            // Graceful shutdown appended every counted call, whether or not a periodic flush came first.
            let usage = try await store.read(stream: .usage(tenant: tenant))
            let calls = try usage.map { try store.catalog.decode(UsageRecorded.self, $0).apiCalls }.reduce(0, +)
            #expect(calls == admitted)
        }
    }

    @Test(
        "status lists a parked stream and exits 1; retry waits for the reader, reports each stream, and exits 0, 1 or 2"
    )
    func parkedAndRetry() async throws {
        try await TestDatabase.withStore { store, url in
            // A projection_runs row a faulty trigger refuses: it stands in for a bug, and dropping it for the fix.
            let tenant = UUID()
            try await store.append(
                [try Fixtures.tenantCreated(tenant, name: "Parked")], to: .tenant(tenant), tenantID: tenant,
                expected: .noStream)
            let blocked = UUID()
            try await store.append(
                [
                    try Fixtures.catalog.encode(
                        TenantCreated(tenantID: blocked, name: "Blocked", slug: "blocked", plan: "free"))
                ],
                to: .tenant(blocked), tenantID: blocked, expected: .noStream)

            let none = try await CLI.run(["projections", "retry", "--database-url", url])
            #expect(none.status == 0 && none.stdout.contains("no stream is parked"))
            let unknown = try await CLI.run(["projections", "retry", "nope", "--database-url", url])
            #expect(unknown.status == 64 && unknown.stderr.contains("no reader is called nope"))

            let runner = Task {
                await ProjectionRunner(
                    store: store, projections: [TenantsProjection()], options: ProjectionRunner.Options.forTests
                ).run()
            }
            defer { runner.cancel() }
            try await Eventually.wait("the tenants table") {
                try await store.pool.query("SELECT count(*) FROM tenants").first?.int(0) == 2
            }
            try await store.pool.query(
                """
                CREATE FUNCTION test_fault() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN IF NEW.tenant_id = '\(blocked.lowercased)' THEN RAISE EXCEPTION 'a bug'; END IF; RETURN NEW; END $$
                """)
            try await store.pool.query(
                "CREATE TRIGGER test_fault BEFORE UPDATE ON tenants FOR EACH ROW EXECUTE FUNCTION test_fault()")
            try await store.append(
                [try Fixtures.catalog.encode(TenantSuspended(tenantID: blocked, reason: "unpaid", source: .operator))],
                to: .tenant(blocked), tenantID: blocked, expected: .exactly(1))
            try await Eventually.wait("the stream to be parked") { try await !store.parkedStreams().isEmpty }

            let status = try await CLI.run(["projections", "status", "--database-url", url])
            #expect(status.status == 1)
            #expect(status.stdout.contains(StreamName.tenant(blocked).rawValue) && status.stdout.contains("a bug"))
            let json = try await CLI.run(["projections", "status", "--json", "--database-url", url])
            let parsed = try JSONDecoder().decode(JSONValue.self, from: Data(json.stdout.utf8))
            #expect(parsed["parkedStreams"]?[0]?["stream"] == .string(StreamName.tenant(blocked).rawValue))

            let failed = try await CLI.run(["projections", "retry", "tenants", "--database-url", url])
            #expect(failed.status == 1, "\(failed.stdout) \(failed.stderr)")
            #expect(failed.stdout.contains("still parked: ") && failed.stdout.contains("a bug"))

            try await store.pool.query("DROP TRIGGER test_fault ON tenants")
            let fixed = try await CLI.run(["projections", "retry", "--database-url", url])
            #expect(fixed.status == 0, "\(fixed.stdout) \(fixed.stderr)")
            #expect(fixed.stdout.contains("\(StreamName.tenant(blocked).rawValue): applied"))
            #expect(
                try await store.pool.query("SELECT status FROM tenants WHERE tenant_id = $1", [.uuid(blocked)]).first?
                    .string(0) == "suspended")

            // With no reader running, the request is not taken up: exit 2 after the timeout.
            runner.cancel()
            await runner.value
            try await store.pool.query(
                """
                INSERT INTO parked_streams (reader, stream_id, tx_id, global_position, stream_version, event_type, from_version, error)
                VALUES ('tenants', 'tenant-00000000-0000-0000-0000-000000000001', '1', 1, 1, 'TenantCreated', 1, 'by hand')
                """)
            let nobody = try await CLI.run(["projections", "retry", "--timeout-seconds", "1", "--database-url", url])
            #expect(nobody.status == 2 && nobody.stderr.contains("is the service running?"))
        }
    }
}
