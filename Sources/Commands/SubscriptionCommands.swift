public import Events
public import Foundation
public import Projections

/// A `customer.subscription.*` event: the subscription as it was at the event's time.
public struct SubscriptionSnapshot: Sendable {
    /// The subscription event's kind: the part after `customer.subscription.`.
    public enum Kind: String, CaseIterable, Sendable {
        case created, updated, deleted, paused, resumed

        /// The kind of a Stripe event type; nil for one that is not a subscription event.
        public init?(eventType: String) {
            guard eventType.hasPrefix("customer.subscription.") else { return nil }
            self.init(rawValue: String(eventType.dropFirst("customer.subscription.".count)))
        }

        /// Orders events of the same second: a `created` never overrides a change made in its own second, and
        /// nothing but another `deleted` ends what a `deleted` ended.
        public var rank: Int {
            switch self {
            case .created: 0
            case .updated, .paused, .resumed: 1
            case .deleted: 2
            }
        }
    }

    /// How the event names its tenant.
    public enum TenantReference: Equatable, Sendable {
        case id(UUID)
        case customer(String)
        case invalid(String)
        case none
    }

    /// What happened to the subscription.
    public var kind: Kind
    /// The subscription's Stripe id.
    public var subscriptionID: String?
    /// The Stripe customer it belongs to.
    public var customerID: String?
    /// How the event names its tenant.
    public var tenant: TenantReference
    /// The prices of its items, which name the plan.
    public var priceIDs: [String]

    /// A snapshot from the parts of the event the webhook read.
    public init(
        kind: Kind, subscriptionID: String?, customerID: String?, tenant: TenantReference, priceIDs: [String]
    ) {
        self.kind = kind
        self.subscriptionID = subscriptionID
        self.customerID = customerID
        self.tenant = tenant
        self.priceIDs = priceIDs
    }

    /// The plan the subscription's prices belong to.
    public enum PlanMatch: Sendable {
        case plan(Plan)
        /// No price is a plan's (the ids, for the record).
        case unknown([String])
        /// The prices belong to several plans.
        case ambiguous([String])
    }

    /// The configured plan whose Stripe prices the subscription carries.
    public func plan(in plans: Plans) -> PlanMatch {
        let owners = Set(priceIDs.compactMap { plans.owner(ofStripePrice: $0)?.plan.name })
        switch owners.count {
        case 1: return .plan(plans[owners.first!]!)
        case 0: return .unknown(priceIDs)
        default: return .ambiguous(owners.sorted())
        }
    }
}

/// When two Stripe changes to a tenant compare: by the event's `created` second, then by `Kind.rank`.
public struct StripeOrder: Comparable, Sendable {
    /// The Stripe event's `created`, unix seconds.
    public var seconds: Int64
    /// `Kind.rank`: orders events of the same second.
    public var rank: Int

    /// An order at `seconds` with `rank`.
    public init(seconds: Int64, rank: Int) {
        self.seconds = seconds
        self.rank = rank
    }

    public static func < (lhs: StripeOrder, rhs: StripeOrder) -> Bool {
        (lhs.seconds, lhs.rank) < (rhs.seconds, rhs.rank)
    }
}

/// What a subscription event does to a tenant, decided from the tenant's stream and the newest Stripe
/// change already applied to it.
public struct SubscriptionDecision: Sendable {
    /// What the event did, as recorded with the delivery.
    public enum Outcome: Equatable, Sendable {
        /// Events were appended.
        case applied
        /// The event is the newest Stripe state and the tenant already matches it.
        case unchanged
        /// An older Stripe state than one already applied: it never moves the tenant back.
        case stale
        /// Nothing to apply (the reason is recorded).
        case ignored(String)

        /// The outcome as `stripe_events.outcome` records it.
        public var text: String {
            switch self {
            case .applied: "applied"
            case .unchanged: "unchanged"
            case .stale: "stale"
            case .ignored(let reason): "ignored: \(reason)"
            }
        }
    }

    /// What the event does.
    public var outcome: Outcome
    /// The events to append to the tenant's stream (none unless `.applied`).
    public var events: [any DomainEvent] = []

    /// Decides `snapshot` (of the Stripe event `eventID` at `created`) for the tenant in `state`, whose
    /// newest applied Stripe change is `last`. At an equal second an event applies only when it is an
    /// `updated`, `paused` or `resumed` after another such event (Stripe orders nothing finer than a
    /// second, so the later delivery wins); a `created` never overrides, a `deleted` is final.
    public static func decide(
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
