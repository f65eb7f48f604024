import Foundation
import Synchronization
import Synthetic
import TestSupport
import Testing

@testable import Events
@testable import Projections

@Suite("Projections: rebuild", .timeLimit(.minutes(5)))
struct RebuildTests {
    private func appendRuns(_ store: EventStore, count: Int) async throws {
        try await store.append(
            try (0..<count).map { _ in try Fixtures.runStarted() }, to: .run(UUID()), tenantID: nil, expected: .noStream
        )
    }

    @Test(
        "a rebuild while appends continue: the swapped-in tables hold every event, counted once, and the runner goes on"
    )
    func rebuildUnderLoad() async throws {
        try await TestDatabase.withStore { store, _ in
            let projection = CountingProjection(name: "rebuilt")
            for _ in 0..<20 { try await appendRuns(store, count: 25) }
            let runner = Task {
                await ProjectionRunner(
                    store: store, projections: [projection], options: ProjectionRunner.Options.forTests
                )
                .run()
            }
            defer { runner.cancel() }
            // The default deadline: a full suite on two cores held this runner's first 500 events past 60 s.
            try await Eventually.wait(
                "the live projection",
                state: {
                    "counted \((try? await store.count("rebuilt", "RunStarted")).map(String.init) ?? "nothing yet") of 500"
                }
            ) {
                try await store.count("rebuilt", "RunStarted") == 500
            }

            let appended = Mutex(500)
            let appender = Task {
                for _ in 0..<40 {
                    try await appendRuns(store, count: 5)
                    appended.withLock { $0 += 5 }
                    try await Task.sleep(for: .milliseconds(5))
                }
            }
            let outcome = try await ProjectionRebuilder(store: store, batchSize: 50).rebuild(projection)
            #expect(outcome.swapped)
            #expect(!outcome.resumed)
            try await appender.value
            let total = appended.withLock { $0 }
            #expect(total == 700)
            try await Eventually.wait("every event after the swap") {
                try await store.count("rebuilt", "RunStarted") == Int64(total)
            }
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await store.count("rebuilt", "RunStarted") == Int64(total), "nothing counted twice")
            #expect(try await store.checkpoint("rebuilt")?.status == "running")
            let leftovers = try await store.pool.query(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'tally_rebuild'"
            ).first?.int64(0)
            #expect(leftovers == 0)
        }
    }

    @Test(
        "verify swaps an equal rebuild, and lists the differences and swaps nothing when the live rows were tampered with"
    )
    func verify() async throws {
        try await TestDatabase.withStore { store, _ in
            let projection = CountingProjection(name: "verified")
            try await appendRuns(store, count: 30)
            try await store.append(
                [try Fixtures.usage(tenant: UUID(), calls: 1)], to: .usage(tenant: UUID()), tenantID: nil,
                expected: .any)
            let runner = Task {
                await ProjectionRunner(
                    store: store, projections: [projection], options: ProjectionRunner.Options.forTests
                )
                .run()
            }
            try await Eventually.wait("the live projection") { try await store.count("verified", "UsageRecorded") == 1 }
            runner.cancel()
            await runner.value

            let clean = try await ProjectionRebuilder(store: store).rebuild(projection, verify: true)
            #expect(clean.swapped && clean.differences.isEmpty)

            try await store.pool.withTransaction { connection in
                try await connection.execute(
                    "SET LOCAL tally.operator = 'on'; UPDATE verified SET n = n + 5 WHERE event_type = 'RunStarted'")
            }
            let tampered = try await ProjectionRebuilder(store: store).rebuild(projection, verify: true)
            #expect(!tampered.swapped)
            #expect(Set(tampered.differences.map(\.side)) == ["live only", "rebuilt only"])
            #expect(tampered.differences.allSatisfy { $0.table == "verified" && $0.row.contains("RunStarted") })
            #expect(try await store.count("verified", "RunStarted") == 35, "the live table is untouched")

            let repaired = try await ProjectionRebuilder(store: store).rebuild(projection)
            #expect(repaired.swapped)
            #expect(try await store.count("verified", "RunStarted") == 30)
        }
    }

    @Test("an interrupted rebuild resumes where it stopped instead of starting over")
    func resume() async throws {
        try await TestDatabase.withStore { store, _ in
            let projection = CountingProjection(name: "resumed")
            for _ in 0..<10 { try await appendRuns(store, count: 30) }
            // A transaction of a parallel test may hold the feed's horizon; an empty page would end the rebuild early.
            try await TestDatabase.settle(store)
            let interrupted = Task {
                try await ProjectionRebuilder(store: store, batchSize: 20) { progress in
                    if progress.eventsApplied >= 100 { withUnsafeCurrentTask { $0?.cancel() } }
                }.rebuild(projection)
            }
            await #expect(throws: CancellationError.self) { try await interrupted.value }
            let position = try await store.pool.query(
                "SELECT events_applied FROM projection_rebuilds WHERE projection = 'resumed'"
            ).first?.int64(0)
            #expect((100..<300).contains(position ?? 0))

            let outcome = try await ProjectionRebuilder(store: store, batchSize: 20).rebuild(projection)
            #expect(outcome.resumed)
            #expect(outcome.eventsApplied == 300)
            #expect(try await store.count("resumed", "RunStarted") == 300)
        }
    }

    @Test("one pass rebuilds projections that stand at different positions, each event once for each")
    func onePassFromDifferentPositions() async throws {
        try await TestDatabase.withStore { store, _ in
            let resumed = CountingProjection(name: "pass_resumed")
            let fresh = CountingProjection(name: "pass_fresh")
            for _ in 0..<10 { try await appendRuns(store, count: 30) }
            try await TestDatabase.settle(store)
            let interrupted = Task {
                try await ProjectionRebuilder(store: store, batchSize: 20) { progress in
                    if progress.eventsApplied >= 100 { withUnsafeCurrentTask { $0?.cancel() } }
                }.rebuild(resumed)
            }
            await #expect(throws: CancellationError.self) { try await interrupted.value }

            let outcomes = try await ProjectionRebuilder(store: store, batchSize: 20).rebuild(
                [fresh, resumed], verify: false)
            #expect(outcomes.map(\.projection) == ["pass_fresh", "pass_resumed"])
            #expect(outcomes.map(\.resumed) == [false, true])
            #expect(outcomes.allSatisfy { $0.swapped && $0.eventsApplied == 300 })
            #expect(try await store.count("pass_resumed", "RunStarted") == 300)
            #expect(try await store.count("pass_fresh", "RunStarted") == 300)
        }
    }

    @Test("the CLI rebuilds every projection and refuses unknown names")
    func cli() async throws {
        try await TestDatabase.withStore { store, url in
            var history = SyntheticHistory(seed: 7)
            for append in try history.tenant(runs: 5) { try await store.append([append]) }
            let result = try await CLI.run(["projections", "rebuild", "--all", "--verify", "--database-url", url])
            #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
            for projection in ProductProjections.all {
                #expect(result.stdout.contains("\(projection.name): rebuilt from"))
            }
            let status = try await CLI.run(["projections", "status", "--database-url", url])
            #expect(status.status == 0, "\(status.stdout)")
            let unknown = try await CLI.run(["projections", "rebuild", "nope", "--database-url", url])
            #expect(unknown.status == 64)
            #expect(unknown.stderr.contains("no projection is called nope"))
        }
    }
}

@Suite("Projections: determinism", .timeLimit(.minutes(5)))
struct DeterminismTests {
    @Test("every event of a synthetic history decodes to the same value with the payload decoder as with JSONDecoder")
    func payloadDecoderAgrees() throws {
        var history = SyntheticHistory(seed: 11)
        var events: [EventData] = []
        for index in 0..<12 { events += try history.tenant(runs: 20, erased: index == 11).flatMap(\.events) }
        events.append(try Fixtures.usage(tenant: UUID(), calls: 3))
        #expect(Set(events.map(\.type)) == Set(EventCatalog.tally.eventTypes))
        func agrees<E: DomainEvent>(_ type: E.Type, _ json: [UInt8]) throws -> Bool {
            try PayloadDecoder().decode(E.self, from: json)
                == EventCatalog.makeDecoder().decode(E.self, from: Data(json))
        }
        for event in events {
            let type = try #require(EventCatalog.tally.eventType(named: event.type))
            #expect(try agrees(type, event.json), "\(event.type): \(String(decoding: event.json, as: UTF8.self))")
        }
    }

    @Test(
        "about 100,000 events applied live in small batches equal the same history rebuilt from scratch, table by table"
    )
    func liveEqualsRebuilt() async throws {
        try await TestDatabase.withStore(maxConnections: 8) { store, _ in
            var history = SyntheticHistory(seed: 2026)
            var total = 0
            var tenants = 0
            while total < 100_000 {
                let appends = try history.tenant(runs: 40, erased: tenants % 50 == 49)
                total += appends.reduce(0) { $0 + $1.events.count }
                tenants += 1
                try await store.append(appends)
            }
            let types = try await store.pool.query("SELECT count(DISTINCT event_type) FROM events").first?.int64(0)
            #expect(types == Int64(store.catalog.eventTypes.count), "every event type is in the history")

            let options = ProjectionRunner.Options(
                batchSize: 37, pollInterval: .milliseconds(50), leadershipRetry: .milliseconds(50))
            let runner = Task {
                await ProjectionRunner(store: store, projections: ProductProjections.all, options: options).run()
            }
            try await Eventually.wait("every projection to catch up", timeout: .seconds(600)) {
                try await ProjectionStatus.all(ProductProjections.all, store: store).allSatisfy {
                    $0.state == .running && $0.lagEvents == 0
                }
            }
            runner.cancel()
            await runner.value

            // All in one pass, as `tally projections rebuild --all` does: each event decoded once for every projection.
            let outcomes = try await ProjectionRebuilder(store: store, batchSize: 5000).rebuild(
                ProductProjections.all, verify: true)
            #expect(outcomes.map(\.projection) == ProductProjections.all.map(\.name))
            for outcome in outcomes {
                #expect(outcome.differences.isEmpty, "\(outcome.projection): \(outcome.differences.prefix(3))")
                #expect(outcome.swapped)
            }
            #expect(
                try await store.pool.query("SELECT count(*) FROM workflow_runs").first?.int64(0) == Int64(tenants * 40))
        }
    }
}
