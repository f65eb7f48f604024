public import Events
public import Foundation

/// The email waterfall's rules: what a step's outcome appends to the run, and what the run waits for next.
/// Pure (no I/O), so every path is decided the same way by every worker and is testable on its own.
public enum Waterfall {
    /// What the run stream and the queue get after one step.
    public struct Decision: Sendable {
        /// Appended to the run stream together, in order, with the stream's expected version.
        public var events: [any DomainEvent]
        public var next: Next
        /// Suspend the tenant's key for this vendor, with this reason (a key-fatal answer).
        public var suspendKey: String?
        /// Pause the whole flow key until then (a 429 or reset header).
        public var pauseUntil: Date?
        public var pauseReason: String?
    }

    /// The run's state in the queue after the step.
    public enum Next: Sendable, Hashable {
        case waiting(NextStep)
        case done
    }

    /// The step a run waits for next.
    public struct NextStep: Sendable, Hashable {
        public var step: Int
        public var attempt: Int
        public var kind: StepKind
        public var vendor: Vendor
        public var notBefore: Date?
        public var transientFailures: Int
        /// The address found so far, for validation.
        public var email: String?
    }

    /// How retries back off: `base · 2^(failures−1)`, at most `cap`, with "equal jitter" (half fixed, half
    /// random) so that a burst of failures does not retry in lockstep.
    public struct Backoff: Sendable, Hashable {
        public var base: Duration
        public var cap: Duration

        public init(base: Duration = .milliseconds(500), cap: Duration = .seconds(60)) {
            self.base = base
            self.cap = cap
        }

        /// The delay before retry number `failures` (from 1), with `unit` a random number in [0, 1).
        public func delay(failures: Int, unit: Double) -> TimeInterval {
            let exponential = base.seconds * pow(2, Double(max(0, min(failures - 1, 30))))
            let capped = min(cap.seconds, exponential)
            return capped / 2 + capped / 2 * unit
        }
    }

    /// Decides the step's consequences. `now` dates pauses and retries; `unit` ∈ [0, 1) is the jitter.
    public static func decide(
        _ step: ClaimedStep, result: VendorCallResult, cancelled: Bool, backoff: Backoff, now: Date, unit: Double
    ) -> Decision {
        var decision = Decision(events: [], next: .done)
        let finders = step.definition.finders
        func billed() {
            guard result.answered else { return }
            decision.events.append(
                VendorCallBilled(
                    runID: step.runID, tenantID: step.tenantID, step: step.step, attempt: step.attempt,
                    vendor: step.vendor,
                    credits: result.credits, keyFingerprint: step.key.fingerprint))
        }
        func finish(_ status: RunStatus, email: String?, validation: String?, reason: String?) {
            guard !cancelled else { return }
            decision.events.append(
                RunFinished(
                    runID: step.runID, status: status, email: email, validationStatus: validation, reason: reason))
        }
        func schedule(
            step number: Int, attempt: Int, kind: StepKind, vendor: Vendor, notBefore: Date?, failures: Int,
            email: String?
        ) {
            guard !cancelled else { return }
            decision.events.append(
                StepScheduled(
                    runID: step.runID, step: number, kind: kind, vendor: vendor, attempt: attempt, notBefore: notBefore)
            )
            decision.next = .waiting(
                NextStep(
                    step: number, attempt: attempt, kind: kind, vendor: vendor, notBefore: notBefore,
                    transientFailures: failures, email: email))
        }

        switch result.outcome {
        case .found(let email, let validationStatus, _) where step.kind == .validate:
            decision.events.append(
                StepFinished(
                    runID: step.runID, step: step.step, attempt: step.attempt, vendor: step.vendor, outcome: .validated,
                    email: step.email,
                    validationStatus: validationStatus ?? "unknown"))
            billed()
            finish(.succeeded, email: step.email ?? email, validation: validationStatus ?? "unknown", reason: nil)
        case .found(let email, _, _):
            decision.events.append(
                StepFinished(
                    runID: step.runID, step: step.step, attempt: step.attempt, vendor: step.vendor, outcome: .found,
                    email: email,
                    validationStatus: nil))
            billed()
            if let validator = step.definition.validator, let email {
                schedule(
                    step: step.step + 1, attempt: 1, kind: .validate, vendor: validator, notBefore: nil, failures: 0,
                    email: email)
            } else {
                finish(.succeeded, email: email, validation: nil, reason: nil)
            }
        case .cleanMiss where step.kind == .validate:
            // A validator with nothing to say about the address: the run keeps the address, unvalidated.
            decision.events.append(
                StepFinished(
                    runID: step.runID, step: step.step, attempt: step.attempt, vendor: step.vendor, outcome: .validated,
                    email: step.email,
                    validationStatus: "unknown"))
            billed()
            finish(.succeeded, email: step.email, validation: "unknown", reason: nil)
        case .cleanMiss:
            decision.events.append(
                StepFinished(
                    runID: step.runID, step: step.step, attempt: step.attempt, vendor: step.vendor, outcome: .miss,
                    email: nil,
                    validationStatus: nil))
            billed()
            let position = finders.firstIndex(of: step.vendor).map { $0 + 1 } ?? finders.count
            if position < finders.count {
                schedule(
                    step: step.step + 1, attempt: 1, kind: .find, vendor: finders[position], notBefore: nil,
                    failures: 0, email: nil)
            } else {
                finish(
                    .notFound, email: nil, validation: nil,
                    reason:
                        "no finder had an email for this person (\(finders.map(\.rawValue).joined(separator: ", ")))")
            }
        case .transient(let reason, let retryAfter):
            decision.events.append(
                StepFailed(
                    runID: step.runID, step: step.step, attempt: step.attempt, vendor: step.vendor, failure: .transient,
                    reason: reason))
            billed()
            if let retryAfter {
                // The vendor said when the key may call again: pause the whole key; this answer is the vendor
                // pacing us, not the step failing, so it spends no attempt.
                let until = now.addingTimeInterval(TimeInterval(max(1, retryAfter)))
                decision.pauseUntil = until
                decision.pauseReason = reason
                schedule(
                    step: step.step, attempt: step.attempt + 1, kind: step.kind, vendor: step.vendor, notBefore: until,
                    failures: step.transientFailures, email: step.email)
            } else {
                let failures = step.transientFailures + 1
                if failures >= max(1, step.definition.maxAttempts) {
                    finish(
                        .failed, email: nil, validation: nil,
                        reason: "\(reason) (\(failures) attempt\(failures == 1 ? "" : "s") failed)")
                } else {
                    let notBefore = now.addingTimeInterval(backoff.delay(failures: failures, unit: unit))
                    schedule(
                        step: step.step, attempt: step.attempt + 1, kind: step.kind, vendor: step.vendor,
                        notBefore: notBefore,
                        failures: failures, email: step.email)
                }
            }
        case .keyFatal(let reason):
            decision.events.append(
                StepFailed(
                    runID: step.runID, step: step.step, attempt: step.attempt, vendor: step.vendor, failure: .keyFatal,
                    reason: reason))
            billed()
            decision.suspendKey = reason
            // The run waits for the tenant's next key; no retry is spent.
            schedule(
                step: step.step, attempt: step.attempt + 1, kind: step.kind, vendor: step.vendor, notBefore: nil,
                failures: step.transientFailures, email: step.email)
        }
        return decision
    }
}

extension Duration {
    /// The duration in seconds, as a floating-point number.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
