public import Events
public import Foundation

/// A tenant as its stream says now, for deciding commands.
public struct TenantState: Sendable {
    /// `active`, `suspended` or `erased`.
    public var status = "active"
    /// The plan's name.
    public var plan = ""
    /// The stream's version the decision was made at.
    public var version: Int64 = 0
    /// Who suspended the tenant, while it is suspended (a Stripe resume lifts only a Stripe suspension).
    public var suspendedBy: ChangeSource?
    /// The Stripe customer linked to the tenant.
    public var stripeCustomerID: String?
    /// The tenant's current Stripe subscription.
    public var stripeSubscriptionID: String?
    /// The time of the newest Stripe event applied to the tenant (last writer wins by Stripe's time).
    public var lastStripeTime: Date?

    /// The tenant's state from its stream; nil when it does not exist.
    public static func load(_ id: UUID, store: EventStore) async throws -> TenantState? {
        try fold(try await store.readAll(.tenant(id)), catalog: store.catalog)
    }

    /// The state after `events` (a whole tenant stream, in version order); nil when there are none.
    public static func fold(_ events: [RecordedEvent], catalog: EventCatalog) throws -> TenantState? {
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

extension Commands {
    /// Creates a tenant. Its id is derived from its slug (`UUID.tenant(slug:)`): the stream can only be
    /// created once, so two tenants never share a slug, even when created at the same moment by two
    /// instances; the second gets a `slug-taken` conflict. The caller has checked name, slug and plan.
    public func createTenant(name: String, slug: String, plan: String, metadata: EventMetadata) async throws
        -> (created: TenantCreated, applied: Applied)
    {
        let id = UUID.tenant(slug: slug)
        let event = TenantCreated(tenantID: id, name: name, slug: slug, plan: plan)
        do {
            return (
                event, try await append(event, to: .tenant(id), tenant: id, expected: .noStream, metadata: metadata)
            )
        } catch let error as EventsError where error.code == .conflict {
            throw CommandError(
                .conflict, "tenant", code: "slug-taken", title: "Slug taken",
                detail: "A tenant with the slug \(slug) exists.")
        }
    }

    /// Suspends an active tenant (its keys stop working); nothing when it is suspended already.
    public func suspendTenant(_ id: UUID, reason: String, metadata: EventMetadata) async throws -> Applied {
        try await changeTenant(id, metadata: metadata) { state in
            guard state.status != "erased" else { throw CommandError.conflict("tenant", "The tenant is erased.") }
            guard state.status != "suspended" else { return nil }
            return TenantSuspended(tenantID: id, reason: reason, source: .operator)
        }
    }

    /// Reinstates a suspended tenant; nothing when it is active.
    public func reinstateTenant(_ id: UUID, metadata: EventMetadata) async throws -> Applied {
        try await changeTenant(id, metadata: metadata) { state in
            guard state.status != "erased" else { throw CommandError.conflict("tenant", "The tenant is erased.") }
            guard state.status != "active" else { return nil }
            return TenantReinstated(tenantID: id, source: .operator)
        }
    }

    /// Erasure is crypto-shredding: the tenant's data keys are destroyed first (so an erasure interrupted
    /// before its event is appended has still made every sealed secret unreadable, and a retry completes
    /// it), then `TenantErased` is appended; its keys stop working on every instance.
    public func eraseTenant(_ id: UUID, reason: String, metadata: EventMetadata) async throws -> Applied {
        guard let state = try await TenantState.load(id, store: store) else { throw CommandError.notFound("tenant") }
        guard state.status != "erased" else {
            throw CommandError.conflict("tenant", "The tenant is already erased.")
        }
        try await SecretVault.destroyKeys(of: id, pool: store.pool)
        return try await changeTenant(id, metadata: metadata) { state in
            guard state.status != "erased" else {
                throw CommandError.conflict("tenant", "The tenant is already erased.")
            }
            return TenantErased(tenantID: id, reason: reason)
        }
    }

    /// Moves the tenant to `plan` (which the caller has checked is configured) on the operator's word;
    /// nothing when it is on it already.
    public func changePlan(_ id: UUID, to plan: String, metadata: EventMetadata) async throws -> Applied {
        try await changeTenant(id, metadata: metadata) { state in
            guard state.status != "erased" else { throw CommandError.conflict("tenant", "The tenant is erased.") }
            guard state.plan != plan else { return nil }
            return PlanChanged(tenantID: id, fromPlan: state.plan, toPlan: plan, source: .operator, effectiveAt: Date())
        }
    }

    /// Decides on the tenant's stream and appends at the version it read; nil from `decide` means nothing to
    /// change (the command is idempotent).
    private func changeTenant(
        _ id: UUID, metadata: EventMetadata, decide: (TenantState) throws -> (any DomainEvent)?
    ) async throws -> Applied {
        guard let state = try await TenantState.load(id, store: store) else { throw CommandError.notFound("tenant") }
        guard let event = try decide(state) else { return .nothing }
        return try await append(
            event, to: .tenant(id), tenant: id, expected: .exactly(state.version), metadata: metadata)
    }

    /// The tenant's state; a `.notFound` error when it does not exist.
    public func tenant(_ id: UUID) async throws -> TenantState {
        guard let state = try await TenantState.load(id, store: store) else { throw CommandError.notFound("tenant") }
        return state
    }
}
