internal import HTTPTypes
import RawStructuredFieldValues

/// The IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers) of one answer: `RateLimit-Policy` gives each
/// policy's quota (`q`) and window in seconds (`w`), `RateLimit` what remains of it (`r`) and the seconds until
/// it resets (`t`). Both are RFC 9651 lists of strings with integer parameters, written by
/// swift-http-structured-headers' serializer.
struct RateLimitFields: Sendable {
    /// The policies Tally applies; a closed set, so every name is a valid structured-field string.
    enum Policy: String, Sendable {
        case keyRequestsPerSecond = "key-rps"
        case tenantRequestsPerSecond = "tenant-rps"
        case apiCalls = "api-calls"
        case runs
        case keyStreams = "key-streams"
        case tenantStreams = "tenant-streams"
    }

    private var policies: [ItemOrInnerList] = []
    private var limits: [ItemOrInnerList] = []

    init() {}

    /// Adds `policy` to `RateLimit-Policy`: its quota, and its window when it has one.
    mutating func policy(_ policy: Policy, quota: some BinaryInteger, window: Int? = nil) {
        var parameters: [(String, Int64)] = [("q", Int64(clamping: quota))]
        if let window { parameters.append(("w", Int64(window))) }
        policies.append(Self.item(policy, parameters))
    }

    /// Adds `policy` to `RateLimit`: what remains, and the seconds until its window resets when it has one.
    mutating func limit(_ policy: Policy, remaining: some BinaryInteger, reset: Int? = nil) {
        var parameters: [(String, Int64)] = [("r", Int64(clamping: remaining))]
        if let reset { parameters.append(("t", Int64(reset))) }
        limits.append(Self.item(policy, parameters))
    }

    /// Sets both fields on `fields`, after the members a handler already put there (its own limit comes first).
    func add(to fields: inout HTTPFields) {
        for (name, list) in [(HTTPField.Name.rateLimitPolicy, policies), (.rateLimit, limits)] where !list.isEmpty {
            let value = Self.serialized(list)
            fields[name] = fields[name].map { $0 + ", " + value } ?? value
        }
    }

    private static func item(_ policy: Policy, _ parameters: [(String, Int64)]) -> ItemOrInnerList {
        var map = OrderedMap<String, RFC9651BareItem>()
        for (key, value) in parameters { map[key] = .integer(value.clamped) }
        return .item(Item(bareItem: .string(policy.rawValue), parameters: map))
    }

    /// The list's text. The serializer refuses only integers outside RFC 9651's 15 digits and strings with
    /// characters outside printable ASCII; the names are a closed set of such strings and the integers are
    /// clamped, so it does not refuse these lists.
    private static func serialized(_ list: [ItemOrInnerList]) -> String {
        var serializer = StructuredFieldValueSerializer()
        return String(decoding: (try? serializer.writeListFieldValue(list)) ?? [], as: UTF8.self)
    }
}

extension Int64 {
    /// Within the integers an RFC 9651 field can carry (at most 15 digits).
    fileprivate var clamped: Int64 { Swift.min(Swift.max(self, -999_999_999_999_999), 999_999_999_999_999) }
}
