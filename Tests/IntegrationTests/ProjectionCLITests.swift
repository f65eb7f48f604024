@testable import API
@testable import Events
import Foundation
import Projections
import Testing

@Suite("The tally CLI: projections and serve")
struct ProjectionCLITests {
    @Test("projections list names every projection with its version and tables")
    func list() async throws {
        let result = try await CLI.run(["projections", "list"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("tenants v1 tenants"))
        #expect(result.stdout.contains("api_keys v1 api_keys"))
    }

    @Test("serve keeps projections current, projections status reports them, and SIGTERM stops serve cleanly after appending the counted API calls")
    func serveAndStatus() async throws {
        try await TestDatabase.withStore { store, url in
            let before = try await CLI.run(["projections", "status", "--database-url", url])
            #expect(before.status == 1, "not started yet")
            #expect(before.stdout.contains("not started"))

            let tenant = UUID()
            try await store.append([try Fixtures.tenantCreated(tenant, name: "Globex")], to: .tenant(tenant), tenantID: tenant, expected: .noStream)
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
            let serve = try Subprocess(
                CLI.binary, ["serve", "--listen", "127.0.0.1:\(port)", "--database-url", url],
                environment: CLI.environment(["TALLY_OPERATOR_TOKEN": String(repeating: "t", count: 40), "TALLY_KEY_PEPPER": pepper]))
            try await Eventually.wait("the tenants projection") {
                try await store.pool.query("SELECT name FROM tenants").first.map { try $0.string(0) } == "Globex"
            }
            try await Eventually.wait("the API to answer") { try await SSE.status(port: port, path: "/healthz", token: "") == 200 }
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

            serve.terminate()
            let exit = try await serve.finish()
            #expect(exit.status == 0, "\(exit.stderr)")
            // Graceful shutdown appended every counted call, whether or not a periodic flush came first.
            let usage = try await store.read(stream: .usage(tenant: tenant))
            let calls = try usage.map { try store.catalog.decode(UsageRecorded.self, $0).apiCalls }.reduce(0, +)
            #expect(calls == admitted)
        }
    }
}
