/// What the fake vendor server has seen since it started or was last reset, per key.
public struct FakeVendorStats: Sendable, Hashable, Codable {
    /// The books of one key.
    public struct Key: Sendable, Hashable, Codable {
        /// Requests that arrived with this key, answered or not yet.
        public var requests: Int = 0
        /// Requests per vendor name (`prospeo`, `findymail`, `zerobounce`).
        public var requestsByVendor: [String: Int] = [:]
        /// Requests being answered now.
        public var inFlight: Int = 0
        /// The most requests this key had in flight at once.
        public var maxInFlight: Int = 0
        /// Credits charged by the vendors' billing rules.
        public var credits: Int = 0
        /// Credits per vendor name.
        public var creditsByVendor: [String: Int] = [:]
        /// Arrival time of each request in milliseconds since the server started, in arrival order (the first
        /// `FakeVendorStats.maxArrivals` since the last reset).
        public var arrivalMilliseconds: [Int] = []

        /// Creates empty books.
        public init() {}
    }

    /// How many arrival times are kept per key, so that a long-running server does not grow without bound.
    public static let maxArrivals = 100_000

    /// Books per key, by `FakeVendors.keyID(_:)` of the key (a short SHA-256 prefix, never the key).
    public var keys: [String: Key] = [:]
    /// Requests with any key, including those to unknown paths of a vendor.
    public var requests: Int = 0
    /// The most requests in flight at once, over all keys.
    public var maxInFlight: Int = 0

    /// Creates empty stats.
    public init() {}
}
