public import Events
public import Foundation

/// One row of `workflows`.
public struct WorkflowRow: Sendable, Hashable {
    /// The workflow's id.
    public var id: UUID
    /// Its name.
    public var name: String
    /// The steps it runs.
    public var definition: WorkflowDefinition
    /// When it was defined.
    public var createdAt: Date
    /// When it last changed.
    public var updatedAt: Date

    static let columns = "workflow_id, name, definition, created_at, updated_at"

    init(_ row: PostgresRow) throws {
        id = try row.uuid(0)
        name = try row.string(1)
        definition = try JSONDecoder().decode(WorkflowDefinition.self, from: Data(try row.jsonBytes(2)))
        createdAt = try row.date(3)
        updatedAt = try row.date(4)
    }
}

extension WorkflowsProjection {
    /// The tenant's workflow with this id.
    package static func workflow(_ id: UUID, tenant: UUID, on connection: PostgresConnection) async throws
        -> WorkflowRow?
    {
        try await connection.query(
            "SELECT \(WorkflowRow.columns) FROM workflows WHERE tenant_id = $1 AND workflow_id = $2",
            [.uuid(tenant), .uuid(id)]
        ).first.map(WorkflowRow.init)
    }

    /// Up to `limit` of the tenant's workflows in creation order, after the cursor `after` (created at, id).
    package static func workflows(
        ofTenant tenant: UUID, after: (Date, UUID)? = nil, limit: Int, on connection: PostgresConnection
    ) async throws -> [WorkflowRow] {
        if let (date, id) = after {
            return try await connection.query(
                """
                SELECT \(WorkflowRow.columns) FROM workflows WHERE tenant_id = $1 AND (created_at, workflow_id) > ($2, $3)
                ORDER BY created_at, workflow_id LIMIT $4
                """, [.uuid(tenant), .timestamp(date), .uuid(id), .int64(Int64(limit))]
            ).map(WorkflowRow.init)
        }
        return try await connection.query(
            "SELECT \(WorkflowRow.columns) FROM workflows WHERE tenant_id = $1 ORDER BY created_at, workflow_id LIMIT $2",
            [.uuid(tenant), .int64(Int64(limit))]
        ).map(WorkflowRow.init)
    }
}
