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

    @Test("serve keeps projections current, projections status reports them, and SIGTERM stops serve cleanly")
    func serveAndStatus() async throws {
        try await TestDatabase.withStore { store, url in
            let before = try await CLI.run(["projections", "status", "--database-url", url])
            #expect(before.status == 1, "not started yet")
            #expect(before.stdout.contains("not started"))

            let tenant = UUID()
            try await store.append([try Fixtures.tenantCreated(tenant, name: "Globex")], to: .tenant(tenant), tenantID: tenant, expected: .noStream)
            let port = Int.random(in: 20_000..<40_000)
            let serve = try Subprocess(
                CLI.binary, ["serve", "--development", "--listen", "127.0.0.1:\(port)", "--database-url", url], environment: CLI.environment([:]))
            try await Eventually.wait("the tenants projection") {
                try await store.pool.query("SELECT name FROM tenants").first.map { try $0.string(0) } == "Globex"
            }
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
        }
    }
}
