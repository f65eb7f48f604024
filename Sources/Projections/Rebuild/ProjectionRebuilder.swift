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

    /// Where the new tables are built (`<schema>_rebuild`, `tally_rebuild` by default).
    var rebuildSchema: String { store.configuration.schema.rebuild }
    /// Where the live tables are.
    var liveSchema: String { store.configuration.schema.name }

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
        try await rebuild([projection], verify: verify, parallel: 1)[0]
    }

    private struct State {
        var position: FeedPosition
        var applied: Int64
        var resumed: Bool
        /// Streams the rebuild could not apply, parked as reader `rebuild:<projection>` until the swap makes
        /// them the live projection's.
        var parking: FeedParking
    }

    static func reader(_ projection: any Projection) -> String { "rebuild:" + projection.name }

    /// One projection being rebuilt: its own session (holding its rebuild lock) and where it is.
    private struct Build {
        let projection: any Projection
        let connection: PostgresConnection
        var state: State
        var total: Int64 = 0
        let appliedAtStart: Int64
    }

    /// A page of the log with every event decoded once, for all the projections that read it.
    private struct DecodedPage: Sendable {
        let events: [RecordedEvent]
        let decoded: [Int64: any DomainEvent]
        let next: FeedPosition
    }

    /// Rebuilds several projections in one pass over the log: each page is read and decoded once, then every
    /// projection applies the events of its types in its own transaction and session, at most `parallel` at a
    /// time (default: all), while the next page is read and decoded. Outcomes come back in the order of
    /// `projections`; the first error stops the rest (each resumes from its last committed batch when run again).
    ///
    /// Applying all at once matters more than it seems: the small projections write one statement per event,
    /// so a page costs them a few dozen round trips each, which would otherwise add up behind the big one.
    public func rebuild(_ projections: [any Projection], verify: Bool = false, parallel: Int = .max) async throws
        -> [Outcome]
    {
        let started = ContinuousClock.now
        var builds: [Build] = []
        defer {
            for build in builds { build.connection.close() }
        }
        for projection in projections {
            let connection = try await open(projection)
            do {
                let state = try await start(projection, on: connection)
                builds.append(
                    Build(projection: projection, connection: connection, state: state, appliedAtStart: state.applied))
            } catch {
                connection.close()
                throw error
            }
        }
        guard !builds.isEmpty else { return [] }
        try await countPending(&builds)
        try await buildAll(&builds, parallel: max(1, parallel))
        for index in builds.indices {
            try await createDeferredIndexes(builds[index].projection, on: builds[index].connection)
        }
        var outcomes: [Outcome] = []
        for index in builds.indices {
            let differences = try await swap(
                builds[index].projection, state: &builds[index].state, verify: verify, on: builds[index].connection)
            let state = builds[index].state
            outcomes.append(
                Outcome(
                    projection: builds[index].projection.name, eventsApplied: state.applied, resumed: state.resumed,
                    seconds: (ContinuousClock.now - started) / .seconds(1), swapped: differences.isEmpty,
                    differences: differences))
        }
        return outcomes
    }

    /// A session for rebuilding `projection`, holding its rebuild lock.
    private func open(_ projection: any Projection) async throws -> PostgresConnection {
        var configuration = store.configuration.session
        configuration.applicationName = "tally-rebuild-\(projection.name)"
        // Long rebuild batches are not idle in transaction, but the swap may wait on readers.
        configuration.idleInTransactionTimeoutMilliseconds = 600_000
        let connection = try await PostgresConnection.connect(configuration)
        do {
            guard connection.keepsSession else {
                throw ProjectionsError(
                    .invalidInput,
                    "a rebuild holds a session for its whole run, and the database URL reaches a pooler in transaction "
                        + "mode: set TALLY_DIRECT_DATABASE_URL (or --direct-database-url) to a direct connection")
            }
            let locked = try await connection.query(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                [.string("tally.rebuild.\(liveSchema)." + projection.name)])
            guard try locked.first?.bool(0) == true else {
                throw ProjectionsError(.checkpointMoved, "another rebuild of \(projection.name) is running")
            }
            return connection
        } catch {
            connection.close()
            throw error
        }
    }

    /// Events of each projection's types left to apply, for progress: one count by type over the log from the
    /// earliest position (a projection resumed further on is counted from there too, so its ETA is pessimistic).
    private func countPending(_ builds: inout [Build]) async throws {
        let from = builds.map(\.state.position).min()!
        let rows = try await store.pool.query(
            """
            SELECT event_type, count(*) FROM events
            WHERE (tx_id, global_position) > ($1::text::xid8, $2) GROUP BY event_type
            """, [.text(String(from.transactionID)), .int64(from.globalPosition)])
        var counts: [String: Int64] = [:]
        for row in rows { counts[try row.string(0)] = try row.int64(1) }
        for index in builds.indices {
            let pending = builds[index].projection.eventTypes.reduce(Int64(0)) { $0 + counts[$1, default: 0] }
            builds[index].total = builds[index].state.applied + pending
        }
    }

    /// The bulk phase: pages of every type any build reads, from the earliest position, until the log ends.
    private func buildAll(_ builds: inout [Build], parallel: Int) async throws {
        let types = builds.reduce(into: Set<String>()) { $0.formUnion($1.projection.eventTypes) }
        // Each build takes only its types from a page, so the filter only saves reading rows. Over every type it
        // saves none and costs the server a comparison against each type name for every row.
        let filter = types.isSuperset(of: store.catalog.eventTypes) ? FeedFilter.all : FeedFilter(types: types)
        let clock = ContinuousClock.now
        var next: Task<DecodedPage, any Error>? = readPage(after: builds.map(\.state.position).min()!, filter: filter)
        defer { next?.cancel() }
        while let pending = next {
            try Task.checkCancellation()
            let page = try await pending.value
            if page.events.isEmpty { break }
            // Read and decode the next page while this one is applied.
            next = readPage(after: page.next, filter: filter)
            try await apply(page, to: &builds, parallel: parallel)
            let elapsed = (ContinuousClock.now - clock) / .seconds(1)
            for build in builds {
                progress(
                    Progress(
                        projection: build.projection.name, eventsApplied: build.state.applied,
                        eventsTotal: max(build.total, build.state.applied),
                        eventsPerSecond: elapsed > 0 ? Double(build.state.applied - build.appliedAtStart) / elapsed : 0)
                )
            }
        }
    }

    private func readPage(after position: FeedPosition, filter: FeedFilter) -> Task<DecodedPage, any Error> {
        Task { [store, batchSize] in
            let page = try await store.readFeed(after: position, limit: batchSize, filter: filter)
            var decoded: [Int64: any DomainEvent] = [:]
            decoded.reserveCapacity(page.events.count)
            for event in page.events {
                // One that does not decode is left out: the projection that needs it decodes it itself and fails
                // with the error at that event, as without this cache.
                decoded[event.globalPosition] = try? store.catalog.decode(event)
            }
            return DecodedPage(events: page.events, decoded: decoded, next: page.next)
        }
    }

    /// Each build's share of `page`, one transaction per build, at most `parallel` at a time.
    private func apply(_ page: DecodedPage, to builds: inout [Build], parallel: Int) async throws {
        let work: [(Int, [RecordedEvent])] = builds.indices.compactMap { index in
            let build = builds[index]
            let events = page.events.filter {
                build.projection.eventTypes.contains($0.type) && $0.feedPosition > build.state.position
            }
            return events.isEmpty ? nil : (index, events)
        }
        try await withThrowingTaskGroup(of: (Int, State).self) { group in
            var started = 0
            func startNext() {
                guard started < work.count else { return }
                let (index, events) = work[started]
                started += 1
                let build = builds[index]
                group.addTask {
                    var state = build.state
                    try await build.connection.withTransaction(begin: "BEGIN; SET LOCAL synchronous_commit = off") {
                        try await applyToRebuild(
                            events, build.projection, decoded: page.decoded, state: &state, on: build.connection)
                    }
                    return (index, state)
                }
            }
            for _ in 0..<min(parallel, work.count) { startNext() }
            while let (index, state) = try await group.next() {
                builds[index].state = state
                startNext()
            }
        }
    }

    /// Creates the indexes a rebuild left out of its bulk phase (see `ProjectionTable.indexStatements`).
    private func createDeferredIndexes(_ projection: any Projection, on connection: PostgresConnection) async throws {
        try await connection.withTransaction(begin: "BEGIN; SET LOCAL search_path = \(rebuildSchema), \(liveSchema)") {
            for table in projection.tables {
                for statement in table.indexStatements {
                    try await connection.execute(statement)
                }
            }
        }
    }

    /// Resumes the rebuild of this version if one was interrupted; otherwise starts one with empty tables.
    private func start(_ projection: any Projection, on connection: PostgresConnection) async throws -> State {
        let rows = try await connection.query(
            "SELECT version, tx_id, global_position, events_applied FROM projection_rebuilds WHERE projection = $1",
            [.string(projection.name)])
        let tables = try await connection.query(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = ANY($2)",
            [.string(rebuildSchema), .stringArray(projection.tables.map(\.name))])
        let reader = Self.reader(projection)
        if let row = rows.first, try row.int(0) == projection.version,
            try tables.first?.int64(0) == Int64(projection.tables.count)
        {
            return State(
                position: FeedPosition(transactionID: try row.uint64(1), globalPosition: try row.int64(2)),
                applied: try row.int64(3), resumed: true,
                parking: FeedParking(
                    reader: reader,
                    parked: try await connection.withTransaction(begin: "BEGIN READ ONLY") {
                        try await ParkedStreams.load(reader: reader, on: connection)
                    }))
        }
        try await connection.withTransaction(
            begin: "BEGIN; SET LOCAL search_path = \(rebuildSchema), \(liveSchema)"
        ) {
            for table in projection.tables {
                try await connection.execute("DROP TABLE IF EXISTS \(rebuildSchema).\(table.name)")
                // Indexes that are not unique come after the bulk phase (createDeferredIndexes).
                for statement in table.tableStatements
                    + table.indexStatements.filter({ $0.uppercased().contains("UNIQUE") })
                {
                    try await connection.execute(statement)
                }
            }
            try await connection.query(
                """
                INSERT INTO projection_rebuilds (projection, version) VALUES ($1, $2)
                ON CONFLICT (projection) DO UPDATE SET version = excluded.version, tx_id = '0', global_position = 0,
                    events_applied = 0, started_at = now(), updated_at = now()
                """, [.string(projection.name), .int32(Int32(projection.version))])
            try await connection.query("DELETE FROM parked_streams WHERE reader = $1", [.string(reader)])
        }
        return State(position: .start, applied: 0, resumed: false, parking: FeedParking(reader: reader, parked: [:]))
    }

    /// Inside the caller's transaction: applies `events` to the rebuild tables and records the position.
    private func applyToRebuild(
        _ events: [RecordedEvent], _ projection: any Projection, decoded: [Int64: any DomainEvent] = [:],
        state: inout State,
        on connection: PostgresConnection
    ) async throws {
        try await connection.execute("SET LOCAL search_path = \(rebuildSchema), \(liveSchema)")
        let context = ProjectionContext(connection: connection, catalog: store.catalog, decoded: decoded)
        _ = try await state.parking.applyWithSavepoint(events, on: connection) {
            try await projection.apply($0, in: context)
        }
        let position = events.last!.feedPosition
        try await connection.query(
            """
            UPDATE projection_rebuilds SET tx_id = $2::text::xid8, global_position = $3,
                events_applied = events_applied + $4, updated_at = now()
            WHERE projection = $1
            """,
            [
                .string(projection.name), .text(String(position.transactionID)), .int64(position.globalPosition),
                .int64(Int64(events.count)),
            ])
        state.position = position
        state.applied += Int64(events.count)
    }

    /// The swap transaction; returns the differences found by `verify` (then nothing is swapped).
    private func swap(
        _ projection: any Projection, state: inout State, verify: Bool, on connection: PostgresConnection
    ) async throws -> [Difference] {
        let before = state
        try await connection.execute("BEGIN")
        do {
            try await connection.query(
                "INSERT INTO projection_checkpoints (projection, version) VALUES ($1, $2) ON CONFLICT (projection) DO NOTHING",
                [.string(projection.name), .int32(Int32(projection.version))])
            let live = try await connection.query(
                "SELECT version, tx_id, global_position FROM projection_checkpoints WHERE projection = $1 FOR UPDATE",
                [.string(projection.name)])[0]
            // The live runner is held off now: catch the rebuild up to the head.
            while true {
                let page = try await store.readFeed(
                    after: state.position, limit: batchSize, filter: projection.feedFilter)
                if page.events.isEmpty {
                    // Everything below the horizon was scanned: the checkpoint goes there, not to the last event
                    // this projection reads (a reader checking that it is caught up with the head, as the billing
                    // export does, would wait for a runner to move it).
                    state.position = max(state.position, page.next)
                    break
                }
                try await applyToRebuild(page.events, projection, state: &state, on: connection)
            }
            let liveTables = try await connection.query(
                "SELECT count(*) FROM pg_tables WHERE schemaname = $2 AND tablename = ANY($1)",
                [.stringArray(projection.tables.map(\.name)), .string(liveSchema)])
            // A projection that never ran has no live tables to compare with.
            if verify, try liveTables.first?.int64(0) == Int64(projection.tables.count) {
                guard try live.int(0) == projection.version else {
                    throw ProjectionsError(
                        .verificationFailed,
                        "--verify compares tables of one version; the live \(projection.name) is version \(try live.int(0))"
                    )
                }
                // Bring the live tables to the rebuild's position, then compare.
                var livePosition = FeedPosition(transactionID: try live.uint64(1), globalPosition: try live.int64(2))
                var liveParking = FeedParking(
                    reader: projection.name,
                    parked: try await ParkedStreams.load(reader: projection.name, on: connection))
                try await connection.execute("SET LOCAL search_path = \(liveSchema)")
                let liveContext = ProjectionContext(connection: connection, catalog: store.catalog)
                while livePosition < state.position {
                    let page = try await store.readFeed(
                        after: livePosition, limit: batchSize, filter: projection.feedFilter)
                    let due = page.events.filter { $0.feedPosition <= state.position }
                    if due.isEmpty { break }
                    _ = try await liveParking.applyWithSavepoint(due, on: connection) {
                        try await projection.apply($0, in: liveContext)
                    }
                    livePosition = due.last!.feedPosition
                }
                let parkedLive = Set(liveParking.parked.keys)
                let parkedRebuilt = Set(state.parking.parked.keys)
                if parkedLive != parkedRebuilt {
                    let live = parkedLive.subtracting(parkedRebuilt).sorted().map {
                        Difference(table: "parked_streams", side: "live only", row: $0)
                    }
                    let rebuilt = parkedRebuilt.subtracting(parkedLive).sorted().map {
                        Difference(table: "parked_streams", side: "rebuilt only", row: $0)
                    }
                    try await connection.execute("ROLLBACK")
                    state = before
                    return Array((live + rebuilt).prefix(40))
                }
                let differences = try await compare(projection, on: connection)
                if !differences.isEmpty {
                    try await connection.execute("ROLLBACK")
                    state = before
                    return differences
                }
            }
            try await connection.execute("SET LOCAL search_path = \(liveSchema)")
            // The rebuild's parked streams become the projection's.
            try await connection.query("DELETE FROM parked_streams WHERE reader = $1", [.string(projection.name)])
            try await connection.query(
                "UPDATE parked_streams SET reader = $1, updated_at = now() WHERE reader = $2",
                [.string(projection.name), .string(Self.reader(projection))])
            for table in projection.tables {
                try await connection.execute("DROP TABLE IF EXISTS \(liveSchema).\(table.name)")
                try await connection.execute("ALTER TABLE \(rebuildSchema).\(table.name) SET SCHEMA \(liveSchema)")
            }
            try await connection.query(
                """
                UPDATE projection_checkpoints SET version = $2, tx_id = $3::text::xid8, global_position = $4,
                    events_applied = $5, status = 'running', error = NULL, error_position = NULL, updated_at = now()
                WHERE projection = $1
                """,
                [
                    .string(projection.name), .int32(Int32(projection.version)),
                    .text(String(state.position.transactionID)),
                    .int64(state.position.globalPosition), .int64(state.applied),
                ])
            try await connection.query(
                "DELETE FROM projection_rebuilds WHERE projection = $1", [.string(projection.name)])
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
                (SELECT 'live only', d::text FROM (SELECT * FROM \(liveSchema).\(table.name) EXCEPT ALL
                                                   SELECT * FROM \(rebuildSchema).\(table.name)) d LIMIT 20)
                UNION ALL
                (SELECT 'rebuilt only', d::text FROM (SELECT * FROM \(rebuildSchema).\(table.name) EXCEPT ALL
                                                      SELECT * FROM \(liveSchema).\(table.name)) d LIMIT 20)
                """)
            for row in rows {
                differences.append(Difference(table: table.name, side: try row.string(0), row: try row.string(1)))
            }
        }
        return differences
    }
}
