public import Events
public import Foundation

extension Commands {
    /// Defines a workflow for the tenant (the caller has checked the definition's fields).
    public func defineWorkflow(
        tenant: UUID, name: String, definition: WorkflowDefinition, metadata: EventMetadata
    ) async throws -> (defined: WorkflowDefined, applied: Applied) {
        let event = WorkflowDefined(workflowID: UUID(), tenantID: tenant, name: name, definition: definition)
        let applied = try await append(
            event, to: .workflow(event.workflowID), tenant: tenant, expected: .noStream, metadata: metadata)
        return (event, applied)
    }

    /// The workflow's current definition, from its stream, to start runs with: `.invalid` at `/workflowId`
    /// when it is another tenant's or does not exist (the same answer for both), or has no finder.
    public func startableWorkflow(_ id: UUID, tenant: UUID) async throws -> WorkflowDefinition {
        let missing = CommandError(
            .invalid, "workflow", detail: "no workflow with this id exists", pointer: "/workflowId")
        guard let events = try await store.readAll(.workflow(id), ownedBy: tenant) else { throw missing }
        var definition: WorkflowDefinition?
        for recorded in events {
            switch try store.catalog.decode(recorded) {
            case let event as WorkflowDefined: definition = event.definition
            case let event as WorkflowChanged: definition = event.definition
            default: break
            }
        }
        guard let definition else { throw missing }
        // Defining a workflow refuses one without finders; a stream written otherwise cannot start runs.
        guard !definition.finders.isEmpty else {
            throw CommandError(
                .invalid, "workflow", detail: "this workflow has no finder to start with", pointer: "/workflowId")
        }
        return definition
    }
}
