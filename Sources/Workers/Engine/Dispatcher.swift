public import Events
import Foundation
import Logging

/// Follows the log into the queue tables: runs started, steps scheduled by the API, cancellations, vendor keys
/// stored, removed or suspended, and flow limits. One dispatcher leads at a time across every worker process:
/// the holder of the lease `dispatcher` in `leader_leases`, renewed every third of its duration; the others
/// stand by and take it once it has expired. Its checkpoint moves in the transaction that applies the events,
/// which first checks the lease's token, so a holder that froze and woke after another took over commits
/// nothing. An event it cannot apply parks that event's stream (`parked_streams`, reader `dispatcher`) and the
/// others go on.
final class Dispatcher: Sendable {
    let queue: WorkQueue
    let logger: Logger
    let pollInterval: Duration
    /// How long the lease lasts unrenewed.
    let leaseDuration: Duration
    /// This process in `leader_leases.holder`: its worker id and a random suffix.
    let holder: String
    /// Called when some step may have become due.
    let onDue: @Sendable () -> Void

    init(
        queue: WorkQueue, logger: Logger, pollInterval: Duration, leaseDuration: Duration, holder: String,
        onDue: @escaping @Sendable () -> Void
    ) {
        self.queue = queue
        self.logger = logger
        self.pollInterval = pollInterval
        self.leaseDuration = leaseDuration
        // Two processes given one worker id must not both hold the lease (a holder may take its own lease again).
        self.holder = "\(holder) \(UUID().uuidString.prefix(8).lowercased())"
        self.onDue = onDue
    }

    static let name = "dispatcher"

    /// Leads when it can, until `stopping` returns true.
    func run(stopping: @escaping @Sendable () -> Bool) async {
        var backoff: Duration = .milliseconds(250)
        while !stopping() {
            var session: PostgresConnection?
            do {
                // The pool's URL: a lease needs no session. An idle transaction of a frozen leader ends within
                // half a lease.
                var configuration = queue.store.configuration.pooled
                configuration.idleInTransactionTimeoutMilliseconds = max(
                    1000, Int(leaseDuration.components.seconds) * 500)
                let connection = try await PostgresConnection.connectLeaderSession(
                    configuration, applicationName: "tally-dispatcher pid=\(ProcessInfo.processInfo.processIdentifier)")
                session = connection
                while !stopping() {
                    if let lease = try await LeaderLease.acquire(
                        Self.name, holder: holder, duration: leaseDuration, pool: queue.store.pool)
                    {
                        backoff = .milliseconds(250)
                        try await leadLeased(lease, on: connection, stopping: stopping)
                        if connection.isBroken { break }
                    }
                    try? await Task.sleep(for: .seconds(1))
                }
            } catch {
                logger.error("dispatcher error", metadata: ["error": "\(error)"])
                backoff = min(backoff * 2, .seconds(10))
                try? await Task.sleep(for: backoff)
            }
            session?.close()
        }
    }

    /// The dispatcher no longer holds its lease: it stops leading, and parks nothing for it.
    struct LeaseLost: Error {
        let reason: String
    }

    /// Leads under `lease`, renewing it on the pool, until it is lost or `stopping`; then gives it up.
    private func leadLeased(
        _ lease: LeaderLease, on connection: PostgresConnection, stopping: @escaping @Sendable () -> Bool
    )
        async throws
    {
        do {
            try await lease.hold(
                duration: leaseDuration, pool: queue.store.pool,
                lost: { LeaseLost(reason: "the dispatcher's lease was taken by another holder") }
            ) { try await self.lead(on: connection, stopping: stopping, lease: lease) }
        } catch let error as LeaseLost {
            logger.notice("gave up leading the dispatcher", metadata: ["reason": "\(error.reason)"])
        }
    }

    private func lead(on connection: PostgresConnection, stopping: @Sendable () -> Bool, lease: LeaderLease)
        async throws
    {
        let found = try await connection.withTransaction(begin: WorkQueue.begin) {
            try await connection.query(
                "INSERT INTO worker_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", [.string(Self.name)])
            return try await connection.query(
                "SELECT tx_id::text, global_position FROM worker_checkpoints WHERE name = $1", [.string(Self.name)])
        }
        guard let row = found.first, let transaction = UInt64(try row.string(0)) else {
            throw EventsError(.query, "the dispatcher's checkpoint is missing")
        }
        var position = FeedPosition(transactionID: transaction, globalPosition: try row.int64(1))
        let parked = try await connection.withTransaction(begin: WorkQueue.begin) {
            try await ParkedStreams.load(reader: Self.name, on: connection)
        }
        var parking = FeedParking(reader: Self.name, parked: parked)
        logger.info(
            "leading the dispatcher", metadata: ["position": "\(position)", "parked": "\(parking.parked.count)"])
        let filter = FeedFilter(types: WorkQueue.eventTypes)
        var wait = EventStore.FeedWait()
        var lastRetryCheck = ContinuousClock.now - .seconds(10)
        var lastIdleSave = ContinuousClock.now
        var scanned = position
        while !stopping() && !Task.isCancelled {
            if !parking.parked.isEmpty, ContinuousClock.now - lastRetryCheck >= .milliseconds(500) {
                lastRetryCheck = ContinuousClock.now
                if try await retryParked(&parking, position: position, on: connection) { onDue() }
            }
            let page = try await queue.store.nextFeedPage(
                after: max(scanned, position), limit: 1000, filter: filter, pollInterval: pollInterval, wait: &wait)
            scanned = page.next
            if page.events.isEmpty {
                // Nothing to apply: the checkpoint records how far the read went, at most once a second.
                guard scanned > position, page.mayHaveEvents(after: position),
                    ContinuousClock.now - lastIdleSave >= .seconds(1)
                else {
                    continue
                }
                lastIdleSave = ContinuousClock.now
            }
            let due = try await apply(page.events, next: scanned, parking: &parking, lease: lease, on: connection)
            position = scanned
            if due { onDue() }
        }
    }

    /// Applies a page and moves the checkpoint to `next` in one transaction. When the page fails it is
    /// applied again event by event under savepoints: an event that cannot be applied parks its stream (that
    /// run, that vendor key) and every other stream goes on.
    private func apply(
        _ events: [RecordedEvent], next: FeedPosition, parking: inout FeedParking, lease: LeaderLease,
        on connection: PostgresConnection
    ) async throws -> Bool {
        for isolating in [false, true] {
            var attempt = parking
            do {
                let due = try await connection.withTransaction(begin: WorkQueue.begin) {
                    // Fenced: a dispatcher whose lease was taken (it froze, another took over) commits nothing.
                    if try await !lease.holds(on: connection) {
                        throw LeaseLost(reason: "the dispatcher's lease expired or was taken (fenced)")
                    }
                    var due = false
                    _ = try await attempt.apply(events, isolating: isolating, on: connection) { events in
                        if try await queue.apply(events, on: connection) { due = true }
                    }
                    try await connection.query(
                        "UPDATE worker_checkpoints SET tx_id = $2::text::xid8, global_position = $3, updated_at = now() WHERE name = $1",
                        [.string(Self.name), .string(String(next.transactionID)), .int64(next.globalPosition)])
                    return due
                }
                for stream in attempt.parked.values where parking.parked[stream.stream] == nil {
                    logger.error(
                        "the dispatcher parked a stream it cannot apply; the others go on",
                        metadata: [
                            "stream": "\(stream.stream)", "position": "\(stream.position.globalPosition)",
                            "error": "\(stream.error)",
                        ])
                }
                parking = attempt
                return due
            } catch {
                if error is LeaseLost || isolating || connection.isBroken || events.isEmpty
                    || !FeedParking.isTheEventsFault(error)
                {
                    throw error
                }
            }
        }
        return false
    }

    /// Applies the parked streams whose retry was asked for, each in version order; returns whether a step may
    /// have become due.
    private func retryParked(_ parking: inout FeedParking, position: FeedPosition, on connection: PostgresConnection)
        async throws -> Bool
    {
        let requested = try await connection.withTransaction(begin: WorkQueue.begin) {
            try await ParkedStreams.load(reader: Self.name, on: connection)
        }.values.filter { $0.retryRequestedAt != nil }
        var due = false
        for stream in requested.sorted(by: { $0.parkedAt < $1.parkedAt }) {
            let events = try await ParkedStreams.heldEvents(
                stream, upTo: position, types: WorkQueue.eventTypes, store: queue.store)
            do {
                try await connection.withTransaction(begin: WorkQueue.begin) {
                    if !events.isEmpty, try await queue.apply(events, on: connection) { due = true }
                    try await ParkedStreams.release(stream, on: connection)
                }
                parking.parked[stream.stream] = nil
                logger.notice(
                    "a parked stream was applied",
                    metadata: ["stream": "\(stream.stream)", "events": "\(events.count)"])
            } catch {
                if connection.isBroken || !FeedParking.isTheEventsFault(error) { throw error }
                try await connection.withTransaction(begin: WorkQueue.begin) {
                    try await ParkedStreams.retryFailed(stream, error: "\(error)", on: connection)
                }
                parking.parked[stream.stream]?.retryRequestedAt = nil
                logger.error(
                    "a parked stream still cannot be applied",
                    metadata: ["stream": "\(stream.stream)", "error": "\(error)"])
            }
        }
        return due
    }
}

/// Reads of `worker_checkpoints`, the workers' positions in the log, for the restore check.
public enum WorkerCheckpoints {
    /// Each worker-side reader's global position by name (the dispatcher's; none before it first ran), for
    /// `EventStore.restoreProblems(readers:)`.
    public static func globalPositions(_ store: EventStore) async throws -> [String: Int64] {
        var positions: [String: Int64] = [:]
        for row in try await store.pool.query("SELECT name, global_position FROM worker_checkpoints") {
            positions[try row.string(0)] = try row.int64(1)
        }
        return positions
    }
}
