import Commands
import Foundation
import Hummingbird
import HummingbirdTesting
import TestSupport
import Testing

@testable import API
@testable import Events

@Suite("HTTP: health and readiness", .timeLimit(.minutes(5)))
struct HealthTests {
    @Test("GET /healthz answers 200 without touching the database")
    func healthz() async throws {
        let store = EventStore(configuration: .init(databaseURL: "postgresql://postgres@/nope?host=/nonexistent"))
        defer { store.close() }
        let services = await APIServices.start(settings: APIHarness.settings(), store: store, logger: APIHarness.logger)
        let app = buildApplication(services: services)
        try await app.test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("ok"))
            }
        }
    }

    @Test("GET /readyz is 200 with the database and projections current, a 503 problem document without the database")
    func readyz() async throws {
        try await APIHarness.with { harness, client in
            try await Eventually.wait("ready") {
                try await client.execute(uri: "/readyz", method: .get).status == .ok
            }
        }
        let down = EventStore(configuration: .init(databaseURL: "postgresql://postgres@/nope?host=/nonexistent"))
        defer { down.close() }
        let app = buildApplication(
            services: await APIServices.start(settings: APIHarness.settings(), store: down, logger: APIHarness.logger))
        try await app.test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(response.headers[.contentType] == "application/problem+json")
                let body = try JSONDecoder().decode(JSONValue.self, from: Data(String(buffer: response.body).utf8))
                #expect(body["status"] == .number(503))
            }
        }
    }

    @Test(
        "started while the database is away: a well-formed key gets 503 with Retry-After, a malformed one 401 without I/O"
    )
    func keysWithoutDatabase() async throws {
        let down = EventStore(configuration: .init(databaseURL: "postgresql://postgres@/nope?host=/nonexistent"))
        defer { down.close() }
        let app = buildApplication(
            services: await APIServices.start(settings: APIHarness.settings(), store: down, logger: APIHarness.logger))
        try await app.test(.router) { client in
            let unavailable = try await client.call(.get, "/v1/tenant", token: APIKeyFormat.generate())
            #expect(unavailable.status == .serviceUnavailable)
            #expect(unavailable.headers[.retryAfter] == "1")
            #expect(unavailable.headers[.contentType] == "application/problem+json")
            #expect(try await client.call(.get, "/v1/tenant", token: "tly_0000").status == .unauthorized)
        }
    }

    @Test("the server answers over a real socket")
    func live() async throws {
        try await TestDatabase.withStore { store, _ in
            var settings = APIHarness.settings()
            settings.port = 0
            let app = buildApplication(
                services: await APIServices.start(settings: settings, store: store, logger: APIHarness.logger))
            try await app.test(.live) { client in
                try await client.execute(uri: "/healthz", method: .get) { response in
                    #expect(response.status == .ok)
                }
            }
        }
    }
}
