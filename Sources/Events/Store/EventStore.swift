public import Foundation
public import Logging
import Synchronization

/// The append-only log on PostgreSQL: appends with optimistic concurrency, stream reads, the commit-order
/// global feed and subscriptions to it.
public final class EventStore: Sendable {
    /// How the store talks to the database and how eagerly readers poll.
    public struct Configuration: Sendable {
        /// A libpq URL (`postgresql://...`).
        public var databaseURL: String
        /// Connections in the store's pool.
        public var maxConnections: Int
        /// How long an append or read waits for a free connection.
        public var acquireTimeout: Duration
        /// How often a subscriber polls when no notification arrives (the fallback for lost NOTIFYs).
        public var pollInterval: Duration
        /// Shown in `pg_stat_activity`.
        public var applicationName: String
        /// The schema that holds Tally's tables (`TALLY_SCHEMA`).
        public var schema: DatabaseSchema
        /// What `databaseURL` reaches (`TALLY_POOL_MODE`).
        public var poolMode: PoolMode
        /// A URL that reaches a session of its own (`TALLY_DIRECT_DATABASE_URL`), for what must outlive a
        /// transaction: `LISTEN`, migrations. Nil: `databaseURL` is used, and readers poll when it turns out
        /// to reach a transaction pooler.
        public var directDatabaseURL: String?

        public init(
            databaseURL: String, maxConnections: Int = 16, acquireTimeout: Duration = .seconds(10),
            pollInterval: Duration = .seconds(1), applicationName: String = "tally", schema: DatabaseSchema = .default,
            poolMode: PoolMode = .automatic, directDatabaseURL: String? = nil
        ) {
            self.databaseURL = databaseURL
            self.maxConnections = maxConnections
            self.acquireTimeout = acquireTimeout
            self.pollInterval = pollInterval
            self.applicationName = applicationName
            self.schema = schema
            self.poolMode = poolMode
            self.directDatabaseURL = directDatabaseURL
        }

        /// How the pool's connections are made.
        package var pooled: PostgresConfiguration {
            PostgresConfiguration(
                url: databaseURL, applicationName: applicationName, schema: schema, poolMode: poolMode)
        }

        /// How a session that must outlive a transaction is made: the direct URL when there is one.
        package var session: PostgresConfiguration {
            guard let directDatabaseURL else { return pooled }
            return PostgresConfiguration(
                url: directDatabaseURL, applicationName: applicationName, schema: schema, poolMode: .session)
        }
    }

    package let pool: PostgresPool
    public let catalog: EventCatalog
    package let configuration: Configuration
    let changes = ChangeSignal()
    private let retries = Atomic<Int>(0)
    let horizon = FeedHorizon()
    private let notifier: AppendNotifier
    private let listener: FeedListener
    let logger: Logger

    public init(
        configuration: Configuration, catalog: EventCatalog = .tally, logger: Logger = Logger(label: "tally.events")
    ) {
        self.pool = PostgresPool(
            configuration: configuration.pooled,
            options: .init(maxConnections: configuration.maxConnections, acquireTimeout: configuration.acquireTimeout))
        self.catalog = catalog
        self.configuration = configuration
        self.notifier = AppendNotifier(pool: pool)
        self.listener = FeedListener(configuration: configuration.session, signal: changes, logger: logger)
        self.logger = logger
    }

    /// Stops listening and closes the pool's connections.
    public func close() {
        listener.stop()
        pool.close()
    }

    // MARK: - Append

    /// Appends `events` to `stream` in one transaction, if the stream is at `expected`.
    ///
    /// - Throws: `EventsError` `.conflict` with the stream's actual version when it is not at `expected`
    ///   (nothing is written); `.duplicateEventIDs` when these event ids were appended before with other
    ///   content. Appending the same ids with the same content again returns the original result.
    @discardableResult
    public func append(
        _ events: [EventData], to stream: StreamName, tenantID: UUID?, expected: ExpectedVersion
    ) async throws -> AppendResult {
        try await append([StreamAppend(stream: stream, tenantID: tenantID, expected: expected, events: events)])[0]
    }

    /// Appends to several streams atomically: every stream's expectation holds and all events are written,
    /// or nothing is. Results come back in the order of `appends`.
    ///
    /// An append that lost the race for its streams' order (`.serializationFailure`: an older transaction
    /// meeting a newer append) is run again in a new transaction, a few times at most.
    @discardableResult
    public func append(_ appends: [StreamAppend]) async throws -> [AppendResult] {
        let call = try AppendCall(appends)
        let results = try await retryingSerializationFailures {
            try await pool.withConnection { try await call.run(on: $0, canInspectAfterFailure: true) }
        }
        appended()
        return results
    }

    /// Appends inside a transaction the caller holds open on `connection` (with other writes that must
    /// commit together with the events). Call `appended()` after the caller's COMMIT to wake readers. When a
    /// multi-stream append conflicts, the transaction is aborted and the caller must roll it back. A
    /// `.serializationFailure` aborts it too: the caller runs the whole transaction again, through
    /// `retryingSerializationFailures(_:)`.
    package func append(_ appends: [StreamAppend], on connection: PostgresConnection) async throws -> [AppendResult] {
        try await AppendCall(appends).run(on: connection, canInspectAfterFailure: false)
    }

    /// How many times a whole transaction runs at most when it keeps losing races.
    static let serializationAttempts = 6

    /// Runs `body` (a whole transaction) again when it fails with `.serializationFailure`, after a short
    /// random pause, at most `serializationAttempts` times in all; every retry is counted in
    /// `serializationRetries`. Writers that append after other work in one transaction go through this.
    public func retryingSerializationFailures<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await body()
            } catch let error as EventsError
                where error.code == .serializationFailure && attempt < Self.serializationAttempts
            {
                retries.add(1, ordering: .relaxed)
                attempt += 1
                // A newer transaction is all it takes; the pause only spreads writers that keep colliding.
                try await Task.sleep(for: .microseconds(Int.random(in: 0...(250 << attempt))))
            }
        }
    }

    /// Transactions run again after a `.serializationFailure` since this store was created.
    public var serializationRetries: Int { retries.load(ordering: .relaxed) }

    /// Wakes local readers now and other processes' readers soon.
    public func appended() {
        changes.signal()
        notifier.appended()
    }

    // MARK: - Scopes

    /// Runs `body` in a transaction of the operator's scope on a pooled connection. The scope is the login
    /// role's membership of `tally_operator` (migration 8), which every policy asks for; a tenant's
    /// transaction leaves it with `SET LOCAL ROLE tally_app`, and no setting brings it back.
    package func asOperator<T: Sendable>(readOnly: Bool = false, _ body: (PostgresConnection) async throws -> T)
        async throws -> T
    {
        try await pool.withConnection { connection in
            try await connection.withTransaction(
                begin: readOnly ? "BEGIN READ ONLY" : "BEGIN"
            ) {
                try await body(connection)
            }
        }
    }

    // MARK: - Read

    /// Reads `stream` forward from `version` (inclusive; the first event is version 1).
    public func read(stream: StreamName, from version: Int64 = 1, limit: Int = 1000) async throws -> [RecordedEvent] {
        let rows = try await pool.query(
            "SELECT \(Self.columns) FROM events WHERE stream_id = $1 AND stream_version >= $2 ORDER BY stream_version LIMIT $3",
            [.string(stream.rawValue), .int64(version), .int64(Int64(limit))])
        return try rows.map(Self.recordedEvent)
    }

    /// Reads all of `stream` on `connection`, inside a transaction the caller holds open (to decide and
    /// append under one lock).
    package func readAll(stream: StreamName, on connection: PostgresConnection) async throws -> [RecordedEvent] {
        let rows = try await connection.query(
            "SELECT \(Self.columns) FROM events WHERE stream_id = $1 ORDER BY stream_version",
            [.string(stream.rawValue)])
        return try rows.map(Self.recordedEvent)
    }

    /// The event at `globalPosition`, if there is one, read on `connection`.
    package func event(at globalPosition: Int64, on connection: PostgresConnection) async throws -> RecordedEvent? {
        try await connection.query(
            "SELECT \(Self.columns) FROM events WHERE global_position = $1", [.int64(globalPosition)]
        )
        .first.map(Self.recordedEvent)
    }

    /// The stream's current version, or 0 when it does not exist.
    public func version(of stream: StreamName) async throws -> Int64 {
        let rows = try await pool.query("SELECT version FROM streams WHERE stream_id = $1", [.string(stream.rawValue)])
        return try rows.first?.int64(0) ?? 0
    }

    /// Reads the feed in commit order after `position`: events below the feed's horizon, ordered by
    /// (transaction id, global position). The horizon is the oldest running transaction that may append to
    /// this log (`tally_feed_horizon()`: transactions of other databases and of roles that cannot insert into
    /// `events` do not count).
    ///
    /// The page's `next` is where the read stopped scanning, matched or not: after the last event of a full
    /// page, or at the horizon when the page is not full, so a filtered reader never reads the same stretch of
    /// the log twice.
    public func readFeed(after position: FeedPosition, limit: Int = 1000, filter: FeedFilter = .all) async throws
        -> FeedPage
    {
        try await pool.withConnection { try await readFeed(after: position, limit: limit, filter: filter, on: $0) }
    }

    /// `readFeed(after:limit:filter:)` on `connection` (inside the caller's transaction, if one is open).
    ///
    /// One statement reads the page below the larger of the snapshot's xmin and the horizon this store last
    /// computed (both are safe: no event will ever appear below either), and says whether committed events
    /// wait above it. Only then is the full horizon computed again (`FeedHorizon`, shared by every reader of
    /// this store), and the page read once more if it moved: the costly look at other backends is paid only
    /// while something holds the feed back, once for the readers of a process whose reads overlap.
    package func readFeed(
        after position: FeedPosition, limit: Int, filter: FeedFilter, on connection: PostgresConnection
    ) async throws -> FeedPage {
        let started = ContinuousClock.now
        var page = try await readFeed(
            after: position, limit: limit, filter: filter, below: horizon.value, on: connection)
        if page.isHeld, let moved = try await horizon.refresh(after: page.horizon, readStarted: started, on: connection)
        {
            page = try await readFeed(after: position, limit: limit, filter: filter, below: moved, on: connection)
        }
        return page
    }

    private func readFeed(
        after position: FeedPosition, limit: Int, filter: FeedFilter, below known: UInt64,
        on connection: PostgresConnection
    ) async throws -> FeedPage {
        let limit = max(1, limit)
        var sql = """
            WITH h AS MATERIALIZED (
                SELECT greatest(pg_snapshot_xmin(pg_current_snapshot()), $3::text::xid8) AS horizon
            )
            (SELECT \(Self.columns), NULL::xid8, NULL::xid8 FROM events
             WHERE (tx_id, global_position) > ($1::text::xid8, $2) AND tx_id < (SELECT horizon FROM h)
            """
        var parameters: [PostgresValue] = [
            .text(String(position.transactionID)), .int64(position.globalPosition), .text(String(known)),
        ]
        Self.appendFilter(filter, to: &sql, parameters: &parameters)
        parameters.append(.int64(Int64(limit)))
        sql += """
             ORDER BY tx_id, global_position LIMIT $\(parameters.count))
            UNION ALL
            SELECT \(Self.nullColumns), horizon, (SELECT max(tx_id) FROM events) FROM h
            """
        let rows = try await connection.query(sql, parameters)
        var events: [RecordedEvent] = []
        events.reserveCapacity(max(0, rows.count - 1))
        var trailer: (horizon: UInt64, newest: UInt64?)?
        for row in rows {
            if try row.isNull(0) {
                let newest = try row.isNull(Self.columnCount + 1) ? nil : try row.uint64(Self.columnCount + 1)
                trailer = (try row.uint64(Self.columnCount), newest)
            } else {
                events.append(try Self.recordedEvent(row))
            }
        }
        guard let trailer else { throw EventsError(.query, "the feed read returned no horizon") }
        // UNION ALL keeps the rows of its first part in their order; a different plan must not reorder the feed.
        if zip(events, events.dropFirst()).contains(where: { $0.feedPosition > $1.feedPosition }) {
            events.sort { $0.feedPosition < $1.feedPosition }
        }
        let held = trailer.newest.map { $0 >= trailer.horizon } ?? false
        if events.count >= limit, let last = events.last {
            return FeedPage(
                events: events, next: last.feedPosition, isComplete: false, horizon: trailer.horizon, isHeld: held,
                newestTransaction: trailer.newest)
        }
        // Everything below the horizon was scanned: every event still to come sorts after (horizon, 0).
        let scanned = FeedPosition(transactionID: trailer.horizon, globalPosition: 0)
        return FeedPage(
            events: events, next: max(position, events.last?.feedPosition ?? position, scanned), isComplete: true,
            horizon: trailer.horizon, isHeld: held, newestTransaction: trailer.newest)
    }

    /// The last `count` events of the feed that readers can see now, oldest first, and where a reader that
    /// follows them goes on from: after the last of them, or at the horizon the read stopped below when there
    /// are none (so an event appended meanwhile is followed, never taken for part of the tail).
    public func readFeedTail(count: Int, filter: FeedFilter = .all) async throws -> FeedPage {
        let horizon = try await currentHorizon()
        var sql = "SELECT \(Self.columns) FROM events WHERE tx_id < $1::text::xid8"
        var parameters: [PostgresValue] = [.text(String(horizon))]
        Self.appendFilter(filter, to: &sql, parameters: &parameters)
        parameters.append(.int64(Int64(max(0, count))))
        sql += " ORDER BY tx_id DESC, global_position DESC LIMIT $\(parameters.count)"
        let events = Array(try await pool.query(sql, parameters).map(Self.recordedEvent).reversed())
        let next = events.last?.feedPosition ?? FeedPosition(transactionID: horizon, globalPosition: 0)
        return FeedPage(
            events: events, next: next, isComplete: true, horizon: horizon, isHeld: false, newestTransaction: nil)
    }

    /// The feed position of the newest event readers can see now (`start` for an empty log).
    public func head() async throws -> FeedPosition {
        let horizon = try await currentHorizon()
        let rows = try await pool.query(
            """
            SELECT tx_id, global_position FROM events WHERE tx_id < $1::text::xid8
            ORDER BY tx_id DESC, global_position DESC LIMIT 1
            """, [.text(String(horizon))])
        guard let row = rows.first else { return .start }
        return FeedPosition(transactionID: try row.uint64(0), globalPosition: try row.int64(1))
    }

    /// Whether committed events exist that readers cannot take yet because an older transaction that may
    /// append to this log is still running (the horizon is held back).
    package func hasEventsBeyondHorizon() async throws -> Bool {
        let horizon = try await currentHorizon()
        // max() walks the feed index from its end: one probe, where EXISTS with a computed bound may scan.
        return try await pool.query(
            "SELECT coalesce((SELECT max(tx_id) FROM events) >= $1::text::xid8, false)", [.text(String(horizon))]
        ).first?.bool(0) ?? false
    }

    /// The feed's horizon now (`tally_feed_horizon()`, in a statement of its own: reads that use it run after).
    package func currentHorizon() async throws -> UInt64 {
        try await pool.query("SELECT tally_feed_horizon()").first?.uint64(0) ?? 0
    }

    /// Increases whenever the log may have grown (a local append or another process's NOTIFY); readers wait
    /// on it through `nextFeedPage(after:limit:filter:pollInterval:wait:)`.
    package var appendGeneration: UInt64 { changes.generation }

    /// The longest a reader waits between looks while committed events wait behind the horizon.
    static let horizonPollLimit: Duration = .milliseconds(100)

    /// Where a feed reader stands between reads: how long it waits while committed events sit behind the
    /// horizon.
    package struct FeedWait: Sendable {
        var heldBackoff: Duration?
        package init() {}
    }

    /// The next page of the feed after `position`; when there is none, waits until there may be one and
    /// returns an empty page (the caller reads again).
    ///
    /// The wait is until an append here or a NOTIFY from another process, at most `pollInterval`. That is
    /// only safe when the read saw every committed event: one held behind the horizon announces nothing when
    /// the horizon moves (the holder may not append anything). The read says so in the same statement
    /// (`FeedPage.isHeld`): while events are held, the reader looks again every 5 ms, doubling up to 100 ms.
    package func nextFeedPage(
        after position: FeedPosition, limit: Int, filter: FeedFilter, pollInterval: Duration, wait: inout FeedWait
    ) async throws -> FeedPage {
        listener.start()
        // Taken before the read: an append that commits after the read's snapshot signals after this.
        let generation = appendGeneration
        let page = try await readFeed(after: position, limit: limit, filter: filter)
        if !page.events.isEmpty || !page.isComplete || Task.isCancelled {
            wait = FeedWait()
            return page
        }
        if page.isHeld {
            let limit = min(pollInterval, Self.horizonPollLimit)
            let pause = min(wait.heldBackoff ?? .milliseconds(5), limit)
            await changes.wait(after: generation, timeout: pause)
            wait.heldBackoff = min(pause * 2, limit)
        } else {
            wait.heldBackoff = nil
            await changes.wait(after: generation, timeout: pollInterval)
        }
        return page
    }

    /// Follows the feed from `position`: every event after it, then new ones as they commit.
    public func subscribe(from position: FeedPosition, filter: FeedFilter = .all, pageSize: Int = 500)
        -> EventSubscription
    {
        listener.start()
        return EventSubscription(store: self, start: position, filter: filter, pageSize: pageSize)
    }

    // MARK: - Rows

    static let columns = """
        global_position, tx_id, tenant_id, stream_id, stream_version, event_id, event_type, schema_version, \
        codec, payload, metadata, recorded_at
        """
    static let columnCount = 12

    /// `columns` as typed NULLs, for a row that carries something else.
    static let nullColumns = """
        NULL::int8, NULL::xid8, NULL::uuid, NULL::text, NULL::int8, NULL::uuid, NULL::text, NULL::int4, \
        NULL::int2, NULL::bytea, NULL::jsonb, NULL::timestamptz
        """

    static func recordedEvent(_ row: PostgresRow) throws -> RecordedEvent {
        let position = try row.int64(0)
        let stream = try row.string(3)
        guard StreamName.isValid(stream) else {
            throw EventsError(
                .decoding, "the event at position \(position) has an invalid stream name", position: position)
        }
        return RecordedEvent(
            feedPosition: FeedPosition(transactionID: try row.uint64(1), globalPosition: position),
            tenantID: try row.optionalUUID(2),
            stream: StreamName(unchecked: stream),
            streamVersion: try row.int64(4),
            id: try row.uuid(5),
            type: try row.string(6),
            schemaVersion: try row.int(7),
            codec: PayloadCodec(tag: Int16(truncatingIfNeeded: try row.int64(8))),
            storedPayload: try row.bytes(9),
            metadataJSON: try row.jsonBytes(10),
            recordedAt: try row.date(11))
    }

    private static func appendFilter(_ filter: FeedFilter, to sql: inout String, parameters: inout [PostgresValue]) {
        if let tenant = filter.tenantID {
            parameters.append(.uuid(tenant))
            sql += " AND tenant_id = $\(parameters.count)"
        }
        if let types = filter.types {
            parameters.append(.stringArray(types.sorted()))
            sql += " AND event_type = ANY($\(parameters.count))"
        }
        if let categories = filter.categories {
            parameters.append(.stringArray(categories.sorted()))
            sql += " AND split_part(stream_id, '-', 1) = ANY($\(parameters.count))"
        }
    }
}
