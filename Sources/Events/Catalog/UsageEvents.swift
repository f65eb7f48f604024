public import Foundation

/// Stream `usage-{tenantId}`: API calls made with one key during a short window, counted in memory by one
/// instance and appended in a batch (at least once a second and at shutdown).
public struct UsageRecorded: DomainEvent {
    public static let eventType = "UsageRecorded"
    public static let schemaVersion = 1
    public var tenantID: UUID
    public var keyID: UUID
    public var windowStart: Date
    public var windowEnd: Date
    public var apiCalls: Int
    /// The `tally serve` instance that counted them.
    public var instanceID: String

    public init(tenantID: UUID, keyID: UUID, windowStart: Date, windowEnd: Date, apiCalls: Int, instanceID: String) {
        self.tenantID = tenantID
        self.keyID = keyID
        self.windowStart = windowStart
        self.windowEnd = windowEnd
        self.apiCalls = apiCalls
        self.instanceID = instanceID
    }

    enum CodingKeys: String, CodingKey {
        case tenantID = "tenantId", keyID = "keyId", windowStart, windowEnd, apiCalls, instanceID = "instanceId"
    }
}
