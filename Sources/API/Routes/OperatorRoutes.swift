import Commands
import Events
import Foundation
import Hummingbird
import Projections

/// `/v1/admin/...`: tenants, their plans and keys, and projection status, for the operator.
struct OperatorRoutes {
    let services: APIServices

    struct TenantBody: Encodable {
        var id: UUID
        var name: String
        var slug: String
        var plan: String
        var status: String
        var stripeCustomerId: String?
        var createdAt: Date
        var updatedAt: Date
    }

    struct KeyBody: Encodable {
        var id: UUID
        var tenantId: UUID
        var name: String
        var displayPrefix: String
        var status: String
        var expiresAt: Date?
        var graceUntil: Date?
        var replacedBy: UUID?
        var createdAt: Date
        /// The plaintext key: in the response that issues it, and nowhere else ever.
        var key: String?
    }

    struct CreateTenant: RequestBody {
        static let fields: Set<String> = ["name", "slug", "plan"]
        var name: String
        var slug: String
        var plan: String
        func validate() -> [Problem.FieldError] { [] }
    }

    struct Suspend: RequestBody {
        static let fields: Set<String> = ["reason"]
        var reason: String?
        func validate() -> [Problem.FieldError] {
            (reason?.count ?? 0) > 500 ? [.init(detail: "must be at most 500 characters", pointer: "/reason")] : []
        }
    }

    struct ChangePlan: RequestBody {
        static let fields: Set<String> = ["plan"]
        var plan: String
        func validate() -> [Problem.FieldError] { [] }
    }

    struct IssueKey: RequestBody {
        static let fields: Set<String> = ["name", "expiresAt"]
        var name: String
        var expiresAt: Date?
        func validate() -> [Problem.FieldError] {
            var errors: [Problem.FieldError] = []
            if name.trimmingCharacters(in: .whitespaces).isEmpty || name.count > 100 {
                errors.append(.init(detail: "must be 1 to 100 characters", pointer: "/name"))
            }
            if let expiresAt, expiresAt <= Date() {
                errors.append(.init(detail: "must be in the future", pointer: "/expiresAt"))
            }
            return errors
        }
    }

    struct RotateKey: RequestBody {
        static let fields: Set<String> = ["graceSeconds"]
        var graceSeconds: Int?
        func validate() -> [Problem.FieldError] {
            guard let graceSeconds else { return [] }
            return (0...2_592_000).contains(graceSeconds)
                ? [] : [.init(detail: "must be from 0 to 2592000 (30 days)", pointer: "/graceSeconds")]
        }
    }

    // MARK: - Tenants

    func createTenant(_ request: Request, _ context: TallyContext) async throws -> Response {
        var request = request
        let body = try await request.decodeJSON(CreateTenant.self)
        var errors: [Problem.FieldError] = []
        let name = body.name.trimmingCharacters(in: .whitespacesAndNewlines)
        if name.isEmpty || name.count > 200 {
            errors.append(.init(detail: "must be 1 to 200 characters", pointer: "/name"))
        }
        if !TenantSlug.isValid(body.slug) {
            errors.append(.init(detail: "must be 3 to 40 of a-z, 0-9 and -, starting with a letter", pointer: "/slug"))
        }
        if services.settings.plans[body.plan] == nil {
            errors.append(
                .init(
                    detail: "must be one of \(services.settings.plans.all.keys.sorted().joined(separator: ", "))",
                    pointer: "/plan"))
        }
        if !errors.isEmpty { throw Problem.validation(errors) }
        let (created, applied) = try await services.commands.createTenant(
            name: name, slug: body.slug, plan: body.plan, metadata: context.eventMetadata)
        await services.applied(applied, projection: "tenants", toKeys: true)
        let id = created.tenantID
        let tenant =
            try await loadTenant(id)
            ?? TenantBody(
                id: id, name: name, slug: body.slug, plan: body.plan, status: "active", createdAt: Date(),
                updatedAt: Date())
        return try JSON.response(tenant, status: .created, headers: [.location: "/v1/admin/tenants/\(id.lowercased)"])
    }

    func listTenants(_ request: Request, _ context: TallyContext) async throws -> Response {
        let page = try Page(request)
        var status: String?
        if let text = request.uri.queryParameters["status"] {
            guard TenantsProjection.statuses.contains(String(text)) else {
                throw Problem.validation([.init(detail: "must be active, suspended or erased", parameter: "status")])
            }
            status = String(text)
        }
        let selected = status
        let tenants = try await readOrEmpty {
            try await services.database.asOperator(readOnly: true) { connection in
                try await TenantsProjection.tenants(
                    status: selected, after: page.after, limit: page.limit + 1, on: connection
                ).map(Self.tenant)
            }
        }
        let items = Array(tenants.prefix(page.limit))
        let next = tenants.count > page.limit ? items.last.map { Cursor.encode($0.createdAt, $0.id) } : nil
        return try JSON.response(ListBody(items: items, nextCursor: next))
    }

    func getTenant(_ request: Request, _ context: TallyContext) async throws -> Response {
        let id = try context.uuidParameter("id", "tenant")
        guard let tenant = try await loadTenant(id) else { throw Problem.notFound("tenant") }
        return try JSON.response(tenant)
    }

    func suspend(_ request: Request, _ context: TallyContext) async throws -> Response {
        var request = request
        let id = try context.uuidParameter("id", "tenant")
        let body = try await request.decodeJSON(Suspend.self)
        return try await changed(
            id,
            try await services.commands.suspendTenant(
                id, reason: body.reason ?? "suspended by the operator", metadata: context.eventMetadata))
    }

    func reinstate(_ request: Request, _ context: TallyContext) async throws -> Response {
        let id = try context.uuidParameter("id", "tenant")
        return try await changed(id, try await services.commands.reinstateTenant(id, metadata: context.eventMetadata))
    }

    /// Erasure is crypto-shredding (`Commands.eraseTenant`): the tenant's keys stop working on every instance.
    func erase(_ request: Request, _ context: TallyContext) async throws -> Response {
        var request = request
        let id = try context.uuidParameter("id", "tenant")
        let body = try await request.decodeJSON(Suspend.self)
        return try await changed(
            id,
            try await services.commands.eraseTenant(
                id, reason: body.reason ?? "erased by the operator", metadata: context.eventMetadata))
    }

    func changePlan(_ request: Request, _ context: TallyContext) async throws -> Response {
        var request = request
        let id = try context.uuidParameter("id", "tenant")
        let body = try await request.decodeJSON(ChangePlan.self)
        guard services.settings.plans[body.plan] != nil else {
            throw Problem.validation(
                "must be one of \(services.settings.plans.all.keys.sorted().joined(separator: ", "))", pointer: "/plan")
        }
        return try await changed(
            id, try await services.commands.changePlan(id, to: body.plan, metadata: context.eventMetadata))
    }

    /// Answers the tenant as it is after a command (which may have changed nothing: commands are idempotent).
    private func changed(_ id: UUID, _ applied: Applied) async throws -> Response {
        await services.applied(applied, projection: "tenants", toKeys: true)
        guard let tenant = try await loadTenant(id) else { throw Problem.notFound("tenant") }
        return try JSON.response(tenant)
    }

    static func tenant(_ row: TenantRow) -> TenantBody {
        TenantBody(
            id: row.id, name: row.name, slug: row.slug, plan: row.plan, status: row.status,
            stripeCustomerId: row.stripeCustomerID, createdAt: row.createdAt, updatedAt: row.updatedAt)
    }

    func loadTenant(_ id: UUID) async throws -> TenantBody? {
        try await readOrEmpty {
            try await services.database.asOperator(readOnly: true) { connection in
                try await ParkedRead.check(["tenants"], stream: .tenant(id), what: "tenant", on: connection)
                return try await TenantsProjection.tenant(id, on: connection).map(Self.tenant)
            }
        }
    }

    // MARK: - Keys

    func issueKey(_ request: Request, _ context: TallyContext) async throws -> Response {
        var request = request
        let tenantID = try context.uuidParameter("id", "tenant")
        let body = try await request.decodeJSON(IssueKey.self)
        let key = try await services.commands.issueKey(
            tenant: tenantID, name: body.name, expiresAt: body.expiresAt, pepper: services.settings.keyPepper,
            metadata: context.eventMetadata)
        await services.applied(key.applied, projection: "api_keys", toKeys: true)
        return try JSON.response(
            Self.keyBody(key), status: .created,
            headers: [
                .location: "/v1/admin/tenants/\(tenantID.lowercased)/keys/\(key.issued.keyID.lowercased)",
                .cacheControl: "no-store",
            ])
    }

    /// A key just issued, with its plaintext: in this answer and nowhere else ever.
    static func keyBody(_ key: IssuedKey) -> KeyBody {
        let issued = key.issued
        return KeyBody(
            id: issued.keyID, tenantId: issued.tenantID, name: issued.name, displayPrefix: issued.displayPrefix,
            status: "active", expiresAt: issued.expiresAt, createdAt: Date(), key: key.plaintext)
    }

    func revokeKey(_ request: Request, _ context: TallyContext) async throws -> Response {
        let tenantID = try context.uuidParameter("id", "tenant")
        let keyID = try context.uuidParameter("keyId", "key")
        let applied = try await services.commands.revokeKey(
            keyID, tenant: tenantID, reason: "revoked by the operator", metadata: context.eventMetadata)
        await services.applied(applied, projection: "api_keys", toKeys: true)
        return Response(status: .noContent)
    }

    func rotateKey(_ request: Request, _ context: TallyContext) async throws -> Response {
        var request = request
        let tenantID = try context.uuidParameter("id", "tenant")
        let keyID = try context.uuidParameter("keyId", "key")
        let body = try await request.decodeJSON(RotateKey.self)
        let grace = body.graceSeconds.map { Duration.seconds($0) } ?? services.settings.rotationGrace
        return try await rotate(keyID: keyID, tenantID: tenantID, grace: grace, context: context)
    }

    /// Issues a replacement and marks the old key rotated (valid until the grace period ends), atomically.
    func rotate(keyID: UUID, tenantID: UUID, grace: Duration, context: TallyContext) async throws -> Response {
        let rotation = try await services.commands.rotateKey(
            keyID, tenant: tenantID, grace: grace, pepper: services.settings.keyPepper, metadata: context.eventMetadata)
        await services.applied(rotation.replacement.applied, projection: "api_keys", toKeys: true)
        struct Rotation: Encodable {
            var key: KeyBody
            var replaces: UUID
            var replacedGraceUntil: Date
        }
        return try JSON.response(
            Rotation(
                key: Self.keyBody(rotation.replacement), replaces: keyID,
                replacedGraceUntil: rotation.rotated.graceUntil),
            status: .created, headers: [.cacheControl: "no-store"])
    }

    func listKeys(_ request: Request, _ context: TallyContext) async throws -> Response {
        let tenantID = try context.uuidParameter("id", "tenant")
        _ = try await services.commands.tenant(tenantID)
        let keys = try await readOrEmpty {
            try await services.database.tenant(tenantID, readOnly: true) { connection in
                try await APIKeysProjection.keys(ofTenant: tenantID, on: connection).map(Self.key)
            }
        }
        return try JSON.response(ListBody(items: keys, nextCursor: nil))
    }

    static func key(_ row: APIKeyRow) -> KeyBody {
        KeyBody(
            id: row.id, tenantId: row.tenantID, name: row.name, displayPrefix: row.displayPrefix, status: row.status,
            expiresAt: row.expiresAt, graceUntil: row.graceUntil, replacedBy: row.replacedBy, createdAt: row.createdAt)
    }

    // MARK: - Operations

    func projections(_ request: Request, _ context: TallyContext) async throws -> Response {
        struct Body: Encodable {
            var name: String
            var version: Int
            var state: String
            var position: String
            var eventsApplied: Int64
            var lagEvents: Int64
            var lagSeconds: Double
            var parkedStreams: Int
            var error: String?
            var errorPosition: Int64?
        }
        let statuses = try await ProjectionStatus.all(ProductProjections.all, store: services.store)
        let items = statuses.map {
            Body(
                name: $0.name, version: $0.version, state: $0.state.rawValue, position: $0.position.description,
                eventsApplied: $0.eventsApplied,
                lagEvents: $0.lagEvents, lagSeconds: $0.lagSeconds, parkedStreams: $0.parkedStreams, error: $0.error,
                errorPosition: $0.errorPosition)
        }
        return try JSON.response(ListBody(items: items, nextCursor: nil))
    }

    /// A parked stream as the operator sees it.
    struct ParkedBody: Encodable {
        var reader: String
        var stream: String
        var tenantId: UUID?
        var streamVersion: Int64
        var position: String
        var eventType: String
        var error: String
        var heldEvents: Int64
        var attempts: Int
        var retryRequestedAt: Date?
        var parkedAt: Date

        init(_ parked: ParkedStream) {
            reader = parked.reader
            stream = parked.stream
            tenantId = parked.tenantID
            streamVersion = parked.streamVersion
            position = parked.position.description
            eventType = parked.eventType
            error = parked.error
            heldEvents = parked.heldEvents
            attempts = parked.attempts
            retryRequestedAt = parked.retryRequestedAt
            parkedAt = parked.parkedAt
        }
    }

    /// `GET /v1/admin/parked-streams`: every stream a reader could not apply, oldest first.
    func parkedStreams(_ request: Request, _ context: TallyContext) async throws -> Response {
        let parked = try await services.store.parkedStreams()
        return try JSON.response(ListBody(items: parked.map { ParkedBody($0) }, nextCursor: nil))
    }

    /// `POST /v1/admin/parked-streams/retry`: asks the readers to apply their parked streams again (all, or
    /// those of the readers named by `?reader=`); 202 with the streams asked for.
    func retryParkedStreams(_ request: Request, _ context: TallyContext) async throws -> Response {
        let known = Set(ProductProjections.all.map(\.name) + ["dispatcher"])
        let readers = request.uri.queryParameters.getAll("reader").map { String($0) }
        if let unknown = readers.first(where: { !known.contains($0) }) {
            throw Problem.validation([
                .init(
                    detail:
                        "\(unknown.prefix(100)) is not a reader; readers are \(known.sorted().joined(separator: ", "))",
                    parameter: "reader")
            ])
        }
        let asked = try await services.store.requestRetry(readers: readers.isEmpty ? nil : readers)
        return try JSON.response(ListBody(items: asked.map { ParkedBody($0) }, nextCursor: nil), status: .accepted)
    }
}

/// A read of a projection table that may not exist yet (no runner has created it) answers as empty.
func readOrEmpty<T: RangeReplaceableCollection>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as EventsError where error.isUndefinedTable {
        return T()
    }
}

func readOrEmpty<T>(_ body: () async throws -> T?) async throws -> T? {
    do {
        return try await body()
    } catch let error as EventsError where error.isUndefinedTable {
        return nil
    }
}

extension OperatorRoutes {
    /// The operator's tenants, their plans and keys, and the readers' state, under `/v1/admin`.
    func addRoutes(to admin: RouterGroup<TallyContext>) {
        admin.post("/tenants", use: createTenant)
        admin.get("/tenants", use: listTenants)
        admin.get("/tenants/{id}", use: getTenant)
        admin.post("/tenants/{id}/suspend", use: suspend)
        admin.post("/tenants/{id}/reinstate", use: reinstate)
        admin.post("/tenants/{id}/erase", use: erase)
        admin.put("/tenants/{id}/plan", use: changePlan)
        admin.post("/tenants/{id}/keys", use: issueKey)
        admin.get("/tenants/{id}/keys", use: listKeys)
        admin.delete("/tenants/{id}/keys/{keyId}", use: revokeKey)
        admin.post("/tenants/{id}/keys/{keyId}/rotate", use: rotateKey)
        admin.get("/projections", use: projections)
        admin.get("/parked-streams", use: parkedStreams)
        admin.post("/parked-streams/retry", use: retryParkedStreams)
    }
}
