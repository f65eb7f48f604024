import Commands
import Events
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Projections

/// `POST /webhooks/stripe`: Stripe's subscription events move tenants between plans and suspend or
/// reinstate them.
///
/// A delivery is verified on its raw bytes before anything else, then recorded in `stripe_events` by its
/// Stripe event id in the same transaction that appends the events it causes: a repeated delivery finds its
/// row and changes nothing. Deliveries for one tenant take turns (a transaction-scoped advisory lock), and
/// each decides from the tenant's stream and the newest Stripe change already applied, so an older snapshot
/// delivered late never moves a tenant back.
struct StripeWebhookRoutes {
    let services: APIServices

    /// The answer to every accepted delivery (Stripe only looks at the 2xx).
    struct Received: Encodable {
        var received = true
        var duplicate: Bool?
        var outcome: String?
    }

    func receive(_ request: Request, _ context: TallyContext) async throws -> Response {
        let settings = services.settings
        guard !settings.stripeWebhookSecrets.isEmpty else { throw Problem.stripeNotConfigured }
        var request = request
        let body: [UInt8]
        do {
            body = Array(try await request.collectBody(upTo: API.maxBodyBytes).readableBytesView)
        } catch {
            throw Problem.tooLarge
        }
        do {
            try StripeSignature.verify(
                header: request.headers[.stripeSignature], body: body, secrets: settings.stripeWebhookSecrets,
                now: settings.now(),
                tolerance: settings.stripeSignatureTolerance)
        } catch {
            context.logger.warning("a Stripe webhook delivery was refused", metadata: ["reason": "\(error)"])
            throw Problem.stripeSignature(error, tolerance: settings.stripeSignatureTolerance)
        }
        // Signed by Stripe, but its strings still end up in the log and the read models.
        if let finding = StorableText.firstUnstorable(in: body) {
            throw Problem.validation(finding.detail, pointer: finding.pointer)
        }
        let event = try StripeEvent(json: body)
        var context = context
        context.logger[metadataKey: "stripe_event"] = .string(event.id)
        context.logger[metadataKey: "stripe_type"] = .string(event.type)
        return try JSON.response(try await handle(event, context))
    }

    private func handle(_ event: StripeEvent, _ context: TallyContext) async throws -> Received {
        // invoice.* and everything else: acknowledged, recorded, nothing changes.
        guard let kind = SubscriptionSnapshot.Kind(eventType: event.type) else {
            return try await record(event, outcome: "ignored", context)
        }
        let snapshot = try SubscriptionSnapshot(event, kind: kind)
        let tenantID: UUID
        switch try await resolve(snapshot.tenant) {
        case .success(let id): tenantID = id
        case .failure(let unresolved): return try await record(event, outcome: "ignored: " + unresolved.reason, context)
        }
        var attempt = 1
        while true {
            do {
                return try await apply(event, snapshot, tenantID: tenantID, context)
            } catch let error as EventsError where error.code == .conflict && attempt < 3 {
                // An operator command appended to the tenant's stream meanwhile: decide again on what it left.
                attempt += 1
            } catch let error as EventsError where error.code == .conflict {
                throw Problem.raced("tenant")
            }
        }
    }

    struct Unresolved: Error {
        var reason: String
    }

    /// The tenant the subscription names: its metadata (`tally_tenant_id`, else `tally_tenant`, a slug), else
    /// the tenant its customer is linked to.
    private func resolve(_ reference: SubscriptionSnapshot.TenantReference) async throws -> Result<UUID, Unresolved> {
        switch reference {
        case .id(let id):
            return .success(id)
        case .invalid(let reason):
            return .failure(Unresolved(reason: reason))
        case .none:
            return .failure(Unresolved(reason: "no tenant in the metadata and no customer"))
        case .customer(let customer):
            let tenants = try await readOrEmpty {
                try await services.database.asOperator(readOnly: true) { connection in
                    try await TenantsProjection.tenantIDs(stripeCustomer: customer, limit: 2, on: connection)
                }
            }
            switch tenants.count {
            case 1: return .success(tenants[0])
            case 0: return .failure(Unresolved(reason: "unknown tenant (no tenant metadata, customer not linked)"))
            default: return .failure(Unresolved(reason: "the customer is linked to several tenants"))
            }
        }
    }

    private enum Applied: Sendable {
        case duplicate
        case done(outcome: String, events: [any DomainEvent], positions: [FeedPosition])
    }

    /// Decides and appends under the tenant's lock, recording the delivery in the same transaction.
    private func apply(_ event: StripeEvent, _ snapshot: SubscriptionSnapshot, tenantID: UUID, _ context: TallyContext)
        async throws -> Received
    {
        let store = services.store
        let plans = services.settings.plans
        let free = plans["free"] ?? services.mostRestrictivePlan
        let metadata = EventMetadata(actor: "stripe", requestID: context.requestID)
        let result = try await store.retryingSerializationFailures {
            try await services.database.asOperator { connection -> Applied in
                _ = try await connection.query(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                    [.string("tally.stripe.tenant:" + tenantID.lowercased)])
                guard
                    let state = try TenantState.fold(
                        try await store.readAll(stream: .tenant(tenantID), on: connection), catalog: store.catalog)
                else {
                    let outcome = "ignored: unknown tenant"
                    return try await Self.insert(event, outcome, tenant: nil, on: connection)
                        ? .done(outcome: outcome, events: [], positions: []) : .duplicate
                }
                let decision = SubscriptionDecision.decide(
                    snapshot, eventID: event.id, created: event.created, tenantID: tenantID, state: state,
                    last: try await Self.lastOrder(tenantID, state, on: connection), plans: plans, freePlan: free,
                    now: services.settings.now())
                guard try await Self.insert(event, decision.outcome.text, tenant: tenantID, on: connection) else {
                    return .duplicate
                }
                guard !decision.events.isEmpty else {
                    return .done(outcome: decision.outcome.text, events: [], positions: [])
                }
                let results = try await store.append(
                    [
                        StreamAppend(
                            stream: .tenant(tenantID), tenantID: tenantID, expected: .exactly(state.version),
                            events: try decision.events.map { try EventCatalog.tally.encode($0, metadata: metadata) })
                    ], on: connection)
                return .done(
                    outcome: decision.outcome.text, events: decision.events, positions: results[0].feedPositions)
            }
        }
        guard case .done(let outcome, let events, let positions) = result else { return Received(duplicate: true) }
        if !events.isEmpty {
            store.appended()
            // A pause blocks the tenant's keys on this instance at once; others follow the log.
            services.keys.applyOwn(events)
            if let last = positions.max() { await services.awaitProjection("tenants", last) }
        }
        if outcome.hasPrefix("ignored") {
            context.logger.warning(
                "a Stripe event changed nothing",
                metadata: ["outcome": "\(outcome)", "tenant": "\(tenantID.lowercased)"])
        } else {
            context.logger.info(
                "a Stripe event was processed", metadata: ["outcome": "\(outcome)", "tenant": "\(tenantID.lowercased)"])
        }
        return Received(outcome: outcome)
    }

    /// Records a delivery that concerns no known tenant.
    private func record(_ event: StripeEvent, outcome: String, _ context: TallyContext) async throws -> Received {
        let fresh = try await services.database.asOperator {
            try await Self.insert(event, outcome, tenant: nil, on: $0)
        }
        guard fresh else { return Received(duplicate: true) }
        if outcome == "ignored" {
            context.logger.debug("a Stripe event of a type Tally does not act on was acknowledged")
        } else {
            context.logger.warning("a Stripe event changed nothing", metadata: ["outcome": "\(outcome)"])
        }
        return Received(outcome: outcome)
    }

    /// Records the delivery; false when its id is recorded already (a repeated delivery).
    private static func insert(
        _ event: StripeEvent, _ outcome: String, tenant: UUID?, on connection: PostgresConnection
    ) async throws -> Bool {
        let rows = try await connection.query(
            """
            INSERT INTO stripe_events (id, type, stripe_created, outcome, tenant_id) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (id) DO NOTHING RETURNING 1
            """,
            [.string(event.id), .string(event.type), .timestamp(event.createdDate), .string(outcome), .uuid(tenant)])
        return !rows.isEmpty
    }

    /// The newest Stripe change considered for the tenant: from its stream (what was applied) and from the
    /// deliveries recorded as `applied` or `unchanged` (a newer state that matched the tenant appends nothing,
    /// yet an older one delivered after it must not apply).
    private static func lastOrder(_ tenantID: UUID, _ state: TenantState, on connection: PostgresConnection)
        async throws -> StripeOrder?
    {
        let rows = try await connection.query(
            """
            SELECT type, stripe_created FROM stripe_events
            WHERE tenant_id = $1 AND outcome IN ('applied', 'unchanged') AND stripe_created = (
                SELECT max(stripe_created) FROM stripe_events WHERE tenant_id = $1 AND outcome IN ('applied', 'unchanged'))
            """, [.uuid(tenantID)])
        // The stream does not say which kind of event a change came from; it ranks as an update.
        var last = state.lastStripeTime.map { StripeOrder(seconds: Int64($0.timeIntervalSince1970.rounded()), rank: 1) }
        for row in rows {
            let rank = SubscriptionSnapshot.Kind(eventType: try row.string(0))?.rank ?? 1
            let order = StripeOrder(seconds: Int64(try row.date(1).timeIntervalSince1970.rounded()), rank: rank)
            last = max(last ?? order, order)
        }
        return last
    }
}

extension HTTPField.Name {
    static let stripeSignature = Self("Stripe-Signature")!
}

extension StripeWebhookRoutes {
    /// `POST /webhooks/stripe`, outside the API's authentication: deliveries are verified by signature.
    func addRoutes(to root: RouterGroup<TallyContext>) {
        root.post("/webhooks/stripe", use: receive)
    }
}
