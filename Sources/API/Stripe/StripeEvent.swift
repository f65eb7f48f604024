import Events
import Foundation
import HTTPTypes
import Projections

/// The parts of a Stripe event the webhook reads: its id, type, time and `data.object`.
struct StripeEvent {
    var id: String
    var type: String
    /// The event's `created` (unix seconds): the time last-writer-wins compares.
    var created: Int64
    var object: JSONValue?

    /// Parses a delivery's body: 400 `malformed-json` when it is not JSON, 400 `malformed-stripe-event` when
    /// it is not an event (no string `id` and `type`, no integer `created`).
    init(json body: [UInt8]) throws(Problem) {
        let document: JSONValue
        do {
            document = try JSONDecoder().decode(JSONValue.self, from: Data(body))
        } catch {
            throw Problem(.badRequest, "malformed-json", title: "Malformed JSON", detail: "The body is not valid JSON.")
        }
        guard case .string(let id)? = document["id"], Self.isToken(id) else {
            throw Self.notAnEvent("id must be an event id")
        }
        guard case .string(let type)? = document["type"], Self.isToken(type) else {
            throw Self.notAnEvent("type must be an event type")
        }
        guard case .number(let number)? = document["created"], let created = Int64(exactly: number),
            (0...253_402_300_799).contains(created)
        else {
            throw Self.notAnEvent("created must be unix seconds before the year 10000")
        }
        self.id = id
        self.type = type
        self.created = created
        self.object = document["data"]?["object"]
    }

    var createdDate: Date { Date(timeIntervalSince1970: Double(created)) }

    /// Ids and types are stored and logged: 1 to 255 printable ASCII characters.
    private static func isToken(_ text: String) -> Bool {
        (1...255).contains(text.utf8.count) && text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f }
    }

    static func notAnEvent(_ detail: String) -> Problem {
        Problem(
            .badRequest, "malformed-stripe-event", title: "Not a Stripe event",
            detail: "The body is JSON but not a Stripe event: \(detail).")
    }
}

/// A `customer.subscription.*` event: the subscription as it was at the event's time.
struct SubscriptionSnapshot {
    enum Kind: String, CaseIterable {
        case created, updated, deleted, paused, resumed

        init?(eventType: String) {
            guard eventType.hasPrefix("customer.subscription.") else { return nil }
            self.init(rawValue: String(eventType.dropFirst("customer.subscription.".count)))
        }

        /// Orders events of the same second: a `created` never overrides a change made in its own second, and
        /// nothing but another `deleted` ends what a `deleted` ended.
        var rank: Int {
            switch self {
            case .created: 0
            case .updated, .paused, .resumed: 1
            case .deleted: 2
            }
        }
    }

    /// How the event names its tenant.
    enum TenantReference: Equatable {
        case id(UUID)
        case customer(String)
        case invalid(String)
        case none
    }

    var kind: Kind
    var subscriptionID: String?
    var customerID: String?
    var tenant: TenantReference
    var priceIDs: [String]

    /// Reads `data.object` of a subscription event; 400 when it is not an object.
    init(_ event: StripeEvent, kind: Kind) throws(Problem) {
        guard case .object(let object)? = event.object else {
            throw StripeEvent.notAnEvent("data.object must be the subscription")
        }
        self.kind = kind
        subscriptionID = Self.id(object["id"])
        customerID = Self.id(object["customer"])
        if case .string(let text)? = object["metadata"]?["tally_tenant_id"] {
            tenant = UUID(uuidString: text).map { .id($0) } ?? .invalid("metadata tally_tenant_id is not a uuid")
        } else if case .string(let slug)? = object["metadata"]?["tally_tenant"] {
            // A tenant's id is derived from its slug, so no lookup is needed.
            tenant =
                OperatorRoutes.isValidSlug(slug)
                ? .id(.tenant(slug: slug)) : .invalid("metadata tally_tenant is not a tenant slug")
        } else if let customerID {
            tenant = .customer(customerID)
        } else {
            tenant = .none
        }
        priceIDs = (object["items"]?["data"]?.arrayItems ?? []).compactMap { Self.id($0["price"]) }
    }

    /// A Stripe id, written as the string or as the expanded object carrying it.
    private static func id(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let id)?: id.isEmpty ? nil : id
        case .object(let object)?: id(object["id"])
        default: nil
        }
    }

    /// The plan the subscription's prices belong to.
    enum PlanMatch {
        case plan(Plan)
        /// No price is a plan's (the ids, for the record).
        case unknown([String])
        /// The prices belong to several plans.
        case ambiguous([String])
    }

    func plan(in plans: Plans) -> PlanMatch {
        let owners = Set(priceIDs.compactMap { plans.owner(ofStripePrice: $0)?.plan.name })
        switch owners.count {
        case 1: return .plan(plans[owners.first!]!)
        case 0: return .unknown(priceIDs)
        default: return .ambiguous(owners.sorted())
        }
    }
}

/// When two Stripe changes to a tenant compare: by the event's `created` second, then by `Kind.rank`.
struct StripeOrder: Comparable {
    var seconds: Int64
    var rank: Int

    static func < (lhs: StripeOrder, rhs: StripeOrder) -> Bool { (lhs.seconds, lhs.rank) < (rhs.seconds, rhs.rank) }
}

/// What a subscription event does to a tenant, decided from the tenant's stream and the newest Stripe
/// change already applied to it.
struct SubscriptionDecision {
    enum Outcome: Equatable {
        /// Events were appended.
        case applied
        /// The event is the newest Stripe state and the tenant already matches it.
        case unchanged
        /// An older Stripe state than one already applied: it never moves the tenant back.
        case stale
        /// Nothing to apply (the reason is recorded).
        case ignored(String)

        var text: String {
            switch self {
            case .applied: "applied"
            case .unchanged: "unchanged"
            case .stale: "stale"
            case .ignored(let reason): "ignored: \(reason)"
            }
        }
    }

    var outcome: Outcome
    var events: [any DomainEvent] = []

    /// Decides `snapshot` (of the Stripe event `eventID` at `created`) for the tenant in `state`, whose
    /// newest applied Stripe change is `last`. At an equal second an event applies only when it is an
    /// `updated`, `paused` or `resumed` after another such event (Stripe orders nothing finer than a
    /// second, so the later delivery wins); a `created` never overrides, a `deleted` is final.
    static func decide(
        _ snapshot: SubscriptionSnapshot, eventID: String, created: Int64, tenantID: UUID, state: TenantState,
        last: StripeOrder?,
        plans: Plans, freePlan: Plan, now: Date
    ) -> SubscriptionDecision {
        guard state.status != "erased" else { return SubscriptionDecision(outcome: .ignored("tenant erased")) }
        let order = StripeOrder(seconds: created, rank: snapshot.kind.rank)
        if let last, order < last || (order == last && order.rank != 1) {
            return SubscriptionDecision(outcome: .stale)
        }
        let time = Date(timeIntervalSince1970: Double(created))
        var target: Plan?
        switch (snapshot.kind, snapshot.plan(in: plans)) {
        case (.deleted, _):
            if let current = state.stripeSubscriptionID, let deleted = snapshot.subscriptionID, current != deleted {
                return SubscriptionDecision(outcome: .ignored("not the tenant's current subscription"))
            }
            target = freePlan
        case (_, .plan(let plan)):
            target = plan
        case (.created, .unknown(let prices)), (.updated, .unknown(let prices)):
            return SubscriptionDecision(
                outcome: .ignored(
                    prices.isEmpty ? "no prices" : "unknown price " + prices.prefix(3).joined(separator: ", ")))
        case (.created, .ambiguous(let names)), (.updated, .ambiguous(let names)):
            return SubscriptionDecision(outcome: .ignored("prices of several plans: " + names.joined(separator: ", ")))
        case (.paused, _), (.resumed, _):
            // A pause or resume whose prices name no plan still changes the status.
            target = nil
        }
        var events: [any DomainEvent] = []
        if let target, target.name != state.plan {
            events.append(
                PlanChanged(
                    tenantID: tenantID, fromPlan: state.plan, toPlan: target.name, source: .stripe,
                    stripeEventID: eventID,
                    stripeObjectTime: time, effectiveAt: now))
        }
        if snapshot.kind != .deleted, let customer = snapshot.customerID,
            customer != state.stripeCustomerID
                || (snapshot.subscriptionID != nil && snapshot.subscriptionID != state.stripeSubscriptionID)
        {
            events.append(
                StripeCustomerLinked(tenantID: tenantID, customerID: customer, subscriptionID: snapshot.subscriptionID))
        }
        switch snapshot.kind {
        case .paused where state.status == "active":
            events.append(
                TenantSuspended(
                    tenantID: tenantID, reason: "the Stripe subscription is paused", source: .stripe,
                    stripeEventID: eventID,
                    stripeObjectTime: time))
        case .resumed where state.status == "suspended" && state.suspendedBy == .stripe:
            // An operator's suspension is the operator's to lift.
            events.append(
                TenantReinstated(tenantID: tenantID, source: .stripe, stripeEventID: eventID, stripeObjectTime: time))
        default:
            break
        }
        return SubscriptionDecision(outcome: events.isEmpty ? .unchanged : .applied, events: events)
    }
}

extension JSONValue {
    fileprivate var arrayItems: [JSONValue]? {
        if case .array(let items) = self { items } else { nil }
    }
}
