import Events
import Foundation
import Hummingbird
import HummingbirdTesting
import TestSupport
import Testing

@testable import API

@Suite("API: the OpenAPI document", .timeLimit(.minutes(5)))
struct OpenAPITests {
    @Test(
        "every route the server has is in the document with its methods, and the document names no route the server lacks"
    )
    func routesMatch() async throws {
        try await APIHarness.with { harness, client in
            let served = try await client.call(.get, "/openapi.json")
            #expect(served.status == .ok && served.headers[.contentType] == "application/json")
            let document = try JSONSerialization.jsonObject(with: Data(served.text.utf8)) as? [String: Any]
            #expect(document?["openapi"] as? String == "3.1.0")
            let paths = document?["paths"] as? [String: [String: Any]] ?? [:]
            let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options"]
            let documented = Set(
                paths.flatMap { path, item in item.keys.filter(methods.contains).map { "\($0.uppercased()) \(path)" } })
            let routes = Set(harness.services.routeList.map { "\($0.method) \($0.path)" })
            #expect(routes.subtracting(documented).isEmpty, "undocumented: \(routes.subtracting(documented).sorted())")
            #expect(
                documented.subtracting(routes).isEmpty,
                "documented but not served: \(documented.subtracting(routes).sorted())")
            #expect(routes.count >= 30)
        }
    }

    @Test("GET /openapi.json serves docs/openapi.json byte for byte")
    func docsCopy() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let file = try Data(contentsOf: root.appendingPathComponent("docs/openapi.json"))
        try await APIHarness.with { _, client in
            let served = try await client.call(.get, "/openapi.json")
            #expect(served.status == .ok)
            #expect(Data(served.text.utf8) == file)
        }
    }
}
