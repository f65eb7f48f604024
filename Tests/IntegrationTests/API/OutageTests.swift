import Foundation
import Hummingbird
import HummingbirdTesting
import TestSupport
import Testing

@testable import API
@testable import Events
@testable import Projections

/// The API while its PostgreSQL is down, on a server of the test's own: every route that needs the database
/// answers 503 with `Retry-After`, and the same requests succeed once it is back, without a restart.
@Suite("API: database outage", .timeLimit(.minutes(5)))
struct OutageTests {
    @Test(
        "with PostgreSQL stopped every route that needs it is a 503 problem with Retry-After; after it is back the same requests succeed"
    )
    func outage() async throws {
        try await PrivateServer.with { server in
            try await server.run("start")
            try await Migrator(databaseURL: server.url, migrations: Migration.product).migrate()
            try await exercise(server)
        }
    }

    private func exercise(_ server: PrivateServer) async throws {
        let store = EventStore(
            configuration: .init(
                databaseURL: server.url, maxConnections: 8, acquireTimeout: .seconds(5),
                pollInterval: .milliseconds(100)))
        defer { store.close() }
        let services = await APIServices.start(settings: APIHarness.settings(), store: store, logger: APIHarness.logger)
        let runner = Task {
            await ProjectionRunner(
                store: store, projections: ProductProjections.all, options: ProjectionRunner.Options.forTests
            )
            .run()
        }
        let background = Task { await services.run() }
        defer {
            runner.cancel()
            background.cancel()
        }
        try await buildApplication(services: services, logger: APIHarness.logger).test(.router) { client in
            let (tenant, key, _) = try await client.tenantWithKey("acme")
            let workflow = try await client.workflow(key)
            let start = #"{"workflowId":"\#(workflow)","input":{"linkedinUrl":"https://www.linkedin.com/in/a"}}"#
            let requests: [(HTTPRequest.Method, String, String?, String?)] = [
                (.post, "/v1/runs", key, start),
                (.get, "/v1/runs", key, nil),
                (.get, "/v1/workflows", key, nil),
                (.post, "/v1/workflows", key, #"{"name":"w","finders":["prospeo"]}"#),
                (.get, "/v1/tenant", key, nil),
                (.get, "/v1/usage", key, nil),
                (.post, "/v1/admin/tenants", APIHarness.operatorToken, #"{"name":"b","slug":"bravo","plan":"pro"}"#),
                (.post, "/v1/admin/tenants/\(tenant)/keys", APIHarness.operatorToken, #"{"name":"k"}"#),
                (.get, "/v1/admin/tenants", APIHarness.operatorToken, nil),
                (.get, "/readyz", nil, nil),
            ]
            for (method, path, token, body) in requests {
                let reply = try await client.call(method, path, token: token, json: body)
                #expect(reply.status.code < 300, "\(method) \(path) before the outage: \(reply.text)")
            }

            try await server.run("stop")
            for (method, path, token, body) in requests {
                let reply = try await client.call(method, path, token: token, json: body)
                #expect(reply.status == .serviceUnavailable, "\(method) \(path): \(reply.status) \(reply.text)")
                #expect(Int(reply.headers[.retryAfter] ?? "") ?? 0 >= 1, "\(method) \(path): Retry-After")
                #expect(reply.headers[.contentType] == "application/problem+json", "\(method) \(path)")
            }

            try await server.run("start")
            for (method, path, token, body) in requests {
                try await Eventually.wait("\(method) \(path) to succeed again") {
                    try await client.call(
                        method, path, token: token,
                        json: body.map {
                            $0.replacingOccurrences(
                                of: #""slug":"bravo""#,
                                with: #""slug":"bravo-\#(UUID().uuidString.prefix(6).lowercased())""#)
                        }
                    ).status.code < 300
                }
            }
        }
        runner.cancel()
        background.cancel()
        await runner.value
        await background.value
    }
}
