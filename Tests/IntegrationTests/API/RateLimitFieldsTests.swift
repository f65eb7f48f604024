import HTTPTypes
import Testing

@testable import API

@Suite("API: the RateLimit fields as RFC 9651 lists")
struct RateLimitFieldsTests {
    @Test("policies and limits in the order added, with their parameters in the draft's order")
    func text() {
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
    }

    @Test("a handler's own members come first; an empty list writes no field; out-of-range integers are clamped")
    func appendAndClamp() {
        var headers: HTTPFields = [.rateLimitPolicy: #""runs";q=10;w=60"#]
        var fields = RateLimitFields()
        fields.policy(.tenantRequestsPerSecond, quota: Int64.max, window: 1)
        fields.add(to: &headers)
        #expect(headers[.rateLimitPolicy] == #""runs";q=10;w=60, "tenant-rps";q=999999999999999;w=1"#)
        #expect(headers[.rateLimit] == nil)
    }
}
