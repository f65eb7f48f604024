public import Events
import Foundation

/// `workflows`: each tenant's configured workflows with their current definition.
public struct WorkflowsProjection: Projection {
    public let name = "workflows"
    public let version = 1
    public let eventTypes: Set<String> = [WorkflowDefined.eventType, WorkflowChanged.eventType]
    public let tables = [
        ProjectionTable(
            name: "workflows",
            columns: """
                workflow_id uuid PRIMARY KEY,
                tenant_id uuid NOT NULL,
                name text NOT NULL,
                template text NOT NULL,
                definition jsonb NOT NULL,
                created_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL
                """,
            indexes: ["CREATE INDEX IF NOT EXISTS {table}_tenant_idx ON {table} (tenant_id, created_at)"])
    ]

    public init() {}

    public func apply(_ events: [RecordedEvent], in context: ProjectionContext) async throws {
        let encoder = EventCatalog.makeEncoder()
        for recorded in events {
            let at = PostgresValue.timestamp(recorded.recordedAt)
            switch try context.decode(recorded) {
            case let event as WorkflowDefined:
                try await context.execute(
                    """
                    INSERT INTO workflows (workflow_id, tenant_id, name, template, definition, created_at, updated_at)
                    VALUES ($1, $2, $3, $4, $5, $6, $6)
                    """,
                    [
                        .uuid(event.workflowID), .uuid(event.tenantID), .string(event.name),
                        .string(event.definition.template),
                        .jsonb(Array(try encoder.encode(event.definition))), at,
                    ])
            case let event as WorkflowChanged:
                let rows = try await context.execute(
                    "UPDATE workflows SET name = $2, template = $3, definition = $4, updated_at = $5 WHERE workflow_id = $1",
                    [
                        .uuid(event.workflowID), .string(event.name), .string(event.definition.template),
                        .jsonb(Array(try encoder.encode(event.definition))), at,
                    ])
                guard rows.affectedRows == 1 else {
                    throw ProjectionsError(
                        .unexpectedEvent, "workflow \(event.workflowID.lowercased) changed before it was defined")
                }
            default:
                throw ProjectionsError(
                    .unexpectedEvent, "workflows cannot apply \(recorded.type) at position \(recorded.globalPosition)")
            }
        }
    }
}
