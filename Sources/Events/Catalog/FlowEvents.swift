public import Foundation

/// A limit on how many calls may start within a sliding period.
public struct RateWindow: Codable, Sendable, Hashable {
    /// Calls that may start within any `seconds`-long period.
    public var limit: Int
    public var seconds: Int

    public init(limit: Int, seconds: Int) {
        self.limit = limit
        self.seconds = seconds
    }
}

/// Stream `flowlimits-{vendor}` (the vendor's default for every key) or `flowlimits-{vendor}:{tenantId}` (one
/// tenant's override): the flow control of a vendor's keys changed. Workers apply it at their next claim.
public struct FlowLimitsSet: DomainEvent {
    public static let eventType = "FlowLimitsSet"
    public static let schemaVersion = 1
    public var vendor: Vendor
    /// The tenant whose keys this overrides; nil for the vendor's default.
    public var tenantID: UUID?
    /// Every window must have room for a call to start; nil inherits (the vendor default, then the built-in one).
    public var windows: [RateWindow]?
    /// Calls of one key in flight at once; nil inherits.
    public var parallelism: Int?

    public init(vendor: Vendor, tenantID: UUID?, windows: [RateWindow]?, parallelism: Int?) {
        self.vendor = vendor
        self.tenantID = tenantID
        self.windows = windows
        self.parallelism = parallelism
    }

    enum CodingKeys: String, CodingKey { case vendor, tenantID = "tenantId", windows, parallelism }
}
