public import Events
import Foundation

/// `usage_counters`: per tenant, billing period (`YYYY-MM`, UTC) and meter, the quantity used. Meters:
/// `api_calls`, `runs`, `vendor_calls:<vendor>`, `vendor_credits:<vendor>`. A batch is summed in memory and
/// written with one upsert per counter, since usage is the busiest stream.
public struct UsageCountersProjection: Projection {
    public let name = "usage_counters"
    public let version = 1
    public let eventTypes: Set<String> = [UsageRecorded.eventType, RunStarted.eventType, VendorCallBilled.eventType]
    public let tables = [
        ProjectionTable(
            name: "usage_counters",
            columns: """
                tenant_id uuid NOT NULL,
                period text NOT NULL,
                meter text NOT NULL,
                quantity bigint NOT NULL,
                PRIMARY KEY (tenant_id, period, meter)
                """)
    ]

    public init() {}

    private struct Counter: Hashable {
        let tenant: UUID
        let period: String
        let meter: String
    }

    public func apply(_ events: [RecordedEvent], in context: ProjectionContext) async throws {
        var sums: [Counter: Int64] = [:]
        for recorded in events {
            switch try context.decode(recorded) {
            case let event as UsageRecorded:
                sums[
                    Counter(tenant: event.tenantID, period: Self.period(of: event.windowStart), meter: "api_calls"),
                    default: 0] +=
                    Int64(event.apiCalls)
            case let event as RunStarted:
                sums[
                    Counter(tenant: event.tenantID, period: Self.period(of: recorded.recordedAt), meter: "runs"),
                    default: 0] += 1
            case let event as VendorCallBilled:
                let period = Self.period(of: recorded.recordedAt)
                sums[
                    Counter(tenant: event.tenantID, period: period, meter: "vendor_calls:\(event.vendor.rawValue)"),
                    default: 0] += 1
                sums[
                    Counter(tenant: event.tenantID, period: period, meter: "vendor_credits:\(event.vendor.rawValue)"),
                    default: 0] +=
                    Int64(event.credits)
            default:
                throw ProjectionsError(
                    .unexpectedEvent,
                    "usage_counters cannot apply \(recorded.type) at position \(recorded.globalPosition)")
            }
        }
        guard !sums.isEmpty else { return }
        let counters = Array(sums)
        try await context.execute(
            """
            INSERT INTO usage_counters AS u (tenant_id, period, meter, quantity)
            SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int8[])
            ON CONFLICT (tenant_id, period, meter) DO UPDATE SET quantity = u.quantity + excluded.quantity
            """,
            [
                .uuidArray(counters.map(\.key.tenant)), .stringArray(counters.map(\.key.period)),
                .stringArray(counters.map(\.key.meter)), .int64Array(counters.map(\.value)),
            ])
    }

    /// The billing period of `date`, `YYYY-MM` in UTC.
    static func period(of date: Date) -> String {
        BillingPeriod(containing: date).description
    }
}
