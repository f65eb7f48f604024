public import Events
import Foundation

/// The billing read model: which plan a tenant was on when (`billing_plan_segments`), and what it used in
/// each part of a billing period that one plan priced (`billing_usage`). Prices are configuration, so they
/// are applied when a statement is read (``BillingStatement``), never stored: the tables depend on the log
/// alone and a rebuild reproduces them exactly.
///
/// A plan segment starts when the tenant is created or when a `PlanChanged` takes effect, and ends at the
/// next change or at erasure. Usage is assigned by its own time (the usage window's start, or the time a run
/// started or a vendor call was billed) to the segment in effect then, as far as the feed has shown plan
/// changes; both the live runner and a rebuild read the feed in the same order, so the assignment is
/// deterministic.
public struct BillingProjection: Projection {
    public let name = "billing"
    public let version = 1
    public let eventTypes: Set<String> = [
        TenantCreated.eventType, PlanChanged.eventType, TenantErased.eventType, UsageRecorded.eventType,
        RunStarted.eventType,
        VendorCallBilled.eventType,
    ]
    public let tables = [
        ProjectionTable(
            name: "billing_plan_segments",
            columns: """
                tenant_id uuid NOT NULL,
                starts_at timestamptz NOT NULL,
                ends_at timestamptz,
                plan text NOT NULL,
                PRIMARY KEY (tenant_id, starts_at)
                """),
        ProjectionTable(
            name: "billing_usage",
            columns: """
                tenant_id uuid NOT NULL,
                period text NOT NULL,
                starts_at timestamptz NOT NULL,
                plan text NOT NULL,
                meter text NOT NULL,
                quantity bigint NOT NULL,
                PRIMARY KEY (tenant_id, period, starts_at, meter)
                """,
            indexes: ["CREATE INDEX IF NOT EXISTS {table}_period ON {table} (period)"]),
    ]

    public init() {}

    /// One plan's stretch of a tenant's life, in microseconds since 1970.
    struct Segment: Hashable {
        var start: Int64
        var end: Int64?
        var plan: String
    }

    private struct Line: Hashable {
        let tenant: UUID
        let period: String
        let start: Int64
        let plan: String
        let meter: String
    }

    public func apply(_ events: [RecordedEvent], in context: ProjectionContext) async throws {
        let decoded = try events.map { (recorded: $0, event: try context.decode($0)) }
        var tenants = Set<UUID>()
        for (recorded, event) in decoded {
            guard let tenant = Self.tenant(of: event) else {
                throw ProjectionsError(
                    .unexpectedEvent, "billing cannot apply \(recorded.type) at position \(recorded.globalPosition)")
            }
            tenants.insert(tenant)
        }
        var segments = try await load(tenants, context)
        var changed = Set<UUID>()
        var sums: [Line: Int64] = [:]

        func add(_ tenant: UUID, at time: Int64, meter: Meter, _ quantity: Int64, _ recorded: RecordedEvent) throws {
            guard let history = segments[tenant], let first = history.first else {
                throw ProjectionsError(
                    .unexpectedEvent,
                    "billing: \(recorded.type) at position \(recorded.globalPosition) is for tenant \(tenant.lowercased), which was never created"
                )
            }
            let segment = history.last(where: { $0.start <= time }) ?? first
            let period = BillingPeriod(containingMicroseconds: time)
            // Usage dated before the tenant's first segment (clocks apart) counts on the first plan, in its own
            // period: the line starts where the period does, never after the usage.
            let start = time < segment.start ? period.startMicroseconds : max(segment.start, period.startMicroseconds)
            let line = Line(
                tenant: tenant, period: period.description, start: start, plan: segment.plan, meter: meter.description)
            sums[line, default: 0] += quantity
        }

        for (recorded, event) in decoded {
            let recordedAt = BillingPeriod.microseconds(recorded.recordedAt)
            switch event {
            case let event as TenantCreated:
                guard segments[event.tenantID, default: []].isEmpty else { continue }
                segments[event.tenantID] = [Segment(start: recordedAt, end: nil, plan: event.plan)]
                changed.insert(event.tenantID)
            case let event as PlanChanged:
                guard var history = segments[event.tenantID], let open = history.last, open.end == nil else { continue }
                // Segments only move forward: a change dated before the open segment began takes effect just
                // after it, so no usage already assigned changes segment.
                let effective = max(BillingPeriod.microseconds(event.effectiveAt), open.start + 1)
                history[history.count - 1].end = effective
                history.append(Segment(start: effective, end: nil, plan: event.toPlan))
                segments[event.tenantID] = history
                changed.insert(event.tenantID)
            case let event as TenantErased:
                guard var history = segments[event.tenantID], let open = history.last, open.end == nil else { continue }
                history[history.count - 1].end = max(recordedAt, open.start + 1)
                segments[event.tenantID] = history
                changed.insert(event.tenantID)
            case let event as UsageRecorded:
                try add(
                    event.tenantID, at: BillingPeriod.microseconds(event.windowStart), meter: .apiCalls,
                    Int64(event.apiCalls), recorded)
            case let event as RunStarted:
                try add(event.tenantID, at: recordedAt, meter: .runs, 1, recorded)
            case let event as VendorCallBilled:
                try add(event.tenantID, at: recordedAt, meter: .vendorCalls(event.vendor), 1, recorded)
                try add(
                    event.tenantID, at: recordedAt, meter: .vendorCredits(event.vendor), Int64(event.credits), recorded)
            default:
                throw ProjectionsError(
                    .unexpectedEvent, "billing cannot apply \(recorded.type) at position \(recorded.globalPosition)")
            }
        }
        try await store(segments, of: changed, context)
        guard !sums.isEmpty else { return }
        let lines = Array(sums)
        try await context.execute(
            """
            INSERT INTO billing_usage AS u (tenant_id, period, starts_at, plan, meter, quantity)
            SELECT t, p, to_timestamp(0) + s * interval '1 microsecond', pl, m, q
            FROM unnest($1::uuid[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::int8[]) AS x(t, p, s, pl, m, q)
            ON CONFLICT (tenant_id, period, starts_at, meter) DO UPDATE SET quantity = u.quantity + excluded.quantity
            """,
            [
                .uuidArray(lines.map(\.key.tenant)), .stringArray(lines.map(\.key.period)),
                .int64Array(lines.map(\.key.start)),
                .stringArray(lines.map(\.key.plan)), .stringArray(lines.map(\.key.meter)),
                .int64Array(lines.map(\.value)),
            ])
    }

    private static func tenant(of event: any DomainEvent) -> UUID? {
        switch event {
        case let event as TenantCreated: event.tenantID
        case let event as PlanChanged: event.tenantID
        case let event as TenantErased: event.tenantID
        case let event as UsageRecorded: event.tenantID
        case let event as RunStarted: event.tenantID
        case let event as VendorCallBilled: event.tenantID
        default: nil
        }
    }

    /// The segments of `tenants`, oldest first.
    private func load(_ tenants: Set<UUID>, _ context: ProjectionContext) async throws -> [UUID: [Segment]] {
        let rows = try await context.execute(
            """
            SELECT tenant_id, \(Self.microsecondsSQL("starts_at")), \(Self.microsecondsSQL("ends_at")), plan
            FROM billing_plan_segments WHERE tenant_id = ANY($1::uuid[]) ORDER BY tenant_id, starts_at
            """, [.uuidArray(Array(tenants))])
        var segments: [UUID: [Segment]] = [:]
        for row in rows {
            segments[try row.uuid(0), default: []].append(
                Segment(start: try row.int64(1), end: try row.optionalInt64(2), plan: try row.string(3)))
        }
        return segments
    }

    /// Rewrites the segments of the tenants whose plan history changed in this batch.
    private func store(_ segments: [UUID: [Segment]], of tenants: Set<UUID>, _ context: ProjectionContext) async throws
    {
        guard !tenants.isEmpty else { return }
        var ids: [UUID] = []
        var starts: [Int64] = []
        var ends: [String?] = []
        var plans: [String] = []
        for tenant in tenants {
            for segment in segments[tenant] ?? [] {
                ids.append(tenant)
                starts.append(segment.start)
                ends.append(segment.end.map(String.init))
                plans.append(segment.plan)
            }
        }
        try await context.execute(
            "DELETE FROM billing_plan_segments WHERE tenant_id = ANY($1::uuid[])", [.uuidArray(Array(tenants))])
        try await context.execute(
            """
            INSERT INTO billing_plan_segments (tenant_id, starts_at, ends_at, plan)
            SELECT t, to_timestamp(0) + s * interval '1 microsecond', to_timestamp(0) + e::int8 * interval '1 microsecond', p
            FROM unnest($1::uuid[], $2::int8[], $3::text[], $4::text[]) AS x(t, s, e, p)
            """, [.uuidArray(ids), .int64Array(starts), .stringArray(ends), .stringArray(plans)])
    }

    /// SQL for a timestamptz column as microseconds since 1970, exactly.
    static func microsecondsSQL(_ column: String) -> String {
        "((extract(epoch FROM \(column)) * 1000000)::int8)"
    }
}
