import Foundation
import Synchronization
import Synthetic
import TestSupport
import Testing

@testable import Events
@testable import Projections

#if canImport(Glibc)
    import Glibc
#endif

/// Two `tally serve --no-api` processes against one database: the projection runner's leadership seen from
/// outside, through the database's own view of sessions, locks and committed writes.
@Suite("Projections: runners in two processes", .timeLimit(.minutes(5)))
struct ProjectionTakeoverTests {
    static let environment = CLI.environment([
        "TALLY_OPERATOR_TOKEN": String(repeating: "t", count: 40),
        "TALLY_KEY_PEPPER": "takeover-test-pepper-0123456789abcdef",
        // A killed leader is replaced once its lease expires: short, so that the takeover bounds below hold, yet
        // long enough that a live leader on a loaded machine renews in time (4 s was not, under the full suite).
        "TALLY_LEADER_LEASE_SECONDS": "\(leaseSeconds)",
    ])
    static let leaseSeconds = 6

    @Test(
        "two runners in two processes: only one applies; the other takes over when the first is killed mid-work, and every count is exact"
    )
    func takeoverAfterKill() async throws {
        try await TestDatabase.withStore { store, url in
            try await TestDatabase.createProjectionTables(url)
            try await Self.recordCheckpointWrites(store)
            let names = Set(ProductProjections.all.map(\.name))
            let first = try Runner(url: url)
            var second: Runner?
            var appender: Appender?
            do {
                try await Eventually.wait("the first process to lead every projection") {
                    try await Self.leaders(store) == Dictionary(uniqueKeysWithValues: names.map { ($0, first.pid) })
                }
                let standby = try Runner(url: url)
                second = standby
                try await Eventually.wait("the second process to stand by for every projection") {
                    try await Self.sessions(store).filter { $0.pid == standby.pid }.count == names.count
                }

                let load = Appender(store: store)
                appender = load
                try await Eventually.wait(
                    "the first process to apply while events arrive", state: { await Self.state(store) }
                ) {
                    Set(try await Self.writes(store).filter { $0.pid == first.pid }.map(\.projection)) == names
                }
                // Both processes are up, one session each per projection, and only the first holds the locks.
                #expect(
                    try await Self.leaders(store) == Dictionary(uniqueKeysWithValues: names.map { ($0, first.pid) }))
                #expect(try await Self.sessions(store).filter { $0.pid == standby.pid }.count == names.count)
                #expect(
                    try await Self.writes(store).allSatisfy { $0.pid == first.pid }, "only the leader committed batches"
                )

                // Killed in the middle of a batch, while events keep coming: a lock held here stops the leader's
                // usage_counters batch inside its transaction, after it locked its checkpoint row.
                let blocker = try await PostgresConnection.connect(PostgresConfiguration(url: url))
                defer { blocker.close() }
                try await blocker.execute("BEGIN; LOCK TABLE usage_counters IN EXCLUSIVE MODE")
                let blockedSession = "tally-projection-usage_counters pid=\(first.pid)"
                try await Eventually.wait(
                    "the leader's usage_counters batch to wait inside its transaction",
                    state: { await Self.state(store) }
                ) {
                    try await store.pool.query(
                        "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND wait_event_type = 'Lock'",
                        [.string(blockedSession)]
                    ).count == 1
                }
                let killedAt = ContinuousClock.now
                first.kill()
                #expect(try await first.exit.value.status == 128 + SIGKILL)
                // The killed leader's server session notices its client is gone even while its statement waits
                // (its transaction and the checkpoint's row lock end), and its leases pass on once they expire
                // (6 s here), before the table lock here is released.
                try await Eventually.wait(
                    "the second process to lead every projection", timeout: .seconds(Self.leaseSeconds + 6)
                ) {
                    try await Self.leaders(store) == Dictionary(uniqueKeysWithValues: names.map { ($0, standby.pid) })
                }
                let takeover = ContinuousClock.now - killedAt
                #expect(takeover < .seconds(Self.leaseSeconds + 6))
                try await blocker.execute("COMMIT")
                try await Eventually.wait("the second process to apply what arrives after the kill") {
                    Set(try await Self.writes(store).filter { $0.pid == standby.pid }.map(\.projection)) == names
                }
                let expected = try await load.stop()
                appender = nil
                try await TestDatabase.settle(store)
                try await Eventually.wait("every projection to catch up") {
                    try await ProjectionStatus.all(ProductProjections.all, store: store).allSatisfy {
                        $0.state == .running && $0.lagEvents == 0
                    }
                }

                // Each projection's committed batches form one chain from position 0 to its checkpoint: the first
                // process's, then the second's, never both, never a batch applied twice or a gap.
                let writes = try await Self.writes(store)
                for projection in ProductProjections.all {
                    let chain = writes.filter { $0.projection == projection.name }
                    let writers = chain.map(\.pid)
                    let afterKill = writers.drop { $0 == first.pid }
                    #expect(writers.first == first.pid, "\(projection.name): \(writers)")
                    #expect(
                        !afterKill.isEmpty && afterKill.allSatisfy { $0 == standby.pid },
                        "\(projection.name) changed hands once: \(writers)")
                    #expect(
                        zip(chain, chain.dropFirst()).allSatisfy { $0.to == $1.from },
                        "\(projection.name): batches chain up")
                    #expect(chain.first?.from == "0/0")
                    let inLog = try await store.pool.query(
                        "SELECT count(*) FROM events WHERE event_type = ANY($1)",
                        [.stringArray(projection.eventTypes.sorted())]
                    ).first?.int64(0)
                    let applied = try await store.pool.query(
                        "SELECT events_applied FROM projection_checkpoints WHERE projection = $1",
                        [.string(projection.name)]
                    ).first?.int64(0)
                    #expect(chain.reduce(0) { $0 + $1.events } == inLog, "\(projection.name): every event once")
                    #expect(applied == inLog, "\(projection.name)")
                }
                // The counters the test appended itself are exact sums.
                for (tenant, calls) in expected.apiCalls {
                    #expect(try await Self.usage(store, tenant, "api_calls") == calls, "api_calls of \(tenant)")
                    #expect(
                        try await Self.usage(store, tenant, "runs") == expected.runs[tenant, default: 0],
                        "runs of \(tenant)")
                }

                standby.terminate()
                let exit = try await standby.exit.value
                #expect(exit.status == 0, "\(exit.stderr)")
                second = nil
                // And every read model equals the same log rebuilt from scratch, row for row.
                for projection in ProductProjections.all {
                    let outcome = try await ProjectionRebuilder(store: store, batchSize: 5000).rebuild(
                        projection, verify: true)
                    #expect(outcome.differences.isEmpty, "\(projection.name): \(outcome.differences.prefix(3))")
                }
            } catch {
                _ = try? await appender?.stop()
                for runner in [first, second].compactMap({ $0 }) {
                    runner.kill()
                    _ = try? await runner.exit.value
                }
                throw error
            }
        }
    }

    @Test(
        "a leader frozen (SIGSTOP) inside a batch: the standby takes over within the lease; woken, the frozen one commits nothing more, and every count is exact"
    )
    func takeoverAfterFreeze() async throws {
        try await TestDatabase.withStore { store, url in
            try await TestDatabase.createProjectionTables(url)
            try await Self.recordCheckpointWrites(store)
            let names = Set(ProductProjections.all.map(\.name))
            let frozen = try Runner(url: url)
            var other: Runner?
            var appender: Appender?
            do {
                try await Eventually.wait("the first process to lead every projection") {
                    try await Self.leaders(store) == Dictionary(uniqueKeysWithValues: names.map { ($0, frozen.pid) })
                }
                let standby = try Runner(url: url)
                other = standby
                try await Eventually.wait("the second process to stand by for every projection") {
                    try await Self.sessions(store).filter { $0.pid == standby.pid }.count == names.count
                }
                let load = Appender(store: store)
                appender = load
                // Frozen inside a batch: a lock held here stops its usage_counters batch after it locked its
                // checkpoint row; the batch finishes once the lock is released, then its transaction stays idle
                // (the process is stopped) until the server ends it, half a lease later.
                let blocker = try await PostgresConnection.connect(PostgresConfiguration(url: url))
                defer { blocker.close() }
                try await blocker.execute("BEGIN; LOCK TABLE usage_counters IN EXCLUSIVE MODE")
                try await Eventually.wait("the leader's usage_counters batch to wait inside its transaction") {
                    try await store.pool.query(
                        "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND wait_event_type = 'Lock'",
                        [.string("tally-projection-usage_counters pid=\(frozen.pid)")]
                    ).count == 1
                }
                frozen.process.send(signal: SIGSTOP)
                let frozenAt = ContinuousClock.now
                try await blocker.execute("COMMIT")
                try await Eventually.wait("the other process to lead every projection", timeout: .seconds(20)) {
                    try await Self.leaders(store) == Dictionary(uniqueKeysWithValues: names.map { ($0, standby.pid) })
                }
                #expect(
                    ContinuousClock.now - frozenAt < .seconds(Self.leaseSeconds + 6), "taken over within the lease")
                try await Eventually.wait("the other process to apply every projection after the freeze") {
                    Set(try await Self.writes(store).filter { $0.pid == standby.pid }.map(\.projection)) == names
                }
                let writesBeforeWaking = try await Self.writes(store).count
                frozen.process.send(signal: SIGCONT)
                // The load goes on until the new leader has applied more of it since the frozen one woke: on a
                // loaded machine the load was once stopped before anything new reached the log.
                try await Self.waitForWrites(store, beyond: writesBeforeWaking)
                let expected = try await load.stop()
                appender = nil
                try await TestDatabase.settle(store)
                try await Eventually.wait("every projection to catch up") {
                    try await ProjectionStatus.all(ProductProjections.all, store: store).allSatisfy {
                        $0.state == .running && $0.lagEvents == 0
                    }
                }
                let writes = try await Self.writes(store)
                #expect(writes.count > writesBeforeWaking, "the new leader kept applying")
                #expect(
                    writes.dropFirst(writesBeforeWaking).allSatisfy { $0.pid == standby.pid },
                    "the woken process committed nothing")
                for projection in ProductProjections.all {
                    let chain = writes.filter { $0.projection == projection.name }
                    #expect(
                        zip(chain, chain.dropFirst()).allSatisfy { $0.to == $1.from }, "\(projection.name) chains up")
                    let inLog = try await store.pool.query(
                        "SELECT count(*) FROM events WHERE event_type = ANY($1)",
                        [.stringArray(projection.eventTypes.sorted())]
                    ).first?.int64(0)
                    #expect(chain.reduce(0) { $0 + $1.events } == inLog, "\(projection.name): every event once")
                }
                for (tenant, calls) in expected.apiCalls {
                    #expect(try await Self.usage(store, tenant, "api_calls") == calls, "api_calls of \(tenant)")
                }
                for runner in [frozen, standby] {
                    runner.terminate()
                    _ = try await runner.exit.value
                }
            } catch {
                _ = try? await appender?.stop()
                for runner in [frozen, other].compactMap({ $0 }) {
                    runner.process.send(signal: SIGCONT)
                    runner.kill()
                    _ = try? await runner.exit.value
                }
                throw error
            }
        }
    }

    /// A `tally serve --no-api` process; its pipes are drained from the start so that it never blocks on them.
    final class Runner: Sendable {
        let process: Subprocess
        let exit: Task<Subprocess.Result, any Error>

        init(url: String) throws {
            process = try Subprocess(
                CLI.binary, ["serve", "--no-api", "--database-url", TestDatabase.serviceURL(url)],
                environment: ProjectionTakeoverTests.environment)
            exit = Task { [process] in try await process.finish() }
        }

        var pid: Int32 { process.pid }
        func kill() { process.send(signal: SIGKILL) }
        func terminate() { process.terminate() }
    }

    /// Appends from a task until stopped: synthetic tenants' lives (work for every projection) and, for four
    /// tenants of its own, usage batches and runs whose totals it keeps.
    final class Appender: Sendable {
        struct Totals: Sendable {
            var apiCalls: [UUID: Int64] = [:]
            var runs: [UUID: Int64] = [:]
        }

        final class Flag: Sendable {
            let raised = Atomic<Bool>(false)
        }

        private let stopping = Flag()
        private let task: Task<Totals, any Error>

        init(store: EventStore) {
            task = Task { [stopping] in
                let tenants = (0..<4).map { _ in UUID() }
                // Usage and runs belong to tenants that exist (billing stops, visibly, on usage of an unknown one).
                for (index, tenant) in tenants.enumerated() {
                    try await store.append(
                        [try Fixtures.tenantCreated(tenant, name: "Takeover\(index)")], to: .tenant(tenant),
                        tenantID: tenant,
                        expected: .noStream)
                }
                var history = SyntheticHistory(seed: 99)
                var totals = Totals()
                var round = 0
                // An append that fails for want of a connection (a loaded machine is slow to start sessions) is
                // sent again as it was: appends are idempotent by event id, so none is counted twice.
                func retrying(_ appends: [StreamAppend]) async throws {
                    for attempt in 1... {
                        do {
                            try await store.append(appends)
                            return
                        } catch let error as EventsError where error.code == .unavailable && attempt < 20 {
                            try await Task.sleep(for: .milliseconds(100))
                        }
                    }
                }
                while !stopping.raised.load(ordering: .relaxed) {
                    let tenant = tenants[round % tenants.count]
                    let calls = 1 + round % 17
                    let run = UUID()
                    try await retrying([
                        StreamAppend(
                            stream: .usage(tenant: tenant), tenantID: tenant, expected: .any,
                            events: [try Fixtures.usage(tenant: tenant, calls: calls)])
                    ])
                    try await retrying([
                        StreamAppend(
                            stream: .run(run), tenantID: tenant, expected: .noStream,
                            events: [try Fixtures.runStarted(run: run, tenant: tenant)])
                    ])
                    totals.apiCalls[tenant, default: 0] += Int64(calls)
                    totals.runs[tenant, default: 0] += 1
                    if round.isMultiple(of: 3) {
                        try await retrying(try history.tenant(runs: 3))
                    }
                    round += 1
                    try await Task.sleep(for: .milliseconds(5))
                }
                return totals
            }
        }

        /// Stops after the append in flight and returns what was appended (every append was acknowledged).
        func stop() async throws -> Totals {
            stopping.raised.store(true, ordering: .relaxed)
            return try await task.value
        }
    }

    /// What the runners were doing, for a failure message: the checkpoints, the batches committed, and every
    /// session of the test's database with what it waits on.
    static func state(_ store: EventStore) async -> String {
        do {
            let checkpoints = try await store.pool.query(
                "SELECT projection || ' ' || status || ' ' || tx_id || '/' || global_position FROM projection_checkpoints ORDER BY 1"
            ).map { try $0.string(0) }
            let writes = try await Self.writes(store).map { "\($0.projection) by \($0.pid ?? 0) to \($0.to)" }
            let sessions = try await store.pool.query(
                """
                SELECT application_name || ' ' || coalesce(state, '') || ' ' || coalesce(wait_event_type || ':' || wait_event, '')
                       || ' xid=' || coalesce(backend_xid::text, '') || ' ' || left(query, 120)
                FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
                ORDER BY application_name
                """
            ).map { try $0.string(0) }
            let horizon = try await store.pool.query(
                "SELECT tally_feed_horizon()::text, pg_current_snapshot()::text, (SELECT max(tx_id) FROM events)::text"
            ).map { "horizon \(try $0.string(0)), snapshot \(try $0.string(1)), newest \(try $0.string(2))" }
            return
                (["checkpoints:"] + checkpoints + ["batches: \(writes.count), last:"] + writes.suffix(10)
                + ["sessions:"] + sessions + horizon).joined(separator: "\n")
        } catch {
            return "state unavailable: \(error)"
        }
    }

    /// Every batch a runner commits moves its checkpoint; a trigger notes who moved it, from where, to where.
    static func recordCheckpointWrites(_ store: EventStore) async throws {
        try await store.pool.withConnection { connection in
            try await connection.execute(
                """
                CREATE TABLE checkpoint_writes (
                    id bigserial PRIMARY KEY, projection text NOT NULL, writer text NOT NULL,
                    from_position text NOT NULL, to_position text NOT NULL, events bigint NOT NULL);
                -- The runners are service logins, which may not write the test's own table: the trigger writes
                -- it as its owner.
                CREATE FUNCTION note_checkpoint_write() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
                BEGIN
                    INSERT INTO checkpoint_writes (projection, writer, from_position, to_position, events)
                    VALUES (NEW.projection, current_setting('application_name'), OLD.tx_id || '/' || OLD.global_position,
                            NEW.tx_id || '/' || NEW.global_position,
                            NEW.events_applied - OLD.events_applied);
                    RETURN NULL;
                END $$;
                CREATE TRIGGER note_checkpoint_write AFTER UPDATE ON projection_checkpoints FOR EACH ROW
                    WHEN ((OLD.tx_id, OLD.global_position) IS DISTINCT FROM (NEW.tx_id, NEW.global_position))
                    EXECUTE FUNCTION note_checkpoint_write();
                """)
        }
    }

    struct Write {
        let projection: String
        let pid: Int32?
        /// Feed positions, `tx/position`.
        let from: String
        let to: String
        let events: Int64
    }

    /// The committed checkpoint moves, in the order they happened (per projection they are serialized by the
    /// checkpoint row's lock).
    /// Waits until more than `count` checkpoint writes are recorded.
    static func waitForWrites(_ store: EventStore, beyond count: Int) async throws {
        try await Eventually.wait("more than \(count) checkpoint writes") { try await writes(store).count > count }
    }

    static func writes(_ store: EventStore) async throws -> [Write] {
        try await store.pool.query(
            "SELECT projection, writer, from_position, to_position, events FROM checkpoint_writes ORDER BY id"
        ).map {
            Write(
                projection: try $0.string(0), pid: processID(try $0.string(1)), from: try $0.string(2),
                to: try $0.string(3), events: try $0.int64(4))
        }
    }

    /// The projection runner sessions of this database: projection and the process that opened them.
    static func sessions(_ store: EventStore) async throws -> [(projection: String, pid: Int32?)] {
        try await store.pool.query(
            "SELECT application_name FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'tally-projection-%'"
        ).map { row in
            let name = try row.string(0)
            return (projection(name), processID(name))
        }
    }

    /// Which process holds each projection's lease, as the database sees it (holders are `pid=N suffix`).
    static func leaders(_ store: EventStore) async throws -> [String: Int32] {
        let rows = try await store.pool.query(
            """
            SELECT substr(name, length('projection:') + 1), holder FROM leader_leases
            WHERE name LIKE 'projection:%' AND expires_at > clock_timestamp()
            """)
        var leaders: [String: Int32] = [:]
        for row in rows {
            let holder = try row.string(1)
            leaders[try row.string(0)] =
                holder.hasPrefix("pid=") ? Int32(holder.dropFirst(4).prefix { $0 != " " }) ?? -1 : -1
        }
        return leaders
    }

    static func projection(_ applicationName: String) -> String {
        String(applicationName.dropFirst("tally-projection-".count).prefix { $0 != " " })
    }

    static func processID(_ applicationName: String) -> Int32? {
        applicationName.split(separator: " pid=").last.flatMap { Int32($0) }
    }

    static func usage(_ store: EventStore, _ tenant: UUID, _ meter: String) async throws -> Int64 {
        try await store.pool.query(
            "SELECT coalesce(sum(quantity), 0)::int8 FROM usage_counters WHERE tenant_id = $1 AND meter = $2",
            [.uuid(tenant), .string(meter)]
        ).first?.int64(0) ?? -1
    }
}
