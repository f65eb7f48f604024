public import Events
import Foundation

/// `tenants`: one row per tenant with its plan, status and Stripe customer.
public struct TenantsProjection: Projection {
    public let name = "tenants"
    public let version = 1
    public let eventTypes: Set<String> = [
        TenantCreated.eventType, PlanChanged.eventType, StripeCustomerLinked.eventType, TenantSuspended.eventType,
        TenantReinstated.eventType, TenantErased.eventType,
    ]
    public let tables = [
        ProjectionTable(
            name: "tenants",
            columns: """
                tenant_id uuid PRIMARY KEY,
                name text NOT NULL,
                slug text NOT NULL UNIQUE,
                plan text NOT NULL,
                status text NOT NULL,
                stripe_customer_id text,
                created_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL
                """)
    ]

    public init() {}

    public func apply(_ events: [RecordedEvent], in context: ProjectionContext) async throws {
        for recorded in events {
            let at = PostgresValue.timestamp(recorded.recordedAt)
            switch try context.decode(recorded) {
            case let event as TenantCreated:
                try await context.execute(
                    """
                    INSERT INTO tenants (tenant_id, name, slug, plan, status, created_at, updated_at)
                    VALUES ($1, $2, $3, $4, 'active', $5, $5)
                    """, [.uuid(event.tenantID), .string(event.name), .string(event.slug), .string(event.plan), at])
            case let event as PlanChanged:
                try await update(event.tenantID, "plan = $3", [.string(event.toPlan)], at: at, context)
            case let event as StripeCustomerLinked:
                try await update(
                    event.tenantID, "stripe_customer_id = $3", [.string(event.customerID)], at: at, context)
            case let event as TenantSuspended:
                try await update(event.tenantID, "status = 'suspended'", [], at: at, context)
            case let event as TenantReinstated:
                try await update(event.tenantID, "status = 'active'", [], at: at, context)
            case let event as TenantErased:
                // The name is personal data; the slug stays reserved so that it is never reused by accident.
                try await update(event.tenantID, "status = 'erased', name = ''", [], at: at, context)
            default:
                throw ProjectionsError(
                    .unexpectedEvent, "tenants cannot apply \(recorded.type) at position \(recorded.globalPosition)")
            }
        }
    }

    private func update(
        _ tenant: UUID, _ assignments: String, _ values: [PostgresValue], at: PostgresValue,
        _ context: ProjectionContext
    ) async throws {
        let rows = try await context.execute(
            "UPDATE tenants SET \(assignments), updated_at = $2 WHERE tenant_id = $1", [.uuid(tenant), at] + values)
        guard rows.affectedRows == 1 else {
            throw ProjectionsError(.unexpectedEvent, "tenant \(tenant.lowercased) changed before it was created")
        }
    }
}
