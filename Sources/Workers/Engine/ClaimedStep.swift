public import Events
public import Foundation

/// A step a worker claimed: what the call needs, and the lease it holds.
public struct ClaimedStep: Sendable, Hashable {
    public var runID: UUID
    public var tenantID: UUID
    public var step: Int
    public var attempt: Int
    public var kind: StepKind
    public var vendor: Vendor
    /// The claim's token: a commit is refused once another claim raised it.
    public var fencingToken: Int64
    /// The run stream's version after this claim's StepStarted: the commit expects exactly it.
    public var streamVersion: Int64
    public var definition: WorkflowDefinition
    public var input: PersonInput
    /// The address a finder found, for a validate step.
    public var email: String?
    /// Transient failures of this step so far.
    public var transientFailures: Int
    /// The tenant's key the call uses.
    public var key: VendorKeyReference
}

/// Which of the tenant's vendor keys a step uses: its sealed bytes and names, never its plaintext.
public struct VendorKeyReference: Sendable, Hashable {
    public var fingerprint: String
    public var secretVersion: Int
    public var tenantKeyVersion: Int
    public var sealed: [UInt8]
}
