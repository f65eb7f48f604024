import ArgumentParser
import Commands
import Events
import FakeVendors
import Foundation
import Logging
import Workers

extension Bench {
    struct WorkersBench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "workers",
            abstract: "Push runs through the fake vendors: steps/s, run latency, flow-control accuracy.",
            discussion: """
                Needs a database it may write to (it migrates it, adds tenants and runs, and creates
                bench_raw_events). For each vendor latency it starts the fake vendors in this process, creates
                fresh tenants with keys for every vendor and their flow limits (FlowLimitsSet), runs the workers in
                this process and appends the runs as the API does (RunStarted with the first StepScheduled). Two
                phases per latency:
                  saturated  every run appended at once: steps/s from the first StepStarted to the last
                             RunFinished, and flow-control accuracy (starts in every sliding window and calls in
                             flight per key, against the limits: the overshoot must be 0 or less);
                  paced      runs offered at --paced-fraction of the saturated run rate: run latency when the
                             workers keep up (in the saturated phase latency is mostly time in the backlog).
                Half the runs take 2 steps (prospeo finds, zerobounce validates), half take 3 (prospeo misses,
                findymail finds, zerobounce validates). At 0 ms the limits are generous; at other latencies each
                tenant's keys get parallelism --parallelism for prospeo and zerobounce and half of it for findymail,
                in proportion to the steps each vendor gets, so that the ceiling is the total parallelism / latency.
                The physical reference is raw multi-row INSERTs of as many event rows as the saturated phase wrote.
                """)

        @OptionGroup var database: DatabaseOptions

        @Option(name: .customLong("latency-ms"), help: "Vendor latencies to measure, comma-separated.")
        var latencies = "0,50"

        @Option(help: "Tenants per phase (each with one key per vendor).")
        var tenants = 8

        @Option(help: "Runs of a saturated phase.")
        var runs = 4000

        @Option(help: "Worker instances in this process (one leads the dispatcher).")
        var workers = 1

        @Option(help: "Vendor calls in flight per worker at most.")
        var slots = 256

        @Option(help: "Finished steps committed in one transaction at most.")
        var commitBatch = 128

        @Option(help: "Milliseconds a claimer waits at most between looks when nothing woke it.")
        var pollMs = 20

        @Option(help: "Per-key parallelism of prospeo and zerobounce at latencies above 0 (findymail: half).")
        var parallelism = 2

        @Option(help: "Offered load of the paced phase, as a fraction of the saturated run rate (0: no paced phase).")
        var pacedFraction = 0.5

        @Option(help: "Seconds the paced phase offers runs.")
        var pacedSeconds = 5.0

        func validate() throws {
            guard !parsedLatencies.isEmpty, parsedLatencies.allSatisfy({ $0 >= 0 }) else {
                throw ValidationError("--latency-ms must be a comma-separated list of milliseconds.")
            }
            guard tenants >= 1, runs >= tenants, workers >= 1, slots >= 1, commitBatch >= 1, pollMs >= 1,
                parallelism >= 2
            else {
                throw ValidationError(
                    "--tenants, --workers, --slots, --commit-batch, --poll-ms must be positive, --runs at least --tenants, --parallelism at least 2."
                )
            }
            guard (0..<1).contains(pacedFraction), pacedSeconds > 0 else {
                throw ValidationError("--paced-fraction must be in [0, 1) and --paced-seconds positive.")
            }
        }

        var parsedLatencies: [Int] {
            latencies.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        }

        func run() async throws {
            try await database.makeMigrator().migrate()
            let store = try database.makeStore(applicationName: "tally-bench", maxConnections: 16 + 8 * workers)
            defer { store.close() }
            let masterKey = try MasterKey(hex: MasterKey.generateHex())
            var logger = Logger(label: "tally.bench")
            logger.logLevel = .warning
            let bench = WorkersBenchRun(
                store: store, masterKey: masterKey,
                settings: .init(
                    tenants: tenants, workers: workers, slots: slots, commitBatch: commitBatch, pollMs: pollMs,
                    parallelism: parallelism),
                logger: logger)

            print(
                "\(tenants) tenants per phase, \(runs) runs per saturated phase (half 2 steps, half 3), \(workers) worker\(workers == 1 ? "" : "s")"
                    + " in this process, \(slots) slots, commit batch \(commitBatch), poll \(pollMs) ms; durable PostgreSQL"
            )
            var rawReference: (events: Int, seconds: Double)?
            for latency in parsedLatencies {
                let saturated = try await bench.phase(latency: latency, runs: runs, offeredRunsPerSecond: nil)
                saturated.print(
                    label: "\(latency) ms, saturated", latency: latency, parallelism: latency > 0 ? parallelism : nil,
                    tenants: tenants)
                if rawReference == nil { rawReference = (saturated.events, saturated.wallSeconds) }
                if pacedFraction > 0 {
                    let rate = saturated.runsPerSecond * pacedFraction
                    let pacedRuns = max(tenants, Int(rate * pacedSeconds))
                    let paced = try await bench.phase(latency: latency, runs: pacedRuns, offeredRunsPerSecond: rate)
                    // The ceiling is about a backlog: a paced phase offers less than it on purpose.
                    paced.print(
                        label: String(format: "%d ms, paced at %.0f runs/s", latency, rate), latency: latency,
                        parallelism: nil, tenants: tenants)
                }
            }
            if let rawReference {
                let rawSeconds = try await bench.rawInsertSeconds(events: rawReference.events)
                let tallyRate = Double(rawReference.events) / rawReference.seconds
                let rawRate = Double(rawReference.events) / rawSeconds
                print(
                    String(
                        format:
                            "physical reference: %d event rows as raw 100-row INSERTs by 4 writers: %.2f s, %.0f ev/s;"
                            + " the first saturated phase wrote them at %.0f ev/s: %.2fx raw",
                        rawReference.events, rawSeconds, rawRate, tallyRate, tallyRate / rawRate))
            }
        }
    }
}

/// What one phase measured.
struct WorkersPhaseResult {
    var runs: Int
    var steps: Int
    var failedSteps: Int
    var events: Int
    var wallSeconds: Double
    var latencyP50: Double
    var latencyP99: Double
    /// Per vendor and window: the most starts of one key in any window of that length, and the limit.
    var windows: [(vendor: Vendor, seconds: Int, limit: Int, most: Int)]
    /// Per vendor: the most calls one key had in flight at the fake, and the parallelism.
    var inFlight: [(vendor: Vendor, parallelism: Int, most: Int)]
    var claimed: Int
    var fenced: Int
    /// Medians in seconds: a claim's begin to its outcome's commit's begin (the rest of the claim, the call, the
    /// wait for a committer), and an outcome's commit's begin to the run's next claim's begin (the commit, the
    /// wait for the claimer).
    var claimToCommit: Double
    var commitToNextClaim: Double

    var stepsPerSecond: Double { Double(steps) / wallSeconds }
    var runsPerSecond: Double { Double(runs) / wallSeconds }

    func print(label: String, latency: Int, parallelism: Int?, tenants: Int) {
        Swift.print("\(label):")
        Swift.print(
            String(
                format:
                    "  %d runs, %d steps (%d failed), %d events in %.2f s: %.0f steps/s, %.0f runs/s, %.0f events/s",
                runs, steps, failedSteps, events, wallSeconds, stepsPerSecond, runsPerSecond,
                Double(events) / wallSeconds))
        Swift.print(
            String(
                format: "  run latency (RunStarted -> RunFinished): p50 %.0f ms, p99 %.0f ms", latencyP50 * 1000,
                latencyP99 * 1000))
        Swift.print(
            String(
                format:
                    "  per step, medians: claim -> outcome's commit %.1f ms, outcome's commit -> next claim of the run %.1f ms",
                claimToCommit * 1000, commitToNextClaim * 1000))
        if let parallelism, latency > 0 {
            // Prospeo and ZeroBounce get `parallelism` per key, Findymail half: in proportion to their steps.
            let total = tenants * (parallelism + parallelism / 2 + parallelism)
            let ceiling = Double(total) / (Double(latency) / 1000)
            Swift.print(
                String(
                    format:
                        "  parallelism ceiling: %d calls in flight in all / %d ms = %.0f steps/s; achieved %.2fx of it",
                    total, latency, ceiling,
                    stepsPerSecond / ceiling))
            // A step holds its key's slot from its claim to its outcome's commit, not only while the vendor answers.
            Swift.print(
                String(
                    format:
                        "  slot time per step (calls in flight in all x wall time / steps): %.1f ms, of which the vendor %d ms",
                    Double(total) * wallSeconds / Double(steps) * 1000, latency))
        }
        let overshoot = (windows.map { $0.most - $0.limit } + inFlight.map { $0.most - $0.parallelism }).max() ?? 0
        let parts =
            windows.map { "\($0.vendor.rawValue) \($0.most)/\($0.limit) per \($0.seconds) s" }
            + inFlight.map { "\($0.vendor.rawValue) \($0.most)/\($0.parallelism) in flight" }
        Swift.print("  flow control, most of one key / limit: \(parts.joined(separator: ", "))")
        Swift.print("  largest overshoot: \(overshoot) \(overshoot <= 0 ? "(ok)" : "(VIOLATION)")")
        if fenced > 0 { Swift.print("  outcomes fenced off: \(fenced) of \(claimed) claims") }
    }
}

/// Sets up tenants, runs the workers and measures one phase at a time.
struct WorkersBenchRun: Sendable {
    /// The options of `tally bench workers` that the phases use.
    struct Settings: Sendable {
        var tenants: Int
        var workers: Int
        var slots: Int
        var commitBatch: Int
        var pollMs: Int
        var parallelism: Int
    }

    let store: EventStore
    let masterKey: MasterKey
    let settings: Settings
    let logger: Logger

    static let operatorBegin = "BEGIN"
    static let definition = WorkflowDefinition(finders: [.prospeo, .findymail], validator: .zerobounce, maxAttempts: 3)
    /// Prospeo finds at the first (2 steps); Prospeo misses and Findymail finds at the second (3 steps).
    static let domains = ["acme.com", "prospeo-miss.x.com"]

    /// The flow limits each tenant's keys get in a phase.
    func limits(latency: Int) -> [Vendor: (windows: [RateWindow], parallelism: Int)] {
        if latency == 0 {
            // Generous: the machine is the limit, not the flow control; the windows are still counted.
            return [
                .prospeo: ([RateWindow(limit: 2000, seconds: 1), RateWindow(limit: 60_000, seconds: 60)], 1000),
                .findymail: ([], 1000),
                .zerobounce: ([RateWindow(limit: 2000, seconds: 1)], 1000),
            ]
        }
        let p = settings.parallelism
        let perSecond = 4 * p * 1000 / max(1, latency)  // never the binding limit: calls end after `latency`
        return [
            .prospeo: ([RateWindow(limit: perSecond, seconds: 1), RateWindow(limit: perSecond * 60, seconds: 60)], p),
            .findymail: ([], p / 2),
            .zerobounce: ([RateWindow(limit: perSecond, seconds: 1)], p),
        ]
    }

    func phase(latency: Int, runs: Int, offeredRunsPerSecond: Double?) async throws -> WorkersPhaseResult {
        let fake = try await FakeVendors.start(
            FakeVendorsConfiguration(latencyMilliseconds: latency),
            logger: Logger(label: "tally.bench.fake", factory: { _ in SwiftLogNoOpLogHandler() }))
        let limits = limits(latency: latency)
        var tenantIDs: [UUID] = []
        var keys: [Vendor: [String]] = [:]
        for _ in 0..<settings.tenants {
            let tenant = try await createTenant()
            tenantIDs.append(tenant)
            for vendor in Vendor.allCases {
                let key = "bench-\(vendor.rawValue)-\(tenant.lowercased)"
                try await storeKey(key, tenant: tenant, vendor: vendor)
                keys[vendor, default: []].append(key)
                let limit = limits[vendor]!
                try await store.append(
                    [
                        try store.catalog.encode(
                            FlowLimitsSet(
                                vendor: vendor, tenantID: tenant, windows: limit.windows, parallelism: limit.parallelism
                            ))
                    ],
                    to: .flowLimits(vendor: vendor, tenant: tenant), tenantID: tenant, expected: .any)
            }
        }

        let caller = VendorCaller(endpoints: .fake(fake.baseURL), timeout: .seconds(20), maxConnectionsPerHost: 1024)
        let workers = (0..<settings.workers).map { index in
            Worker(
                store: store, masterKey: masterKey, caller: caller,
                configuration: WorkerConfiguration(
                    workerID: "bench-\(index)", slots: settings.slots, lease: .seconds(30),
                    pollInterval: .milliseconds(settings.pollMs),
                    commitBatch: settings.commitBatch, dispatch: index == 0),
                logger: logger)
        }
        let tasks = workers.map { worker in Task { await worker.run() } }
        do {
            try await appendRuns(runs, tenants: tenantIDs, offeredRunsPerSecond: offeredRunsPerSecond)
            try await waitFinished(runs: runs, tenants: tenantIDs)
        } catch {
            for task in tasks { task.cancel() }
            for task in tasks { await task.value }
            try? await caller.shutdown()
            await fake.stop()
            throw error
        }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
        try await caller.shutdown()
        let stats = fake.stats()
        await fake.stop()

        var result = try await measure(tenants: tenantIDs, runs: runs)
        result.claimed = workers.reduce(0) { $0 + $1.stats.claimed }
        result.fenced = workers.reduce(0) { $0 + $1.stats.fenced }
        for vendor in Vendor.allCases {
            let limit = limits[vendor]!
            for window in limit.windows {
                let most = try await mostStarts(vendor: vendor, tenants: tenantIDs, seconds: window.seconds)
                result.windows.append((vendor, window.seconds, window.limit, most))
            }
            let most = keys[vendor, default: []].map { stats.keys[FakeVendors.keyID($0)]?.maxInFlight ?? 0 }.max() ?? 0
            result.inFlight.append((vendor, limit.parallelism, most))
        }
        return result
    }

    // MARK: - Setting up, with the API's commands

    private func createTenant() async throws -> UUID {
        let slug = "b-" + UUID().uuidString.lowercased()
        let (created, _) = try await Commands(store: store).createTenant(
            name: "Bench \(slug.dropFirst(2).prefix(8))", slug: slug, plan: "pro", metadata: EventMetadata())
        return created.tenantID
    }

    private func storeKey(_ key: String, tenant: UUID, vendor: Vendor) async throws {
        _ = try await Commands(store: store).storeVendorSecret(
            tenant: tenant, vendor: vendor, plaintext: Array(key.utf8),
            vault: SecretVault(pool: store.pool, masterKey: masterKey), metadata: EventMetadata())
    }

    /// RunStarted with the first StepScheduled in one append per run, 500 runs per statement; all at once, or
    /// in a chunk every 50 ms at the offered rate.
    private func appendRuns(_ count: Int, tenants: [UUID], offeredRunsPerSecond: Double?) async throws {
        func runAppend(_ index: Int) throws -> StreamAppend {
            let tenant = tenants[index % tenants.count]
            let domain = Self.domains[(index / tenants.count) % Self.domains.count]
            let input = PersonInput(fullName: "Ada " + Self.letters(index), domain: domain)
            return try Commands.runStarts(
                tenant: tenant, workflowID: UUID(), definition: Self.definition, inputs: [input], batchID: nil
            ).appends[0]
        }
        guard let rate = offeredRunsPerSecond else {
            for start in stride(from: 0, to: count, by: 500) {
                try await store.append(try (start..<min(start + 500, count)).map(runAppend))
            }
            return
        }
        let begin = ContinuousClock.now
        var appended = 0
        while appended < count {
            let due = min(count, Int((ContinuousClock.now - begin).seconds * rate) + 1)
            if due > appended {
                try await store.append(try (appended..<due).map(runAppend))
                appended = due
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Waits until every run of these tenants is done in the queue (its RunFinished committed with it).
    private func waitFinished(runs: Int, tenants: [UUID]) async throws {
        let deadline = ContinuousClock.now + .seconds(600)
        var last = -1
        var lastChange = ContinuousClock.now
        while true {
            let done = try await store.pool.withConnection { connection in
                try await connection.withTransaction(begin: Self.operatorBegin) {
                    try await connection.query(
                        "SELECT count(*) FROM work_queue WHERE tenant_id = ANY($1) AND state = 'done'",
                        [.uuidArray(tenants)]
                    ).first?.int(0) ?? 0
                }
            }
            if done >= runs { return }
            if done != last {
                last = done
                lastChange = .now
            }
            guard ContinuousClock.now < deadline, ContinuousClock.now - lastChange < .seconds(60) else {
                throw ValidationError("the workers stalled: \(done) of \(runs) runs done")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// A last name per run (the fake treats names that differ only in digits as one person): a, b, ..., ba, ...
    static func letters(_ index: Int) -> String {
        var index = index
        var name = ""
        repeat {
            name = String(UnicodeScalar(UInt8(ascii: "a") + UInt8(index % 26))) + name
            index /= 26
        } while index > 0
        return name
    }

    // MARK: - Measuring

    private func measure(tenants: [UUID], runs: Int) async throws -> WorkersPhaseResult {
        let tenants = PostgresValue.uuidArray(tenants)
        let totals = try await store.pool.query(
            """
            SELECT count(*) FILTER (WHERE event_type IN ('StepFinished', 'StepFailed')),
                   count(*) FILTER (WHERE event_type = 'StepFailed'),
                   count(*) FILTER (WHERE event_type = 'RunFinished'),
                   count(*) FILTER (WHERE event_type NOT IN ('TenantCreated', 'VendorSecretSealed', 'FlowLimitsSet')),
                   extract(epoch FROM max(recorded_at) FILTER (WHERE event_type = 'RunFinished')
                                     - min(recorded_at) FILTER (WHERE event_type = 'StepStarted'))::float8
            FROM events WHERE tenant_id = ANY($1)
            """, [tenants])
        guard let row = totals.first, try row.int(2) == runs else {
            throw ValidationError("not every run has its RunFinished")
        }
        let latency = try await store.pool.query(
            """
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d)::float8, percentile_cont(0.99) WITHIN GROUP (ORDER BY d)::float8
            FROM (SELECT extract(epoch FROM f.recorded_at - s.recorded_at)::float8 AS d
                  FROM events s JOIN events f ON f.stream_id = s.stream_id AND f.event_type = 'RunFinished'
                  WHERE s.tenant_id = ANY($1) AND s.event_type = 'RunStarted') AS runs
            """, [tenants])
        // recorded_at is the appending transaction's start: StepStarted's is the claim's, StepFinished's the commit's.
        let steps = try await store.pool.query(
            """
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM next_at - recorded_at))
                       FILTER (WHERE event_type = 'StepStarted' AND next_type IN ('StepFinished', 'StepFailed'))::float8,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM next_at - recorded_at))
                       FILTER (WHERE event_type IN ('StepFinished', 'StepFailed') AND next_type = 'StepStarted')::float8
            FROM (SELECT event_type, recorded_at, lead(recorded_at) OVER w AS next_at, lead(event_type) OVER w AS next_type
                  FROM events WHERE tenant_id = ANY($1) AND event_type IN ('StepStarted', 'StepFinished', 'StepFailed')
                  WINDOW w AS (PARTITION BY stream_id ORDER BY stream_version)) AS steps
            """, [tenants])
        return WorkersPhaseResult(
            runs: runs, steps: try row.int(0), failedSteps: try row.int(1), events: try row.int(3),
            wallSeconds: try row.double(4),
            latencyP50: try latency.first?.double(0) ?? 0, latencyP99: try latency.first?.double(1) ?? 0, windows: [],
            inFlight: [], claimed: 0,
            fenced: 0, claimToCommit: try steps.first?.double(0) ?? 0,
            commitToNextClaim: try steps.first?.double(1) ?? 0)
    }

    /// The most starts of one key of these tenants within any `seconds`-long window: the claim counts the starts
    /// in (now − seconds, now], so the window is `seconds` less a microsecond (timestamps' resolution) before
    /// each start, and the start itself.
    private func mostStarts(vendor: Vendor, tenants: [UUID], seconds: Int) async throws -> Int {
        try await store.pool.withConnection { connection in
            try await connection.withTransaction(begin: Self.operatorBegin) {
                try await connection.query(
                    """
                    SELECT coalesce(max(n), 0)::int8 FROM (
                        SELECT count(*) OVER (PARTITION BY tenant_id, fingerprint ORDER BY started_at
                                              RANGE BETWEEN $3::text::interval PRECEDING AND CURRENT ROW) AS n
                        FROM flow_starts WHERE vendor = $1 AND tenant_id = ANY($2)) AS windows
                    """, [.string(vendor.rawValue), .uuidArray(tenants), .string("\(seconds) seconds -1 microsecond")]
                ).first?.int(0) ?? 0
            }
        }
    }

    /// The physical reference: as many rows as the phase wrote, INSERTed as they are into a table like
    /// `events`, 100 rows a statement, by 4 writers.
    func rawInsertSeconds(events: Int) async throws -> Double {
        try await store.pool.query("DROP TABLE IF EXISTS bench_raw_events")
        try await store.pool.query("CREATE TABLE bench_raw_events (LIKE events INCLUDING ALL)")
        let raw = RawInsert(payload: try benchPayload(catalog: store.catalog))
        let statements = (events + 99) / 100
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<4 {
                group.addTask {
                    let stream = "run-" + UUID().lowercased
                    var version: Int64 = 0
                    for _ in stride(from: writer, to: statements, by: 4) {
                        try await raw.insert(store: store, stream: stream, from: version + 1, batch: 100)
                        version += 100
                    }
                }
            }
            try await group.waitForAll()
        }
        return (ContinuousClock.now - start).seconds
    }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
