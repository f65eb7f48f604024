extension EventCatalog {
    /// Every event type of the product (documented in docs/events.md).
    public static let tally = EventCatalog([
        TenantCreated.self, PlanChanged.self, StripeCustomerLinked.self, TenantSuspended.self,
        TenantReinstated.self, TenantErased.self,
        KeyIssued.self, KeyRevoked.self, KeyRotated.self,
        VendorSecretSealed.self, VendorSecretRemoved.self, VendorKeySuspended.self,
        WorkflowDefined.self, WorkflowChanged.self,
        RunStarted.self, StepScheduled.self, StepStarted.self, VendorCallBilled.self, StepFinished.self,
        StepFailed.self, RunFinished.self, RunCancelled.self,
        UsageRecorded.self,
        FlowLimitsSet.self,
    ])
}
