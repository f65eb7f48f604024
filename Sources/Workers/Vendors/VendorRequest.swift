public import Events

/// One vendor call a step needs.
public struct VendorRequest: Sendable, Hashable {
    /// The vendor to call.
    public var vendor: Vendor
    /// `.find` for Prospeo and Findymail, `.validate` for ZeroBounce.
    public var kind: StepKind
    /// The person the step is about.
    public var person: PersonInput
    /// The address to validate, for `.validate`.
    public var email: String?

    /// Creates a request.
    public init(vendor: Vendor, kind: StepKind, person: PersonInput, email: String? = nil) {
        self.vendor = vendor
        self.kind = kind
        self.person = person
        self.email = email
    }
}

/// What came back from one vendor call, classified.
public struct VendorCallResult: Sendable, Hashable {
    /// What the worker does next.
    public var outcome: VendorOutcome
    /// Credits the vendor charged for this call by its own billing rule (Prospeo: 1 per match, 0 on no match or a
    /// free re-enrichment; Findymail: 1 when a verified email is found; ZeroBounce: 1 per validation, 0 for
    /// `unknown`); 0 for errors.
    public var credits: Int
    /// True when the vendor answered the question (found, miss, validated), so the call counts as a vendor call
    /// even with 0 credits; false for transient and key-fatal errors, and when no call was made.
    public var answered: Bool
    /// HTTP status, nil when no response arrived (timeout, connection error, or no call was made).
    public var httpStatus: Int?
    /// Why a clean miss is not a plain "no such person" (the vendor rejected the input, or the input cannot be sent
    /// to this vendor), e.g. "prospeo: HTTP 400 INVALID_REQUEST"; nil otherwise. Never contains the key.
    public var detail: String?

    /// Creates a result.
    public init(outcome: VendorOutcome, credits: Int, answered: Bool, httpStatus: Int?, detail: String? = nil) {
        self.outcome = outcome
        self.credits = credits
        self.answered = answered
        self.httpStatus = httpStatus
        self.detail = detail
    }
}
