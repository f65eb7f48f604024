import Commands
import Events
import Foundation
import Hummingbird
import Logging
import Projections

/// The tenant's own resources: itself, its keys, vendor secrets, workflows and usage. Every query names
/// the tenant and runs in a transaction scoped to it (row-level security); another tenant's id is 404.
struct TenantRoutes {
    let services: APIServices

    // MARK: - The tenant

    func tenant(_ request: Request, _ context: TallyContext) async throws -> Response {
        let principal = try context.tenant
        guard let tenant = services.keys.tenant(principal.tenantID) else { throw Problem.unauthorized }
        let plan = services.plan(tenant.plan)
        let period = BillingPeriod(containing: Date())
        let usage = try await usage(principal.tenantID, period)
        struct Limits: Encodable {
            var keyRequestsPerSecond: Int
            var tenantRequestsPerSecond: Int
            var monthlyApiCalls: Int64?
            var monthlyRuns: Int64?
        }
        struct Body: Encodable {
            var id: UUID
            var name: String
            var slug: String
            var plan: String
            var status: String
            var limits: Limits
            var usage: UsageBody
        }
        return try JSON.response(
            Body(
                id: tenant.id, name: tenant.name, slug: tenant.slug, plan: tenant.plan, status: tenant.status,
                limits: Limits(
                    keyRequestsPerSecond: plan.keyRequestsPerSecond,
                    tenantRequestsPerSecond: plan.tenantRequestsPerSecond,
                    monthlyApiCalls: plan.monthlyAPICalls, monthlyRuns: plan.monthlyRuns),
                usage: usage))
    }

    func rotateOwnKey(_ request: Request, _ context: TallyContext) async throws -> Response {
        var request = request
        let principal = try context.tenant
        let body = try await request.decodeJSON(OperatorRoutes.RotateKey.self)
        let grace = body.graceSeconds.map { Duration.seconds($0) } ?? services.settings.rotationGrace
        return try await OperatorRoutes(services: services).rotate(
            keyID: principal.keyID, tenantID: principal.tenantID, grace: grace, context: context)
    }

    // MARK: - Usage

    struct UsageBody: Encodable {
        var period: String
        var periodStart: Date
        var periodEnd: Date
        var meters: [String: Int64]
    }

    func usage(_ tenant: UUID, _ period: BillingPeriod) async throws -> UsageBody {
        let rows = try await readOrEmpty {
            try await services.database.tenant(tenant, readOnly: true) { connection in
                try await ParkedRead.check(
                    ["usage_counters", "billing"], tenant: tenant, what: "tenant's usage", on: connection)
                return try await UsageCountersProjection.counters(ofTenant: tenant, in: period, on: connection)
            }
        }
        var meters = ["api_calls": Int64(0), "runs": 0]
        for row in rows { meters[row.meter] = row.quantity }
        return UsageBody(period: period.description, periodStart: period.start, periodEnd: period.end, meters: meters)
    }

    func usage(_ request: Request, _ context: TallyContext) async throws -> Response {
        let principal = try context.tenant
        let current = BillingPeriod(containing: Date())
        var period = current
        if let text = request.uri.queryParameters["period"] {
            // A month that has not begun has no usage to show or price.
            guard let given = BillingPeriod(text), given <= current, given.year >= 2000 else {
                throw Problem.validation([
                    .init(
                        detail: "must be a month from 2000-01 to the current one, written YYYY-MM", parameter: "period")
                ])
            }
            period = given
        }
        struct Charge: Encodable {
            var plan: String
            var meter: String
            var lineStart: String
            var lineEnd: String
            var quantity: Int64
            var unitPriceMicros: Int64
            var amountMicros: Int64
            var amount: Int64
            var currency: String
        }
        struct Body: Encodable {
            var period: String
            var periodStart: Date
            var periodEnd: Date
            var meters: [String: Int64]
            var closed: Bool
            var charges: [Charge]?
            var totals: [String: Int64]?
        }
        let usage = try await usage(principal.tenantID, period)
        var body = Body(
            period: usage.period, periodStart: usage.periodStart, periodEnd: usage.periodEnd, meters: usage.meters,
            closed: Date() >= period.end)
        do {
            let lines = try await readOrEmpty {
                try await services.database.tenant(principal.tenantID, readOnly: true) { connection in
                    try await BillingStatement.read(
                        period: period, plans: services.settings.plans, connection: connection,
                        tenant: principal.tenantID, now: Date()
                    ).lines
                }
            }
            body.charges = lines.map {
                Charge(
                    plan: $0.plan, meter: $0.meter, lineStart: $0.lineStart, lineEnd: $0.lineEnd, quantity: $0.quantity,
                    unitPriceMicros: $0.unitPriceMicros, amountMicros: $0.amountMicros, amount: $0.amount,
                    currency: $0.currency)
            }
            body.totals = lines.reduce(into: [:]) { $0[$1.currency, default: 0] += $1.amount }
        } catch let error as ProjectionsError {
            // A plan the plans file no longer has: the usage is still right, the prices are unknown.
            context.logger.warning("cannot price usage", metadata: ["error": "\(error)"])
        }
        return try JSON.response(body)
    }

    // MARK: - Vendor secrets

    func listVendorSecrets(_ request: Request, _ context: TallyContext) async throws -> Response {
        let principal = try context.tenant
        struct Body: Encodable {
            var vendor: String
            var fingerprint: String
            var status: String
            var statusReason: String?
            var secretVersion: Int
            var updatedAt: Date
        }
        let items = try await readOrEmpty {
            try await services.database.tenant(principal.tenantID, readOnly: true) { connection in
                try await ParkedRead.check(
                    ["vendor_secrets"], tenant: principal.tenantID, what: "tenant's vendor keys", on: connection)
                return try await VendorSecretsProjection.secrets(ofTenant: principal.tenantID, on: connection).map {
                    Body(
                        vendor: $0.vendor, fingerprint: $0.fingerprint, status: $0.status,
                        statusReason: $0.statusReason,
                        secretVersion: $0.secretVersion, updatedAt: $0.updatedAt)
                }
            }
        }
        return try JSON.response(ListBody(items: items, nextCursor: nil))
    }

    struct StoreVendorSecret: RequestBody {
        static let fields: Set<String> = ["apiKey"]
        var apiKey: String

        /// Details never quote the value: it is a secret.
        func validate() -> [Problem.FieldError] {
            let bytes = apiKey.utf8
            if bytes.isEmpty { return [.init(detail: "must not be empty", pointer: "/apiKey")] }
            if bytes.count > SecretVault.maxPlaintextBytes {
                return [.init(detail: "must be at most \(SecretVault.maxPlaintextBytes) bytes", pointer: "/apiKey")]
            }
            if !bytes.allSatisfy({ (0x21...0x7e).contains($0) }) {
                return [.init(detail: "must be printable ASCII without spaces", pointer: "/apiKey")]
            }
            return []
        }
    }

    struct VendorSecretBody: Encodable {
        var vendor: String
        var fingerprint: String
        var status: String
        var secretVersion: Int
        var updatedAt: Date
    }

    /// Seals the key with the tenant's data key and appends it; the plaintext exists in this process only
    /// while the request is handled and is never stored, logged or answered. Without a master key: 503,
    /// never an unsealed secret.
    func storeVendorSecret(_ request: Request, _ context: TallyContext) async throws -> Response {
        var request = request
        let principal = try context.tenant
        let vendor = try context.vendorParameter()
        guard let vault = services.vault else {
            throw Problem(
                .serviceUnavailable, "secrets-unavailable", title: "Vendor secrets unavailable",
                detail:
                    "This server has no master key (TALLY_MASTER_KEY or TALLY_MASTER_KEY_FILE); vendor secrets are never stored unsealed."
            )
        }
        let body = try await request.decodeJSON(StoreVendorSecret.self)
        var plaintext = Array(body.apiKey.utf8)
        defer { Sodium.memzero(&plaintext) }
        // An erased tenant (409) and a master key that does not open its key (503) are in the error table.
        let stored = try await services.commands.storeVendorSecret(
            tenant: principal.tenantID, vendor: vendor, plaintext: plaintext, vault: vault,
            metadata: context.eventMetadata)
        await services.applied(stored.applied, projection: "vendor_secrets")
        return try JSON.response(
            VendorSecretBody(
                vendor: vendor.rawValue, fingerprint: stored.event.fingerprint, status: "active",
                secretVersion: stored.event.secretVersion, updatedAt: Date()),
            status: stored.replaced ? .ok : .created)
    }

    /// Appends `VendorSecretRemoved`; 404 when the tenant has no key for the vendor. The sealed bytes stay
    /// in the log (it only grows); erasing the tenant is what makes them unreadable.
    func removeVendorSecret(_ request: Request, _ context: TallyContext) async throws -> Response {
        let principal = try context.tenant
        let vendor = try context.vendorParameter()
        let applied = try await services.commands.removeVendorSecret(
            tenant: principal.tenantID, vendor: vendor, metadata: context.eventMetadata)
        await services.applied(applied, projection: "vendor_secrets")
        return Response(status: .noContent)
    }

    // MARK: - Workflows

    struct DefineWorkflow: RequestBody {
        static let fields: Set<String> = ["name", "finders", "validator", "maxAttempts"]
        var name: String
        var finders: [Vendor]
        var validator: Vendor?
        var maxAttempts: Int?

        func validate() -> [Problem.FieldError] {
            var errors: [Problem.FieldError] = []
            if name.trimmingCharacters(in: .whitespaces).isEmpty || name.count > 200 {
                errors.append(.init(detail: "must be 1 to 200 characters", pointer: "/name"))
            }
            let finderVendors: Set<Vendor> = [.prospeo, .findymail]
            if finders.isEmpty { errors.append(.init(detail: "must name at least one finder", pointer: "/finders")) }
            for (index, vendor) in finders.enumerated() where !finderVendors.contains(vendor) {
                errors.append(
                    .init(
                        detail: "\(vendor.rawValue) does not find emails; finders are prospeo and findymail",
                        pointer: "/finders/\(index)"))
            }
            if Set(finders).count != finders.count {
                errors.append(.init(detail: "must not repeat a vendor", pointer: "/finders"))
            }
            if let validator, validator != .zerobounce {
                errors.append(.init(detail: "the validator is zerobounce", pointer: "/validator"))
            }
            if let maxAttempts, !(1...10).contains(maxAttempts) {
                errors.append(.init(detail: "must be from 1 to 10", pointer: "/maxAttempts"))
            }
            return errors
        }
    }

    struct WorkflowBody: Encodable {
        var id: UUID
        var name: String
        var definition: WorkflowDefinition
        var createdAt: Date
        var updatedAt: Date
    }

    func defineWorkflow(_ request: Request, _ context: TallyContext) async throws -> Response {
        var request = request
        let principal = try context.tenant
        let body = try await request.decodeJSON(DefineWorkflow.self)
        let definition = WorkflowDefinition(
            finders: body.finders, validator: body.validator, maxAttempts: body.maxAttempts ?? 3)
        let (defined, applied) = try await services.commands.defineWorkflow(
            tenant: principal.tenantID, name: body.name, definition: definition, metadata: context.eventMetadata)
        await services.applied(applied, projection: "workflows")
        let now = Date()
        let id = defined.workflowID
        return try JSON.response(
            WorkflowBody(id: id, name: body.name, definition: definition, createdAt: now, updatedAt: now),
            status: .created,
            headers: [.location: "/v1/workflows/\(id.lowercased)"])
    }

    static func workflow(_ row: WorkflowRow) -> WorkflowBody {
        WorkflowBody(
            id: row.id, name: row.name, definition: row.definition, createdAt: row.createdAt, updatedAt: row.updatedAt)
    }

    func listWorkflows(_ request: Request, _ context: TallyContext) async throws -> Response {
        let principal = try context.tenant
        let page = try Page(request)
        let rows = try await readOrEmpty {
            try await services.database.tenant(principal.tenantID, readOnly: true) { connection in
                try await WorkflowsProjection.workflows(
                    ofTenant: principal.tenantID, after: page.after, limit: page.limit + 1, on: connection
                ).map(Self.workflow)
            }
        }
        let items = Array(rows.prefix(page.limit))
        let next = rows.count > page.limit ? items.last.map { Cursor.encode($0.createdAt, $0.id) } : nil
        return try JSON.response(ListBody(items: items, nextCursor: next))
    }

    func getWorkflow(_ request: Request, _ context: TallyContext) async throws -> Response {
        let principal = try context.tenant
        let id = try context.uuidParameter("id", "workflow")
        let found = try await readOrEmpty {
            try await services.database.tenant(principal.tenantID, readOnly: true) { connection in
                try await ParkedRead.check(["workflows"], stream: .workflow(id), what: "workflow", on: connection)
                return try await WorkflowsProjection.workflow(id, tenant: principal.tenantID, on: connection)
                    .map(Self.workflow)
            }
        }
        guard let found else { throw Problem.notFound("workflow") }
        return try JSON.response(found)
    }
}

extension TenantRoutes {
    /// The tenant itself, its usage, vendor keys and workflows, under `/v1`.
    func addRoutes(to tenant: RouterGroup<TallyContext>) {
        tenant.get("/tenant", use: self.tenant)
        tenant.post("/tenant/keys/rotate", use: rotateOwnKey)
        tenant.get("/usage", use: usage)
        tenant.get("/vendor-secrets", use: listVendorSecrets)
        tenant.put("/vendor-secrets/{vendor}", use: storeVendorSecret)
        tenant.delete("/vendor-secrets/{vendor}", use: removeVendorSecret)
        tenant.post("/workflows", use: defineWorkflow)
        tenant.get("/workflows", use: listWorkflows)
        tenant.get("/workflows/{id}", use: getWorkflow)
    }
}
