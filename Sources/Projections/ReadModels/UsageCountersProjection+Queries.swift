package import Events
public import Foundation

/// One counter of `usage_counters`: a tenant's quantity of one meter in one billing period.
public struct UsageCounterRow: Sendable, Hashable {
    /// The tenant counted.
    public var tenantID: UUID
    /// The meter (`api_calls`, `runs`, a vendor's credits).
    public var meter: String
    /// The quantity counted so far.
    public var quantity: Int64

    init(_ row: PostgresRow) throws {
        tenantID = try row.uuid(0)
        meter = try row.string(1)
        quantity = try row.int64(2)
    }
}

extension UsageCountersProjection {
    /// The tenant's counters in `period`, by meter.
    package static func counters(
        ofTenant tenant: UUID, in period: BillingPeriod, on connection: PostgresConnection
    ) async throws -> [UsageCounterRow] {
        try await connection.query(
            """
            SELECT tenant_id, meter, quantity FROM usage_counters WHERE tenant_id = $1 AND period = $2 ORDER BY meter
            """, [.uuid(tenant), .string(period.description)]
        ).map(UsageCounterRow.init)
    }

    /// The counters of `meters` for several tenants in `period` (the quota book's floor).
    package static func counters(
        ofTenants tenants: [UUID], meters: [String], in period: BillingPeriod, on connection: PostgresConnection
    ) async throws -> [UsageCounterRow] {
        try await connection.query(
            """
            SELECT tenant_id, meter, quantity FROM usage_counters
            WHERE period = $1 AND tenant_id = ANY($2) AND meter = ANY($3)
            """, [.string(period.description), .uuidArray(tenants), .stringArray(meters)]
        ).map(UsageCounterRow.init)
    }
}
