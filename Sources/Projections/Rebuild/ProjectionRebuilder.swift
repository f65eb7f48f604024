public import Events
import Foundation

/// Rebuilds a projection from position zero into new tables while the live ones keep serving, then swaps
/// them in atomically.
///
/// 1. Build: apply every event of the projection's types, in batches, into the same tables in the schema
///    `tally_rebuild`. Each batch commits with the rebuild's position in `projection_rebuilds`, so an
///    interrupted rebuild resumes where it was.
/// 2. Swap, in one transaction: lock the projection's checkpoint row (the live runner takes the same lock at
///    the start of every batch, so it waits), catch up to the head, optionally compare with the live tables,
///    replace the live tables by the rebuilt ones and set the checkpoint to the rebuild's position. The live
///    runner then finds the checkpoint moved, drops its batch, and continues on the new tables: no event
///    appended during the rebuild is missed.
public struct ProjectionRebuilder: Sendable {
    /// How far a rebuild is.
    public struct Progress: Sendable {
        public let projection: String
        public let eventsApplied: Int64
        /// Events of the projection's types known to be left when the rebuild started or resumed.
        public let eventsTotal: Int64
        public let eventsPerSecond: Double
        /// Seconds left at the current speed.
        public var etaSeconds: Double {
            eventsPerSecond > 0 ? Double(max(0, eventsTotal - eventsApplied)) / eventsPerSecond : 0
        }
    }

    /// A row that differs between the live and the rebuilt tables.
    public struct Difference: Sendable, Hashable {
        public let table: String
        /// `live only` or `rebuilt only`.
        public let side: String
        public let row: String
    }

    /// What a rebuild did.
    public struct Outcome: Sendable {
        public let projection: String
        public let eventsApplied: Int64
        public let resumed: Bool
        public let seconds: Double
        public let swapped: Bool
        /// Filled by `verify`; non-empty means nothing was swapped.
        public let differences: [Difference]
    }

    static let schema = "tally_rebuild"

    let store: EventStore
    let batchSize: Int
    let progress: @Sendable (Progress) -> Void

    public init(store: EventStore, batchSize: Int = 2000, progress: @escaping @Sendable (Progress) -> Void = { _ in }) {
        self.store = store
        self.batchSize = max(1, batchSize)
        self.progress = progress
    }

    /// Rebuilds `projection`. With `verify`, compares the rebuilt rows with the live ones at the same position
    /// and swaps only when they are equal (the projection's version must be unchanged).
    public func rebuild(_ projection: any Projection, verify: Bool = false) async throws -> Outcome {
        var configuration = store.pool.configuration
        configuration.applicationName = "tally-rebuild-\(projection.name)"
        // Long rebuild batches are not idle in transaction, but the swap may wait on readers.
        configuration.idleInTransactionTimeoutMilliseconds = 600_000
        let connection = try await PostgresConnection.connect(configuration)
        defer { connection.close() }
        let locked = try await connection.query(
            "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", [.string("tally.rebuild." + projection.name)])
        guard try locked.first?.bool(0) == true else {
            throw ProjectionsError(.checkpointMoved, "another rebuild of \(projection.name) is running")
        }
        let started = ContinuousClock.now
        var state = try await start(projection, on: connection)
        let total = state.applied + (try await ProjectionStatus.pending(projection, after: state.position, store: store, limit: 10_000_000).events)
        let clock = ContinuousClock.now
        let appliedAtStart = state.applied
        while true {
            try Task.checkCancellation()
            let page = try await store.readFeed(after: state.position, limit: batchSize, filter: projection.feedFilter)
            if page.events.isEmpty { break }
            try await connection.withTransaction {
                try await applyToRebuild(page.events, projection, state: &state, on: connection)
            }
            let elapsed = (ContinuousClock.now - clock) / .seconds(1)
            progress(
                Progress(
                    projection: projection.name, eventsApplied: state.applied, eventsTotal: max(total, state.applied),
                    eventsPerSecond: elapsed > 0 ? Double(state.applied - appliedAtStart) / elapsed : 0))
        }
        let differences = try await swap(projection, state: &state, verify: verify, on: connection)
        return Outcome(
            projection: projection.name, eventsApplied: state.applied, resumed: state.resumed,
            seconds: (ContinuousClock.now - started) / .seconds(1), swapped: differences.isEmpty, differences: differences)
    }

    private struct State {
        var position: FeedPosition
        var applied: Int64
        var resumed: Bool
    }

    /// Rebuilds several projections, `parallel` at a time (one rebuild leaves the machine half idle: the
    /// client decodes while the server writes, in turn). Outcomes come back in the order of `projections`; the
    /// first error stops the rest.
    public func rebuild(_ projections: [any Projection], verify: Bool = false, parallel: Int) async throws -> [Outcome] {
        try await withThrowingTaskGroup(of: (Int, Outcome).self) { group in
            var outcomes = [Outcome?](repeating: nil, count: projections.count)
            var next = 0
            func startNext() {
                guard next < projections.count else { return }
                let index = next
                next += 1
                group.addTask { (index, try await self.rebuild(projections[index], verify: verify)) }
            }
            for _ in 0..<max(1, parallel) { startNext() }
            while let (index, outcome) = try await group.next() {
                outcomes[index] = outcome
                startNext()
            }
            return outcomes.compactMap { $0 }
        }
    }

    /// Resumes the rebuild of this version if one was interrupted; otherwise starts one with empty tables.
    private func start(_ projection: any Projection, on connection: PostgresConnection) async throws -> State {
        let rows = try await connection.query(
            "SELECT version, tx_id, global_position, events_applied FROM projection_rebuilds WHERE projection = $1",
            [.string(projection.name)])
        let tables = try await connection.query(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = ANY($2)",
            [.string(Self.schema), .stringArray(projection.tables.map(\.name))])
        if let row = rows.first, try row.int(0) == projection.version, try tables.first?.int64(0) == Int64(projection.tables.count) {
            return State(
                position: FeedPosition(transactionID: try row.uint64(1), globalPosition: try row.int64(2)),
                applied: try row.int64(3), resumed: true)
        }
        try await connection.withTransaction(begin: "BEGIN; SET LOCAL search_path = \(Self.schema), public") {
            for table in projection.tables {
                try await connection.execute("DROP TABLE IF EXISTS \(Self.schema).\(table.name)")
                for statement in table.createStatements {
                    try await connection.execute(statement)
                }
            }
            try await connection.query(
                """
                INSERT INTO projection_rebuilds (projection, version) VALUES ($1, $2)
                ON CONFLICT (projection) DO UPDATE SET version = excluded.version, tx_id = '0', global_position = 0,
                    events_applied = 0, started_at = now(), updated_at = now()
                """, [.string(projection.name), .int32(Int32(projection.version))])
        }
        return State(position: .start, applied: 0, resumed: false)
    }

    /// Inside the caller's transaction: applies `events` to the rebuild tables and records the position.
    private func applyToRebuild(
        _ events: [RecordedEvent], _ projection: any Projection, state: inout State, on connection: PostgresConnection
    ) async throws {
        try await connection.execute("SET LOCAL search_path = \(Self.schema), public; SET LOCAL tally.operator = 'on'")
        try await projection.apply(events, in: ProjectionContext(connection: connection, catalog: store.catalog))
        let position = events.last!.feedPosition
        try await connection.query(
            """
            UPDATE projection_rebuilds SET tx_id = $2::text::xid8, global_position = $3,
                events_applied = events_applied + $4, updated_at = now()
            WHERE projection = $1
            """,
            [.string(projection.name), .text(String(position.transactionID)), .int64(position.globalPosition), .int64(Int64(events.count))])
        state.position = position
        state.applied += Int64(events.count)
    }

    /// The swap transaction; returns the differences found by `verify` (then nothing is swapped).
    private func swap(
        _ projection: any Projection, state: inout State, verify: Bool, on connection: PostgresConnection
    ) async throws -> [Difference] {
        let before = state
        try await connection.execute("BEGIN; SET LOCAL tally.operator = 'on'")
        do {
            try await connection.query(
                "INSERT INTO projection_checkpoints (projection, version) VALUES ($1, $2) ON CONFLICT (projection) DO NOTHING",
                [.string(projection.name), .int32(Int32(projection.version))])
            let live = try await connection.query(
                "SELECT version, tx_id, global_position FROM projection_checkpoints WHERE projection = $1 FOR UPDATE",
                [.string(projection.name)])[0]
            // The live runner is held off now: catch the rebuild up to the head.
            while true {
                let page = try await store.readFeed(after: state.position, limit: batchSize, filter: projection.feedFilter)
                if page.events.isEmpty { break }
                try await applyToRebuild(page.events, projection, state: &state, on: connection)
            }
            let liveTables = try await connection.query(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY($1)",
                [.stringArray(projection.tables.map(\.name))])
            // A projection that never ran has no live tables to compare with.
            if verify, try liveTables.first?.int64(0) == Int64(projection.tables.count) {
                guard try live.int(0) == projection.version else {
                    throw ProjectionsError(
                        .verificationFailed, "--verify compares tables of one version; the live \(projection.name) is version \(try live.int(0))")
                }
                // Bring the live tables to the rebuild's position, then compare.
                var livePosition = FeedPosition(transactionID: try live.uint64(1), globalPosition: try live.int64(2))
                try await connection.execute("SET LOCAL search_path = public")
                while livePosition < state.position {
                    let page = try await store.readFeed(after: livePosition, limit: batchSize, filter: projection.feedFilter)
                    let due = page.events.filter { $0.feedPosition <= state.position }
                    if due.isEmpty { break }
                    try await projection.apply(due, in: ProjectionContext(connection: connection, catalog: store.catalog))
                    livePosition = due.last!.feedPosition
                }
                let differences = try await compare(projection, on: connection)
                if !differences.isEmpty {
                    try await connection.execute("ROLLBACK")
                    state = before
                    return differences
                }
            }
            try await connection.execute("SET LOCAL search_path = public")
            for table in projection.tables {
                try await connection.execute("DROP TABLE IF EXISTS public.\(table.name)")
                try await connection.execute("ALTER TABLE \(Self.schema).\(table.name) SET SCHEMA public")
            }
            try await connection.query(
                """
                UPDATE projection_checkpoints SET version = $2, tx_id = $3::text::xid8, global_position = $4,
                    events_applied = $5, status = 'running', error = NULL, error_position = NULL, updated_at = now()
                WHERE projection = $1
                """,
                [
                    .string(projection.name), .int32(Int32(projection.version)), .text(String(state.position.transactionID)),
                    .int64(state.position.globalPosition), .int64(state.applied),
                ])
            try await connection.query("DELETE FROM projection_rebuilds WHERE projection = $1", [.string(projection.name)])
            try await connection.execute("COMMIT")
            return []
        } catch {
            if !connection.isBroken { try? await connection.execute("ROLLBACK") }
            state = before
            throw error
        }
    }

    /// Rows in one side and not the other, up to 20 per table and side.
    private func compare(_ projection: any Projection, on connection: PostgresConnection) async throws -> [Difference] {
        var differences: [Difference] = []
        for table in projection.tables {
            let rows = try await connection.query(
                """
                (SELECT 'live only', d::text FROM (SELECT * FROM public.\(table.name) EXCEPT ALL
                                                   SELECT * FROM \(Self.schema).\(table.name)) d LIMIT 20)
                UNION ALL
                (SELECT 'rebuilt only', d::text FROM (SELECT * FROM \(Self.schema).\(table.name) EXCEPT ALL
                                                      SELECT * FROM public.\(table.name)) d LIMIT 20)
                """)
            for row in rows {
                differences.append(Difference(table: table.name, side: try row.string(0), row: try row.string(1)))
            }
        }
        return differences
    }
}
