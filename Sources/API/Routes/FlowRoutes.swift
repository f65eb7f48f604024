import Commands
import Events
import Foundation
import Hummingbird

/// Flow control per vendor key: what the workers' claims see (tenants their own keys, the operator every
/// key), and the limits the operator sets for a vendor's keys or one tenant's. Limits are events
/// (`FlowLimitsSet`); the workers apply them to `flow_limits`, which the claims read.
struct FlowRoutes {
    let services: APIServices

    // MARK: - Flow keys

    struct WindowBody: Codable, Sendable {
        var limit: Int
        var seconds: Int
        /// Calls started within the last `seconds` (flow keys only).
        var used: Int?
    }

    struct LimitsBody: Encodable {
        var parallelism: Int
        var windows: [WindowBody]
    }

    struct FlowKeyBody: Encodable {
        var vendor: String
        /// In the operator's answers only.
        var tenantId: UUID?
        var fingerprint: String?
        var secretVersion: Int?
        var state: String
        var pausedUntil: Date?
        var pauseReason: String?
        var suspendedReason: String?
        var limits: LimitsBody
        var waiting: Int
        var inFlight: Int
        var oldestWaitingSeconds: Double?
    }

    /// `flow_key_status` (a security-invoker view: row-level security applies to the reader) with its window
    /// arrays as one JSON list.
    static let flowKeySQL = """
        SELECT tenant_id, vendor, fingerprint, secret_version, suspended_reason, paused_until, pause_reason, parallelism,
               coalesce((SELECT json_agg(json_build_object('limit', w.l, 'seconds', w.s, 'used', w.u) ORDER BY w.n)
                         FROM unnest(window_limits, window_seconds, window_used) WITH ORDINALITY AS w(l, s, u, n)), '[]'),
               waiting, in_flight, extract(epoch FROM now() - oldest_waiting_since)::float8
        FROM flow_key_status
        """

    static func flowKey(_ row: PostgresRow, withTenant: Bool) throws -> FlowKeyBody {
        let fingerprint = try row.optionalString(2)
        let suspendedReason = fingerprint == nil ? nil : try row.optionalString(4)
        let pausedUntil = fingerprint == nil ? nil : try row.optionalDate(5)
        let state =
            if fingerprint == nil { "no_key" } else if suspendedReason != nil { "suspended" } else if pausedUntil != nil
            { "paused" } else { "active" }
        let windows = try JSONDecoder().decode([WindowBody].self, from: Data(try row.jsonBytes(8)))
        return FlowKeyBody(
            vendor: try row.string(1), tenantId: withTenant ? try row.uuid(0) : nil, fingerprint: fingerprint,
            secretVersion: fingerprint == nil ? nil : try row.optionalInt64(3).map(Int.init), state: state,
            pausedUntil: pausedUntil,
            pauseReason: pausedUntil == nil ? nil : try row.optionalString(6), suspendedReason: suspendedReason,
            limits: LimitsBody(parallelism: try row.int(7), windows: windows), waiting: try row.int(9),
            inFlight: try row.int(10),
            oldestWaitingSeconds: try row.isNull(11) ? nil : max(0, (try row.double(11) * 1000).rounded() / 1000))
    }

    /// `GET /v1/flow-keys`: the tenant's own keys, one per vendor it has a key for or runs waiting on.
    func flowKeys(_ request: Request, _ context: TallyContext) async throws -> Response {
        let principal = try context.tenant
        let items = try await services.database.tenant(principal.tenantID, readOnly: true) { connection in
            try await connection.query(
                "\(Self.flowKeySQL) WHERE tenant_id = $1 ORDER BY vendor", [.uuid(principal.tenantID)]
            ).map {
                try Self.flowKey($0, withTenant: false)
            }
        }
        return try JSON.response(ListBody(items: items, nextCursor: nil))
    }

    /// `GET /v1/admin/flow-keys[?tenantId=&vendor=]`: every tenant's keys.
    func operatorFlowKeys(_ request: Request, _ context: TallyContext) async throws -> Response {
        let (sql, parameters) = try Self.filtered(Self.flowKeySQL, request, tenantColumn: "tenant_id")
        let statement = sql + " ORDER BY tenant_id, vendor"
        let items = try await services.database.asOperator(readOnly: true) { connection in
            try await connection.query(statement, parameters).map { try Self.flowKey($0, withTenant: true) }
        }
        return try JSON.response(ListBody(items: items, nextCursor: nil))
    }

    /// Adds the `tenantId` and `vendor` query filters to `sql` (which has no WHERE yet); 422 naming the
    /// parameter when either is not valid.
    static func filtered(_ sql: String, _ request: Request, tenantColumn: String) throws -> (String, [PostgresValue]) {
        let query = request.uri.queryParameters
        var conditions: [String] = []
        var parameters: [PostgresValue] = []
        var errors: [Problem.FieldError] = []
        if let text = query["tenantId"] {
            if let id = UUID(uuidString: String(text)) {
                parameters.append(.uuid(id))
                conditions.append("\(tenantColumn) = $\(parameters.count)")
            } else {
                errors.append(.init(detail: "must be a UUID", parameter: "tenantId"))
            }
        }
        if let text = query["vendor"] {
            if let vendor = Vendor(rawValue: String(text)) {
                parameters.append(.string(vendor.rawValue))
                conditions.append("vendor = $\(parameters.count)")
            } else {
                errors.append(
                    .init(
                        detail: "must be one of \(Vendor.allCases.map(\.rawValue).joined(separator: ", "))",
                        parameter: "vendor"))
            }
        }
        if !errors.isEmpty { throw Problem.validation(errors) }
        return (conditions.isEmpty ? sql : sql + " WHERE " + conditions.joined(separator: " AND "), parameters)
    }

    // MARK: - Flow limits

    /// One rate window of a request: only `limit` and `seconds` (anything else is rejected with its pointer).
    struct WindowInput: Decodable {
        var limit: Int
        var seconds: Int

        private enum CodingKeys: String, CodingKey, CaseIterable { case limit, seconds }

        private struct AnyKey: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: any Decoder) throws {
            let all = try decoder.container(keyedBy: AnyKey.self)
            let known = Set(CodingKeys.allCases.map(\.rawValue))
            if let unknown = all.allKeys.map(\.stringValue).sorted().first(where: { !known.contains($0) }) {
                throw DecodingError.dataCorrupted(
                    .init(
                        codingPath: all.codingPath + [AnyKey(stringValue: unknown)],
                        debugDescription: "\(unknown) is not a field of a window"))
            }
            let container = try decoder.container(keyedBy: CodingKeys.self)
            limit = try container.decodeInteger(forKey: .limit)
            seconds = try container.decodeInteger(forKey: .seconds)
        }
    }

    struct SetLimits: RequestBody {
        static let fields: Set<String> = ["windows", "parallelism"]
        static let maxWindows = 8
        static let limits = 1...1_000_000
        static let seconds = 1...86_400
        static let parallelism = 1...10_000
        /// Absent or null: inherit. Empty: no rate limit.
        var windows: [WindowInput]?
        /// Absent or null: inherit.
        var parallelism: Int?

        private enum CodingKeys: String, CodingKey { case windows, parallelism }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            windows = try container.decodeIfPresent([WindowInput].self, forKey: .windows)
            parallelism = try container.decodeIntegerIfPresent(forKey: .parallelism)
        }

        func validate() -> [Problem.FieldError] {
            var errors: [Problem.FieldError] = []
            if let windows {
                if windows.count > Self.maxWindows {
                    errors.append(.init(detail: "must hold at most \(Self.maxWindows) windows", pointer: "/windows"))
                }
                var seen = Set<Int>()
                for (index, window) in windows.enumerated() {
                    if !Self.limits.contains(window.limit) {
                        errors.append(.init(detail: "must be from 1 to 1000000", pointer: "/windows/\(index)/limit"))
                    }
                    if !Self.seconds.contains(window.seconds) {
                        errors.append(
                            .init(detail: "must be from 1 to 86400 (a day)", pointer: "/windows/\(index)/seconds"))
                    } else if !seen.insert(window.seconds).inserted {
                        errors.append(
                            .init(detail: "another window has the same seconds", pointer: "/windows/\(index)/seconds"))
                    }
                }
            }
            if let parallelism, !Self.parallelism.contains(parallelism) {
                errors.append(.init(detail: "must be from 1 to 10000", pointer: "/parallelism"))
            }
            return Array(errors.prefix(50))
        }
    }

    struct FlowLimitsBody: Encodable {
        var vendor: String
        /// `builtin`, `default` (the vendor's, for every tenant) or `tenant` (one tenant's override).
        var scope: String
        var tenantId: UUID?
        /// Absent: inherited from the level above. Empty: no rate limit.
        var windows: [WindowBody]?
        /// Absent: inherited.
        var parallelism: Int?
        var updatedAt: Date?
    }

    /// `PUT /v1/admin/flow-limits/{vendor}`: the vendor's default for every tenant's keys.
    func setDefaultLimits(_ request: Request, _ context: TallyContext) async throws -> Response {
        var request = request
        let vendor = try context.vendorParameter()
        let body = try await request.decodeJSON(SetLimits.self)
        return try JSON.response(try await set(vendor: vendor, tenant: nil, body.windows, body.parallelism, context))
    }

    /// `PUT /v1/admin/tenants/{id}/flow-limits/{vendor}`: one tenant's override; 404 for an unknown tenant.
    func setTenantLimits(_ request: Request, _ context: TallyContext) async throws -> Response {
        var request = request
        let tenant = try context.uuidParameter("id", "tenant")
        let vendor = try context.vendorParameter()
        let body = try await request.decodeJSON(SetLimits.self)
        return try JSON.response(try await set(vendor: vendor, tenant: tenant, body.windows, body.parallelism, context))
    }

    /// `DELETE /v1/admin/tenants/{id}/flow-limits/{vendor}`: the tenant's keys inherit the vendor default again.
    func clearTenantLimits(_ request: Request, _ context: TallyContext) async throws -> Response {
        let tenant = try context.uuidParameter("id", "tenant")
        let vendor = try context.vendorParameter()
        _ = try await services.commands.clearFlowLimits(vendor: vendor, tenant: tenant, metadata: context.eventMetadata)
        return Response(status: .noContent)
    }

    /// Sets the limits as they are given (`Commands.setFlowLimits`) and answers them.
    private func set(
        vendor: Vendor, tenant: UUID?, _ windows: [WindowInput]?, _ parallelism: Int?, _ context: TallyContext
    ) async throws -> FlowLimitsBody {
        let rateWindows = windows?.map { RateWindow(limit: $0.limit, seconds: $0.seconds) }
        _ = try await services.commands.setFlowLimits(
            vendor: vendor, tenant: tenant, windows: rateWindows, parallelism: parallelism,
            metadata: context.eventMetadata)
        return FlowLimitsBody(
            vendor: vendor.rawValue, scope: tenant == nil ? "default" : "tenant", tenantId: tenant,
            windows: rateWindows?.map { WindowBody(limit: $0.limit, seconds: $0.seconds) }, parallelism: parallelism)
    }

    static let builtinTenant = UUID(uuidString: "ffffffff-ffff-ffff-ffff-ffffffffffff")!
    static let defaultTenant = UUID(uuidString: "00000000-0000-0000-0000-000000000000")!

    /// `GET /v1/admin/flow-limits[?tenantId=&vendor=]`: the limits the workers apply, as they applied them: the
    /// built-in ones, the vendor defaults and the tenant overrides.
    func listLimits(_ request: Request, _ context: TallyContext) async throws -> Response {
        let select = """
            SELECT vendor, tenant_id, parallelism, updated_at,
                   CASE WHEN window_limits IS NOT NULL THEN
                       coalesce((SELECT json_agg(json_build_object('limit', w.l, 'seconds', w.s) ORDER BY w.n)
                                 FROM unnest(window_limits, window_seconds) WITH ORDINALITY AS w(l, s, n)), '[]')
                   END
            FROM flow_limits
            """
        let (sql, parameters) = try Self.filtered(select, request, tenantColumn: "tenant_id")
        let statement =
            sql + """
                 ORDER BY vendor, CASE tenant_id WHEN '\(Self.builtinTenant.lowercased)' THEN 0
                                                 WHEN '\(Self.defaultTenant.lowercased)' THEN 1 ELSE 2 END, tenant_id
                """
        let items = try await services.database.asOperator(readOnly: true) { connection in
            try await connection.query(statement, parameters).map { row in
                let tenant = try row.uuid(1)
                let scope =
                    tenant == Self.builtinTenant ? "builtin" : tenant == Self.defaultTenant ? "default" : "tenant"
                return FlowLimitsBody(
                    vendor: try row.string(0), scope: scope, tenantId: scope == "tenant" ? tenant : nil,
                    windows: try row.isNull(4)
                        ? nil : try JSONDecoder().decode([WindowBody].self, from: Data(try row.jsonBytes(4))),
                    parallelism: try row.optionalInt64(2).map(Int.init), updatedAt: try row.date(3))
            }
        }
        return try JSON.response(ListBody(items: items, nextCursor: nil))
    }
}

extension KeyedDecodingContainer {
    /// Foundation's decoder reports a number that is not an integer (`2.5`, `1e12`) as invalid JSON without a
    /// coding path, so the problem could not point at the field; these put the path back.
    fileprivate func decodeInteger(forKey key: Key) throws -> Int {
        try withPath(key) { try decode(Int.self, forKey: key) }
    }

    fileprivate func decodeIntegerIfPresent(forKey key: Key) throws -> Int? {
        try withPath(key) { try decodeIfPresent(Int.self, forKey: key) }
    }

    private func withPath<T>(_ key: Key, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as DecodingError {
            guard case .dataCorrupted(let context) = error, context.codingPath.count <= codingPath.count else {
                throw error
            }
            throw DecodingError.typeMismatch(
                Int.self, .init(codingPath: codingPath + [key], debugDescription: context.debugDescription))
        } catch {
            // The parser's own error, which the decoder turns into "not valid JSON" on its way out.
            throw DecodingError.typeMismatch(
                Int.self,
                .init(codingPath: codingPath + [key], debugDescription: "not an integer", underlyingError: error))
        }
    }
}

extension FlowRoutes {
    /// Every tenant's flow keys and the limits, under `/v1/admin`.
    func addOperatorRoutes(to admin: RouterGroup<TallyContext>) {
        admin.get("/flow-keys", use: operatorFlowKeys)
        admin.get("/flow-limits", use: listLimits)
        admin.put("/flow-limits/{vendor}", use: setDefaultLimits)
        admin.put("/tenants/{id}/flow-limits/{vendor}", use: setTenantLimits)
        admin.delete("/tenants/{id}/flow-limits/{vendor}", use: clearTenantLimits)
    }

    /// The tenant's own flow keys, under `/v1`.
    func addRoutes(to tenant: RouterGroup<TallyContext>) {
        tenant.get("/flow-keys", use: flowKeys)
    }
}
