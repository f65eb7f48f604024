import Events
import FakeVendors
import Foundation
import Projections
import TestSupport
import Testing
import Workers

#if canImport(Glibc)
    import Glibc
#endif

/// `tally work` processes against one database and the fake vendors: killed at any moment, several at once.
// Serialized: each test runs two or three worker processes, and the suite shares two cores with the rest.
@Suite("Workers: processes, crashes and flow control", .serialized, .timeLimit(.minutes(5)))
struct WorkerProcessTests {
    /// A `tally work` child whose output is drained as it comes (a full pipe would stall it).
    final class WorkerProcess: Sendable {
        let process: Subprocess
        let done: Task<Subprocess.Result, any Error>

        init(_ h: WorkerHarness, id: String, slots: Int = 16, lease: Double = 8, callTimeout: Double = 5) throws {
            process = try Subprocess(
                CLI.binary,
                [
                    "work", "--database-url", TestDatabase.serviceURL(h.url), "--vendors-url", h.fake.baseURL,
                    "--slots", "\(slots)",
                    "--lease-seconds", "\(lease)",
                    "--call-timeout-seconds", "\(callTimeout)", "--retry-base-ms", "50", "--worker-id", id,
                ],
                environment: ["TALLY_MASTER_KEY": h.masterKeyHex, "PATH": "/usr/bin:/bin"])
            let process = process
            done = Task { try await process.finish() }
        }

        @discardableResult
        func kill9() async throws -> Subprocess.Result {
            process.send(signal: SIGKILL)
            return try await done.value
        }

        @discardableResult
        func stop() async throws -> Subprocess.Result {
            process.terminate()
            return try await done.value
        }
    }

    /// Raises a tenant's limits for every vendor (the built-in ones are a real account's).
    static func setLimits(_ h: WorkerHarness, tenant: UUID, vendor: Vendor, windows: [RateWindow]?, parallelism: Int?)
        async throws
    {
        let stream = StreamName.flowLimits(vendor: vendor, tenant: tenant)
        let version = try await h.store.version(of: stream)
        try await h.store.append(
            [
                try Fixtures.catalog.encode(
                    FlowLimitsSet(vendor: vendor, tenantID: tenant, windows: windows, parallelism: parallelism))
            ],
            to: stream, tenantID: tenant, expected: version == 0 ? .noStream : .exactly(version))
    }

    /// Every event of the log, decoded, with its stream version and position.
    static func allEvents(_ h: WorkerHarness) async throws -> [(RecordedEvent, any DomainEvent)] {
        try await TestDatabase.settle(h.store)
        var position = FeedPosition.start
        var all: [(RecordedEvent, any DomainEvent)] = []
        while true {
            let page = try await h.store.readFeed(after: position, limit: 5000)
            guard !page.events.isEmpty else { return all }
            all += try page.events.map { ($0, try Fixtures.catalog.decode($0)) }
            position = page.next
        }
    }

    @Test(
        "workers SIGKILLed mid-call, again and again over hundreds of runs: every run finishes, no step lost, none billed twice"
    )
    func crashes() async throws {
        try await WorkerHarness.with(fake: FakeVendorsConfiguration(latencyMilliseconds: 40, jitterMilliseconds: 30)) {
            h in
            let tenant = try await h.tenant()
            try await h.storeKeys(tenant: tenant)
            for vendor in Vendor.allCases {
                try await Self.setLimits(h, tenant: tenant, vendor: vendor, windows: [], parallelism: 40)
            }
            let domains = [
                "acme.com", "prospeo-miss.beta.com", "miss.gamma.com", "flaky.delta.com", "zb-invalid.epsilon.com",
            ]
            let inputs = (0..<300).map {
                PersonInput(fullName: "Person Number\($0)", domain: domains[$0 % domains.count])
            }
            let runs = try await h.startRuns(
                tenant: tenant, inputs: inputs,
                definition: WorkflowDefinition(finders: [.prospeo, .findymail], validator: .zerobounce, maxAttempts: 6))
            // Short leases so that killed workers' steps come back quickly.
            func start(_ id: String) throws -> WorkerProcess { try WorkerProcess(h, id: id, lease: 4, callTimeout: 2) }
            var workers = [(id: "w0", process: try start("w0")), (id: "w1", process: try start("w1"))]
            var kills = 0
            var next = 2
            /// Whether the worker holds a step whose call has not ended (a lease with its key's fingerprint).
            func inCall(_ id: String) async throws -> Bool {
                try await h.store.pool.query(
                    """
                    SELECT count(*) FROM work_queue
                    WHERE state = 'leased' AND lease_owner = $1 AND leased_fingerprint IS NOT NULL
                    """, [.text(id)]
                ).first?.int(0) ?? 0 > 0
            }
            let deadline = ContinuousClock.now + .seconds(120)
            while ContinuousClock.now < deadline {
                let finished =
                    try await h.store.pool.query(
                        "SELECT count(*) FROM events WHERE stream_id = ANY($1) AND event_type = 'RunFinished'",
                        [.stringArray(runs.map { "run-" + $0.lowercased })]
                    ).first?.int(0) ?? 0
                if finished == runs.count { break }
                try await Task.sleep(for: .milliseconds(Int.random(in: 100...400)))
                // A kill lands mid-call: the victim is chosen among the workers that hold a call right now (a
                // worker still starting on a loaded machine holds none, and killing it would test nothing).
                guard kills < 10 else { continue }
                var holding: [Int] = []
                for (index, worker) in workers.enumerated() where try await inCall(worker.id) {
                    holding.append(index)
                }
                guard let victim = holding.randomElement() else { continue }
                let result = try await workers[victim].process.kill9()
                #expect(result.status == 128 + SIGKILL)
                kills += 1
                workers[victim] = (id: "w\(next)", process: try start("w\(next)"))
                next += 1
            }
            for worker in workers { try await worker.process.stop() }
            #expect(kills == 10)

            let events = try await Self.allEvents(h)
            var finishedRuns: [UUID: [RunFinished]] = [:]
            var billed: [String: Int] = [:]
            var outcomes: [String: Int] = [:]
            var starts: [String: Int] = [:]
            for (_, event) in events {
                switch event {
                case let e as RunFinished: finishedRuns[e.runID, default: []].append(e)
                case let e as VendorCallBilled: billed["\(e.runID)/\(e.step)/\(e.attempt)", default: 0] += 1
                case let e as StepFinished: outcomes["\(e.runID)/\(e.step)/\(e.attempt)", default: 0] += 1
                case let e as StepFailed: outcomes["\(e.runID)/\(e.step)/\(e.attempt)", default: 0] += 1
                case let e as StepStarted: starts["\(e.runID)/\(e.step)/\(e.attempt)", default: 0] += 1
                default: break
                }
            }
            #expect(finishedRuns.count == runs.count)
            #expect(finishedRuns.values.allSatisfy { $0.count == 1 })
            #expect(billed.values.allSatisfy { $0 == 1 }, "an attempt billed twice")
            #expect(outcomes.values.allSatisfy { $0 == 1 }, "an attempt with two outcomes")
            #expect(outcomes.keys.allSatisfy { starts[$0] != nil }, "an outcome without a start")
            // The kills landed mid-call: some attempts were started more than once (rescued after their lease).
            #expect(starts.values.contains { $0 > 1 })
            // Every run ended as its input says.
            for (index, run) in runs.enumerated() {
                let finished = finishedRuns[run]?.first
                switch index % domains.count {
                case 2: #expect(finished?.status == .notFound)
                case 4: #expect(finished?.validationStatus == "invalid")
                default: #expect(finished?.status == .succeeded)
                }
            }
        }
    }

    @Test(
        "1,000 fallback runs with three workers: every stream's versions ascend in feed order, nothing is parked, no projection stops"
    )
    func feedOrderUnderWorkers() async throws {
        try await WorkerHarness.with(fake: FakeVendorsConfiguration(latencyMilliseconds: 5, jitterMilliseconds: 5)) {
            h in
            let tenant = try await h.tenant()
            try await h.storeKeys(tenant: tenant)
            for vendor in Vendor.allCases {
                try await Self.setLimits(h, tenant: tenant, vendor: vendor, windows: [], parallelism: 64)
            }
            let runner = Task {
                await ProjectionRunner(
                    store: h.store, projections: ProductProjections.all,
                    options: .init(batchSize: 500, pollInterval: .milliseconds(100))
                )
                .run()
            }
            defer { runner.cancel() }
            // Prospeo misses, Findymail finds, ZeroBounce validates: the case whose claims used to sort a
            // StepStarted before the StepScheduled it started.
            let runs = try await h.startRuns(
                tenant: tenant,
                inputs: (0..<1000).map {
                    PersonInput(fullName: "Fallback \($0)", domain: "prospeo-miss.acme\($0 % 7).com")
                })
            let workers = try (0..<3).map { try WorkerProcess(h, id: "ow\($0)", slots: 32) }
            try await h.waitFinished(runs, timeout: .seconds(240))
            for worker in workers { try await worker.stop() }
            #expect(try await FeedInvariant.inversions(h.store) == 0)
            #expect(try await FeedInvariant.gaps(h.store) == 0)
            try await Eventually.wait("workflow_runs to show every run finished", timeout: .seconds(120)) {
                try await h.store.pool.query("SELECT count(*) FROM workflow_runs WHERE status = 'succeeded'").first?
                    .int(0) == runs.count
            }
            #expect(try await h.store.parkedStreams().isEmpty)
            let statuses = try await ProjectionStatus.all(ProductProjections.all, store: h.store)
            #expect(statuses.allSatisfy { $0.state == .running }, "\(statuses.map { "\($0.name) \($0.state)" })")
        }
    }

    @Test(
        "three workers: starts never exceed the rate in any window, calls in flight never exceed the parallelism, a lowered limit holds within a window"
    )
    func flowControlAcrossProcesses() async throws {
        try await WorkerHarness.with(fake: FakeVendorsConfiguration(latencyMilliseconds: 120)) { h in
            let tenant = try await h.tenant()
            try await h.storeKeys(tenant: tenant)
            try await Self.setLimits(
                h, tenant: tenant, vendor: .prospeo, windows: [RateWindow(limit: 8, seconds: 1)], parallelism: 3)
            let single = WorkflowDefinition(finders: [.prospeo], validator: nil, maxAttempts: 3)
            let runs = try await h.startRuns(
                tenant: tenant, inputs: (0..<45).map { PersonInput(fullName: "Person \($0)", domain: "acme.com") },
                definition: single)
            let workers = try (0..<3).map { try WorkerProcess(h, id: "fw\($0)") }
            try await Eventually.wait("a third of the runs to finish") {
                try await h.store.pool.query(
                    "SELECT count(*) FROM events WHERE stream_id = ANY($1) AND event_type = 'RunFinished'",
                    [.stringArray(runs.map { "run-" + $0.lowercased })]
                ).first?.int(0) ?? 0 >= 15
            }
            try await Self.setLimits(
                h, tenant: tenant, vendor: .prospeo, windows: [RateWindow(limit: 3, seconds: 1)], parallelism: 2)
            // The change takes effect when the dispatcher has applied it (milliseconds, unless other sessions hold
            // the feed's horizon back); from then on, every window must hold the new limit.
            var lowered = Date.distantFuture
            try await Eventually.wait("the lowered limit to be applied") {
                let row = try await h.store.pool.query(
                    """
                    SELECT clock_timestamp() FROM flow_limits
                    WHERE tenant_id = $1 AND vendor = 'prospeo' AND parallelism = 2 AND window_limits = '{3}'
                    """, [.uuid(tenant)]
                ).first
                if let row { lowered = try row.date(0) }
                return row != nil
            }
            try await h.waitFinished(runs, timeout: .seconds(90))
            for worker in workers { try await worker.stop() }

            let starts = try await h.store.pool.query(
                "SELECT started_at FROM flow_starts WHERE tenant_id = $1 AND vendor = 'prospeo' ORDER BY started_at",
                [.uuid(tenant)]
            ).map { try $0.date(0) }
            #expect(starts.count >= runs.count)
            // Starts came from all three workers.
            let claimers = try await h.store.pool.query(
                "SELECT count(DISTINCT worker) FROM flow_starts WHERE tenant_id = $1", [.uuid(tenant)]
            ).first?.int(0)
            #expect(claimers == 3)
            for (index, end) in starts.enumerated() {
                let inWindow = starts[...index].filter { $0 > end.addingTimeInterval(-1) }.count
                #expect(inWindow <= 8, "\(inWindow) starts in the second before \(end)")
                if end >= lowered.addingTimeInterval(1) {
                    #expect(
                        inWindow <= 3,
                        "\(inWindow) starts in the second before \(end), after the limit was lowered to 3")
                }
            }
            let key = FakeVendors.keyID("live-prospeo-\(tenant.lowercased.prefix(8))")
            #expect((h.fake.stats().keys[key]?.maxInFlight ?? 99) <= 3)
        }
    }

    @Test("a vendor 429 pauses the key for every worker until the reset")
    func rateLimitAcrossProcesses() async throws {
        try await WorkerHarness.with(fake: FakeVendorsConfiguration(latencyMilliseconds: 20)) { h in
            let tenant = try await h.tenant()
            try await h.storeKeys(tenant: tenant)
            try await Self.setLimits(h, tenant: tenant, vendor: .prospeo, windows: [], parallelism: 1)
            let single = WorkflowDefinition(finders: [.prospeo], validator: nil, maxAttempts: 1)
            let limited = try await h.startRun(tenant: tenant, domain: "ratelimit.acme.com", definition: single)
            let others = try await h.startRuns(
                tenant: tenant, inputs: (0..<6).map { PersonInput(fullName: "Other \($0)", domain: "acme.com") },
                definition: single)
            let workers = try (0..<3).map { try WorkerProcess(h, id: "rw\($0)") }
            try await h.waitFinished([limited] + others)
            for worker in workers { try await worker.stop() }
            // The fake answered the 429 to the first call of `limited`; after it, nothing reached the key for
            // the reset's second (parallelism 1: no call was in flight beside it).
            let key = FakeVendors.keyID("live-prospeo-\(tenant.lowercased.prefix(8))")
            let arrivals = try #require(h.fake.stats().keys[key]?.arrivalMilliseconds)
            let events = try await h.events(limited)
            #expect(events.contains { ($0 as? StepFailed)?.reason.contains("429") == true })
            let order = try await Self.allEvents(h).compactMap { $0.1 as? StepStarted }
            let limitedFirst = try #require(order.firstIndex { $0.runID == limited })
            let rateLimitedArrival = arrivals[limitedFirst]
            let after = arrivals.filter { $0 > rateLimitedArrival }
            #expect(!after.isEmpty)
            #expect(
                (after.min() ?? 0) - rateLimitedArrival >= 1000,
                "a call reached the key \((after.min() ?? 0) - rateLimitedArrival) ms after its 429")
            #expect(try await h.finished(limited)?.status == .succeeded)
        }
    }

    @Test(
        "fairness: a tenant flooding 1,500 runs delays another tenant's single run by one claim round, not its backlog")
    func fairness() async throws {
        try await WorkerHarness.with(fake: FakeVendorsConfiguration(latencyMilliseconds: 30)) { h in
            let flood = try await h.tenant(name: "Flood")
            let small = try await h.tenant(name: "Small")
            try await h.storeKeys(tenant: flood)
            try await h.storeKeys(tenant: small)
            let parallelism = 20
            try await Self.setLimits(h, tenant: flood, vendor: .prospeo, windows: [], parallelism: parallelism)
            let single = WorkflowDefinition(finders: [.prospeo], validator: nil, maxAttempts: 3)
            _ = try await h.startRuns(
                tenant: flood, inputs: (0..<1500).map { PersonInput(fullName: "Flood \($0)", domain: "acme.com") },
                definition: single)
            let workers = try (0..<3).map { try WorkerProcess(h, id: "fair\($0)") }
            try await Eventually.wait("the flood to be under way") {
                try await h.store.pool.query("SELECT count(*) FROM flow_starts WHERE tenant_id = $1", [.uuid(flood)])
                    .first?.int(0) ?? 0 > 100
            }
            let run = try await h.startRun(tenant: small, domain: "acme.com", definition: single)
            // The moment its step is claimable: the queue row is waiting (or already taken). The flood's starts
            // committed by then are read in the same snapshot, so every later one was claimed while the small
            // step could have been. How long the dispatcher took to queue the step does not count: that is the
            // machine's load, not the claim order.
            var floodStartsBefore = 0
            try await Eventually.wait("the small run's step to be queued") {
                let row = try await h.store.pool.query(
                    """
                    SELECT (SELECT state FROM work_queue WHERE run_id = $1),
                           (SELECT count(*) FROM events WHERE tenant_id = $2 AND event_type = 'StepStarted')
                    """, [.uuid(run), .uuid(flood)]
                ).first
                guard let state = try row?.optionalString(0), state != "new" else { return false }
                floodStartsBefore = try row?.int(1) ?? 0
                return true
            }
            try await h.waitFinished([run])
            for worker in workers { try await worker.stop() }
            let events = try await Self.allEvents(h)
            let started = try #require(events.firstIndex { ($0.1 as? StepStarted)?.runID == run })
            let floodStarts =
                events[..<started].filter { $0.0.tenantID == flood && $0.1 is StepStarted }.count - floodStartsBefore
            // Without fairness the small run would wait behind the whole backlog (over a thousand steps). With it,
            // the only flood steps that start first are those in claims already under way when its step became
            // claimable: a few times the flood key's parallelism at most.
            #expect(
                floodStarts <= 5 * parallelism,
                "\(floodStarts) flood steps started after the small tenant's step was queued and before it")
            let waiting =
                try await h.store.pool.query(
                    "SELECT count(*) FROM work_queue WHERE tenant_id = $1 AND state = 'waiting'", [.uuid(flood)]
                ).first?.int(0) ?? 0
            #expect(waiting > 0, "the flood was over before the small run was measured")
        }
    }
}
