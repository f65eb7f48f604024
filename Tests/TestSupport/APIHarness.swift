import Foundation
package import Hummingbird
package import HummingbirdTesting
package import Logging
import Synchronization
import Testing

@testable package import API
@testable package import Events
@testable package import Projections

/// A migrated database, the projection runner and the API's services, with a router-level test client.
package struct APIHarness {
    package let store: EventStore
    package let services: APIServices
    package let url: String

    package static let operatorToken = "operator-token-for-tests-0123456789abcdef"
    package static let pepper = Array("a-pepper-for-tests-only-0123456789".utf8)
    package static let logger = Logger(label: "tally.test") { _ in LogCapture.Handler() }

    package static func settings(plans: Plans = .defaults) -> APISettings {
        APISettings(
            operatorToken: operatorToken, keyPepper: pepper, plans: plans, instanceID: "test",
            consistencyTimeout: .seconds(30),
            rotationGrace: .seconds(3600))
    }

    /// `settings` replaces the defaults of `settings(plans:)` when given; `masterKey` is the vendor secrets'
    /// (none: the secrets routes answer 503). `live` serves over a real socket on a free port (the client's
    /// `port`) instead of calling the router directly: for streams and anything that needs the wire.
    package static func with(
        plans: Plans = .defaults, settings custom: APISettings? = nil, masterKey: MasterKey? = nil,
        live: Bool = false, _ body: @escaping @Sendable (APIHarness, any TestClientProtocol) async throws -> Void
    ) async throws {
        try await TestDatabase.withStore(maxConnections: 8, pollInterval: .milliseconds(100)) { store, url in
            var settings = custom ?? settings(plans: plans)
            if let masterKey { settings.masterKey = masterKey }
            if live { settings.port = 0 }
            let services = await APIServices.start(settings: settings, store: store, logger: logger)
            let runner = Task {
                await ProjectionRunner(
                    store: store, projections: ProductProjections.all, options: ProjectionRunner.Options.forTests,
                    logger: logger
                ).run()
            }
            let background = Task { await services.run() }
            defer {
                runner.cancel()
                background.cancel()
            }
            // Every projection leads (its tables exist, its checkpoint is loaded) before the first request, so
            // that a command's wait for its projection never includes the runner's start on a loaded machine.
            try await Eventually.wait("every projection to start") {
                try await store.pool.query("SELECT count(*) FROM projection_checkpoints").first?.int(0)
                    == ProductProjections.all.count
            }
            let app = buildApplication(services: services, logger: logger)
            try await app.test(live ? .live : .router) { client in
                try await body(APIHarness(store: store, services: services, url: url), client)
            }
            runner.cancel()
            background.cancel()
            await runner.value
            await background.value
        }
    }
}

/// A decoded response.
package struct Reply {
    package var status: HTTPResponse.Status
    package var headers: HTTPFields
    package var text: String
    package var json: JSONValue

    package init(status: HTTPResponse.Status, headers: HTTPFields, text: String, json: JSONValue) {
        self.status = status
        self.headers = headers
        self.text = text
        self.json = json
    }

    package subscript(_ key: String) -> JSONValue? { json[key] }

    package var string: (String) -> String? {
        { key in if case .string(let value)? = json[key] { value } else { nil } }
    }
}

extension JSONValue {
    package var stringValue: String? { if case .string(let value) = self { value } else { nil } }
    package var intValue: Int? { if case .number(let value) = self { Int(value) } else { nil } }
    package var arrayValue: [JSONValue] { if case .array(let value) = self { value } else { [] } }
    package subscript(_ index: Int) -> JSONValue? {
        if case .array(let values) = self, values.indices.contains(index) { return values[index] }
        return nil
    }
}

extension TestClientProtocol {
    @discardableResult
    package func call(
        _ method: HTTPRequest.Method, _ uri: String, token: String? = nil, json: String? = nil,
        headers: HTTPFields = [:]
    ) async throws -> Reply {
        var fields = headers
        if let token { fields[.authorization] = "Bearer \(token)" }
        if json != nil, fields[.contentType] == nil { fields[.contentType] = "application/json" }
        let response = try await execute(
            uri: uri, method: method, headers: fields, body: json.map { ByteBuffer(string: $0) })
        let text = String(buffer: response.body)
        let value = (try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))) ?? .null
        return Reply(status: response.status, headers: response.headers, text: text, json: value)
    }

    /// The operator creates a tenant and issues it a key; returns (tenant id, plaintext key, key id).
    package func tenantWithKey(_ slug: String, plan: String = "pro") async throws -> (
        tenant: String, key: String, keyID: String
    ) {
        let tenant = try await call(
            .post, "/v1/admin/tenants", token: APIHarness.operatorToken,
            json: #"{"name":"\#(slug)","slug":"\#(slug)","plan":"\#(plan)"}"#)
        #expect(tenant.status == .created, "\(tenant.text)")
        let id = tenant.string("id") ?? ""
        let key = try await call(
            .post, "/v1/admin/tenants/\(id)/keys", token: APIHarness.operatorToken, json: #"{"name":"main"}"#)
        #expect(key.status == .created, "\(key.text)")
        return (id, key.string("key") ?? "", key.string("id") ?? "")
    }

    package func workflow(_ key: String) async throws -> String {
        let reply = try await call(
            .post, "/v1/workflows", token: key,
            json: #"{"name":"wf","finders":["prospeo","findymail"],"validator":"zerobounce"}"#)
        #expect(reply.status == .created, "\(reply.text)")
        return reply.string("id") ?? ""
    }
}

/// Every log record of the test process, to check that no secret is ever written.
package final class LogCapture: Sendable {
    package static let shared = LogCapture()
    private let lines = Mutex<[String]>([])

    /// One per logger, its metadata a value as swift-log expects of handlers: a shared handler's metadata
    /// was mutated by concurrent requests (`logger[metadataKey:]`) and crashed the suite.
    package struct Handler: LogHandler {
        package var metadata: Logger.Metadata = [:]
        package var logLevel: Logger.Level = .trace

        package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        package func log(event: LogEvent) {
            LogCapture.shared.record(
                "\(event.level) \(event.message) \(metadata.merging(event.metadata ?? [:]) { $1 })")
        }
    }

    package func record(_ text: String) {
        lines.withLock { lines in
            if lines.count > 200_000 { lines.removeFirst(100_000) }
            lines.append(text)
        }
    }

    package func contains(_ needle: String) -> Bool { lines.withLock { $0.contains { $0.contains(needle) } } }
    package var count: Int { lines.withLock { $0.count } }
}

/// The test client, used from several tasks at once (its requests are independent).
package struct SharedClient: @unchecked Sendable {
    package let client: any TestClientProtocol

    package init(client: any TestClientProtocol) { self.client = client }
}

extension Reply: @unchecked Sendable {}
