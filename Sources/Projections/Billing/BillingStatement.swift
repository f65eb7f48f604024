public import Events
public import Foundation

/// One billable line: a tenant's use of one meter during one plan segment of a billing period, priced by
/// that plan. The base fee is a line too (quantity 1, the plan's fee prorated by the segment's share of
/// the period).
public struct BillingLine: Sendable, Hashable, Encodable {
    /// Deterministic: the same tenant, period, segment start and meter give the same identifier in every
    /// export and after any rebuild. Usable as a Stripe meter event `identifier` (44 characters).
    public var identifier: String
    public var period: String
    public var tenantID: UUID
    public var tenantSlug: String
    public var stripeCustomerID: String?
    public var plan: String
    public var meter: String
    /// The part of the period this line covers, ISO 8601 UTC; `lineEnd` is exclusive.
    public var lineStart: String
    public var lineEnd: String
    public var quantity: Int64
    /// Millionths of the currency's major unit per unit (the whole period's fee for `base_fee`).
    public var unitPriceMicros: Int64
    /// Millionths of the currency's major unit.
    public var amountMicros: Int64
    /// In the currency's minor unit (cents for usd), rounded half up: what an invoice shows.
    public var amount: Int64
    public var currency: String
    public var stripePriceID: String?

    /// The line's start and end in microseconds since 1970.
    package var startMicroseconds: Int64
    package var endMicroseconds: Int64

    enum CodingKeys: String, CodingKey {
        case identifier, period, tenantID = "tenantId", tenantSlug, stripeCustomerID = "stripeCustomerId", plan, meter,
            lineStart,
            lineEnd, quantity, unitPriceMicros, amountMicros, amount, currency, stripePriceID = "stripePriceId"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(identifier, forKey: .identifier)
        try container.encode(period, forKey: .period)
        try container.encode(tenantID.lowercased, forKey: .tenantID)
        try container.encode(tenantSlug, forKey: .tenantSlug)
        try container.encode(stripeCustomerID, forKey: .stripeCustomerID)
        try container.encode(plan, forKey: .plan)
        try container.encode(meter, forKey: .meter)
        try container.encode(lineStart, forKey: .lineStart)
        try container.encode(lineEnd, forKey: .lineEnd)
        try container.encode(quantity, forKey: .quantity)
        try container.encode(unitPriceMicros, forKey: .unitPriceMicros)
        try container.encode(amountMicros, forKey: .amountMicros)
        try container.encode(amount, forKey: .amount)
        try container.encode(currency, forKey: .currency)
        try container.encode(stripePriceID, forKey: .stripePriceID)
    }

    init(
        period: BillingPeriod, tenant: UUID, slug: String, customer: String?, plan: Plan, meter: Meter, start: Int64,
        end: Int64,
        quantity: Int64
    ) throws {
        let unitPrice = plan.unitPrice(meter)
        let amountMicros: Int64
        if meter == .baseFee {
            // The fee for the whole period, times the share of the period the segment covers, rounded half up.
            let share =
                Int128(unitPrice) * Int128(end - start) * 2 / Int128(period.endMicroseconds - period.startMicroseconds)
            amountMicros = Int64((share + 1) / 2)
        } else {
            let (product, overflow) = quantity.multipliedReportingOverflow(by: unitPrice)
            guard !overflow else {
                throw ProjectionsError(
                    .invalidInput, "the amount of \(quantity) \(meter) for tenant \(slug) does not fit in 64 bits")
            }
            amountMicros = product
        }
        identifier = Self.identifier(tenant: tenant, period: period, start: start, meter: meter)
        self.period = period.description
        tenantID = tenant
        tenantSlug = slug
        stripeCustomerID = customer
        self.plan = plan.name
        self.meter = meter.description
        lineStart = BillingPeriod.iso8601(microseconds: start)
        lineEnd = BillingPeriod.iso8601(microseconds: end)
        self.quantity = quantity
        unitPriceMicros = unitPrice
        self.amountMicros = amountMicros
        amount = Currency.minorUnits(fromMicros: amountMicros, currency: plan.currency)
        currency = plan.currency
        stripePriceID = plan.stripePriceIDs[meter]
        startMicroseconds = start
        endMicroseconds = end
    }

    static func identifier(tenant: UUID, period: BillingPeriod, start: Int64, meter: Meter) -> String {
        let key = "tally-billing-line|v1|\(tenant.lowercased)|\(period)|\(start)|\(meter)"
        return "tly_" + String(Sodium.hex(Sodium.sha256(Array(key.utf8))).prefix(40))
    }
}

/// The minor units of currencies as Stripe counts them.
package enum Currency {
    private static let zeroDecimal: Set<String> = [
        "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf",
    ]
    private static let threeDecimal: Set<String> = ["bhd", "jod", "kwd", "omr", "tnd"]

    /// Digits after the decimal point of the currency's minor unit.
    package static func exponent(_ currency: String) -> Int {
        zeroDecimal.contains(currency) ? 0 : threeDecimal.contains(currency) ? 3 : 2
    }

    /// Millionths of the major unit as minor units, rounded half up (away from zero for negatives).
    package static func minorUnits(fromMicros micros: Int64, currency: String) -> Int64 {
        var divisor: Int64 = 1
        for _ in 0..<(6 - exponent(currency)) { divisor *= 10 }
        let half = divisor / 2
        return micros >= 0 ? (micros + half) / divisor : -((-micros + half) / divisor)
    }
}

/// Everything billable in one period, read from the billing projection and priced by the plans file.
public struct BillingStatement: Sendable {
    public var period: BillingPeriod
    /// Whether the period had ended when the statement was read; only a closed period's statement is final.
    public var closed: Bool
    /// Ordered by tenant slug, line start and meter.
    public var lines: [BillingLine]
    /// Every tenant's slug by its Stripe customer id, for matching Stripe's invoices.
    public var tenantsByStripeCustomer: [String: String]

    /// Reads the statement of `period`. The `billing` and `tenants` projections must first have applied the
    /// whole log as it stands when this is called; it waits up to `catchUpTimeout` for them and throws
    /// `notCaughtUp` (saying why) when they do not get there.
    public static func load(
        period: BillingPeriod, plans: Plans, store: EventStore, now: Date = Date(),
        catchUpTimeout: Duration = .seconds(30)
    ) async throws -> BillingStatement {
        try await waitForProjections(store: store, timeout: catchUpTimeout)
        return try await store.pool.withTransaction { connection in
            try await connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return try await read(period: period, plans: plans, connection: connection, tenant: nil, now: now)
        }
    }

    /// Reads the statement of `period` as the billing projection holds it now, on `connection` inside the
    /// caller's transaction; only `tenant`'s lines when one is given (the API reads a tenant's own charges
    /// this way, inside its row-level-security scope).
    package static func read(
        period: BillingPeriod, plans: Plans, connection: PostgresConnection, tenant only: UUID?, now: Date
    ) async throws -> BillingStatement {
        let periodStart = period.startMicroseconds
        let periodEnd = period.endMicroseconds
        let scope = only.map { " AND tenant_id = '\($0.lowercased)'" } ?? ""
        let tenantRows = try await connection.query(
            "SELECT tenant_id, slug, stripe_customer_id FROM tenants WHERE true" + scope)
        var tenants: [UUID: (slug: String, customer: String?)] = [:]
        var byCustomer: [String: String] = [:]
        for row in tenantRows {
            let tenant = (slug: try row.string(1), customer: try row.optionalString(2))
            tenants[try row.uuid(0)] = tenant
            if let customer = tenant.customer { byCustomer[customer] = tenant.slug }
        }

        let segmentRows = try await connection.query(
            """
            SELECT tenant_id, \(BillingProjection.microsecondsSQL("starts_at")), \(BillingProjection.microsecondsSQL("ends_at")), plan
            FROM billing_plan_segments
            WHERE starts_at < to_timestamp(0) + $2::int8 * interval '1 microsecond'
              AND (ends_at IS NULL OR ends_at > to_timestamp(0) + $1::int8 * interval '1 microsecond')\(scope)
            ORDER BY tenant_id, starts_at
            """, [.int64(periodStart), .int64(periodEnd)])
        // Each tenant's segments overlapping the period, clipped to it.
        var segments: [UUID: [(start: Int64, end: Int64, plan: String)]] = [:]
        for row in segmentRows {
            let start = max(try row.int64(1), periodStart)
            let end = min(try row.optionalInt64(2) ?? periodEnd, periodEnd)
            segments[try row.uuid(0), default: []].append((start, end, try row.string(3)))
        }

        func plan(_ name: String, _ tenant: UUID) throws -> Plan {
            guard let plan = plans[name] else {
                let slug = tenants[tenant]?.slug ?? tenant.lowercased
                throw ProjectionsError(
                    .invalidInput,
                    "tenant \(slug) was on plan \(name) in \(period), and the plans file has no such plan; add it back to price the period"
                )
            }
            return plan
        }
        func line(_ tenant: UUID, _ plan: Plan, _ meter: Meter, _ start: Int64, _ end: Int64, _ quantity: Int64) throws
            -> BillingLine
        {
            let info = tenants[tenant] ?? (tenant.lowercased, nil)
            return try BillingLine(
                period: period, tenant: tenant, slug: info.slug, customer: info.customer, plan: plan, meter: meter,
                start: start,
                end: end, quantity: quantity)
        }

        var lines: [BillingLine] = []
        for (tenant, stretches) in segments {
            for stretch in stretches where stretch.end > stretch.start {
                let plan = try plan(stretch.plan, tenant)
                if plan.baseFeeMicros > 0 {
                    lines.append(try line(tenant, plan, .baseFee, stretch.start, stretch.end, 1))
                }
            }
        }
        let usageRows = try await connection.query(
            """
            SELECT tenant_id, \(BillingProjection.microsecondsSQL("starts_at")), plan, meter, quantity
            FROM billing_usage WHERE period = $1\(scope)
            """, [.string(period.description)])
        for row in usageRows {
            let tenant = try row.uuid(0)
            let start = try row.int64(1)
            let meterName = try row.string(3)
            guard let meter = Meter(meterName) else {
                throw ProjectionsError(
                    .invalidInput, "billing_usage holds a meter this binary does not know: \(meterName)")
            }
            // The line ends where the segment that holds it ends, within the period.
            let end = segments[tenant]?.first(where: { $0.start <= start && start < $0.end })?.end ?? periodEnd
            lines.append(
                try line(tenant, try plan(try row.string(2), tenant), meter, start, max(end, start), try row.int64(4)))
        }
        lines.sort { a, b in
            if a.tenantSlug != b.tenantSlug { return a.tenantSlug < b.tenantSlug }
            if a.tenantID != b.tenantID { return a.tenantID.lowercased < b.tenantID.lowercased }
            if a.startMicroseconds != b.startMicroseconds { return a.startMicroseconds < b.startMicroseconds }
            return Meter(a.meter)! < Meter(b.meter)!
        }
        return BillingStatement(
            period: period, closed: BillingPeriod.microseconds(now) >= periodEnd, lines: lines,
            tenantsByStripeCustomer: byCustomer)
    }

    /// Waits until the `tenants` and `billing` projections have read the log past its head as it stands now
    /// (every event of their types applied); throws when one is stopped, or has parked a stream, since the
    /// statement would then miss some of a tenant's history.
    static func waitForProjections(store: EventStore, timeout: Duration) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        let needed: [any Projection] = [TenantsProjection(), BillingProjection()]
        let head = try await store.head()
        while true {
            let statuses = try await ProjectionStatus.all(needed, store: store)
            if let failed = statuses.first(where: { $0.state == .failed || $0.state == .needsRebuild }) {
                throw ProjectionsError(
                    .notCaughtUp,
                    "the \(failed.name) projection is \(failed.state.rawValue)\(failed.error.map { ": \($0)" } ?? ""); billing needs it running (see tally projections status)"
                )
            }
            if statuses.contains(where: { $0.parkedStreams > 0 }) {
                let parked = try await store.parkedStreams(readers: needed.map(\.name))
                throw ProjectionsError(
                    .notCaughtUp,
                    "streams are parked, so some usage or plan changes are not applied: "
                        + parked.prefix(5).map { "\($0.reader) \($0.stream) (\($0.error))" }.joined(separator: "; ")
                        + "; fix the cause and run tally projections retry")
            }
            let behind = statuses.filter { $0.state != .running || $0.position < head }
            if behind.isEmpty { return }
            if clock.now >= deadline {
                let detail = behind.map {
                    "\($0.name) \($0.state == .notStarted ? "has not started" : "is \($0.lagEvents) events behind")"
                }
                throw ProjectionsError(
                    .notCaughtUp,
                    "\(detail.joined(separator: ", ")); is a tally serve process running its projections? (or run tally projections rebuild billing tenants)"
                )
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}
