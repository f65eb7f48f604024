public import Foundation

/// Who a run looks for: a name and company domain, or a LinkedIn URL.
public struct PersonInput: Codable, Sendable, Hashable {
    public var fullName: String?
    public var domain: String?
    public var linkedinURL: String?

    public init(fullName: String? = nil, domain: String? = nil, linkedinURL: String? = nil) {
        self.fullName = fullName
        self.domain = domain
        self.linkedinURL = linkedinURL
    }

    enum CodingKeys: String, CodingKey { case fullName, domain, linkedinURL = "linkedinUrl" }
}

/// What a step does.
public enum StepKind: String, Codable, Sendable, Hashable {
    case find
    case validate
}

/// Stream `run-{id}`: a run of a workflow started for one input.
public struct RunStarted: DomainEvent {
    public static let eventType = "RunStarted"
    public static let schemaVersion = 1
    public var runID: UUID
    public var tenantID: UUID
    public var workflowID: UUID
    /// The workflow's settings when the run started; later changes do not affect it.
    public var definition: WorkflowDefinition
    public var input: PersonInput
    /// Set when the run was started as part of a batch.
    public var batchID: UUID?

    public init(
        runID: UUID, tenantID: UUID, workflowID: UUID, definition: WorkflowDefinition, input: PersonInput,
        batchID: UUID?
    ) {
        self.runID = runID
        self.tenantID = tenantID
        self.workflowID = workflowID
        self.definition = definition
        self.input = input
        self.batchID = batchID
    }

    enum CodingKeys: String, CodingKey {
        case runID = "runId", tenantID = "tenantId", workflowID = "workflowId", definition, input, batchID = "batchId"
    }
}

/// Stream `run-{id}`: a step is due (the first attempt, or a retry after `notBefore`).
public struct StepScheduled: DomainEvent {
    public static let eventType = "StepScheduled"
    public static let schemaVersion = 1
    public var runID: UUID
    /// The step's number within the run, from 1.
    public var step: Int
    public var kind: StepKind
    public var vendor: Vendor
    /// 1 for the first attempt.
    public var attempt: Int
    public var notBefore: Date?

    public init(runID: UUID, step: Int, kind: StepKind, vendor: Vendor, attempt: Int, notBefore: Date?) {
        self.runID = runID
        self.step = step
        self.kind = kind
        self.vendor = vendor
        self.attempt = attempt
        self.notBefore = notBefore
    }

    enum CodingKeys: String, CodingKey { case runID = "runId", step, kind, vendor, attempt, notBefore }
}

/// Stream `run-{id}`: a worker claimed the step and is about to call the vendor. Appended before the call.
public struct StepStarted: DomainEvent {
    public static let eventType = "StepStarted"
    public static let schemaVersion = 1
    public var runID: UUID
    public var step: Int
    public var attempt: Int
    public var workerID: String
    /// Increases with every claim of the step; a worker whose token is stale cannot commit the outcome.
    public var fencingToken: Int64

    public init(runID: UUID, step: Int, attempt: Int, workerID: String, fencingToken: Int64) {
        self.runID = runID
        self.step = step
        self.attempt = attempt
        self.workerID = workerID
        self.fencingToken = fencingToken
    }

    enum CodingKeys: String, CodingKey { case runID = "runId", step, attempt, workerID = "workerId", fencingToken }
}

/// Stream `run-{id}`: a vendor call that the vendor bills (by its own rule: credits may be 0 or more).
public struct VendorCallBilled: DomainEvent {
    public static let eventType = "VendorCallBilled"
    public static let schemaVersion = 1
    public var runID: UUID
    public var tenantID: UUID
    public var step: Int
    public var attempt: Int
    public var vendor: Vendor
    public var credits: Int
    /// The fingerprint of the tenant's vendor key that was charged.
    public var keyFingerprint: String

    public init(
        runID: UUID, tenantID: UUID, step: Int, attempt: Int, vendor: Vendor, credits: Int, keyFingerprint: String
    ) {
        self.runID = runID
        self.tenantID = tenantID
        self.step = step
        self.attempt = attempt
        self.vendor = vendor
        self.credits = credits
        self.keyFingerprint = keyFingerprint
    }

    enum CodingKeys: String, CodingKey {
        case runID = "runId", tenantID = "tenantId", step, attempt, vendor, credits, keyFingerprint
    }
}

/// How a step attempt ended.
public enum StepOutcome: String, Codable, Sendable, Hashable {
    /// The finder returned an email.
    case found
    /// The finder has no email for this person: fall through to the next finder.
    case miss
    /// The validator returned a status.
    case validated
}

/// Stream `run-{id}`: a step attempt ended with an answer.
public struct StepFinished: DomainEvent {
    public static let eventType = "StepFinished"
    public static let schemaVersion = 1
    public var runID: UUID
    public var step: Int
    public var attempt: Int
    public var vendor: Vendor
    public var outcome: StepOutcome
    public var email: String?
    /// The validator's status (`valid`, `invalid`, `catch-all`...), for validate steps.
    public var validationStatus: String?

    public init(
        runID: UUID, step: Int, attempt: Int, vendor: Vendor, outcome: StepOutcome, email: String?,
        validationStatus: String?
    ) {
        self.runID = runID
        self.step = step
        self.attempt = attempt
        self.vendor = vendor
        self.outcome = outcome
        self.email = email
        self.validationStatus = validationStatus
    }

    enum CodingKeys: String, CodingKey { case runID = "runId", step, attempt, vendor, outcome, email, validationStatus }
}

/// Why a step attempt failed.
public enum FailureClass: String, Codable, Sendable, Hashable {
    /// Worth retrying later on the same vendor (429, 5xx, timeout, connection error).
    case transient
    /// The tenant's vendor key is invalid or out of credits: no retry until the key is replaced.
    case keyFatal
}

/// Stream `run-{id}`: a step attempt failed.
public struct StepFailed: DomainEvent {
    public static let eventType = "StepFailed"
    public static let schemaVersion = 1
    public var runID: UUID
    public var step: Int
    public var attempt: Int
    public var vendor: Vendor
    public var failure: FailureClass
    public var reason: String

    public init(runID: UUID, step: Int, attempt: Int, vendor: Vendor, failure: FailureClass, reason: String) {
        self.runID = runID
        self.step = step
        self.attempt = attempt
        self.vendor = vendor
        self.failure = failure
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey { case runID = "runId", step, attempt, vendor, failure, reason }
}

/// How a run ended.
public enum RunStatus: String, Codable, Sendable, Hashable {
    /// An email was found (and validated, when the workflow validates).
    case succeeded
    /// Every finder missed cleanly.
    case notFound = "not_found"
    /// Retries ran out or a step failed for good.
    case failed
}

/// Stream `run-{id}`: the run ended.
public struct RunFinished: DomainEvent {
    public static let eventType = "RunFinished"
    public static let schemaVersion = 1
    public var runID: UUID
    public var status: RunStatus
    public var email: String?
    public var validationStatus: String?
    public var reason: String?

    public init(runID: UUID, status: RunStatus, email: String?, validationStatus: String?, reason: String?) {
        self.runID = runID
        self.status = status
        self.email = email
        self.validationStatus = validationStatus
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey { case runID = "runId", status, email, validationStatus, reason }
}

/// Stream `run-{id}`: the tenant cancelled the run; no further step starts.
public struct RunCancelled: DomainEvent {
    public static let eventType = "RunCancelled"
    public static let schemaVersion = 1
    public var runID: UUID
    public var reason: String

    public init(runID: UUID, reason: String) {
        self.runID = runID
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey { case runID = "runId", reason }
}
