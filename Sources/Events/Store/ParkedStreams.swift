public import Foundation

/// A stream that a feed reader (a projection, the workers' dispatcher) could not apply: the first event it
/// failed on and why. The reader holds every later event of the stream and goes on with all the others, so one
/// bad event never stops a reader for every tenant; `tally projections retry` applies the stream again.
public struct ParkedStream: Sendable, Hashable, Codable {
    /// The reader: a projection's name, `dispatcher`, or `rebuild:<projection>` while a rebuild runs.
    public var reader: String
    public var stream: String
    public var tenantID: UUID?
    /// The feed position of the event that failed.
    public var position: FeedPosition
    /// Its version in the stream, and its type.
    public var streamVersion: Int64
    public var eventType: String
    /// The lowest version among the failed event and the events held since.
    public var fromVersion: Int64
    /// What the reader said (safe to show: error descriptions never quote payloads or parameters).
    public var error: String
    /// Events of the stream the reader passed over since.
    public var heldEvents: Int64
    /// Retries that failed.
    public var attempts: Int
    /// Set when a retry was asked for and the reader has not tried yet.
    public var retryRequestedAt: Date?
    public var parkedAt: Date
}

/// The `parked_streams` table. Readers change it inside the transaction that moves their checkpoint, so a
/// parked stream and the position past its event commit together. Every function runs inside the caller's
/// transaction of the operator's scope (the table has row-level security by tenant).
package enum ParkedStreams {
    static let columns = """
        reader, stream_id, tenant_id, tx_id, global_position, stream_version, event_type, from_version, error, \
        held_events, attempts, retry_requested_at, parked_at
        """

    static func parked(_ row: PostgresRow) throws -> ParkedStream {
        ParkedStream(
            reader: try row.string(0), stream: try row.string(1), tenantID: try row.optionalUUID(2),
            position: FeedPosition(transactionID: try row.uint64(3), globalPosition: try row.int64(4)),
            streamVersion: try row.int64(5), eventType: try row.string(6), fromVersion: try row.int64(7),
            error: try row.string(8),
            heldEvents: try row.int64(9), attempts: try row.int(10), retryRequestedAt: try row.optionalDate(11),
            parkedAt: try row.date(12))
    }

    /// The reader's parked streams, by stream name.
    package static func load(reader: String, on connection: PostgresConnection) async throws -> [String: ParkedStream] {
        let rows = try await connection.query(
            "SELECT \(columns) FROM parked_streams WHERE reader = $1", [.string(reader)])
        var streams: [String: ParkedStream] = [:]
        for row in rows {
            let stream = try Self.parked(row)
            streams[stream.stream] = stream
        }
        return streams
    }

    /// When the oldest stream one of `readers` parked was parked, among `stream` if given and the streams of
    /// `tenant` if given; nil when none is. Reads of the readers' tables check it so that they never answer
    /// from rows that miss part of a stream's history.
    package static func oldestParking(
        readers: [String], stream: StreamName? = nil, tenant: UUID? = nil, on connection: PostgresConnection
    ) async throws -> Date? {
        try await connection.query(
            """
            SELECT parked_at FROM parked_streams
            WHERE reader = ANY($1) AND ($2::text IS NULL OR stream_id = $2) AND ($3::uuid IS NULL OR tenant_id = $3)
            ORDER BY parked_at LIMIT 1
            """, [.stringArray(readers), .string(stream?.rawValue), .uuid(tenant)]
        ).first?.date(0)
    }

    /// Parks `event`'s stream for `reader` (kept as it is when it is parked already).
    package static func park(
        _ event: RecordedEvent, reader: String, error: String, on connection: PostgresConnection
    ) async throws -> ParkedStream {
        let rows = try await connection.query(
            """
            INSERT INTO parked_streams AS p (reader, stream_id, tenant_id, tx_id, global_position, stream_version, event_type,
                                             from_version, error)
            VALUES ($1, $2, $3, $4::text::xid8, $5, $6, $7, $6, $8)
            ON CONFLICT (reader, stream_id) DO UPDATE SET updated_at = now()
            RETURNING \(columns)
            """,
            [
                .string(reader), .string(event.stream.rawValue), .uuid(event.tenantID),
                .text(String(event.feedPosition.transactionID)),
                .int64(event.globalPosition), .int64(event.streamVersion), .string(event.type),
                .string(String(error.prefix(2000))),
            ])
        return try parked(rows[0])
    }

    /// Counts events of a parked stream that the reader passed over. One that comes before the failed event in
    /// its stream (the feed showed the stream out of order: an inversion written before migration 7) asks
    /// for a retry at once, which applies the stream in version order.
    package static func hold(
        _ events: [RecordedEvent], of parked: ParkedStream, on connection: PostgresConnection
    ) async throws -> ParkedStream {
        guard let lowest = events.map(\.streamVersion).min() else { return parked }
        let rows = try await connection.query(
            """
            UPDATE parked_streams SET held_events = held_events + $3, from_version = least(from_version, $4),
                retry_requested_at = CASE WHEN $4 < stream_version THEN coalesce(retry_requested_at, now()) ELSE retry_requested_at END,
                updated_at = now()
            WHERE reader = $1 AND stream_id = $2
            RETURNING \(columns)
            """, [.string(parked.reader), .string(parked.stream), .int64(Int64(events.count)), .int64(lowest)])
        return try rows.first.map(Self.parked) ?? parked
    }

    /// The stream applied again: it is not parked any more.
    package static func release(_ parked: ParkedStream, on connection: PostgresConnection) async throws {
        try await connection.query(
            "DELETE FROM parked_streams WHERE reader = $1 AND stream_id = $2",
            [.string(parked.reader), .string(parked.stream)])
    }

    /// A retry failed: record why, and wait for the next request.
    package static func retryFailed(_ parked: ParkedStream, error: String, on connection: PostgresConnection)
        async throws
    {
        try await connection.query(
            """
            UPDATE parked_streams SET error = $3, attempts = attempts + 1, retry_requested_at = NULL, updated_at = now()
            WHERE reader = $1 AND stream_id = $2
            """, [.string(parked.reader), .string(parked.stream), .string(String(error.prefix(2000)))])
    }

    /// The events a retry applies: those of the stream from `fromVersion`, at or after the failed event and not
    /// after `checkpoint`, of the reader's `types`, in version order.
    package static func heldEvents(
        _ parked: ParkedStream, upTo checkpoint: FeedPosition, types: Set<String>?, store: EventStore
    ) async throws -> [RecordedEvent] {
        var events: [RecordedEvent] = []
        var version = parked.fromVersion
        while true {
            let page = try await store.read(stream: StreamName(unchecked: parked.stream), from: version, limit: 1000)
            events += page.filter { event in
                event.feedPosition >= parked.position && event.feedPosition <= checkpoint
                    && (types?.contains(event.type) ?? true)
            }
            guard let last = page.last, page.count == 1000 else { break }
            version = last.streamVersion + 1
        }
        return events
    }
}

extension EventStore {
    /// Every parked stream of every reader (or of `readers`), oldest first.
    public func parkedStreams(readers: [String]? = nil) async throws -> [ParkedStream] {
        try await asOperator(readOnly: true) { connection in
            try await connection.query(
                """
                SELECT \(ParkedStreams.columns) FROM parked_streams WHERE $1::text[] IS NULL OR reader = ANY($1)
                ORDER BY parked_at, reader, stream_id
                """, [readers.map { .stringArray($0) } ?? .null]
            ).map(ParkedStreams.parked)
        }
    }

    /// Asks the readers to apply their parked streams again (all of them, or those of `readers`); returns the
    /// streams asked for. The reader that leads tries within about a second.
    @discardableResult
    public func requestRetry(readers: [String]? = nil) async throws -> [ParkedStream] {
        try await asOperator { connection in
            try await connection.query(
                """
                UPDATE parked_streams SET retry_requested_at = now(), updated_at = now()
                WHERE $1::text[] IS NULL OR reader = ANY($1)
                RETURNING \(ParkedStreams.columns)
                """, [readers.map { .stringArray($0) } ?? .null]
            ).map(ParkedStreams.parked)
        }
    }
}

/// A reader's parked streams while it applies the feed: events of a parked stream are held, the others applied,
/// and an event that cannot be applied parks its stream instead of stopping the reader.
package struct FeedParking: Sendable {
    package let reader: String
    package var parked: [String: ParkedStream]

    package init(reader: String, parked: [String: ParkedStream]) {
        self.reader = reader
        self.parked = parked
    }

    /// Inside the caller's transaction: holds the events of parked streams and applies the others with `body`,
    /// all at once, or (`isolating`) one by one, each under a savepoint, parking the stream of any event that
    /// fails. Returns how many events were applied. Errors that say nothing about the event (the connection,
    /// cancellation, a lost race, a timeout) are thrown, never parked.
    package mutating func apply(
        _ events: [RecordedEvent], isolating: Bool, on connection: PostgresConnection,
        _ body: ([RecordedEvent]) async throws -> Void
    ) async throws -> Int {
        var held: [String: [RecordedEvent]] = [:]
        var applied = 0
        if isolating {
            for event in events {
                let stream = event.stream.rawValue
                if parked[stream] != nil {
                    held[stream, default: []].append(event)
                    continue
                }
                try await connection.execute("SAVEPOINT tally_event")
                do {
                    try await body([event])
                    try await connection.execute("RELEASE SAVEPOINT tally_event")
                    applied += 1
                } catch {
                    guard Self.isTheEventsFault(error), !connection.isBroken else { throw error }
                    try await connection.execute("ROLLBACK TO SAVEPOINT tally_event")
                    parked[stream] = try await ParkedStreams.park(
                        event, reader: reader, error: "\(error)", on: connection)
                }
            }
        } else {
            var due: [RecordedEvent] = []
            due.reserveCapacity(events.count)
            for event in events {
                if parked[event.stream.rawValue] != nil {
                    held[event.stream.rawValue, default: []].append(event)
                } else {
                    due.append(event)
                }
            }
            if !due.isEmpty { try await body(due) }
            applied = due.count
        }
        for (stream, events) in held {
            if let parkedStream = parked[stream] {
                parked[stream] = try await ParkedStreams.hold(events, of: parkedStream, on: connection)
            }
        }
        return applied
    }

    /// Whether `error` is about the event being applied, so that parking its stream is the answer; not for a
    /// broken connection, cancellation, a serialization failure or deadlock, a timeout or a lack of resources.
    package static func isTheEventsFault(_ error: any Error) -> Bool {
        if error is CancellationError { return false }
        guard let error = error as? EventsError else { return true }
        if [.unavailable, .timeout, .poolClosed, .serializationFailure].contains(error.code) { return false }
        if let state = error.sqlState, ["08", "40", "53", "57", "58", "XX"].contains(String(state.prefix(2))) {
            return false
        }
        return true
    }
}

extension FeedParking {
    /// `apply(_:isolating:on:_:)` inside the caller's transaction, all at once under a savepoint first; when
    /// that fails for the events' fault, again one by one. For readers that cannot start their transaction
    /// over (a rebuild's swap).
    package mutating func applyWithSavepoint(
        _ events: [RecordedEvent], on connection: PostgresConnection, _ body: ([RecordedEvent]) async throws -> Void
    ) async throws -> Int {
        let before = self
        try await connection.execute("SAVEPOINT tally_batch")
        do {
            // Released by the caller's COMMIT: no round trip for it here.
            return try await apply(events, isolating: false, on: connection, body)
        } catch {
            guard Self.isTheEventsFault(error), !connection.isBroken else { throw error }
            self = before
            try await connection.execute("ROLLBACK TO SAVEPOINT tally_batch")
            return try await apply(events, isolating: true, on: connection, body)
        }
    }
}
