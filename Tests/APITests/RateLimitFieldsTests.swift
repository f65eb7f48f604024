import HTTPTypes
import RawStructuredFieldValues
import Testing

@testable import API

@Suite("API: the RateLimit fields as RFC 9651 lists")
struct RateLimitFieldsTests {
    @Test("policies and limits in the order added, with their parameters in the draft's order")
    func text() throws {
        var fields = RateLimitFields()
        fields.policy(.keyRequestsPerSecond, quota: 5, window: 1)
        fields.policy(.apiCalls, quota: Int64(100_000), window: 2_592_000)
        fields.policy(.keyStreams, quota: 2)
        fields.limit(.keyRequestsPerSecond, remaining: 4, reset: 1)
        fields.limit(.keyStreams, remaining: 0)
        var headers = HTTPFields()
        fields.add(to: &headers)
        #expect(headers[.rateLimitPolicy] == #""key-rps";q=5;w=1, "api-calls";q=100000;w=2592000, "key-streams";q=2"#)
        #expect(headers[.rateLimit] == #""key-rps";r=4;t=1, "key-streams";r=0"#)
        #expect(
            try Self.parsed(headers[.rateLimitPolicy]) == [
                "key-rps": ["q=5", "w=1"], "api-calls": ["q=100000", "w=2592000"], "key-streams": ["q=2"],
            ])
        #expect(try Self.parsed(headers[.rateLimit]) == ["key-rps": ["r=4", "t=1"], "key-streams": ["r=0"]])
    }

    @Test("a handler's own members come first; an empty list writes no field; out-of-range integers are clamped")
    func appendAndClamp() throws {
        var headers: HTTPFields = [.rateLimitPolicy: #""runs";q=10;w=60"#]
        var fields = RateLimitFields()
        fields.policy(.tenantRequestsPerSecond, quota: Int64.max, window: 1)
        fields.limit(.tenantStreams, remaining: Int64.min)
        fields.add(to: &headers)
        #expect(headers[.rateLimitPolicy] == #""runs";q=10;w=60, "tenant-rps";q=999999999999999;w=1"#)
        #expect(try Self.parsed(headers[.rateLimit]) == ["tenant-streams": ["r=-999999999999999"]])

        var empty = HTTPFields()
        RateLimitFields().add(to: &empty)
        #expect(empty[.rateLimit] == nil && empty[.rateLimitPolicy] == nil)
    }

    /// The field parsed by swift-http-structured-headers: each member a string item, with its integer
    /// parameters in order. Throws when the text is not a valid RFC 9651 list.
    static func parsed(_ text: String?) throws -> [String: [String]] {
        var parser = StructuredFieldValueParser(Array(try #require(text).utf8))
        var members: [String: [String]] = [:]
        for member in try parser.parseListFieldValue() {
            guard case .item(let item) = member, case .string(let name) = item.rfc9651BareItem else {
                Issue.record("a member that is not a string item: \(member)")
                continue
            }
            members[name] = item.rfc9651Parameters.map { key, value in
                guard case .integer(let number) = value else { return "\(key)=?" }
                return "\(key)=\(number)"
            }
        }
        return members
    }
}
