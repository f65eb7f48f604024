public import Events

/// The four ways a vendor call can end, which decide what a worker does next.
public enum VendorOutcome: Sendable, Hashable {
    /// The vendor answered (an email, or a validation status): stop the waterfall or go on to validation.
    case found(email: String?, validationStatus: String?, credits: Int)
    /// The vendor has nothing for this person: fall through to the next vendor, never retry.
    case cleanMiss
    /// Worth retrying on the same vendor later; `retryAfterSeconds` pauses the whole vendor key.
    case transient(reason: String, retryAfterSeconds: Int?)
    /// The tenant's key is invalid or out of credits: suspend the key, spend no retries.
    case keyFatal(reason: String)

    /// The event-level failure class of a failed attempt, nil when the attempt did not fail.
    public var failureClass: FailureClass? {
        switch self {
        case .found, .cleanMiss: nil
        case .transient: .transient
        case .keyFatal: .keyFatal
        }
    }
}
