import Events
import Foundation
import Logging

/// Follows the log into the queue tables: runs started, steps scheduled by the API, cancellations, vendor keys
/// stored, removed or suspended, and flow limits. One dispatcher leads at a time across every worker process
/// (a session-level advisory lock on a session of its own); the others stand by and take over when the
/// leader's session ends. Its checkpoint moves in the transaction that applies the events; an event it cannot
/// apply parks that event's stream (`parked_streams`, reader `dispatcher`) and the others go on.
final class Dispatcher: Sendable {
    let queue: WorkQueue
    let logger: Logger
    let pollInterval: Duration
    /// Called when some step may have become due.
    let onDue: @Sendable () -> Void

    init(queue: WorkQueue, logger: Logger, pollInterval: Duration, onDue: @escaping @Sendable () -> Void) {
        self.queue = queue
        self.logger = logger
        self.pollInterval = pollInterval
        self.onDue = onDue
    }

    static let name = "dispatcher"

    /// Leads when it can, until `stopping` returns true.
    func run(stopping: @escaping @Sendable () -> Bool) async {
        var backoff: Duration = .milliseconds(250)
        while !stopping() {
            var session: PostgresConnection?
            do {
                let connection = try await PostgresConnection.connectLeaderSession(
                    queue.store.configuration.session,
                    applicationName: "tally-dispatcher pid=\(ProcessInfo.processInfo.processIdentifier)")
                session = connection
                while !stopping() {
                    if !connection.keepsSession {
                        // Behind a transaction pooler: a lease in a table instead of a session lock.
                        if let lease = try await LeaderLease.acquire(
                            Self.name, holder: holder, duration: Self.leaseDuration, pool: queue.store.pool)
                        {
                            backoff = .milliseconds(250)
                            try await leadLeased(lease, on: connection, stopping: stopping)
                        }
                    } else if try await connection.query(
                        "SELECT pg_try_advisory_lock(hashtextextended('tally.workers.dispatcher', 0))"
                    ).first?.bool(0) == true {
                        backoff = .milliseconds(250)
                        try await lead(on: connection, stopping: stopping)
                        break
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

    /// How long the dispatcher's lease lasts unrenewed behind a transaction pooler (renewed every third).
    static let leaseDuration: Duration = .seconds(10)

    /// This process in `leader_leases.holder`.
    let holder = "pid=\(ProcessInfo.processInfo.processIdentifier) \(UUID().uuidString.prefix(8).lowercased())"

    /// Leads under `lease`, renewing it on the pool, until it is lost or `stopping`; then gives it up.
    private func leadLeased(
        _ lease: LeaderLease, on connection: PostgresConnection, stopping: @escaping @Sendable () -> Bool
    )
        async throws
    {
        let pool = queue.store.pool
        defer { Task { try? await lease.release(pool: pool) } }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.lead(on: connection, stopping: stopping, lease: lease) }
                group.addTask {
                    while true {
                        try await Task.sleep(for: Self.leaseDuration / 3)
                        guard try await lease.renew(duration: Self.leaseDuration, pool: pool) else {
                            throw LeaseLost(reason: "the dispatcher's lease was taken by another holder")
                        }
                    }
                }
                try await group.next()
                group.cancelAll()
            }
        } catch let error as LeaseLost {
            logger.notice("gave up leading the dispatcher", metadata: ["reason": "\(error.reason)"])
        }
    }

    private func lead(on connection: PostgresConnection, stopping: @Sendable () -> Bool, lease: LeaderLease? = nil)
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
        _ events: [RecordedEvent], next: FeedPosition, parking: inout FeedParking, lease: LeaderLease?,
        on connection: PostgresConnection
    ) async throws -> Bool {
        for isolating in [false, true] {
            var attempt = parking
            do {
                let due = try await connection.withTransaction(begin: WorkQueue.begin) {
                    // Fenced: a dispatcher whose lease was taken (it froze, another took over) commits nothing.
                    if let lease, try await !lease.holds(on: connection) {
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
