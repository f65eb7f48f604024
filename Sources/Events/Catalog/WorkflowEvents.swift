public import Foundation

/// A workflow template's settings. The email waterfall asks `finders` in order and validates the found
/// email with `validator` when set.
public struct WorkflowDefinition: Codable, Sendable, Hashable {
    /// `email-waterfall`, the one template so far.
    public var template: String
    public var finders: [Vendor]
    public var validator: Vendor?
    /// Attempts per step before a transient failure fails the run.
    public var maxAttempts: Int

    public init(template: String = "email-waterfall", finders: [Vendor], validator: Vendor?, maxAttempts: Int) {
        self.template = template
        self.finders = finders
        self.validator = validator
        self.maxAttempts = maxAttempts
    }
}

/// Stream `workflow-{id}`: a tenant defined a workflow.
public struct WorkflowDefined: DomainEvent {
    public static let eventType = "WorkflowDefined"
    public static let schemaVersion = 1
    public var workflowID: UUID
    public var tenantID: UUID
    public var name: String
    public var definition: WorkflowDefinition

    public init(workflowID: UUID, tenantID: UUID, name: String, definition: WorkflowDefinition) {
        self.workflowID = workflowID
        self.tenantID = tenantID
        self.name = name
        self.definition = definition
    }

    enum CodingKeys: String, CodingKey { case workflowID = "workflowId", tenantID = "tenantId", name, definition }
}

/// Stream `workflow-{id}`: the workflow's settings changed; runs started afterwards use them.
public struct WorkflowChanged: DomainEvent {
    public static let eventType = "WorkflowChanged"
    public static let schemaVersion = 1
    public var workflowID: UUID
    public var tenantID: UUID
    public var name: String
    public var definition: WorkflowDefinition

    public init(workflowID: UUID, tenantID: UUID, name: String, definition: WorkflowDefinition) {
        self.workflowID = workflowID
        self.tenantID = tenantID
        self.name = name
        self.definition = definition
    }

    enum CodingKeys: String, CodingKey { case workflowID = "workflowId", tenantID = "tenantId", name, definition }
}
