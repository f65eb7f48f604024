import Commands
import Events
import Foundation
import Hummingbird
import Workers

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

    static func flowKey(_ row: FlowKeyRow, withTenant: Bool) -> FlowKeyBody {
        FlowKeyBody(
            vendor: row.vendor, tenantId: withTenant ? row.tenantID : nil, fingerprint: row.fingerprint,
            secretVersion: row.secretVersion, state: row.state, pausedUntil: row.pausedUntil,
            pauseReason: row.pauseReason, suspendedReason: row.suspendedReason,
            limits: LimitsBody(
                parallelism: row.parallelism,
                windows: row.windows.map { WindowBody(limit: $0.limit, seconds: $0.seconds, used: $0.used) }),
            waiting: row.waiting, inFlight: row.inFlight, oldestWaitingSeconds: row.oldestWaitingSeconds)
    }

    /// `GET /v1/flow-keys`: the tenant's own keys, one per vendor it has a key for or runs waiting on.
    func flowKeys(_ request: Request, _ context: TallyContext) async throws -> Response {
        let principal = try context.tenant
        let items = try await services.database.tenant(principal.tenantID, readOnly: true) { connection in
            try await FlowQueries.keys(tenant: principal.tenantID, on: connection).map {
                Self.flowKey($0, withTenant: false)
            }
        }
        return try JSON.response(ListBody(items: items, nextCursor: nil))
    }

    /// `GET /v1/admin/flow-keys[?tenantId=&vendor=]`: every tenant's keys.
    func operatorFlowKeys(_ request: Request, _ context: TallyContext) async throws -> Response {
        let (tenant, vendor) = try Self.filters(request)
        let items = try await services.database.asOperator(readOnly: true) { connection in
            try await FlowQueries.keys(tenant: tenant, vendor: vendor, on: connection).map {
                Self.flowKey($0, withTenant: true)
            }
        }
        return try JSON.response(ListBody(items: items, nextCursor: nil))
    }

    /// The `tenantId` and `vendor` query filters; 422 naming the parameter when either is not valid.
    static func filters(_ request: Request) throws -> (tenant: UUID?, vendor: Vendor?) {
        let query = request.uri.queryParameters
        var tenant: UUID?
        var vendor: Vendor?
        var errors: [Problem.FieldError] = []
        if let text = query["tenantId"] {
            tenant = UUID(uuidString: String(text))
            if tenant == nil { errors.append(.init(detail: "must be a UUID", parameter: "tenantId")) }
        }
        if let text = query["vendor"] {
            vendor = Vendor(rawValue: String(text))
            if vendor == nil {
                errors.append(
                    .init(
                        detail: "must be one of \(Vendor.allCases.map(\.rawValue).joined(separator: ", "))",
                        parameter: "vendor"))
            }
        }
        if !errors.isEmpty { throw Problem.validation(errors) }
        return (tenant, vendor)
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

    /// `GET /v1/admin/flow-limits[?tenantId=&vendor=]`: the limits the workers apply, as they applied them: the
    /// built-in ones, the vendor defaults and the tenant overrides.
    func listLimits(_ request: Request, _ context: TallyContext) async throws -> Response {
        let (tenant, vendor) = try Self.filters(request)
        let items = try await services.database.asOperator(readOnly: true) { connection in
            try await FlowQueries.limits(tenant: tenant, vendor: vendor, on: connection).map {
                FlowLimitsBody(
                    vendor: $0.vendor, scope: $0.scope.rawValue, tenantId: $0.tenantID,
                    windows: $0.windows?.map { WindowBody(limit: $0.limit, seconds: $0.seconds) },
                    parallelism: $0.parallelism, updatedAt: $0.updatedAt)
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
