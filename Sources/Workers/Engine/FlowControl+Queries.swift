public import Events
public import Foundation

/// One rate window of a flow key: its limit, its length and the calls started within it.
public struct FlowWindowUsage: Sendable, Hashable, Decodable {
    /// Calls allowed per window.
    public var limit: Int
    /// The window's length in seconds.
    public var seconds: Int
    /// Calls started within the last `seconds`.
    public var used: Int
}

/// One row of `flow_key_status`: a tenant's key for one vendor as the workers' claims see it.
public struct FlowKeyRow: Sendable, Hashable {
    /// The tenant.
    public var tenantID: UUID
    /// The vendor.
    public var vendor: String
    /// The key's fingerprint; nil when the tenant has runs waiting on the vendor but no key for it.
    public var fingerprint: String?
    /// The version of the tenant's secret the workers hold.
    public var secretVersion: Int?
    /// Why the vendor's answers suspended the key.
    public var suspendedReason: String?
    /// Until when the vendor asked for a pause.
    public var pausedUntil: Date?
    /// Why it paused.
    public var pauseReason: String?
    /// Calls in flight at once at most.
    public var parallelism: Int
    /// The rate windows in force with their use.
    public var windows: [FlowWindowUsage]
    /// Steps waiting for the key.
    public var waiting: Int
    /// Calls in flight now.
    public var inFlight: Int
    /// How long the oldest waiting step has waited, in seconds.
    public var oldestWaitingSeconds: Double?

    /// `no_key`, `suspended`, `paused` or `active`.
    public var state: String {
        if fingerprint == nil {
            "no_key"
        } else if suspendedReason != nil {
            "suspended"
        } else if pausedUntil != nil {
            "paused"
        } else {
            "active"
        }
    }
}

/// One row of `flow_limits`: the limits the workers apply at one level.
public struct FlowLimitsRow: Sendable, Hashable {
    /// Where the limits apply.
    public enum Scope: String, Sendable, Hashable {
        /// Built into Tally for the vendor.
        case builtin
        /// The operator's default for every tenant's key of the vendor.
        case `default`
        /// One tenant's override.
        case tenant
    }

    /// The vendor.
    public var vendor: String
    /// The level.
    public var scope: Scope
    /// The tenant of a tenant override.
    public var tenantID: UUID?
    /// Nil: inherited from the level above. Empty: no rate limit.
    public var windows: [RateWindow]?
    /// Nil: inherited.
    public var parallelism: Int?
    /// When the workers applied them.
    public var updatedAt: Date
}

/// The reads of the flow-control tables the workers keep, for the API's flow-key and flow-limit answers.
public enum FlowQueries {
    /// The tenant id `flow_limits` files the built-in limits under.
    static let builtinTenant = UUID(uuidString: "ffffffff-ffff-ffff-ffff-ffffffffffff")!

    /// The flow keys, of `tenant` and `vendor` when given, by tenant and vendor. `flow_key_status` is a
    /// security-invoker view: row-level security applies to the reader.
    package static func keys(tenant: UUID? = nil, vendor: Vendor? = nil, on connection: PostgresConnection)
        async throws -> [FlowKeyRow]
    {
        let (filter, parameters) = conditions(tenant: tenant, vendor: vendor)
        let rows = try await connection.query(
            """
            SELECT tenant_id, vendor, fingerprint, secret_version, suspended_reason, paused_until, pause_reason, parallelism,
                   coalesce((SELECT json_agg(json_build_object('limit', w.l, 'seconds', w.s, 'used', w.u) ORDER BY w.n)
                             FROM unnest(window_limits, window_seconds, window_used) WITH ORDINALITY AS w(l, s, u, n)), '[]'),
                   waiting, in_flight, extract(epoch FROM now() - oldest_waiting_since)::float8
            FROM flow_key_status\(filter) ORDER BY tenant_id, vendor
            """, parameters)
        return try rows.map { row in
            let fingerprint = try row.optionalString(2)
            let hasKey = fingerprint != nil
            let pausedUntil = hasKey ? try row.optionalDate(5) : nil
            return FlowKeyRow(
                tenantID: try row.uuid(0), vendor: try row.string(1), fingerprint: fingerprint,
                secretVersion: hasKey ? try row.optionalInt64(3).map(Int.init) : nil,
                suspendedReason: hasKey ? try row.optionalString(4) : nil, pausedUntil: pausedUntil,
                pauseReason: pausedUntil == nil ? nil : try row.optionalString(6), parallelism: try row.int(7),
                windows: try JSONDecoder().decode([FlowWindowUsage].self, from: Data(try row.jsonBytes(8))),
                waiting: try row.int(9), inFlight: try row.int(10),
                oldestWaitingSeconds: try row.isNull(11) ? nil : max(0, (try row.double(11) * 1000).rounded() / 1000))
        }
    }

    /// The limits the workers apply, of `tenant` and `vendor` when given: by vendor, the built-in ones, then
    /// the vendor default, then the tenant overrides.
    package static func limits(tenant: UUID? = nil, vendor: Vendor? = nil, on connection: PostgresConnection)
        async throws -> [FlowLimitsRow]
    {
        let (filter, parameters) = conditions(tenant: tenant, vendor: vendor)
        let rows = try await connection.query(
            """
            SELECT vendor, tenant_id, parallelism, updated_at,
                   CASE WHEN window_limits IS NOT NULL THEN
                       coalesce((SELECT json_agg(json_build_object('limit', w.l, 'seconds', w.s) ORDER BY w.n)
                                 FROM unnest(window_limits, window_seconds) WITH ORDINALITY AS w(l, s, n)), '[]')
                   END
            FROM flow_limits\(filter)
            ORDER BY vendor, CASE tenant_id WHEN '\(builtinTenant.lowercased)' THEN 0
                                            WHEN '\(WorkQueue.vendorDefault.lowercased)' THEN 1 ELSE 2 END, tenant_id
            """, parameters)
        return try rows.map { row in
            let tenant = try row.uuid(1)
            let scope: FlowLimitsRow.Scope =
                tenant == builtinTenant ? .builtin : tenant == WorkQueue.vendorDefault ? .default : .tenant
            let windows =
                try row.isNull(4) ? nil : try JSONDecoder().decode([RateWindow].self, from: Data(try row.jsonBytes(4)))
            return FlowLimitsRow(
                vendor: try row.string(0), scope: scope, tenantID: scope == .tenant ? tenant : nil,
                windows: windows,
                parallelism: try row.optionalInt64(2).map(Int.init), updatedAt: try row.date(3))
        }
    }

    private static func conditions(tenant: UUID?, vendor: Vendor?) -> (String, [PostgresValue]) {
        var conditions: [String] = []
        var parameters: [PostgresValue] = []
        if let tenant {
            parameters.append(.uuid(tenant))
            conditions.append("tenant_id = $\(parameters.count)")
        }
        if let vendor {
            parameters.append(.string(vendor.rawValue))
            conditions.append("vendor = $\(parameters.count)")
        }
        return (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "), parameters)
    }
}
