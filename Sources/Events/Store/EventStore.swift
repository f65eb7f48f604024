public import Foundation
public import Logging

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

        public init(
            databaseURL: String, maxConnections: Int = 16, acquireTimeout: Duration = .seconds(10),
            pollInterval: Duration = .seconds(1), applicationName: String = "tally"
        ) {
            self.databaseURL = databaseURL
            self.maxConnections = maxConnections
            self.acquireTimeout = acquireTimeout
            self.pollInterval = pollInterval
            self.applicationName = applicationName
        }
    }

    package let pool: PostgresPool
    public let catalog: EventCatalog
    package let configuration: Configuration
    let changes = ChangeSignal()
    private let notifier: AppendNotifier
    private let listener: FeedListener
    let logger: Logger

    public init(configuration: Configuration, catalog: EventCatalog = .tally, logger: Logger = Logger(label: "tally.events")) {
        let postgres = PostgresConfiguration(url: configuration.databaseURL, applicationName: configuration.applicationName)
        self.pool = PostgresPool(
            configuration: postgres,
            options: .init(maxConnections: configuration.maxConnections, acquireTimeout: configuration.acquireTimeout))
        self.catalog = catalog
        self.configuration = configuration
        self.notifier = AppendNotifier(pool: pool)
        self.listener = FeedListener(configuration: postgres, signal: changes, logger: logger)
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
    @discardableResult
    public func append(_ appends: [StreamAppend]) async throws -> [AppendResult] {
        let call = try AppendCall(appends)
        let results = try await pool.withConnection { try await call.run(on: $0, canInspectAfterFailure: true) }
        appended()
        return results
    }

    /// Appends inside a transaction the caller holds open on `connection` (with other writes that must
    /// commit together with the events). Call `appended()` after the caller's COMMIT to wake readers. When a
    /// multi-stream append conflicts, the transaction is aborted and the caller must roll it back.
    package func append(_ appends: [StreamAppend], on connection: PostgresConnection) async throws -> [AppendResult] {
        try await AppendCall(appends).run(on: connection, canInspectAfterFailure: false)
    }

    /// Wakes local readers now and other processes' readers soon.
    public func appended() {
        changes.signal()
        notifier.appended()
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
            "SELECT \(Self.columns) FROM events WHERE stream_id = $1 ORDER BY stream_version", [.string(stream.rawValue)])
        return try rows.map(Self.recordedEvent)
    }

    /// The stream's current version, or 0 when it does not exist.
    public func version(of stream: StreamName) async throws -> Int64 {
        let rows = try await pool.query("SELECT version FROM streams WHERE stream_id = $1", [.string(stream.rawValue)])
        return try rows.first?.int64(0) ?? 0
    }

    /// Reads the feed in commit order after `position`: only events whose transaction id is below the
    /// oldest running transaction, ordered by (transaction id, global position).
    public func readFeed(after position: FeedPosition, limit: Int = 1000, filter: FeedFilter = .all) async throws -> FeedPage {
        var sql = """
            SELECT \(Self.columns) FROM events
            WHERE (tx_id, global_position) > ($1::text::xid8, $2)
              AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
            """
        var parameters: [PostgresValue] = [.text(String(position.transactionID)), .int64(position.globalPosition)]
        Self.appendFilter(filter, to: &sql, parameters: &parameters)
        parameters.append(.int64(Int64(max(1, limit))))
        sql += " ORDER BY tx_id, global_position LIMIT $\(parameters.count)"
        let events = try await pool.query(sql, parameters).map(Self.recordedEvent)
        return FeedPage(events: events, next: events.last?.feedPosition ?? position)
    }

    /// The last `count` events of the feed that readers can see now, oldest first.
    public func readFeedTail(count: Int, filter: FeedFilter = .all) async throws -> [RecordedEvent] {
        var sql = "SELECT \(Self.columns) FROM events WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())"
        var parameters: [PostgresValue] = []
        Self.appendFilter(filter, to: &sql, parameters: &parameters)
        parameters.append(.int64(Int64(max(0, count))))
        sql += " ORDER BY tx_id DESC, global_position DESC LIMIT $\(parameters.count)"
        return try await pool.query(sql, parameters).map(Self.recordedEvent).reversed()
    }

    /// The feed position of the newest event readers can see now (`start` for an empty log).
    public func head() async throws -> FeedPosition {
        let rows = try await pool.query(
            """
            SELECT tx_id, global_position FROM events WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())
            ORDER BY tx_id DESC, global_position DESC LIMIT 1
            """)
        guard let row = rows.first else { return .start }
        return FeedPosition(transactionID: try row.uint64(0), globalPosition: try row.int64(1))
    }

    /// Whether committed events exist that readers cannot take yet because an older transaction is still
    /// running (the horizon is held back).
    package func hasEventsBeyondHorizon() async throws -> Bool {
        try await pool.query(
            "SELECT EXISTS (SELECT 1 FROM events WHERE tx_id >= pg_snapshot_xmin(pg_current_snapshot()))"
        ).first?.bool(0) ?? false
    }

    /// Increases whenever the log may have grown (a local append or another process's NOTIFY); readers wait
    /// on it through `nextFeedPage(after:limit:filter:pollInterval:wait:)`.
    package var appendGeneration: UInt64 { changes.generation }

    /// The longest a reader waits between looks while committed events wait behind the horizon.
    static let horizonPollLimit: Duration = .milliseconds(100)

    /// Where a feed reader stands between reads: whether its last read came back empty, and how long it
    /// waits while committed events sit behind the horizon.
    package struct FeedWait: Sendable {
        var idle = false
        var heldBackoff: Duration?
        package init() {}
    }

    /// The next page of the feed after `position`; when there is none, waits until there may be one and
    /// returns an empty page (the caller reads again).
    ///
    /// The wait is until an append here or a NOTIFY from another process, at most `pollInterval`. That is
    /// only safe when the reader knows no committed event was invisible to its read: an event held behind
    /// the horizon announces nothing when the horizon moves (the holder may not even be in this database).
    /// So an idle reader asks whether events wait behind the horizon *before* it reads: if none did, the
    /// read saw everything committed up to then, and anything later wakes it. While some do, it looks again
    /// every 5 ms, doubling up to 100 ms.
    package func nextFeedPage(
        after position: FeedPosition, limit: Int, filter: FeedFilter, pollInterval: Duration, wait: inout FeedWait
    ) async throws -> FeedPage {
        listener.start()
        let generation = appendGeneration
        let heldBeforeRead = wait.idle ? try await hasEventsBeyondHorizon() : nil
        let page = try await readFeed(after: position, limit: limit, filter: filter)
        if !page.events.isEmpty || Task.isCancelled {
            wait = FeedWait()
            return page
        }
        guard let held = heldBeforeRead else {
            // Empty after a busy read: read once more, this time knowing the horizon before the read.
            wait.idle = true
            return page
        }
        if held {
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
    public func subscribe(from position: FeedPosition, filter: FeedFilter = .all, pageSize: Int = 500) -> EventSubscription {
        listener.start()
        return EventSubscription(store: self, start: position, filter: filter, pageSize: pageSize)
    }

    // MARK: - Rows

    static let columns = """
        global_position, tx_id, tenant_id, stream_id, stream_version, event_id, event_type, schema_version, \
        codec, payload, metadata, recorded_at
        """

    static func recordedEvent(_ row: PostgresRow) throws -> RecordedEvent {
        let position = try row.int64(0)
        let stream = try row.string(3)
        guard StreamName.isValid(stream) else {
            throw EventsError(.decoding, "the event at position \(position) has an invalid stream name", position: position)
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
