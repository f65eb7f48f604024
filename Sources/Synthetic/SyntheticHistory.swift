package import Events
package import Foundation

/// A realistic history for tests and benchmarks: tenants with plan changes, keys issued, rotated and revoked,
/// vendor secrets, workflows, runs with their steps and billed calls (some parked on a refused key, some failed
/// and retried), usage batches and flow-limit overrides. Deterministic for a
/// seed, and valid: every event follows the ones it depends on, in its stream's order.
package struct SyntheticHistory {
    private var random: SeededRandom
    private let catalog: EventCatalog
    /// Rare events happen to every n-th tenant, starting with the first, so any history covers every type.
    private var tenantsMade = 0

    package init(seed: UInt64, catalog: EventCatalog = .tally) {
        self.random = SeededRandom(seed: seed)
        self.catalog = catalog
    }

    /// One tenant's life, as appends in a valid order with each stream once, with `runs` runs; `erased`
    /// ends it with TenantErased.
    package mutating func tenant(
        runs: Int, erased: Bool = false, start: Date = Date(timeIntervalSince1970: 1_790_000_000)
    ) throws -> [StreamAppend] {
        let tenant = random.uuid()
        defer { tenantsMade += 1 }
        var appends: [StreamAppend] = []
        func add(_ stream: StreamName, _ events: [EventData]) {
            appends.append(StreamAppend(stream: stream, tenantID: tenant, expected: .any, events: events))
        }
        var clock = start
        func tick() -> Date {
            clock += Double(random.next(upTo: 5_000)) / 1000
            return clock
        }
        let slug = "t-" + tenant.lowercased.prefix(12)
        var tenantEvents = [
            try catalog.encode(
                TenantCreated(tenantID: tenant, name: "Tenant \(slug)", slug: String(slug), plan: "free"),
                id: random.uuid()),
            try catalog.encode(
                PlanChanged(
                    tenantID: tenant, fromPlan: "free", toPlan: "pro", source: .stripe,
                    stripeEventID: "evt_\(random.next(upTo: 1 << 40))",
                    stripeObjectTime: tick(), effectiveAt: tick()), id: random.uuid()),
            try catalog.encode(
                StripeCustomerLinked(tenantID: tenant, customerID: "cus_\(random.next(upTo: 1 << 40))"),
                id: random.uuid()),
        ]
        if tenantsMade % 10 == 0 {
            tenantEvents.append(
                try catalog.encode(
                    TenantSuspended(tenantID: tenant, reason: "payment failed", source: .stripe), id: random.uuid()))
            tenantEvents.append(
                try catalog.encode(TenantReinstated(tenantID: tenant, source: .stripe), id: random.uuid()))
        }
        if erased {
            tenantEvents.append(
                try catalog.encode(TenantErased(tenantID: tenant, reason: "erasure request"), id: random.uuid()))
        }
        add(.tenant(tenant), tenantEvents)

        let key = random.uuid()
        let replacement = random.uuid()
        add(
            .apiKey(key),
            [
                try catalog.encode(
                    KeyIssued(
                        keyID: key, tenantID: tenant, name: "default", displayPrefix: "tly_\(random.hex(4))",
                        keyHash: random.hex(32), expiresAt: nil), id: random.uuid()),
                try catalog.encode(
                    KeyRotated(keyID: key, tenantID: tenant, replacementKeyID: replacement, graceUntil: tick()),
                    id: random.uuid()),
            ])
        add(
            .apiKey(replacement),
            [
                try catalog.encode(
                    KeyIssued(
                        keyID: replacement, tenantID: tenant, name: "default", displayPrefix: "tly_\(random.hex(4))",
                        keyHash: random.hex(32), expiresAt: nil), id: random.uuid())
            ])
        let spare = random.uuid()
        add(
            .apiKey(spare),
            [
                try catalog.encode(
                    KeyIssued(
                        keyID: spare, tenantID: tenant, name: "ci", displayPrefix: "tly_\(random.hex(4))",
                        keyHash: random.hex(32), expiresAt: tick()), id: random.uuid()),
                try catalog.encode(KeyRevoked(keyID: spare, tenantID: tenant, reason: "unused"), id: random.uuid()),
            ])
        for vendor in Vendor.allCases {
            var events = [
                try catalog.encode(
                    VendorSecretSealed(
                        tenantID: tenant, vendor: vendor, secretVersion: 1, tenantKeyVersion: 1,
                        sealed: Data(random.bytes(56)), fingerprint: random.hex(16)), id: random.uuid())
            ]
            if vendor == .zerobounce, tenantsMade % 4 == 0 {
                events.append(
                    try catalog.encode(
                        VendorKeySuspended(
                            tenantID: tenant, vendor: vendor, secretVersion: 1,
                            fingerprint: random.hex(16), reason: "402"), id: random.uuid()))
            }
            if vendor == .findymail, tenantsMade % 8 == 0 {
                events.append(
                    try catalog.encode(
                        VendorSecretRemoved(tenantID: tenant, vendor: vendor, secretVersion: 1), id: random.uuid()))
            }
            add(.vendorSecret(tenant: tenant, vendor: vendor), events)
        }
        let workflow = random.uuid()
        let definition = WorkflowDefinition(finders: [.prospeo, .findymail], validator: .zerobounce, maxAttempts: 3)
        add(
            .workflow(workflow),
            [
                try catalog.encode(
                    WorkflowDefined(workflowID: workflow, tenantID: tenant, name: "waterfall", definition: definition),
                    id: random.uuid()),
                try catalog.encode(
                    WorkflowChanged(
                        workflowID: workflow, tenantID: tenant, name: "waterfall v2", definition: definition),
                    id: random.uuid()),
            ])
        var usage: [EventData] = []
        for index in 0..<runs {
            add(
                .run(random.uuid()),
                try run(tenant: tenant, workflow: workflow, definition: definition, cancel: index == 0))
            if random.next(upTo: 3) == 0 {
                let from = tick()
                usage.append(
                    try catalog.encode(
                        UsageRecorded(
                            tenantID: tenant, keyID: replacement, windowStart: from, windowEnd: from + 1,
                            apiCalls: 1 + random.next(upTo: 50), instanceID: "i-\(random.next(upTo: 4))"),
                        id: random.uuid()))
            }
        }
        if !usage.isEmpty { add(.usage(tenant: tenant), usage) }
        if tenantsMade % 5 == 0 {
            var limits = [
                try catalog.encode(
                    FlowLimitsSet(
                        vendor: .prospeo, tenantID: tenant, windows: [RateWindow(limit: 5, seconds: 1)], parallelism: 2),
                    id: random.uuid())
            ]
            if tenantsMade % 10 == 0 {
                limits.append(
                    try catalog.encode(
                        FlowLimitsSet(vendor: .prospeo, tenantID: tenant, windows: nil, parallelism: nil),
                        id: random.uuid()))
            }
            add(.flowLimits(vendor: .prospeo, tenant: tenant), limits)
        }
        return appends
    }

    /// A run's whole stream: started, then the waterfall's steps with their outcomes and billed calls.
    private mutating func run(tenant: UUID, workflow: UUID, definition: WorkflowDefinition, cancel: Bool) throws
        -> [EventData]
    {
        let run = random.uuid()
        var events = [
            try catalog.encode(
                RunStarted(
                    runID: run, tenantID: tenant, workflowID: workflow, definition: definition,
                    input: PersonInput(fullName: "Person \(random.hex(3))", domain: "\(random.hex(4)).example"),
                    batchID: nil), id: random.uuid())
        ]
        if cancel || random.next(upTo: 20) == 0 {
            events.append(
                try catalog.encode(RunCancelled(runID: run, reason: "cancelled by tenant"), id: random.uuid()))
            return events
        }
        var step = 0
        var email: String?
        for (index, finder) in definition.finders.enumerated() where email == nil {
            step += 1
            var attempt = 1
            let mishap = index == 0 ? random.next(upTo: 40) : -1
            if mishap == 0 {
                // The vendor refused the tenant's key: the run parks until a worker starts the next attempt.
                events += try attemptEvents(run, tenant, step, attempt, .find, finder)
                events.append(
                    try catalog.encode(
                        StepFailed(
                            runID: run, step: step, attempt: attempt, vendor: finder, failure: .keyFatal,
                            reason: "HTTP 401: invalid API key"), id: random.uuid()))
                attempt += 1
            } else if mishap == 1 {
                // Retries ran out and the run failed; the tenant retried it: the same vendor as the run's next step.
                events += try attemptEvents(run, tenant, step, attempt, .find, finder)
                events.append(
                    try catalog.encode(
                        StepFailed(
                            runID: run, step: step, attempt: attempt, vendor: finder, failure: .transient,
                            reason: "HTTP 503"), id: random.uuid()))
                events.append(
                    try catalog.encode(
                        RunFinished(
                            runID: run, status: .failed, email: nil, validationStatus: nil, reason: "retries ran out"),
                        id: random.uuid()))
                step += 1
            }
            if random.next(upTo: 10) == 0 {
                events += try attemptEvents(run, tenant, step, attempt, .find, finder)
                events.append(
                    try catalog.encode(
                        StepFailed(
                            runID: run, step: step, attempt: attempt, vendor: finder, failure: .transient,
                            reason: "HTTP 503"), id: random.uuid()))
                attempt += 1
            }
            events += try attemptEvents(run, tenant, step, attempt, .find, finder)
            let found = random.next(upTo: 3) != 0
            if found {
                email = "person.\(random.hex(3))@example.com"
                events.append(
                    try catalog.encode(
                        VendorCallBilled(
                            runID: run, tenantID: tenant, step: step, attempt: attempt, vendor: finder, credits: 1,
                            keyFingerprint: random.hex(16)), id: random.uuid()))
            }
            events.append(
                try catalog.encode(
                    StepFinished(
                        runID: run, step: step, attempt: attempt, vendor: finder, outcome: found ? .found : .miss,
                        email: email, validationStatus: nil), id: random.uuid()))
        }
        guard let email, let validator = definition.validator else {
            events.append(
                try catalog.encode(
                    RunFinished(
                        runID: run, status: .notFound, email: nil, validationStatus: nil,
                        reason: "no finder had an email"), id: random.uuid()))
            return events
        }
        step += 1
        events += try attemptEvents(run, tenant, step, 1, .validate, validator)
        let status = ["valid", "valid", "valid", "catch-all", "invalid"][random.next(upTo: 5)]
        events.append(
            try catalog.encode(
                VendorCallBilled(
                    runID: run, tenantID: tenant, step: step, attempt: 1, vendor: validator, credits: 1,
                    keyFingerprint: random.hex(16)), id: random.uuid()))
        events.append(
            try catalog.encode(
                StepFinished(
                    runID: run, step: step, attempt: 1, vendor: validator, outcome: .validated, email: email,
                    validationStatus: status), id: random.uuid()))
        events.append(
            try catalog.encode(
                RunFinished(runID: run, status: .succeeded, email: email, validationStatus: status, reason: nil),
                id: random.uuid()))
        return events
    }

    private mutating func attemptEvents(
        _ run: UUID, _ tenant: UUID, _ step: Int, _ attempt: Int, _ kind: StepKind, _ vendor: Vendor
    ) throws -> [EventData] {
        [
            try catalog.encode(
                StepScheduled(runID: run, step: step, kind: kind, vendor: vendor, attempt: attempt, notBefore: nil),
                id: random.uuid()),
            try catalog.encode(
                StepStarted(
                    runID: run, step: step, attempt: attempt, workerID: "w-\(random.next(upTo: 8))",
                    fencingToken: Int64(attempt)), id: random.uuid()),
        ]
    }
}
