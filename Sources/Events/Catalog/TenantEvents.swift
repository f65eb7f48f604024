public import Foundation

/// Who changed a plan or a tenant's status.
public enum ChangeSource: String, Codable, Sendable, Hashable {
    case `operator`
    case stripe
    case system
}

/// Stream `tenant-{id}`: a tenant was created on a plan.
public struct TenantCreated: DomainEvent {
    public static let eventType = "TenantCreated"
    public static let schemaVersion = 1
    public var tenantID: UUID
    public var name: String
    /// Unique, URL-safe, chosen by the operator.
    public var slug: String
    public var plan: String

    public init(tenantID: UUID, name: String, slug: String, plan: String) {
        self.tenantID = tenantID
        self.name = name
        self.slug = slug
        self.plan = plan
    }

    enum CodingKeys: String, CodingKey { case tenantID = "tenantId", name, slug, plan }
}

/// Stream `tenant-{id}`: the tenant moved to another plan, by the operator or a Stripe subscription event.
public struct PlanChanged: DomainEvent {
    public static let eventType = "PlanChanged"
    public static let schemaVersion = 1
    public var tenantID: UUID
    public var fromPlan: String
    public var toPlan: String
    public var source: ChangeSource
    /// The Stripe event (`evt_...`) that caused it, when `source` is `stripe`.
    public var stripeEventID: String?
    /// The Stripe object's time; an older Stripe snapshot never overrides a newer one.
    public var stripeObjectTime: Date?
    /// From when the new plan prices usage (billing splits the period here).
    public var effectiveAt: Date

    public init(
        tenantID: UUID, fromPlan: String, toPlan: String, source: ChangeSource, stripeEventID: String? = nil,
        stripeObjectTime: Date? = nil, effectiveAt: Date
    ) {
        self.tenantID = tenantID
        self.fromPlan = fromPlan
        self.toPlan = toPlan
        self.source = source
        self.stripeEventID = stripeEventID
        self.stripeObjectTime = stripeObjectTime
        self.effectiveAt = effectiveAt
    }

    enum CodingKeys: String, CodingKey {
        case tenantID = "tenantId", fromPlan, toPlan, source, stripeEventID = "stripeEventId", stripeObjectTime,
            effectiveAt
    }
}

/// Stream `tenant-{id}`: the tenant's Stripe customer (and subscription) became known.
public struct StripeCustomerLinked: DomainEvent {
    public static let eventType = "StripeCustomerLinked"
    public static let schemaVersion = 1
    public var tenantID: UUID
    /// `cus_...`
    public var customerID: String
    /// `sub_...`, when linked through a subscription.
    public var subscriptionID: String?

    public init(tenantID: UUID, customerID: String, subscriptionID: String? = nil) {
        self.tenantID = tenantID
        self.customerID = customerID
        self.subscriptionID = subscriptionID
    }

    enum CodingKeys: String, CodingKey {
        case tenantID = "tenantId", customerID = "customerId", subscriptionID = "subscriptionId"
    }
}

/// Stream `tenant-{id}`: the tenant's keys stop working until it is reinstated.
public struct TenantSuspended: DomainEvent {
    public static let eventType = "TenantSuspended"
    public static let schemaVersion = 1
    public var tenantID: UUID
    public var reason: String
    public var source: ChangeSource
    /// The Stripe event (`evt_...`) that caused it, when `source` is `stripe`. Absent in events written
    /// before Stripe webhooks existed.
    public var stripeEventID: String?
    /// The Stripe event's time, when `source` is `stripe`: an older Stripe event never overrides a newer one.
    public var stripeObjectTime: Date?

    public init(
        tenantID: UUID, reason: String, source: ChangeSource, stripeEventID: String? = nil,
        stripeObjectTime: Date? = nil
    ) {
        self.tenantID = tenantID
        self.reason = reason
        self.source = source
        self.stripeEventID = stripeEventID
        self.stripeObjectTime = stripeObjectTime
    }

    enum CodingKeys: String, CodingKey {
        case tenantID = "tenantId", reason, source, stripeEventID = "stripeEventId", stripeObjectTime
    }
}

/// Stream `tenant-{id}`: a suspended tenant is active again.
public struct TenantReinstated: DomainEvent {
    public static let eventType = "TenantReinstated"
    public static let schemaVersion = 1
    public var tenantID: UUID
    public var source: ChangeSource
    /// The Stripe event (`evt_...`) that caused it, when `source` is `stripe`. Absent in events written
    /// before Stripe webhooks existed.
    public var stripeEventID: String?
    /// The Stripe event's time, when `source` is `stripe`: an older Stripe event never overrides a newer one.
    public var stripeObjectTime: Date?

    public init(tenantID: UUID, source: ChangeSource, stripeEventID: String? = nil, stripeObjectTime: Date? = nil) {
        self.tenantID = tenantID
        self.source = source
        self.stripeEventID = stripeEventID
        self.stripeObjectTime = stripeObjectTime
    }

    enum CodingKeys: String, CodingKey {
        case tenantID = "tenantId", source, stripeEventID = "stripeEventId", stripeObjectTime
    }
}

/// Stream `tenant-{id}`: the tenant was erased; its data key is destroyed, so everything sealed for it in
/// the log, replicas and backups is unreadable from now on.
public struct TenantErased: DomainEvent {
    public static let eventType = "TenantErased"
    public static let schemaVersion = 1
    public var tenantID: UUID
    public var reason: String

    public init(tenantID: UUID, reason: String) {
        self.tenantID = tenantID
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey { case tenantID = "tenantId", reason }
}
