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
        if !Self.isValidSlug(body.slug) {
            errors.append(.init(detail: "must be 3 to 40 of a-z, 0-9 and -, starting with a letter", pointer: "/slug"))
        }
        if services.settings.plans[body.plan] == nil {
            errors.append(
                .init(
                    detail: "must be one of \(services.settings.plans.all.keys.sorted().joined(separator: ", "))",
                    pointer: "/plan"))
        }
        if !errors.isEmpty { throw Problem.validation(errors) }
        // The tenant's id is derived from its slug: the stream can only be created once, so two tenants can
        // never share a slug, even when created at the same moment by two instances.
        let id = UUID.tenant(slug: body.slug)
        let event = TenantCreated(tenantID: id, name: name, slug: body.slug, plan: body.plan)
        let results: [AppendResult]
        do {
            results = try await services.append([
                StreamAppend(
                    stream: .tenant(id), tenantID: id, expected: .noStream,
                    events: [try EventCatalog.tally.encode(event, metadata: context.eventMetadata)])
            ])
        } catch let error as EventsError where error.code == .conflict {
            throw Problem(
                .conflict, "slug-taken", title: "Slug taken", detail: "A tenant with the slug \(body.slug) exists.")
        }
        services.keys.applyOwn([event])
        await services.awaitProjection("tenants", results[0].feedPositions[0])
        let tenant =
            try await loadTenant(id)
            ?? TenantBody(
                id: id, name: name, slug: body.slug, plan: body.plan, status: "active", createdAt: Date(),
                updatedAt: Date())
        return try JSON.response(tenant, status: .created, headers: [.location: "/v1/admin/tenants/\(id.lowercased)"])
    }

    static func isValidSlug(_ slug: String) -> Bool {
        let bytes = Array(slug.utf8)
        guard (3...40).contains(bytes.count), (0x61...0x7a).contains(bytes[0]) else { return false }
        return bytes.allSatisfy { (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2d }
    }

    func listTenants(_ request: Request, _ context: TallyContext) async throws -> Response {
        let page = try Page(request)
        var sql = "SELECT \(Self.tenantColumns) FROM tenants"
        var parameters: [PostgresValue] = []
        if let (date, id) = page.after {
            sql += " WHERE (created_at, tenant_id) > ($1, $2)"
            parameters = [.timestamp(date), .uuid(id)]
        }
        if let status = request.uri.queryParameters["status"] {
            guard ["active", "suspended", "erased"].contains(String(status)) else {
                throw Problem.validation([.init(detail: "must be active, suspended or erased", parameter: "status")])
            }
            parameters.append(.string(String(status)))
            sql += (parameters.count == 1 ? " WHERE" : " AND") + " status = $\(parameters.count)"
        }
        parameters.append(.int64(Int64(page.limit + 1)))
        sql += " ORDER BY created_at, tenant_id LIMIT $\(parameters.count)"
        let query = sql
        let values = parameters
        let tenants = try await readOrEmpty {
            try await services.database.asOperator(readOnly: true) { connection in
                try await connection.query(query, values).map(Self.tenant)
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
        return try await changeTenant(id, context) { state in
            guard state.status != "erased" else { throw Problem.conflict("The tenant is erased.") }
            guard state.status != "suspended" else { return nil }
            return TenantSuspended(tenantID: id, reason: body.reason ?? "suspended by the operator", source: .operator)
        }
    }

    func reinstate(_ request: Request, _ context: TallyContext) async throws -> Response {
        let id = try context.uuidParameter("id", "tenant")
        return try await changeTenant(id, context) { state in
            guard state.status != "erased" else { throw Problem.conflict("The tenant is erased.") }
            guard state.status != "active" else { return nil }
            return TenantReinstated(tenantID: id, source: .operator)
        }
    }

    /// Erasure is crypto-shredding: the tenant's data keys are destroyed first (so an erasure interrupted
    /// before its event is appended has still made every sealed secret unreadable, and a retry completes
    /// it), then `TenantErased` is appended; its keys stop working on every instance.
    func erase(_ request: Request, _ context: TallyContext) async throws -> Response {
        var request = request
        let id = try context.uuidParameter("id", "tenant")
        let body = try await request.decodeJSON(Suspend.self)
        guard let state = try await TenantState.load(id, store: services.store) else {
            throw Problem.notFound("tenant")
        }
        guard state.status != "erased" else { throw Problem.conflict("The tenant is already erased.") }
        try await SecretVault.destroyKeys(of: id, pool: services.store.pool)
        return try await changeTenant(id, context) { state in
            guard state.status != "erased" else { throw Problem.conflict("The tenant is already erased.") }
            return TenantErased(tenantID: id, reason: body.reason ?? "erased by the operator")
        }
    }

    func changePlan(_ request: Request, _ context: TallyContext) async throws -> Response {
        var request = request
        let id = try context.uuidParameter("id", "tenant")
        let body = try await request.decodeJSON(ChangePlan.self)
        guard services.settings.plans[body.plan] != nil else {
            throw Problem.validation(
                "must be one of \(services.settings.plans.all.keys.sorted().joined(separator: ", "))", pointer: "/plan")
        }
        return try await changeTenant(id, context) { state in
            guard state.status != "erased" else { throw Problem.conflict("The tenant is erased.") }
            guard state.plan != body.plan else { return nil }
            return PlanChanged(
                tenantID: id, fromPlan: state.plan, toPlan: body.plan, source: .operator, effectiveAt: Date())
        }
    }

    /// Decides on the tenant's stream and appends at the version it read; nil means nothing to change
    /// (the request is idempotent). Answers the tenant as it is afterwards.
    private func changeTenant(
        _ id: UUID, _ context: TallyContext, decide: (TenantState) throws -> (any DomainEvent)?
    ) async throws -> Response {
        guard let state = try await TenantState.load(id, store: services.store) else {
            throw Problem.notFound("tenant")
        }
        if let event = try decide(state) {
            let results = try await services.append([
                StreamAppend(
                    stream: .tenant(id), tenantID: id, expected: .exactly(state.version),
                    events: [try EventCatalog.tally.encode(event, metadata: context.eventMetadata)])
            ])
            services.keys.applyOwn([event])
            await services.awaitProjection("tenants", results[0].feedPositions[0])
        }
        guard let tenant = try await loadTenant(id) else { throw Problem.notFound("tenant") }
        return try JSON.response(tenant)
    }

    static let tenantColumns = "tenant_id, name, slug, plan, status, stripe_customer_id, created_at, updated_at"

    static func tenant(_ row: PostgresRow) throws -> TenantBody {
        TenantBody(
            id: try row.uuid(0), name: try row.string(1), slug: try row.string(2), plan: try row.string(3),
            status: try row.string(4),
            stripeCustomerId: try row.optionalString(5), createdAt: try row.date(6), updatedAt: try row.date(7))
    }

    func loadTenant(_ id: UUID) async throws -> TenantBody? {
        try await readOrEmpty {
            try await services.database.asOperator(readOnly: true) { connection in
                try await ParkedRead.check(["tenants"], stream: .tenant(id), what: "tenant", on: connection)
                return try await connection.query(
                    "SELECT \(Self.tenantColumns) FROM tenants WHERE tenant_id = $1", [.uuid(id)]
                ).first
                    .map(Self.tenant)
            }
        }
    }

    // MARK: - Keys

    func issueKey(_ request: Request, _ context: TallyContext) async throws -> Response {
        var request = request
        let tenantID = try context.uuidParameter("id", "tenant")
        let body = try await request.decodeJSON(IssueKey.self)
        guard let state = try await TenantState.load(tenantID, store: services.store) else {
            throw Problem.notFound("tenant")
        }
        guard state.status == "active" else {
            throw Problem.conflict("The tenant is \(state.status); keys are issued to active tenants.")
        }
        let (issued, plaintext) = newKey(tenantID: tenantID, name: body.name, expiresAt: body.expiresAt)
        let results = try await services.append([
            StreamAppend(
                stream: .apiKey(issued.keyID), tenantID: tenantID, expected: .noStream,
                events: [try EventCatalog.tally.encode(issued, metadata: context.eventMetadata)])
        ])
        services.keys.applyOwn([issued])
        await services.awaitProjection("api_keys", results[0].feedPositions[0])
        var key = Self.keyBody(issued, createdAt: Date())
        key.key = plaintext
        return try JSON.response(
            key, status: .created,
            headers: [
                .location: "/v1/admin/tenants/\(tenantID.lowercased)/keys/\(issued.keyID.lowercased)",
                .cacheControl: "no-store",
            ])
    }

    func newKey(tenantID: UUID, name: String, expiresAt: Date?) -> (KeyIssued, String) {
        let plaintext = APIKeyFormat.generate()
        let issued = KeyIssued(
            keyID: UUID(), tenantID: tenantID, name: name, displayPrefix: APIKeyFormat.displayPrefix(plaintext),
            keyHash: APIKeyFormat.keyedHash(plaintext, pepper: services.settings.keyPepper), expiresAt: expiresAt)
        return (issued, plaintext)
    }

    static func keyBody(_ issued: KeyIssued, createdAt: Date) -> KeyBody {
        KeyBody(
            id: issued.keyID, tenantId: issued.tenantID, name: issued.name, displayPrefix: issued.displayPrefix,
            status: "active",
            expiresAt: issued.expiresAt, createdAt: createdAt)
    }

    func revokeKey(_ request: Request, _ context: TallyContext) async throws -> Response {
        let tenantID = try context.uuidParameter("id", "tenant")
        let keyID = try context.uuidParameter("keyId", "key")
        let key = try await KeyState.load(keyID, tenant: tenantID, store: services.store)
        if key.status != "revoked" {
            let revoked = KeyRevoked(keyID: keyID, tenantID: tenantID, reason: "revoked by the operator")
            let results = try await services.append([
                StreamAppend(
                    stream: .apiKey(keyID), tenantID: tenantID, expected: .exactly(key.version),
                    events: [try EventCatalog.tally.encode(revoked, metadata: context.eventMetadata)])
            ])
            services.keys.applyOwn([revoked])
            await services.awaitProjection("api_keys", results[0].feedPositions[0])
        }
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
        let key = try await KeyState.load(keyID, tenant: tenantID, store: services.store)
        guard key.status == "active" else {
            throw Problem.conflict("Only an active key can be rotated; this one is \(key.status).")
        }
        let (issued, plaintext) = newKey(tenantID: tenantID, name: key.name, expiresAt: key.expiresAt)
        let graceUntil = Date().addingTimeInterval(Double(grace.components.seconds))
        let rotated = KeyRotated(
            keyID: keyID, tenantID: tenantID, replacementKeyID: issued.keyID, graceUntil: graceUntil)
        let results = try await services.append([
            StreamAppend(
                stream: .apiKey(issued.keyID), tenantID: tenantID, expected: .noStream,
                events: [try EventCatalog.tally.encode(issued, metadata: context.eventMetadata)]),
            StreamAppend(
                stream: .apiKey(keyID), tenantID: tenantID, expected: .exactly(key.version),
                events: [try EventCatalog.tally.encode(rotated, metadata: context.eventMetadata)]),
        ])
        services.keys.applyOwn([issued, rotated])
        await services.awaitProjection("api_keys", results.map { $0.feedPositions[0] }.max()!)
        var body = Self.keyBody(issued, createdAt: Date())
        body.key = plaintext
        struct Rotation: Encodable {
            var key: KeyBody
            var replaces: UUID
            var replacedGraceUntil: Date
        }
        return try JSON.response(
            Rotation(key: body, replaces: keyID, replacedGraceUntil: graceUntil), status: .created,
            headers: [.cacheControl: "no-store"])
    }

    func listKeys(_ request: Request, _ context: TallyContext) async throws -> Response {
        let tenantID = try context.uuidParameter("id", "tenant")
        guard try await TenantState.load(tenantID, store: services.store) != nil else {
            throw Problem.notFound("tenant")
        }
        let keys = try await readOrEmpty {
            try await services.database.tenant(tenantID, readOnly: true) { connection in
                try await connection.query(
                    """
                    SELECT key_id, tenant_id, name, display_prefix, status, expires_at, grace_until, replaced_by, created_at
                    FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, key_id
                    """, [.uuid(tenantID)]
                ).map(Self.keyRow)
            }
        }
        return try JSON.response(ListBody(items: keys, nextCursor: nil))
    }

    static func keyRow(_ row: PostgresRow) throws -> KeyBody {
        KeyBody(
            id: try row.uuid(0), tenantId: try row.uuid(1), name: try row.string(2), displayPrefix: try row.string(3),
            status: try row.string(4), expiresAt: try row.optionalDate(5), graceUntil: try row.optionalDate(6),
            replacedBy: try row.optionalUUID(7), createdAt: try row.date(8))
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

/// A tenant as its stream says now, for deciding commands.
struct TenantState {
    var status = "active"
    var plan = ""
    var version: Int64 = 0
    /// Who suspended the tenant, while it is suspended (a Stripe resume lifts only a Stripe suspension).
    var suspendedBy: ChangeSource?
    var stripeCustomerID: String?
    var stripeSubscriptionID: String?
    /// The time of the newest Stripe event applied to the tenant (last writer wins by Stripe's time).
    var lastStripeTime: Date?

    static func load(_ id: UUID, store: EventStore) async throws -> TenantState? {
        try fold(try await store.readAll(.tenant(id)), catalog: store.catalog)
    }

    /// The state after `events` (a whole tenant stream, in version order); nil when there are none.
    static func fold(_ events: [RecordedEvent], catalog: EventCatalog) throws -> TenantState? {
        guard !events.isEmpty else { return nil }
        var state = TenantState()
        for recorded in events {
            state.version = recorded.streamVersion
            switch try catalog.decode(recorded) {
            case let event as TenantCreated: state.plan = event.plan
            case let event as PlanChanged:
                state.plan = event.toPlan
                state.stripeApplied(event.source, event.stripeObjectTime)
            case let event as StripeCustomerLinked:
                state.stripeCustomerID = event.customerID
                state.stripeSubscriptionID = event.subscriptionID
            case let event as TenantSuspended:
                state.status = "suspended"
                state.suspendedBy = event.source
                state.stripeApplied(event.source, event.stripeObjectTime)
            case let event as TenantReinstated:
                state.status = "active"
                state.suspendedBy = nil
                state.stripeApplied(event.source, event.stripeObjectTime)
            case is TenantErased: state.status = "erased"
            default: break
            }
        }
        return state
    }

    private mutating func stripeApplied(_ source: ChangeSource, _ time: Date?) {
        guard source == .stripe, let time else { return }
        lastStripeTime = max(lastStripeTime ?? time, time)
    }
}

/// A key as its stream says now; 404 when it does not exist or belongs to another tenant.
struct KeyState {
    var status = "active"
    var name = ""
    var expiresAt: Date?
    var version: Int64 = 0

    static func load(_ id: UUID, tenant: UUID, store: EventStore) async throws -> KeyState {
        guard let events = try await store.readAll(.apiKey(id), ownedBy: tenant) else { throw Problem.notFound("key") }
        var state = KeyState()
        for recorded in events {
            state.version = recorded.streamVersion
            switch try store.catalog.decode(recorded) {
            case let event as KeyIssued:
                state.name = event.name
                state.expiresAt = event.expiresAt
            case is KeyRevoked: state.status = "revoked"
            case is KeyRotated: state.status = "rotated"
            default: break
            }
        }
        return state
    }
}
