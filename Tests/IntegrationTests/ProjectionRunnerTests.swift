import Foundation
import Synchronization
import Synthetic
import TestSupport
import Testing

@testable import Events
@testable import Projections

/// Counts events by type; applying any event twice would show in the counts.
struct CountingProjection: Projection {
    let name: String
    let version = 1
    let eventTypes: Set<String> = ["RunStarted", "UsageRecorded"]
    /// An event id this projection refuses, to stand in for a bug or a bad event.
    var failOn: UUID?
    /// While this holds true (or when it is nil), `failOn` is refused; set it to false to stand in for a fix.
    var failing: Fault? = nil

    /// A switch a test turns off to "fix" the cause of a failure while the runner keeps running.
    final class Fault: Sendable {
        private let on = Atomic<Bool>(true)
        var isOn: Bool { on.load(ordering: .acquiring) }
        func fix() { on.store(false, ordering: .releasing) }
    }

    var tables: [ProjectionTable] {
        [ProjectionTable(name: name, columns: "tenant_id uuid, event_type text PRIMARY KEY, n bigint NOT NULL")]
    }

    func apply(_ events: [RecordedEvent], in context: ProjectionContext) async throws {
        for event in events {
            if event.id == failOn, failing?.isOn ?? true {
                throw ProjectionsError(.unexpectedEvent, "refusing event \(event.globalPosition)")
            }
            try await context.execute(
                "INSERT INTO \(name) (event_type, n) VALUES ($1, 1) ON CONFLICT (event_type) DO UPDATE SET n = \(name).n + 1",
                [.string(event.type)])
        }
    }
}

extension EventStore {
    func count(_ table: String, _ type: String) async throws -> Int64 {
        try await pool.query("SELECT coalesce(sum(n), 0)::int8 FROM \(table) WHERE event_type = $1", [.string(type)])
            .first?.int64(0) ?? 0
    }

    func checkpoint(_ projection: String) async throws -> (
        status: String, error: String?, errorPosition: Int64?, position: Int64
    )? {
        guard
            let row = try await pool.query(
                "SELECT status, error, error_position, global_position FROM projection_checkpoints WHERE projection = $1",
                [.string(projection)]
            ).first
        else { return nil }
        return (try row.string(0), try row.optionalString(1), try row.optionalInt64(2), try row.int64(3))
    }
}

@Suite("Projections: the runner", .timeLimit(.minutes(5)))
struct ProjectionRunnerTests {
    @Test("tenants and api_keys follow the log")
    func readModels() async throws {
        try await TestDatabase.withStore { store, _ in
            let tenant = UUID()
            let key = UUID()
            let replacement = UUID()
            let catalog = store.catalog
            try await store.append(
                [
                    try catalog.encode(TenantCreated(tenantID: tenant, name: "Acme", slug: "acme", plan: "free")),
                    try catalog.encode(
                        PlanChanged(
                            tenantID: tenant, fromPlan: "free", toPlan: "pro", source: .operator, effectiveAt: Date())),
                    try catalog.encode(StripeCustomerLinked(tenantID: tenant, customerID: "cus_1")),
                    try catalog.encode(TenantSuspended(tenantID: tenant, reason: "unpaid", source: .stripe)),
                ], to: .tenant(tenant), tenantID: tenant, expected: .noStream)
            try await store.append(
                [
                    try catalog.encode(
                        KeyIssued(
                            keyID: key, tenantID: tenant, name: "ci", displayPrefix: "tly_ab", keyHash: "h1",
                            expiresAt: nil)),
                    try catalog.encode(
                        KeyRotated(keyID: key, tenantID: tenant, replacementKeyID: replacement, graceUntil: Date())),
                ],
                to: .apiKey(key), tenantID: tenant, expected: .noStream)
            try await store.append(
                [
                    try catalog.encode(
                        KeyIssued(
                            keyID: replacement, tenantID: tenant, name: "ci", displayPrefix: "tly_cd", keyHash: "h2",
                            expiresAt: nil))
                ],
                to: .apiKey(replacement), tenantID: tenant, expected: .noStream)

            let runner = ProjectionRunner(
                store: store, projections: [TenantsProjection(), APIKeysProjection()],
                options: ProjectionRunner.Options.forTests)
            let running = Task { await runner.run() }
            defer { running.cancel() }
            try await Eventually.wait("the keys projection") {
                try await store.pool.query("SELECT count(*) FROM api_keys").first?.int64(0) == 2
            }
            try await Eventually.wait("the tenants projection") {
                try await store.pool.query("SELECT status FROM tenants").first.map { try $0.string(0) } == "suspended"
            }
            let row = try #require(
                try await store.pool.query(
                    "SELECT plan, stripe_customer_id FROM tenants WHERE tenant_id = $1", [.uuid(tenant)]
                ).first)
            #expect(try row.string(0) == "pro")
            #expect(try row.string(1) == "cus_1")
            let keys = try await store.pool.query("SELECT key_id, status FROM api_keys ORDER BY created_at, status").map
            { (try $0.uuid(0), try $0.string(1)) }
            #expect(Set(keys.map(\.1)) == ["rotated", "active"])
        }
    }

    @Test("a runner stopped at any moment and restarted applies every event exactly once")
    func exactlyOnceAcrossRestarts() async throws {
        try await TestDatabase.withStore { store, _ in
            let projection = CountingProjection(name: "counting")
            let appender = Task {
                for batch in 0..<40 {
                    let events = try (0..<5).map { _ in try Fixtures.runStarted() }
                    try await store.append(events, to: .run(UUID()), tenantID: nil, expected: .noStream)
                    if batch.isMultiple(of: 10) { try await Task.sleep(for: .milliseconds(20)) }
                }
            }
            // Stop and restart the runner repeatedly, at arbitrary moments, while events keep arriving.
            for round in 0..<8 {
                let runner = ProjectionRunner(
                    store: store, projections: [projection], options: ProjectionRunner.Options.forTests)
                let running = Task { await runner.run() }
                try await Task.sleep(for: .milliseconds(30 + round * 17))
                running.cancel()
                await running.value
            }
            try await appender.value
            let runner = ProjectionRunner(
                store: store, projections: [projection], options: ProjectionRunner.Options.forTests)
            let running = Task { await runner.run() }
            defer { running.cancel() }
            try await Eventually.wait("all 200 events") { try await store.count("counting", "RunStarted") >= 200 }
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await store.count("counting", "RunStarted") == 200)
        }
    }

    @Test(
        "an event a projection cannot apply parks its stream: the error is visible, every other stream goes on, retry applies it once fixed"
    )
    func failureParksOneStream() async throws {
        try await TestDatabase.withStore { store, _ in
            let bad = try Fixtures.runStarted()
            let badStream = StreamName.run(UUID())
            for index in 0..<21 {
                let event = index == 10 ? bad : try Fixtures.runStarted()
                try await store.append(
                    [event], to: index == 10 ? badStream : .run(UUID()), tenantID: nil, expected: .noStream)
            }
            let fault = CountingProjection.Fault()
            let failing = CountingProjection(name: "failing", failOn: bad.id, failing: fault)
            let healthy = CountingProjection(name: "healthy")
            let runner = ProjectionRunner(
                store: store, projections: [failing, healthy], options: ProjectionRunner.Options.forTests)
            let running = Task { await runner.run() }
            defer { running.cancel() }
            try await Eventually.wait("every other stream to be applied") {
                try await store.count("failing", "RunStarted") == 20
            }
            let parked = try await store.parkedStreams()
            #expect(parked.map(\.stream) == [badStream.rawValue])
            #expect(parked.first?.reader == "failing")
            #expect(parked.first?.error.contains("refusing event") == true)
            #expect(parked.first?.eventType == "RunStarted")
            #expect(try await store.checkpoint("failing")?.status == "running", "the projection itself goes on")
            let status = try #require(try await ProjectionStatus.all([failing], store: store).first)
            #expect(status.state == .running && status.parkedStreams == 1)
            try await Eventually.wait("the healthy projection") { try await store.count("healthy", "RunStarted") == 21 }

            // Later events of other streams are applied; a later event of the parked stream is held back.
            try await store.append([try Fixtures.runStarted()], to: .run(UUID()), tenantID: nil, expected: .noStream)
            try await store.append([try Fixtures.runStarted()], to: badStream, tenantID: nil, expected: .exactly(1))
            try await Eventually.wait("the new stream") { try await store.count("failing", "RunStarted") == 21 }
            try await Eventually.wait("the held event to be counted") {
                try await store.parkedStreams().first?.heldEvents == 1
            }
            try await Eventually.wait("the healthy projection") { try await store.count("healthy", "RunStarted") == 23 }

            // A retry that fails again keeps the stream parked and says so.
            try await store.requestRetry(readers: ["failing"])
            try await Eventually.wait("the failed retry") { try await store.parkedStreams().first?.attempts == 1 }
            #expect(try await store.parkedStreams().first?.retryRequestedAt == nil)
            #expect(try await store.count("failing", "RunStarted") == 21)

            // Fixed: the retry applies the parked event and the held one, in order, once each.
            fault.fix()
            try await store.requestRetry()
            try await Eventually.wait("the retry to apply the stream") { try await store.parkedStreams().isEmpty }
            #expect(try await store.count("failing", "RunStarted") == 23)
            try await store.append([try Fixtures.runStarted()], to: badStream, tenantID: nil, expected: .exactly(2))
            try await Eventually.wait("the stream to be followed again") {
                try await store.count("failing", "RunStarted") == 24
            }
            #expect(try await store.parkedStreams().isEmpty)
        }
    }

    @Test("a projection stopped by an earlier Tally on an event parks that event's stream and runs again")
    func legacyFailedCheckpoint() async throws {
        try await TestDatabase.withStore { store, _ in
            let badStream = StreamName.run(UUID())
            let bad = try Fixtures.runStarted()
            try await store.append([try Fixtures.runStarted()], to: .run(UUID()), tenantID: nil, expected: .noStream)
            let result = try await store.append([bad], to: badStream, tenantID: nil, expected: .noStream)
            try await store.append([try Fixtures.runStarted()], to: .run(UUID()), tenantID: nil, expected: .noStream)
            // As an earlier Tally left it: stopped before the bad event, with the error.
            try await store.pool.query(
                """
                INSERT INTO projection_checkpoints (projection, version, status, error, error_position)
                VALUES ('counting', 1, 'failed', 'refusing event', $1)
                """, [.int64(result.globalPositions[0])])
            let runner = ProjectionRunner(
                store: store, projections: [CountingProjection(name: "counting", failOn: bad.id)],
                options: ProjectionRunner.Options.forTests)
            let running = Task { await runner.run() }
            defer { running.cancel() }
            try await Eventually.wait("the other events") { try await store.count("counting", "RunStarted") == 2 }
            #expect(try await store.parkedStreams().map(\.stream) == [badStream.rawValue])
            #expect(try await store.checkpoint("counting")?.status == "running")
        }
    }

    @Test("two runners for one projection: one applies, the other takes over when the first stops")
    func leadership() async throws {
        try await TestDatabase.withStore { store, url in
            let projection = CountingProjection(name: "led")
            // A second store is a second process: its own pool, its own sessions.
            let otherStore = EventStore(
                configuration: .init(databaseURL: url, maxConnections: 4, pollInterval: .milliseconds(50)))
            defer { otherStore.close() }
            let first = Task {
                await ProjectionRunner(
                    store: store, projections: [projection], options: ProjectionRunner.Options.forTests
                ).run()
            }
            try await Eventually.wait("a leader") { try await Self.leaderCount(store) == 1 }
            let second = Task {
                await ProjectionRunner(
                    store: otherStore, projections: [projection], options: ProjectionRunner.Options.forTests
                ).run()
            }
            defer { second.cancel() }

            try await store.append(
                try (0..<30).map { _ in try Fixtures.runStarted() }, to: .run(UUID()), tenantID: nil,
                expected: .noStream)
            try await Eventually.wait("30 events") { try await store.count("led", "RunStarted") == 30 }
            #expect(try await Self.leaderCount(store) == 1)

            first.cancel()
            await first.value
            try await store.append(
                try (0..<30).map { _ in try Fixtures.runStarted() }, to: .run(UUID()), tenantID: nil,
                expected: .noStream)
            try await Eventually.wait("the second runner to take over") {
                try await store.count("led", "RunStarted") == 60
            }
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await store.count("led", "RunStarted") == 60)
        }
    }

    /// Runners holding the lease of the projection `led` (at most one: the lease is a row).
    static func leaderCount(_ store: EventStore) async throws -> Int64 {
        try await store.pool.query(
            "SELECT count(*) FROM leader_leases WHERE name = 'projection:led' AND expires_at > clock_timestamp()"
        ).first?.int64(0) ?? 0
    }

    @Test("the gap case end to end: an event whose transaction commits late still reaches the projection")
    func lateCommit() async throws {
        try await TestDatabase.withStore { store, url in
            let runner = ProjectionRunner(
                store: store, projections: [CountingProjection(name: "gap")], options: ProjectionRunner.Options.forTests
            )
            let running = Task { await runner.run() }
            defer { running.cancel() }
            try await Eventually.wait("the runner to start") { try await store.checkpoint("gap") != nil }
            let late = try await PostgresConnection.connect(PostgresConfiguration(url: url))
            defer { late.close() }
            try await late.execute("BEGIN")
            _ = try await store.append(
                [
                    StreamAppend(
                        stream: .run(UUID()), tenantID: nil, expected: .noStream, events: [try Fixtures.runStarted()])
                ], on: late)
            try await store.append([try Fixtures.runStarted()], to: .run(UUID()), tenantID: nil, expected: .noStream)
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await store.count("gap", "RunStarted") == 0, "nothing passes the open transaction")
            try await late.execute("COMMIT")
            store.appended()
            try await Eventually.wait("both events") { try await store.count("gap", "RunStarted") == 2 }
        }
    }

    @Test("row-level security: a session of tenant A reads none of tenant B's rows")
    func rowLevelSecurity() async throws {
        try await TestDatabase.withStore { store, _ in
            let tenants = [UUID(), UUID()]
            for (index, tenant) in tenants.enumerated() {
                try await store.append(
                    [try Fixtures.tenantCreated(tenant, name: "Tenant\(index)")], to: .tenant(tenant), tenantID: tenant,
                    expected: .noStream)
                let key = UUID()
                try await store.append(
                    [
                        try store.catalog.encode(
                            KeyIssued(
                                keyID: key, tenantID: tenant, name: "k", displayPrefix: "tly_\(index)",
                                keyHash: "hash\(index)", expiresAt: nil))
                    ],
                    to: .apiKey(key), tenantID: tenant, expected: .noStream)
            }
            let runner = ProjectionRunner(
                store: store, projections: [TenantsProjection(), APIKeysProjection()],
                options: ProjectionRunner.Options.forTests)
            let running = Task { await runner.run() }
            defer { running.cancel() }
            try await Eventually.wait("both projections") {
                try await store.pool.query("SELECT (SELECT count(*) FROM tenants) + (SELECT count(*) FROM api_keys)")
                    .first?.int64(0) == 4
            }
            for table in ["tenants", "api_keys"] {
                for (index, tenant) in tenants.enumerated() {
                    let seen = try await store.pool.withTransaction { connection in
                        try await connection.execute("SET LOCAL ROLE tally_app")
                        try await connection.query(
                            "SELECT set_config('tally.tenant_id', $1, true)", [.string(tenant.lowercased)])
                        return try await connection.query("SELECT tenant_id FROM \(table)").map { try $0.uuid(0) }
                    }
                    #expect(seen == [tenants[index]], "\(table) for tenant \(index)")
                }
                // No tenant set: nothing at all, never everything.
                let unscoped = try await store.pool.withTransaction { connection in
                    try await connection.execute("SET LOCAL ROLE tally_app")
                    return try await connection.query("SELECT count(*) FROM \(table)").first?.int64(0)
                }
                #expect(unscoped == 0)
                // A tenant cannot write another tenant's row either.
                await #expect(throws: EventsError.self) {
                    try await store.pool.withTransaction { connection in
                        try await connection.execute("SET LOCAL ROLE tally_app")
                        try await connection.query(
                            "SELECT set_config('tally.tenant_id', $1, true)", [.string(tenants[0].lowercased)])
                        try await connection.query("UPDATE tenants SET tenant_id = $1", [.uuid(tenants[1])])
                    }
                }
            }
        }
    }
}

@Suite("Projections: read models", .timeLimit(.minutes(5)))
struct ReadModelTests {
    @Test("a history with every event type reaches every read model, and each row matches its stream")
    func everyEventType() async throws {
        try await TestDatabase.withStore { store, _ in
            var history = SyntheticHistory(seed: 42)
            var appends: [StreamAppend] = []
            for index in 0..<4 { appends += try history.tenant(runs: 30, erased: index == 3) }
            let types = Set(appends.flatMap { $0.events.map(\.type) })
            #expect(types == Set(store.catalog.eventTypes), "the history covers every event type")
            for chunk in stride(from: 0, to: appends.count, by: 50) {
                try await store.append(Array(appends[chunk..<min(chunk + 50, appends.count)]))
            }
            let total = appends.reduce(0) { $0 + $1.events.count }

            let options = ProjectionRunner.Options(
                batchSize: 25, pollInterval: .milliseconds(50), leadershipRetry: .milliseconds(50))
            let runner = ProjectionRunner(store: store, projections: ProductProjections.all, options: options)
            let running = Task { await runner.run() }
            defer { running.cancel() }
            // Batches of 25 (many batch boundaries): on a loaded machine that is a couple of hundred
            // transactions per projection, hence the long deadline.
            try await Eventually.wait(
                "every projection to catch up", timeout: .seconds(150),
                state: {
                    let statuses = (try? await ProjectionStatus.all(ProductProjections.all, store: store)) ?? []
                    let horizon =
                        (try? await store.pool.query(
                            "SELECT tally_feed_horizon()::text, pg_current_snapshot()::text, (SELECT max(tx_id) FROM events)::text"
                        ).first.map {
                            "horizon \(try $0.string(0)), snapshot \(try $0.string(1)), newest \(try $0.string(2))"
                        }) ?? "?"
                    let holders = (try? await store.horizonHolders()) ?? []
                    return statuses.map {
                        "\($0.name) \($0.state.rawValue) lag \($0.lagEvents) applied \($0.eventsApplied)"
                    }
                    .joined(separator: "; ") + "\n\(horizon)\nholders: \(holders)"
                }
            ) {
                let statuses = try await ProjectionStatus.all(ProductProjections.all, store: store)
                return statuses.allSatisfy { $0.state == .running && $0.lagEvents == 0 }
            }
            let statuses = try await ProjectionStatus.all(ProductProjections.all, store: store)
            #expect(statuses.reduce(0) { $0 + $1.eventsApplied } >= Int64(total) / 2)

            let count = { (sql: String) in try await store.pool.query(sql).first?.int64(0) ?? -1 }
            #expect(try await count("SELECT count(*) FROM tenants") == 4)
            #expect(try await count("SELECT count(*) FROM tenants WHERE status = 'erased' AND name = ''") == 1)
            #expect(try await count("SELECT count(*) FROM workflow_runs WHERE status = 'cancelled'") >= 4)
            #expect(try await count("SELECT count(*) FROM api_keys") == 12)
            #expect(try await count("SELECT count(*) FROM api_keys WHERE status = 'active'") == 4)
            #expect(try await count("SELECT count(*) FROM vendor_secrets") == 12)
            #expect(try await count("SELECT count(*) FROM workflows WHERE name = 'waterfall v2'") == 4)
            #expect(try await count("SELECT count(*) FROM workflow_runs") == 120)
            #expect(try await count("SELECT count(*) FROM workflow_runs WHERE status = 'running'") == 0)
            let runsCounted = try await count("SELECT sum(quantity)::int8 FROM usage_counters WHERE meter = 'runs'")
            #expect(runsCounted == 120)
            let billed = appends.flatMap(\.events).filter { $0.type == VendorCallBilled.eventType }.count
            #expect(
                try await count("SELECT sum(quantity)::int8 FROM usage_counters WHERE meter LIKE 'vendor_calls:%'")
                    == Int64(billed))
            #expect(try await count("SELECT sum(credits)::int8 FROM workflow_runs") == Int64(billed))
            let attempts = appends.flatMap(\.events).filter { $0.type == StepScheduled.eventType }.count
            #expect(try await count("SELECT count(*) FROM workflow_progress") == Int64(attempts))
            #expect(
                try await count("SELECT count(*) FROM workflow_progress WHERE status IN ('scheduled', 'started')") == 0)
            #expect(
                try await count("SELECT count(*) FROM billing_plan_segments") == 4 + 4,
                "each tenant's first plan, then pro")
            #expect(
                try await count("SELECT sum(quantity)::int8 FROM billing_usage WHERE meter = 'runs'") == 120,
                "billing counts what usage counts")

            // Row-level security on every table of every read model: a tenant's session sees exactly its own rows.
            let tenants = try await store.pool.query("SELECT tenant_id FROM tenants").map { try $0.uuid(0) }
            for table in ProductProjections.all.flatMap(\.tables).map(\.name) {
                for tenant in tenants {
                    let own = try await count("SELECT count(*) FROM \(table) WHERE tenant_id = '\(tenant.lowercased)'")
                    let seen = try await store.pool.withTransaction { connection in
                        try await connection.execute("SET LOCAL ROLE tally_app")
                        try await connection.query(
                            "SELECT set_config('tally.tenant_id', $1, true)", [.string(tenant.lowercased)])
                        return try await connection.query(
                            "SELECT count(*) FILTER (WHERE tenant_id = $1), count(*) FROM \(table)", [.uuid(tenant)]
                        ).first.map { (try $0.int64(0), try $0.int64(1)) }
                    }
                    #expect(seen?.0 == own && seen?.1 == own, "\(table) as tenant \(tenant.lowercased)")
                }
            }
        }
    }
}
