package import Events
public import Foundation

/// One row of `tenants`, as ``TenantsProjection`` keeps it.
public struct TenantRow: Sendable, Hashable {
    /// The tenant's id.
    public var id: UUID
    /// Its display name.
    public var name: String
    /// Its unique slug.
    public var slug: String
    /// The plan it is on.
    public var plan: String
    /// `active`, `suspended` or `erased`.
    public var status: String
    /// The Stripe customer linked to it, if any.
    public var stripeCustomerID: String?
    /// When it was created.
    public var createdAt: Date
    /// When it last changed.
    public var updatedAt: Date

    static let columns = "tenant_id, name, slug, plan, status, stripe_customer_id, created_at, updated_at"

    init(_ row: PostgresRow) throws {
        id = try row.uuid(0)
        name = try row.string(1)
        slug = try row.string(2)
        plan = try row.string(3)
        status = try row.string(4)
        stripeCustomerID = try row.optionalString(5)
        createdAt = try row.date(6)
        updatedAt = try row.date(7)
    }
}

extension TenantsProjection {
    /// The statuses a tenant can have.
    public static let statuses: Set<String> = ["active", "suspended", "erased"]

    /// The tenant with this id, if the projection has it.
    package static func tenant(_ id: UUID, on connection: PostgresConnection) async throws -> TenantRow? {
        try await connection.query("SELECT \(TenantRow.columns) FROM tenants WHERE tenant_id = $1", [.uuid(id)])
            .first.map(TenantRow.init)
    }

    /// Up to `limit` tenants in creation order, after the cursor `after` (created at, id), with `status` if given.
    /// The statement names only the filters given, so each shape keeps its own plan on the index.
    package static func tenants(
        status: String? = nil, after: (Date, UUID)? = nil, limit: Int, on connection: PostgresConnection
    ) async throws -> [TenantRow] {
        var conditions: [String] = []
        var parameters: [PostgresValue] = []
        if let (date, id) = after {
            parameters += [.timestamp(date), .uuid(id)]
            conditions.append("(created_at, tenant_id) > ($1, $2)")
        }
        if let status {
            parameters.append(.string(status))
            conditions.append("status = $\(parameters.count)")
        }
        parameters.append(.int64(Int64(limit)))
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        return try await connection.query(
            "SELECT \(TenantRow.columns) FROM tenants\(filter) ORDER BY created_at, tenant_id LIMIT $\(parameters.count)",
            parameters
        ).map(TenantRow.init)
    }

    /// Every tenant (the key directory's snapshot).
    package static func allTenants(on connection: PostgresConnection) async throws -> [TenantRow] {
        try await connection.query("SELECT \(TenantRow.columns) FROM tenants").map(TenantRow.init)
    }

    /// Up to `limit` ids of the tenants linked to the Stripe customer `customer`, in id order.
    package static func tenantIDs(
        stripeCustomer customer: String, limit: Int, on connection: PostgresConnection
    ) async throws -> [UUID] {
        try await connection.query(
            "SELECT tenant_id FROM tenants WHERE stripe_customer_id = $1 ORDER BY tenant_id LIMIT $2",
            [.string(customer), .int64(Int64(limit))]
        ).map { try $0.uuid(0) }
    }
}
