import Events
import FakeVendors
import Foundation
import TestSupport
import Testing
import Workers

/// Every path of the email waterfall, through a worker calling the fake vendors over HTTP against PostgreSQL.
// Serialized: each test runs a worker that polls, and the suite shares two cores with the rest.
@Suite("Workers: the email waterfall", .serialized, .timeLimit(.minutes(5)))
struct WaterfallTests {
    @Test("found at the first finder, then validated: each step billed by the vendor's rule")
    func foundFirst() async throws {
        try await WorkerHarness.with { h in
            let tenant = try await h.tenant()
            try await h.storeKeys(tenant: tenant)
            let run = try await h.startRun(tenant: tenant, domain: "acme.com")
            let worker = h.worker()
            try await h.working(worker) { try await h.waitFinished([run]) }
            let history = try await h.history(run) + "\nworker: \(worker.0.stats)"
            #expect(
                try await h.types(run) == [
                    "RunStarted", "StepScheduled", "StepStarted", "StepFinished", "VendorCallBilled", "StepScheduled",
                    "StepStarted",
                    "StepFinished", "VendorCallBilled", "RunFinished",
                ], "\(history)")
            let events = try await h.events(run)
            let billed = events.compactMap { $0 as? VendorCallBilled }
            #expect(billed.map(\.vendor) == [.prospeo, .zerobounce])
            #expect(billed.map(\.credits) == [1, 1])
            let finished = try #require(try await h.finished(run))
            #expect(finished.status == .succeeded)
            #expect(finished.email == "ada.lovelace@acme.com")
            #expect(finished.validationStatus == "valid")
            let started = events.compactMap { $0 as? StepStarted }
            // The token counts the run's claims: every claim raises it.
            #expect(started.map(\.fencingToken) == [1, 2])
            #expect(started.allSatisfy { $0.workerID == "test-worker" })
        }
    }

    @Test("a commit the database refuses for a while is retried while the lease holds: no second claim, one bill")
    func commitRetried() async throws {
        try await WorkerHarness.with { h in
            let tenant = try await h.tenant()
            try await h.storeKeys(tenant: tenant)
            // This database refuses every StepFinished (a fault of the test's own) and counts the refusals in a
            // sequence, which a rolled-back transaction does not undo.
            try await h.store.pool.withConnection { connection in
                try await connection.execute(
                    """
                    CREATE SEQUENCE refusals;
                    CREATE FUNCTION refuse_outcomes() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN PERFORM nextval('refusals'); RAISE EXCEPTION 'refused by the test' USING ERRCODE = '57014'; END $$;
                    CREATE TRIGGER refuse_outcomes BEFORE INSERT ON events FOR EACH ROW
                        WHEN (NEW.event_type = 'StepFinished') EXECUTE FUNCTION refuse_outcomes();
                    """)
            }
            let run = try await h.startRun(
                tenant: tenant, domain: "acme.com",
                definition: WorkflowDefinition(finders: [.prospeo], validator: nil, maxAttempts: 3))
            let worker = h.worker()
            try await h.working(worker) {
                try await Eventually.wait("the worker to have its commit refused three times") {
                    let rows = try await h.store.pool.query(
                        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM refusals")
                    return try (rows.first?.int64(0) ?? 0) >= 3
                }
                try await h.store.pool.query("DROP TRIGGER refuse_outcomes ON events")
                try await h.waitFinished([run])
            }
            let events = try await h.events(run)
            let history = try await h.history(run) + "\nworker: \(worker.0.stats)"
            #expect(events.compactMap { $0 as? StepStarted }.map(\.fencingToken) == [1], "\(history)")
            #expect(events.compactMap { $0 as? VendorCallBilled }.count == 1, "\(history)")
            #expect(try await h.finished(run)?.status == .succeeded)
            #expect(worker.0.stats.deferred == 0)
            #expect(worker.0.stats.committed == 1)
        }
    }

    @Test("a clean miss falls through to the next finder without a retry")
    func fallback() async throws {
        try await WorkerHarness.with { h in
            let tenant = try await h.tenant()
            try await h.storeKeys(tenant: tenant)
            let run = try await h.startRun(tenant: tenant, domain: "prospeo-miss.acme.com")
            try await h.working(h.worker()) { try await h.waitFinished([run]) }
            let events = try await h.events(run)
            let finishedSteps = events.compactMap { $0 as? StepFinished }
            #expect(finishedSteps.map(\.outcome) == [.miss, .found, .validated])
            #expect(finishedSteps.map(\.vendor) == [.prospeo, .findymail, .zerobounce])
            #expect(events.compactMap { $0 as? StepFailed }.isEmpty)
            // Prospeo bills nothing for no match; the call is still on record as a vendor call.
            #expect(events.compactMap { $0 as? VendorCallBilled }.map(\.credits) == [0, 1, 1])
            #expect(try await h.finished(run)?.status == .succeeded)
        }
    }

    @Test("every finder misses: the run ends not found, nothing validated")
    func allMiss() async throws {
        try await WorkerHarness.with { h in
            let tenant = try await h.tenant()
            try await h.storeKeys(tenant: tenant)
            let run = try await h.startRun(tenant: tenant, domain: "miss.acme.com")
            try await h.working(h.worker()) { try await h.waitFinished([run]) }
            let events = try await h.events(run)
            #expect(events.compactMap { $0 as? StepFinished }.map(\.outcome) == [.miss, .miss])
            #expect(events.compactMap { $0 as? VendorCallBilled }.map(\.credits) == [0, 0])
            let finished = try #require(try await h.finished(run))
            #expect(finished.status == .notFound)
            #expect(finished.email == nil)
        }
    }

    @Test("each validation status ends the run with it; unknown is not billed")
    func validationStatuses() async throws {
        try await WorkerHarness.with { h in
            let tenant = try await h.tenant()
            try await h.storeKeys(tenant: tenant)
            let cases: [(String, String, Int)] = [
                ("zb-invalid", "invalid", 1), ("zb-catch-all", "catch-all", 1), ("zb-unknown", "unknown", 0),
                ("zb-spamtrap", "spamtrap", 1),
                ("zb-abuse", "abuse", 1), ("zb-do-not-mail", "do_not_mail", 1), ("plain", "valid", 1),
            ]
            let runs = try await h.startRuns(
                tenant: tenant, inputs: cases.map { PersonInput(fullName: "Ada Lovelace", domain: "\($0.0).acme.com") })
            try await h.working(h.worker()) { try await h.waitFinished(runs) }
            for (run, (label, status, credits)) in zip(runs, cases) {
                let events = try await h.events(run)
                let finished = try #require(events.compactMap { $0 as? RunFinished }.first)
                #expect(finished.status == .succeeded, "\(label)")
                #expect(finished.validationStatus == status, "\(label)")
                #expect(events.compactMap { $0 as? VendorCallBilled }.last?.credits == credits, "\(label)")
            }
        }
    }

    @Test("a transient failure is retried on the same vendor after a backoff, then succeeds")
    func transientRetried() async throws {
        try await WorkerHarness.with { h in
            let tenant = try await h.tenant()
            try await h.storeKeys(tenant: tenant)
            let run = try await h.startRun(
                tenant: tenant, domain: "flaky.acme.com",
                definition: WorkflowDefinition(finders: [.prospeo], validator: nil, maxAttempts: 2))
            try await h.working(h.worker()) { try await h.waitFinished([run]) }
            let events = try await h.events(run)
            let failed = try #require(events.compactMap { $0 as? StepFailed }.first)
            #expect(failed.failure == .transient)
            #expect(failed.vendor == .prospeo)
            let retry = try #require(events.compactMap { $0 as? StepScheduled }.dropFirst().first)
            #expect(retry.step == 1)
            #expect(retry.attempt == 2)
            #expect(retry.vendor == .prospeo)
            #expect(retry.notBefore != nil)
            // Only the answered attempt is a vendor call.
            #expect(events.compactMap { $0 as? VendorCallBilled }.map(\.attempt) == [2])
            #expect(try await h.finished(run)?.status == .succeeded)
        }
    }

    @Test("retries run out: the run fails with the reason, and can be listed by the failure")
    func transientExhausted() async throws {
        try await WorkerHarness.with { h in
            let tenant = try await h.tenant()
            try await h.storeKeys(tenant: tenant)
            let run = try await h.startRun(
                tenant: tenant, domain: "error.acme.com",
                definition: WorkflowDefinition(finders: [.prospeo], validator: nil, maxAttempts: 3))
            try await h.working(h.worker()) { try await h.waitFinished([run]) }
            let events = try await h.events(run)
            #expect(events.compactMap { $0 as? StepFailed }.map(\.attempt) == [1, 2, 3])
            #expect(events.compactMap { $0 as? VendorCallBilled }.isEmpty)
            let finished = try #require(try await h.finished(run))
            #expect(finished.status == .failed)
            #expect(finished.reason?.contains("3 attempts failed") == true)
            #expect(finished.reason?.contains("500") == true)
            let state = try await h.store.pool.query("SELECT state FROM work_queue WHERE run_id = $1", [.uuid(run)])
            #expect(try state.first?.string(0) == "done")
        }
    }

    @Test("a vendor 429 pauses the whole key until its reset and spends no attempt")
    func rateLimitedPausesKey() async throws {
        try await WorkerHarness.with { h in
            let tenant = try await h.tenant()
            try await h.storeKeys(tenant: tenant)
            let single = WorkflowDefinition(finders: [.prospeo], validator: nil, maxAttempts: 1)
            let limited = try await h.startRun(tenant: tenant, domain: "ratelimit.acme.com", definition: single)
            let other = try await h.startRun(
                tenant: tenant, name: "Grace Hopper", domain: "acme.com", definition: single)
            try await h.working(h.worker(slots: 1)) { try await h.waitFinished([limited, other]) }
            let failure = try #require(try await h.store.read(stream: .run(limited)).first { $0.type == "StepFailed" })
            let paused = try await h.store.pool.query(
                "SELECT paused_until, pause_reason FROM flow_keys WHERE tenant_id = $1 AND vendor = 'prospeo'",
                [.uuid(tenant)])
            // The key was paused for the reset's second from the 429's commit.
            let until = try #require(try paused.first?.optionalDate(0))
            #expect(until.timeIntervalSince(failure.recordedAt) >= 0.99)
            #expect(try paused.first?.optionalString(1)?.contains("429") == true)
            // Nothing reached the key during the pause: the next call came at least a second after the 429.
            let key = FakeVendors.keyID("live-prospeo-\(tenant.lowercased.prefix(8))")
            let arrivals = try #require(h.fake.stats().keys[key]?.arrivalMilliseconds).sorted()
            #expect(arrivals.count == 3)
            // One slot: calls happen in the order of their StepStarted events.
            let order = try await h.store.pool.query(
                "SELECT stream_id FROM events WHERE tenant_id = $1 AND event_type = 'StepStarted' ORDER BY global_position",
                [.uuid(tenant)]
            ).map { try $0.string(0) }
            let rateLimited = try #require(order.firstIndex(of: "run-" + limited.lowercased))
            try #require(rateLimited + 1 < arrivals.count)
            let gap = arrivals[rateLimited + 1] - arrivals[rateLimited]
            #expect(gap >= 1000, "a call reached the paused key \(gap) ms after the 429")
            #expect(try await h.finished(other)?.status == .succeeded)
            // maxAttempts 1 and still succeeded: the 429 was pacing, not a failed attempt.
            #expect(try await h.finished(limited)?.status == .succeeded)
            #expect(try await h.finished(limited)?.email == "ada.lovelace@ratelimit.acme.com")
        }
    }

    @Test(
        "a key-fatal answer suspends the key once, parks its runs without spending retries, and a new key resumes them")
    func keyFatalParks() async throws {
        try await WorkerHarness.with { h in
            let tenant = try await h.tenant()
            try await h.storeKeys(tenant: tenant)
            try await h.storeKey("invalid-key-123", tenant: tenant, vendor: .prospeo)
            let single = WorkflowDefinition(finders: [.prospeo], validator: nil, maxAttempts: 1)
            let runs = try await h.startRuns(
                tenant: tenant, inputs: (0..<3).map { PersonInput(fullName: "Person \($0)", domain: "acme.com") },
                definition: single)
            try await h.working(h.worker(slots: 1)) {
                try await Eventually.wait("the key to be suspended") {
                    try await h.store.read(stream: .vendorSecret(tenant: tenant, vendor: .prospeo)).contains {
                        $0.type == "VendorKeySuspended"
                    }
                }
                try await Task.sleep(for: .milliseconds(300))
                let suspensions = try await h.store.read(stream: .vendorSecret(tenant: tenant, vendor: .prospeo)).filter
                {
                    $0.type == "VendorKeySuspended"
                }
                #expect(suspensions.count == 1)
                let suspended = try #require(try Fixtures.catalog.decode(suspensions[0]) as? VendorKeySuspended)
                #expect(suspended.reason.contains("401"))
                #expect(!suspended.reason.contains("invalid-key-123"))
                // One run hit the bad key; it and the others wait, none finished, none failed for good.
                let fatal = try await h.store.pool.query(
                    "SELECT count(*) FROM events WHERE stream_id = ANY($1) AND event_type = 'StepFailed'",
                    [.stringArray(runs.map { "run-" + $0.lowercased })])
                #expect(try fatal.first?.int(0) == 1)
                for run in runs { #expect(try await h.finished(run) == nil) }
                try await h.storeKey("live-replacement", tenant: tenant, vendor: .prospeo)
                try await h.waitFinished(runs)
            }
            for run in runs { #expect(try await h.finished(run)?.status == .succeeded) }
        }
    }

    @Test("a run cancelled while its step is in flight records the call and schedules nothing after it")
    func cancelledInFlight() async throws {
        try await WorkerHarness.with(fake: FakeVendorsConfiguration(slowMilliseconds: 800)) { h in
            let tenant = try await h.tenant()
            try await h.storeKeys(tenant: tenant)
            let run = try await h.startRun(tenant: tenant, domain: "slow.acme.com")
            try await h.working(h.worker()) {
                try await Eventually.wait("the step to start") { try await h.types(run).contains("StepStarted") }
                let version = try await h.store.version(of: .run(run))
                try await h.store.append(
                    [try Fixtures.catalog.encode(RunCancelled(runID: run, reason: "test"))], to: .run(run),
                    tenantID: tenant,
                    expected: .exactly(version))
                try await Eventually.wait("the call's outcome") { try await h.types(run).contains("StepFinished") }
                try await Task.sleep(for: .milliseconds(300))
            }
            #expect(
                try await h.types(run) == [
                    "RunStarted", "StepScheduled", "StepStarted", "RunCancelled", "StepFinished", "VendorCallBilled",
                ])
        }
    }

    @Test("a step rescued from a stalled worker is committed once: the stale worker's outcome is fenced off")
    func fencing() async throws {
        try await WorkerHarness.with(fake: FakeVendorsConfiguration(slowMilliseconds: 1500)) { h in
            let tenant = try await h.tenant()
            try await h.storeKeys(tenant: tenant)
            let run = try await h.startRun(
                tenant: tenant, domain: "slow.acme.com",
                definition: WorkflowDefinition(finders: [.prospeo], validator: nil, maxAttempts: 3))
            // The first worker's lease (0.5 s) is shorter than its call (1.5 s): it looks dead to the others.
            let stalled = h.worker(lease: .milliseconds(500), callTimeout: .seconds(5), dispatch: true, id: "stalled")
            let rescuer = h.worker(lease: .seconds(10), callTimeout: .seconds(5), dispatch: false, id: "rescuer")
            try await h.working(stalled) {
                try await Eventually.wait("the stalled worker to start the step") {
                    try await h.types(run).contains("StepStarted")
                }
                try await h.working(rescuer) { try await h.waitFinished([run]) }
                try await Eventually.wait("the stalled worker's outcome to be fenced") { stalled.0.stats.fenced >= 1 }
            }
            let events = try await h.events(run)
            let started = events.compactMap { $0 as? StepStarted }
            #expect(started.map(\.workerID).first == "stalled")
            #expect(started.count >= 2)
            #expect(started.map(\.fencingToken) == Array(1...Int64(started.count)))
            #expect(started.map(\.attempt).allSatisfy { $0 == 1 })
            #expect(events.compactMap { $0 as? StepFinished }.count == 1)
            #expect(events.compactMap { $0 as? VendorCallBilled }.count == 1)
            #expect(events.compactMap { $0 as? RunFinished }.count == 1)
        }
    }

    @Test("after a tenant's erasure its runs park on unopenable keys; another tenant's runs go on")
    func erasedTenant() async throws {
        try await WorkerHarness.with { h in
            let erased = try await h.tenant(name: "Gone")
            let kept = try await h.tenant(name: "Kept")
            try await h.storeKeys(tenant: erased)
            try await h.storeKeys(tenant: kept)
            #expect(try await SecretVault.destroyKeys(of: erased, pool: h.store.pool) == 1)
            let single = WorkflowDefinition(finders: [.prospeo], validator: nil, maxAttempts: 3)
            let gone = try await h.startRun(tenant: erased, domain: "acme.com", definition: single)
            let going = try await h.startRun(tenant: kept, domain: "acme.com", definition: single)
            try await h.working(h.worker()) {
                try await h.waitFinished([going])
                try await Eventually.wait("the erased tenant's key to be suspended") {
                    try await h.store.read(stream: .vendorSecret(tenant: erased, vendor: .prospeo)).contains {
                        $0.type == "VendorKeySuspended"
                    }
                }
            }
            #expect(try await h.finished(going)?.status == .succeeded)
            let failed = try #require(try await h.events(gone).compactMap { $0 as? StepFailed }.first)
            #expect(failed.failure == .keyFatal)
            #expect(failed.reason.contains("erased"))
            #expect(try await h.finished(gone) == nil)
            #expect(h.fake.stats().keys[FakeVendors.keyID("live-prospeo-\(erased.lowercased.prefix(8))")] == nil)
        }
    }
}
