import Events
import Foundation
import Testing

@testable import Workers

/// `Waterfall.decide` on its own: what each outcome of each kind of step appends and what the run waits for.
@Suite("Waterfall decisions")
struct WaterfallDecisionTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let definition = WorkflowDefinition(finders: [.prospeo, .findymail], validator: .zerobounce, maxAttempts: 3)

    static func step(
        _ vendor: Vendor = .prospeo, kind: StepKind = .find, step: Int = 1, attempt: Int = 1, failures: Int = 0,
        email: String? = nil, definition: WorkflowDefinition = definition
    ) -> ClaimedStep {
        ClaimedStep(
            runID: UUID(), tenantID: UUID(), step: step, attempt: attempt, kind: kind, vendor: vendor,
            fencingToken: 1, streamVersion: 3, definition: definition,
            input: PersonInput(fullName: "Ada Lovelace", domain: "acme.com"), email: email,
            transientFailures: failures,
            key: VendorKeyReference(fingerprint: "fp", secretVersion: 1, tenantKeyVersion: 1, sealed: []))
    }

    static func decide(_ step: ClaimedStep, _ outcome: VendorOutcome, credits: Int = 1, cancelled: Bool = false)
        -> Waterfall.Decision
    {
        let answered: Bool =
            switch outcome {
            case .found, .cleanMiss, .keyFatal: true
            case .transient: false
            }
        return Waterfall.decide(
            step, result: VendorCallResult(outcome: outcome, credits: credits, answered: answered, httpStatus: 200),
            cancelled: cancelled, backoff: .init(base: .seconds(1), cap: .seconds(8)), now: now, unit: 0.5)
    }

    static func types(_ decision: Waterfall.Decision) -> [String] {
        decision.events.map { type(of: $0).eventType }
    }

    @Test("a find is billed and then validated; a validation ends the run with the finder's address")
    func foundThenValidated() throws {
        let found = Self.decide(Self.step(), .found(email: "ada@acme.com", validationStatus: nil, credits: 1))
        #expect(Self.types(found) == ["StepFinished", "VendorCallBilled", "StepScheduled"])
        guard case .waiting(let next) = found.next else { Issue.record("the run should wait"); return }
        #expect(next.kind == .validate && next.vendor == .zerobounce && next.step == 2 && next.email == "ada@acme.com")

        let validated = Self.decide(
            Self.step(.zerobounce, kind: .validate, step: 2, email: "ada@acme.com"),
            .found(email: nil, validationStatus: "valid", credits: 1))
        #expect(Self.types(validated) == ["StepFinished", "VendorCallBilled", "RunFinished"])
        let finished = try #require(validated.events.last as? RunFinished)
        #expect(
            finished.status == .succeeded && finished.email == "ada@acme.com" && finished.validationStatus == "valid")
        #expect(validated.next == .done)
    }

    @Test("a miss falls through to the next finder; the last finder's miss ends the run not found, naming them")
    func misses() throws {
        let first = Self.decide(Self.step(.prospeo), .cleanMiss)
        guard case .waiting(let next) = first.next else { Issue.record("the run should wait"); return }
        #expect(next.vendor == .findymail && next.attempt == 1 && next.kind == .find)
        let last = Self.decide(Self.step(.findymail, step: 2), .cleanMiss)
        let finished = try #require(last.events.last as? RunFinished)
        #expect(finished.status == .notFound && finished.reason?.contains("prospeo, findymail") == true)
        #expect(last.next == .done)
    }

    @Test("without a validator a find ends the run; a validator with nothing to say keeps the address unvalidated")
    func noValidator() throws {
        let alone = WorkflowDefinition(finders: [.prospeo], validator: nil, maxAttempts: 3)
        let found = Self.decide(
            Self.step(definition: alone), .found(email: "ada@acme.com", validationStatus: nil, credits: 1))
        #expect((found.events.last as? RunFinished)?.status == .succeeded && found.next == .done)
        let unknown = Self.decide(
            Self.step(.zerobounce, kind: .validate, step: 2, email: "ada@acme.com"), .cleanMiss)
        #expect((unknown.events.last as? RunFinished)?.validationStatus == "unknown")
    }

    @Test("a transient failure retries the same vendor after the backoff until the attempts run out; nothing is billed")
    func transient() throws {
        let retried = Self.decide(Self.step(failures: 1), .transient(reason: "HTTP 503", retryAfterSeconds: nil))
        #expect(Self.types(retried) == ["StepFailed", "StepScheduled"])
        guard case .waiting(let next) = retried.next else { Issue.record("the run should wait"); return }
        // Second failure: base·2 = 2 s, half fixed and half jitter (unit 0.5): 1.5 s.
        #expect(next.vendor == .prospeo && next.attempt == 2 && next.transientFailures == 2)
        #expect(next.notBefore == Self.now.addingTimeInterval(1.5))
        let exhausted = Self.decide(Self.step(failures: 2), .transient(reason: "HTTP 503", retryAfterSeconds: nil))
        let finished = try #require(exhausted.events.last as? RunFinished)
        #expect(finished.status == .failed && finished.reason == "HTTP 503 (3 attempts failed)")
    }

    @Test("a vendor's retry-after pauses the whole key and spends no attempt; a key-fatal answer suspends the key")
    func pausesAndSuspensions() {
        let paused = Self.decide(Self.step(failures: 1), .transient(reason: "HTTP 429", retryAfterSeconds: 30))
        #expect(paused.pauseUntil == Self.now.addingTimeInterval(30) && paused.pauseReason == "HTTP 429")
        guard case .waiting(let next) = paused.next else { Issue.record("the run should wait"); return }
        #expect(next.transientFailures == 1 && next.notBefore == Self.now.addingTimeInterval(30))
        let fatal = Self.decide(Self.step(), .keyFatal(reason: "key revoked"))
        #expect(fatal.suspendKey == "key revoked" && Self.types(fatal).first == "StepFailed")
        guard case .waiting(let waiting) = fatal.next else { Issue.record("the run should wait"); return }
        #expect(waiting.vendor == .prospeo && waiting.transientFailures == 0)
    }

    @Test("a cancelled run still records and bills the step, but schedules and finishes nothing")
    func cancelled() {
        let decision = Self.decide(
            Self.step(), .found(email: "ada@acme.com", validationStatus: nil, credits: 1), cancelled: true)
        #expect(Self.types(decision) == ["StepFinished", "VendorCallBilled"])
        #expect(decision.next == .done)
    }

    @Test("the backoff doubles from its base up to its cap, half fixed and half jitter")
    func backoff() {
        let backoff = Waterfall.Backoff(base: .seconds(1), cap: .seconds(8))
        #expect(backoff.delay(failures: 1, unit: 0) == 0.5 && backoff.delay(failures: 1, unit: 0.999) < 1)
        #expect(backoff.delay(failures: 3, unit: 0) == 2)
        #expect(backoff.delay(failures: 10, unit: 0) == 4 && backoff.delay(failures: 1_000, unit: 0) == 4)
    }
}
