import Foundation
import HTTPTypes
import Synchronization
import TestSupport
import Testing

@testable import API
@testable import Events
@testable import Projections

/// Checks over the log itself.
enum FeedInvariant {
    /// Events that sort in the feed before the previous version of their own stream (there must be none).
    static func inversions(_ store: EventStore) async throws -> Int {
        try await store.pool.query(
            """
            SELECT count(*) FROM (
                SELECT tx_id, global_position, lag(tx_id) OVER w AS before_tx, lag(global_position) OVER w AS before_position
                FROM events WINDOW w AS (PARTITION BY stream_id ORDER BY stream_version)
            ) ordered
            WHERE (before_tx, before_position) > (tx_id, global_position)
            """
        ).first?.int(0) ?? -1
    }

    /// Streams whose versions are not 1...n.
    static func gaps(_ store: EventStore) async throws -> Int {
        try await store.pool.query(
            "SELECT count(*) FROM (SELECT stream_id FROM events GROUP BY stream_id HAVING max(stream_version) <> count(*)) gaps"
        ).first?.int(0) ?? -1
    }
}

@Suite("Event store: every stream's order in the feed, and a horizon of this database's own", .timeLimit(.minutes(5)))
struct FeedOrderTests {
    /// A transaction that takes its id now (with a write to a stream of its own) and appends later.
    /// The transactions these tests hold open on purpose outlive Tally's idle-in-transaction timeout on a
    /// loaded machine; the server must not end them.
    static let holdOpen = "SET idle_in_transaction_session_timeout = 0;"

    private static func olderTransaction(_ store: EventStore, url: String) async throws -> PostgresConnection {
        let connection = try await PostgresConnection.connect(PostgresConfiguration(url: url))
        try await connection.execute("\(holdOpen) BEGIN")
        _ = try await store.append(
            [
                StreamAppend(
                    stream: .run(UUID()), tenantID: nil, expected: .noStream, events: [try Fixtures.runStarted()])
            ], on: connection)
        return connection
    }

    @Test(
        "an append from a transaction older than its stream's last append is refused as a serialization failure; a new one succeeds"
    )
    func olderTransactionIsRefused() async throws {
        try await TestDatabase.withStore { store, url in
            let stream = StreamName.run(UUID())
            try await store.append([try Fixtures.runStarted()], to: stream, tenantID: nil, expected: .noStream)
            let older = try await Self.olderTransaction(store, url: url)
            defer { older.close() }
            // A newer transaction appends version 2 and commits.
            try await store.append([try Fixtures.runStarted()], to: stream, tenantID: nil, expected: .exactly(1))
            // The older one sees version 2 (READ COMMITTED) and appends version 3, which would sort before it.
            await #expect {
                _ = try await store.append(
                    [
                        StreamAppend(
                            stream: stream, tenantID: nil, expected: .exactly(2), events: [try Fixtures.runStarted()])
                    ], on: older)
            } throws: { error in
                let error = error as? EventsError
                return error?.code == .serializationFailure && error?.sqlState == "40001"
                    && error?.stream == stream.rawValue
            }
            try await older.execute("ROLLBACK")
            #expect(try await store.version(of: stream) == 2, "nothing of the refused transaction is in the log")

            // The same work in a new transaction goes through.
            let connection = try await PostgresConnection.connect(PostgresConfiguration(url: url))
            defer { connection.close() }
            let result = try await store.retryingSerializationFailures {
                try await connection.withTransaction {
                    try await store.append(
                        [
                            StreamAppend(
                                stream: stream, tenantID: nil, expected: .exactly(2),
                                events: [try Fixtures.runStarted()])
                        ], on: connection)
                }
            }
            #expect(result[0].streamVersion == 3)
            #expect(try await FeedInvariant.inversions(store) == 0)
        }
    }

    @Test(
        "without the database's order check the same writers put a stream out of order, and the check over the log finds it"
    )
    func theCheckIsLoadBearing() async throws {
        try await TestDatabase.withStore { store, url in
            try await store.pool.query("ALTER TABLE streams DISABLE TRIGGER streams_order")
            let stream = StreamName.run(UUID())
            try await store.append([try Fixtures.runStarted()], to: stream, tenantID: nil, expected: .noStream)
            let older = try await Self.olderTransaction(store, url: url)
            defer { older.close() }
            try await store.append([try Fixtures.runStarted()], to: stream, tenantID: nil, expected: .exactly(1))
            _ = try await store.append(
                [
                    StreamAppend(
                        stream: stream, tenantID: nil, expected: .exactly(2), events: [try Fixtures.runStarted()])
                ], on: older)
            try await older.execute("COMMIT")
            #expect(try await FeedInvariant.inversions(store) == 1)
        }
    }

    @Test("concurrent multi-statement transactions appending to shared streams keep every stream's order in the feed")
    func concurrentWritersKeepOrder() async throws {
        try await TestDatabase.withStore(maxConnections: 4) { store, url in
            let shared = (0..<3).map { _ in StreamName.run(UUID()) }
            let writers = 6
            let transactions = 25
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<writers {
                    group.addTask {
                        let connection = try await PostgresConnection.connect(PostgresConfiguration(url: url))
                        defer { connection.close() }
                        var random = SystemRandomNumberGenerator()
                        for index in 0..<transactions {
                            let target = shared[(writer + index) % shared.count]
                            var tries = 0
                            while true {
                                tries += 1
                                do {
                                    try await store.retryingSerializationFailures {
                                        try await connection.withTransaction {
                                            // Other work first (the transaction takes its id here), then a pause,
                                            // then the stream's version as READ COMMITTED sees it now.
                                            _ = try await store.append(
                                                [
                                                    StreamAppend(
                                                        stream: .run(UUID()), tenantID: nil, expected: .any,
                                                        events: [try Fixtures.runStarted()])
                                                ],
                                                on: connection)
                                            try await Task.sleep(
                                                for: .microseconds(Int.random(in: 0...3000, using: &random)))
                                            let version =
                                                try await connection.query(
                                                    "SELECT version FROM streams WHERE stream_id = $1",
                                                    [.string(target.rawValue)]
                                                ).first?.int64(0) ?? 0
                                            _ = try await store.append(
                                                [
                                                    StreamAppend(
                                                        stream: target, tenantID: nil,
                                                        expected: version == 0 ? .noStream : .exactly(version),
                                                        events: [try Fixtures.runStarted()])
                                                ], on: connection)
                                        }
                                    }
                                    break
                                } catch let error as EventsError where error.code == .conflict && tries < 200 {
                                    continue
                                }
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            var total: Int64 = 0
            for stream in shared { total += try await store.version(of: stream) }
            #expect(total == Int64(writers * transactions))
            #expect(try await FeedInvariant.inversions(store) == 0)
            #expect(try await FeedInvariant.gaps(store) == 0)
        }
    }

    @Test(
        "a write transaction open in another database or by a role that cannot append holds nothing back; one that may append does"
    )
    func horizonIsThisDatabases() async throws {
        try await TestDatabase.withStore(pollInterval: .milliseconds(50)) { store, url in
            try await store.append([try Fixtures.runStarted()], to: .run(UUID()), tenantID: nil, expected: .noStream)
            try await TestDatabase.settle(store)
            let (otherName, otherURL) = try await TestDatabase.create(migrated: false)
            let role = "tally_test_reader_" + UUID().uuidString.lowercased().prefix(8)
            try await TestDatabase.admin("CREATE ROLE \(role) LOGIN")
            let elsewhere = try await PostgresConnection.connect(PostgresConfiguration(url: otherURL))
            let stranger = try await PostgresConnection.connect(
                PostgresConfiguration(
                    url: url.replacingOccurrences(
                        of: "postgresql://\(TestDatabase.user)@", with: "postgresql://\(role)@")))
            defer {
                elsewhere.close()
                stranger.close()
            }
            do {
                try await elsewhere.execute(
                    "CREATE SCHEMA IF NOT EXISTS tally; \(Self.holdOpen) BEGIN; CREATE TABLE held (a int); INSERT INTO held VALUES (1)"
                )
                try await stranger.execute(
                    "\(Self.holdOpen) BEGIN; CREATE TEMP TABLE held (a int); INSERT INTO held VALUES (1)")
                let event = try Fixtures.runStarted()
                try await store.append([event], to: .run(UUID()), tenantID: nil, expected: .noStream)
                // Visible at once, unless the cluster's other transactions (other tests) end just as the horizon is
                // computed: those count until they are seen to belong elsewhere, for a moment.
                var page = try await store.readFeed(after: .start)
                try await Eventually.wait("the event committed after both transactions began", timeout: .seconds(1)) {
                    page = try await store.readFeed(after: .start)
                    return page.events.map(\.id).contains(event.id) && !page.isHeld
                }
                let holders = try await store.horizonHolders(limit: 1000).map(\.pid)
                #expect(!holders.contains(Int(elsewhere.backendPID)) && !holders.contains(Int(stranger.backendPID)))

                // A transaction of this database that may append holds the feed.
                let appender = try await Self.olderTransaction(store, url: url)
                defer { appender.close() }
                let later = try Fixtures.runStarted()
                try await store.append([later], to: .run(UUID()), tenantID: nil, expected: .noStream)
                let held = try await store.readFeed(after: page.next)
                #expect(held.events.isEmpty && held.isHeld)
                #expect(try await store.horizonHolders(limit: 1000).map(\.pid).contains(Int(appender.backendPID)))
                try await appender.execute("COMMIT")
                let released = try await store.readFeed(after: page.next)
                #expect(released.events.map(\.id).contains(later.id))
                try await elsewhere.execute("ROLLBACK")
                try await stranger.execute("ROLLBACK")
            } catch {
                stranger.close()
                await TestDatabase.drop(otherName)
                try? await TestDatabase.admin("DROP ROLE IF EXISTS \(role)")
                throw error
            }
            stranger.close()
            await TestDatabase.drop(otherName)
            try await TestDatabase.admin("DROP ROLE IF EXISTS \(role)")
        }
    }

    @Test(
        "with a write transaction open in another database, a command's read-after-write sees its change, without waiting for it"
    )
    func readAfterWriteBesideAnotherDatabase() async throws {
        var settings = APIHarness.settings()
        // Longer than any load makes a command wait, so that only a horizon held by the foreign transaction
        // (open throughout) could make the command reach it.
        settings.consistencyTimeout = .seconds(30)
        try await APIHarness.with(settings: settings) { _, client in
            // The runners are up and caught up (a first command saw its own write) before the clock starts.
            let warm = try await client.call(
                .post, "/v1/admin/tenants", token: APIHarness.operatorToken,
                json: #"{"name":"Warm","slug":"warm","plan":"pro"}"#)
            try await Eventually.wait("the first tenant") {
                try await client.call(
                    .get, "/v1/admin/tenants/\(warm.string("id") ?? "")", token: APIHarness.operatorToken
                ).status == .ok
            }
            let (otherName, otherURL) = try await TestDatabase.create(migrated: false)
            let elsewhere = try await PostgresConnection.connect(PostgresConfiguration(url: otherURL))
            do {
                try await elsewhere.execute(
                    "CREATE SCHEMA IF NOT EXISTS tally; \(Self.holdOpen) BEGIN; CREATE TABLE held (a int); INSERT INTO held VALUES (1)"
                )
                let started = ContinuousClock.now
                let created = try await client.call(
                    .post, "/v1/admin/tenants", token: APIHarness.operatorToken,
                    json: #"{"name":"Held","slug":"held","plan":"pro"}"#)
                let elapsed = ContinuousClock.now - started
                #expect(created.status == .created)
                // Alone it answers in well under a second (docs/benchmarks.md); a loaded suite on two cores can take
                // a few. A horizon held by the foreign transaction would take the whole consistency timeout.
                #expect(elapsed < .seconds(15), "the command waited \(elapsed) for its projection")
                let read = try await client.call(
                    .get, "/v1/admin/tenants/\(created.string("id") ?? "")", token: APIHarness.operatorToken)
                #expect(read.status == .ok && read.string("slug") == "held")
                try await elsewhere.execute("ROLLBACK")
            } catch {
                elsewhere.close()
                await TestDatabase.drop(otherName)
                throw error
            }
            elsewhere.close()
            await TestDatabase.drop(otherName)
        }
    }

    @Test("an idle filtered reader's read touches no more rows of the log than were appended since its last read")
    func idleReadsDoNotRescan() async throws {
        try await TestDatabase.withStore { store, url in
            let tenant = UUID()
            for _ in 0..<20 {
                try await store.append(
                    (0..<100).map { _ in try Fixtures.usage(tenant: tenant, calls: 1) }, to: .usage(tenant: tenant),
                    tenantID: tenant, expected: .any)
            }
            try await TestDatabase.settle(store)
            let connection = try await PostgresConnection.connect(PostgresConfiguration(url: url))
            defer { connection.close() }
            let filter = FeedFilter(types: ["RunStarted"])
            let first = try await store.readFeed(after: .start, limit: 100, filter: filter, on: connection)
            #expect(first.events.isEmpty && first.isComplete)
            let appended = 7
            try await store.append(
                (0..<appended).map { _ in try Fixtures.usage(tenant: tenant, calls: 1) }, to: .usage(tenant: tenant),
                tenantID: tenant, expected: .any)
            try await TestDatabase.settle(store)

            func rowsRead() async throws -> Int64 {
                try await connection.query(
                    """
                    SELECT coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0) FROM pg_stat_xact_user_tables WHERE relname = 'events'
                    """
                ).first?.int64(0) ?? -1
            }
            try await connection.execute("BEGIN")
            let before = try await rowsRead()
            let second = try await store.readFeed(after: first.next, limit: 100, filter: filter, on: connection)
            let read = try await rowsRead() - before
            // What the same read costs from the start of the log: the counters see every row a scan touches.
            let rescan = try await rowsRead()
            _ = try await store.readFeed(after: .start, limit: 100, filter: filter, on: connection)
            #expect(try await rowsRead() - rescan >= 2000)
            try await connection.execute("COMMIT")
            #expect(second.events.isEmpty && second.isComplete)
            // Rows fetched from the table by the read: the appended ones, and the probes at the end of the index that
            // say whether anything is held back (twice if another database's transaction made it look again).
            #expect(read <= 2 * Int64(appended) + 4, "read \(read) rows for \(appended) new ones")
            #expect(second.next >= first.next)
        }
    }

    @Test(
        "a stream written out of order before the database enforced it parks in a projection and is applied in version order"
    )
    func inversionHeals() async throws {
        try await TestDatabase.withStore(pollInterval: .milliseconds(50)) { store, url in
            try await store.pool.query("ALTER TABLE streams DISABLE TRIGGER streams_order")
            let catalog = store.catalog
            let tenant = UUID()
            let run = UUID()
            let definition = WorkflowDefinition(finders: [.prospeo, .findymail], validator: nil, maxAttempts: 3)
            try await store.append(
                [
                    try catalog.encode(
                        RunStarted(
                            runID: run, tenantID: tenant, workflowID: UUID(), definition: definition,
                            input: PersonInput(fullName: "Grace Hopper", domain: "navy.example"), batchID: nil)),
                    try catalog.encode(
                        StepScheduled(runID: run, step: 1, kind: .find, vendor: .prospeo, attempt: 1, notBefore: nil)),
                    try catalog.encode(StepStarted(runID: run, step: 1, attempt: 1, workerID: "w", fencingToken: 1)),
                    try catalog.encode(
                        StepFinished(
                            runID: run, step: 1, attempt: 1, vendor: .prospeo, outcome: .miss, email: nil,
                            validationStatus: nil)),
                ], to: .run(run), tenantID: tenant, expected: .noStream)
            // The claim's case: a transaction takes its id, a newer one schedules step 2, the older one starts it.
            let older = try await Self.olderTransaction(store, url: url)
            defer { older.close() }
            try await store.append(
                [
                    try catalog.encode(
                        StepScheduled(runID: run, step: 2, kind: .find, vendor: .findymail, attempt: 1, notBefore: nil))
                ],
                to: .run(run), tenantID: tenant, expected: .exactly(4))
            _ = try await store.append(
                [
                    StreamAppend(
                        stream: .run(run), tenantID: tenant, expected: .exactly(5),
                        events: [
                            try catalog.encode(
                                StepStarted(runID: run, step: 2, attempt: 1, workerID: "w", fencingToken: 2))
                        ])
                ], on: older)
            try await older.execute("COMMIT")
            #expect(try await FeedInvariant.inversions(store) == 1)

            let runner = ProjectionRunner(
                store: store, projections: [RunsProjection()], options: ProjectionRunner.Options.forTests)
            let running = Task { await runner.run() }
            defer { running.cancel() }
            try await Eventually.wait("step 2 to be started in workflow_progress") {
                try await store.pool.query(
                    "SELECT status FROM workflow_progress WHERE run_id = $1 AND step = 2", [.uuid(run)]
                ).first?.string(0) == "started"
            }
            let parked = try await store.parkedStreams()
            #expect(parked.isEmpty, "applied in version order once the earlier version arrived: \(parked)")
            #expect(try await store.checkpoint("workflow_runs")?.status == "running")
        }
    }
}
