import Foundation
import HTTPTypes
import HummingbirdTesting
import TestSupport
import Testing

@testable import API
@testable import Events

/// Strings PostgreSQL cannot store (U+0000, unpaired surrogates) are refused at the door, in every field of
/// every route that takes a body: an event holding one would stop every reader that tries to store it.
@Suite("API: strings PostgreSQL cannot store", .timeLimit(.minutes(5)))
struct UnstorableInputTests {
    /// A route and a valid body, whose every string is tried in turn.
    struct Route {
        var method: HTTPRequest.Method
        var path: String
        var asOperator: Bool
        var body: Any
    }

    /// Every JSON pointer to a string in `value`.
    static func stringPointers(_ value: Any, at pointer: String = "") -> [String] {
        switch value {
        case let object as [String: Any]:
            object.keys.sorted().flatMap { stringPointers(object[$0]!, at: pointer + "/" + Pointer.escape($0)) }
        case let array as [Any]:
            array.indices.flatMap { stringPointers(array[$0], at: pointer + "/\($0)") }
        case is String:
            [pointer]
        default:
            []
        }
    }

    /// `value` with the string at `pointer` replaced by `marker`.
    static func replacing(_ value: Any, at pointer: [String], with marker: String) -> Any {
        guard let head = pointer.first else { return marker }
        switch value {
        case var object as [String: Any]:
            object[head] = replacing(object[head]!, at: Array(pointer.dropFirst()), with: marker)
            return object
        case var array as [Any]:
            let index = Int(head)!
            array[index] = replacing(array[index], at: Array(pointer.dropFirst()), with: marker)
            return array
        default:
            return value
        }
    }

    /// The poisons, as they appear in JSON text.
    static let poisons = [#"Ann\u0000Lee"#, #"\u0000"#, #"x\ud800"#, #"\udc00y"#, #"\ud800\u0041"#]

    @Test(
        "a NUL or an unpaired surrogate in any string field of any route is 422 with its JSON pointer, and nothing is appended"
    )
    func everyFieldOfEveryRoute() async throws {
        var settings = APIHarness.settings()
        settings.masterKey = try MasterKey(hex: MasterKey.generateHex())
        try await APIHarness.with(settings: settings) { harness, client in
            let (tenant, key, _) = try await client.tenantWithKey("nul-checks", plan: "enterprise")
            let workflow = try await client.workflow(key)
            let run = try await client.call(
                .post, "/v1/runs", token: key,
                json: #"{"workflowId":"\#(workflow)","input":{"fullName":"Ada","domain":"acme.com"}}"#)
            #expect(run.status == .accepted)
            let runID = run["runs"]?[0]?["id"]?.stringValue ?? ""
            let routes = [
                Route(
                    method: .post, path: "/v1/admin/tenants", asOperator: true,
                    body: ["name": "Initech", "slug": "initech", "plan": "pro"]),
                Route(
                    method: .post, path: "/v1/admin/tenants/\(tenant)/suspend", asOperator: true,
                    body: ["reason": "unpaid"]),
                Route(method: .put, path: "/v1/admin/tenants/\(tenant)/plan", asOperator: true, body: ["plan": "free"]),
                Route(
                    method: .post, path: "/v1/admin/tenants/\(tenant)/keys", asOperator: true,
                    body: ["name": "ci", "expiresAt": "2030-01-01T00:00:00Z"]),
                Route(
                    method: .put, path: "/v1/vendor-secrets/prospeo", asOperator: false, body: ["apiKey": "live-key"]),
                Route(
                    method: .post, path: "/v1/workflows", asOperator: false,
                    body: ["name": "wf", "finders": ["prospeo", "findymail"], "validator": "zerobounce"]),
                Route(
                    method: .post, path: "/v1/runs", asOperator: false,
                    body: ["workflowId": workflow, "input": ["fullName": "Ann Lee", "domain": "acme.com"]]),
                Route(
                    method: .post, path: "/v1/runs", asOperator: false,
                    body: [
                        "workflowId": workflow,
                        "inputs": [
                            ["fullName": "Ann Lee", "domain": "acme.com"],
                            ["linkedinUrl": "https://www.linkedin.com/in/ann"],
                        ],
                    ]),
                Route(
                    method: .post, path: "/v1/runs/\(runID)/cancel", asOperator: false, body: ["reason": "not needed"]),
            ]
            // Usage batches are appended every second whatever happens: count everything else.
            let countEvents = "SELECT count(*) FROM events WHERE event_type <> 'UsageRecorded'"
            let before = try await harness.store.pool.query(countEvents).first?.int64(0)
            var checked = 0
            for route in routes {
                let pointers = Self.stringPointers(route.body)
                #expect(!pointers.isEmpty)
                for pointer in pointers {
                    for poison in Self.poisons {
                        let marker = "__poison__"
                        let body = Self.replacing(
                            route.body, at: pointer.split(separator: "/").map(String.init), with: marker)
                        let text = String(
                            decoding: try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]),
                            as: UTF8.self
                        )
                        .replacingOccurrences(of: marker, with: poison)
                        let reply = try await client.call(
                            route.method, route.path, token: route.asOperator ? APIHarness.operatorToken : key,
                            json: text)
                        #expect(
                            reply.status == .unprocessableContent,
                            "\(route.method) \(route.path) \(pointer) \(poison): \(reply.text)")
                        #expect(reply.string("type") == Problem.typeBase + "validation")
                        #expect(
                            reply["errors"]?[0]?["pointer"]?.stringValue == pointer,
                            "\(route.path) \(pointer): \(reply.text)")
                        checked += 1
                    }
                }
            }
            #expect(checked >= 70)
            // A member name is checked as well.
            let key422 = try await client.call(
                .post, "/v1/admin/tenants", token: APIHarness.operatorToken,
                json: #"{"name":"x","slug":"y","pl\u0000an":"pro"}"#)
            #expect(key422.status == .unprocessableContent)
            #expect(key422["errors"]?[0]?["detail"]?.stringValue?.contains("name of this member") == true)
            #expect(try await harness.store.pool.query(countEvents).first?.int64(0) == before, "nothing appended")
            // Paired surrogates (an emoji) and other escapes are fine.
            let emoji = try await client.call(
                .post, "/v1/workflows", token: key, json: #"{"name":"wf \ud83d\ude00 \"q\" \/","finders":["prospeo"]}"#)
            #expect(emoji.status == .created, "\(emoji.text)")
            #expect(emoji.string("name") == "wf 😀 \"q\" /")
        }
    }

    @Test("bodies nested deeper than any request needs are refused before they are parsed")
    func deepNesting() async throws {
        #expect(
            StorableText.firstUnstorable(in: Array((String(repeating: "[", count: 200_000)).utf8))?.detail.contains(
                "levels deep") == true)
        #expect(StorableText.firstUnstorable(in: Array(#"{"a":[{"b":"ok"}]}"#.utf8)) == nil)
        #expect(StorableText.firstUnstorable(in: Array(#"{"a":[{"b":"n\u0000"}]}"#.utf8))?.pointer == "/a/0/b")
        #expect(StorableText.firstUnstorable(in: Array(#"{"a~b/c":"\u0000"}"#.utf8))?.pointer == "/a~0b~1c")
        // Malformed documents are left to the parser (400).
        #expect(StorableText.firstUnstorable(in: Array(#"{"a":"\u00"}"#.utf8)) == nil)
    }
}
