import Foundation
import HTTPTypes
import HummingbirdTesting
import TestSupport
import Testing

@testable import API
@testable import Events
@testable import Projections

/// Every operation of docs/openapi.json driven with inputs generated from its schemas and then mutated (wrong
/// types, missing and unknown fields, extreme numbers, crafted cursors and ids, odd headers, bodies that are
/// not JSON), against real PostgreSQL. A failure names the seed and the request, so it can be replayed.
@Suite("API: generated and mutated requests against the document", .timeLimit(.minutes(5)))
struct FuzzTests {
    typealias Object = [String: Any]

    /// A seeded generator (SplitMix64): the same seed sends the same requests.
    struct Random: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &self) < p }
        mutating func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &self)] }
    }

    nonisolated(unsafe) static let document: Object = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let data = try! Data(contentsOf: root.appendingPathComponent("docs/openapi.json"))
        return try! JSONSerialization.jsonObject(with: data) as! Object
    }()

    static func resolve(_ value: Any) -> Object {
        guard let object = value as? Object else { return [:] }
        guard let ref = object["$ref"] as? String else { return object }
        var node: Any = document
        for part in ref.dropFirst(2).split(separator: "/") { node = (node as? Object)?[String(part)] ?? [:] }
        return resolve(node)
    }

    /// Strings that have broken parsers elsewhere.
    static let hostileStrings = [
        "", " ", "0", "-1", "9223372036854775807", "-9223372036854775808", "1e309", "NaN", "null", "true",
        String(repeating: "a", count: 5000), "😀🚀", "\u{202E}rtl", "../../etc/passwd", "%00", "a\u{0}b", "\u{FFFF}",
        "<script>", "' OR 1=1 --", "00000000-0000-0000-0000-000000000000", "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
        "2026-13-45T25:61:61Z", "300000-01-01T00:00:00Z", "9999-12", "0000-00", "2024-+1",
        "tly_" + String(repeating: "0", count: 40),
    ]

    /// Cursors: base64url of `micros|uuid` at the extremes, and garbage.
    static let hostileCursors: [String] = {
        let texts = [
            "9223372036854775807|00000000-0000-0000-0000-000000000001",
            "-9223372036854775808|00000000-0000-0000-0000-000000000001",
            "-210866803200000001|00000000-0000-0000-0000-000000000001", "0|not-a-uuid", "1|2|3", "",
        ]
        return texts.map { Base64URL.encode(Array($0.utf8)) } + ["!!!", "====", String(repeating: "A", count: 4000)]
    }()

    /// A value that the schema allows (as far as this generator knows schemas).
    static func valid(_ schemaValue: Any, _ random: inout Random, depth: Int = 0) -> Any {
        let schema = resolve(schemaValue)
        if let all = schema["allOf"] as? [Any] {
            var merged: Object = [:]
            for part in all {
                if let value = valid(part, &random, depth: depth) as? Object { merged.merge(value) { $1 } }
            }
            return merged
        }
        if let constant = schema["const"] { return constant }
        if let options = schema["enum"] as? [Any], !options.isEmpty { return random.pick(options) }
        if let options = schema["oneOf"] as? [Any], schema["properties"] == nil, !options.isEmpty {
            return valid(random.pick(options), &random, depth: depth + 1)
        }
        let type = (schema["type"] as? String) ?? ((schema["type"] as? [String])?.first { $0 != "null" }) ?? "object"
        switch type {
        case "string":
            switch schema["format"] as? String {
            case "uuid": return UUID().lowercased
            case "date-time": return "2030-01-01T00:00:00Z"
            case "uri": return "https://www.linkedin.com/in/someone"
            default:
                let minimum = schema["minLength"] as? Int ?? 1
                return String(repeating: "x", count: max(3, minimum))
            }
        case "integer", "number":
            let low = schema["minimum"] as? Int ?? 1
            let high = schema["maximum"] as? Int ?? max(low, 100)
            return Int.random(in: low...max(low, min(high, low + 100)), using: &random)
        case "boolean": return random.chance(0.5)
        case "array":
            guard depth < 4 else { return [Any]() }
            let count = max(schema["minItems"] as? Int ?? 0, 1)
            return (0..<count).map { _ in valid(schema["items"] ?? [:], &random, depth: depth + 1) }
        default:
            guard depth < 4 else { return Object() }
            var object: Object = [:]
            let properties = schema["properties"] as? Object ?? [:]
            var wanted = Set(schema["required"] as? [String] ?? [])
            if let options = schema["oneOf"] as? [Any],
                let option = resolve(random.pick(options))["required"] as? [String]
            {
                wanted.formUnion(option)
            }
            for (name, property) in properties.sorted(by: { $0.key < $1.key })
            where wanted.contains(name) || random.chance(0.3) {
                object[name] = valid(property, &random, depth: depth + 1)
            }
            return object
        }
    }

    /// `value` changed in one place: a field dropped, retyped, added or made hostile.
    static func mutated(_ value: Any, _ random: inout Random) -> Any {
        switch value {
        case var object as Object where !object.isEmpty && random.chance(0.7):
            let key = random.pick(object.keys.sorted())
            switch Int.random(in: 0..<5, using: &random) {
            case 0: object[key] = nil
            case 1: object[key] = random.pick(hostileStrings)
            case 2: object[key] = random.pick([NSNull(), 1e300, -1, Int64.max, [Any](), Object(), true] as [Any])
            case 3: object["unknownField\(Int.random(in: 0..<9, using: &random))"] = "x"
            default: object[key] = mutated(object[key]!, &random)
            }
            return object
        case var array as [Any] where !array.isEmpty:
            let index = Int.random(in: 0..<array.count, using: &random)
            array[index] = mutated(array[index], &random)
            if random.chance(0.2) { array += Array(repeating: array[0], count: 1500) }
            return array
        default:
            return random.pick(
                [random.pick(hostileStrings), NSNull(), 1e308, -0.5, Int64.min, [Any](), Object()] as [Any])
        }
    }

    static func json(_ value: Any) -> String {
        guard JSONSerialization.isValidJSONObject([value]),
            let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed])
        else { return "\(value)" }
        return String(decoding: data, as: UTF8.self)
    }

    struct Failure: CustomStringConvertible {
        var operation: String
        var request: String
        var problem: String
        var description: String { "\(operation): \(problem.prefix(200)) — \(request.prefix(400))" }
    }

    @Test(
        "every operation with generated and mutated inputs: no 5xx, only answers the document lists, every error a problem document"
    )
    func fuzz() async throws {
        let seed =
            UInt64(ProcessInfo.processInfo.environment["TALLY_FUZZ_SEED"] ?? "") ?? UInt64.random(in: 1...UInt64.max)
        let rounds = Int(ProcessInfo.processInfo.environment["TALLY_FUZZ_ROUNDS"] ?? "") ?? 60
        let plans = try Plans([
            Plan(
                name: "pro", keyRequestsPerSecond: 1_000_000, tenantRequestsPerSecond: 1_000_000, monthlyAPICalls: nil,
                monthlyRuns: nil)
        ])
        // Every feature configured: a 503 for a missing master key or webhook secret is not what is tested.
        var settings = APIHarness.settings(plans: plans)
        settings.masterKey = MasterKey(bytes: Sodium.randomBytes(32))
        settings.stripeWebhookSecrets = ["whsec_" + String(repeating: "f", count: 32)]
        try await APIHarness.with(settings: settings) { harness, client in
            var random = Random(state: seed)
            let (tenant, key, keyID) = try await client.tenantWithKey("fuzz")
            let (target, _, targetKey) = try await client.tenantWithKey("target")
            let workflow = try await client.workflow(key)
            let run = try #require(
                try await client.call(
                    .post, "/v1/runs", token: key,
                    json: #"{"workflowId":"\#(workflow)","input":{"linkedinUrl":"https://www.linkedin.com/in/a"}}"#
                )["runs"]?[0]?["id"]?.stringValue)
            // Path ids: real ones (the operator's routes act on the second tenant, so the first keeps working),
            // unknown ones and garbage.
            let ids: [String: [String]] = [
                "id": [
                    target, run, workflow, UUID().lowercased, "not-a-uuid", "%2e%2e",
                    String(repeating: "9", count: 300),
                ],
                "keyId": [targetKey, keyID, UUID().lowercased, "x"],
                "vendor": ["prospeo", "findymail", "zerobounce", "PROSPEO", "nope", ""],
            ]
            let paths = (Self.document["paths"] as? Object ?? [:]).sorted { $0.key < $1.key }
            var failures: [Failure] = []
            var sent = 0
            for (template, item) in paths {
                for (method, operationValue) in (item as? Object ?? [:]).sorted(by: { $0.key < $1.key }) {
                    guard let operation = operationValue as? Object,
                        let httpMethod = HTTPRequest.Method(method.uppercased())
                    else { continue }
                    let streams = template.hasSuffix("/events")
                    let declared = Set((operation["responses"] as? Object ?? [:]).keys)
                    let security = (operation["security"] as? [Object] ?? []).flatMap(\.keys)
                    let parameters = (operation["parameters"] as? [Any] ?? []).map(Self.resolve)
                    let bodySchema = ((operation["requestBody"] as? Object)?["content"] as? Object)?["application/json"]
                        .flatMap { ($0 as? Object)?["schema"] }
                    for round in 0..<rounds {
                        // The path.
                        var path = template
                        for (name, choices) in ids where path.contains("{\(name)}") {
                            path = path.replacingOccurrences(
                                of: "{\(name)}", with: round == 0 ? choices[0] : random.pick(choices))
                        }
                        path = path.replacingOccurrences(of: " ", with: "%20")
                        // Query parameters and headers.
                        var query: [String] = []
                        var headers: HTTPFields = [:]
                        for parameter in parameters {
                            guard let name = parameter["name"] as? String, round == 0 || random.chance(0.5) else {
                                continue
                            }
                            var value = "\(Self.valid(parameter["schema"] ?? [:], &random))"
                            if round > 0, random.chance(0.6) {
                                value = random.pick(
                                    name == "cursor" ? Self.hostileCursors : Self.hostileStrings + Self.hostileCursors)
                            }
                            switch parameter["in"] as? String {
                            case "query":
                                let encoded = value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
                                query.append("\(name)=\(encoded)")
                            case "header":
                                // A header value cannot hold a line break or NUL; the server never sees those.
                                let clean = value.filter { !$0.isNewline && $0 != "\u{0}" }
                                if let field = HTTPField.Name(name) { headers[field] = clean }
                            default: break
                            }
                        }
                        // An event stream that would open (no Last-Event-ID to refuse) is not read here: the
                        // test client waits for a body's end. Its refusals are what is tried.
                        if streams {
                            headers[.lastEventID] = random.pick(Self.hostileStrings + Self.hostileCursors)
                                .filter { !$0.isNewline && $0 != "\u{0}" }
                            if headers[.lastEventID]?.isEmpty ?? true { headers[.lastEventID] = "0/0" }
                        }
                        if round > 0, random.chance(0.2) {
                            headers[.idempotencyKey] = random.pick(Self.hostileStrings).filter {
                                !$0.isNewline && $0 != "\u{0}"
                            }
                        }
                        if round > 0, random.chance(0.1) {
                            headers[HTTPField.Name("traceparent")!] = random.pick([
                                "00-" + String(repeating: "f", count: 32) + "-x-01", "garbage",
                            ])
                        }
                        // The body.
                        var body: String?
                        if let bodySchema {
                            let value = Self.valid(bodySchema, &random)
                            body = Self.json(round == 0 ? value : Self.mutated(value, &random))
                            if round > 0, random.chance(0.08) {
                                body = random.pick(["{", "[1,2", "nul", String(repeating: "[", count: 5000), "\u{0}"])
                            }
                            if round > 0, random.chance(0.05) { headers[.contentType] = "text/plain" }
                        } else if round > 0, random.chance(0.1) {
                            body = #"{"unexpected":true}"#
                        }
                        // The credential: right, wrong kind, garbage or none.
                        var token: String? =
                            security.contains("operatorToken")
                            ? APIHarness.operatorToken : security.contains("apiKey") ? key : nil
                        if round > 0, random.chance(0.15) {
                            token = random.pick([
                                nil, "tly_" + String(repeating: "a", count: 40), APIHarness.operatorToken, key, "x",
                            ])
                        }
                        let uri = path + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
                        let description =
                            "seed \(seed) round \(round): \(method.uppercased()) \(uri) \(headers) \(body?.prefix(300) ?? "")"
                        let reply: Reply
                        do {
                            reply = try await client.call(httpMethod, uri, token: token, json: body, headers: headers)
                        } catch {
                            failures.append(
                                Failure(
                                    operation: "\(method.uppercased()) \(template)", request: description,
                                    problem: "no answer: \(error)"))
                            continue
                        }
                        sent += 1
                        let code = reply.status.code
                        if code >= 500 {
                            failures.append(
                                Failure(
                                    operation: "\(method.uppercased()) \(template)", request: description,
                                    problem: "\(code) \(reply.text.prefix(300))"))
                        }
                        // A 404/405 for a path the router does not match (a garbage id that is not a segment) is
                        // the router's, not the operation's.
                        if !declared.contains(String(code)), !(code == 404 || code == 405) {
                            failures.append(
                                Failure(
                                    operation: "\(method.uppercased()) \(template)", request: description,
                                    problem: "\(code) is not in the document"))
                        }
                        if code >= 400 {
                            let isProblem =
                                reply.headers[.contentType] == "application/problem+json"
                                && reply["status"]?.intValue == code && reply.string("type") != nil
                            if !isProblem {
                                failures.append(
                                    Failure(
                                        operation: "\(method.uppercased()) \(template)", request: description,
                                        problem: "\(code) is not a problem: \(reply.text.prefix(200))"))
                            }
                        }
                    }
                }
            }
            // The process still answers, and the tenant's key still works.
            #expect(try await client.call(.get, "/v1/tenant", token: key).status == .ok)
            #expect(sent > 500, "only \(sent) requests were sent")
            // One example per operation and kind of failure.
            var seen: Set<String> = []
            let examples = failures.filter { seen.insert($0.operation + String($0.problem.prefix(3))).inserted }
            #expect(
                failures.isEmpty,
                "\(failures.count) of \(sent) answers broke the contract (seed \(seed)):\n\(examples.map(\.description).joined(separator: "\n"))"
            )
            _ = (tenant, harness)
        }
    }
}
