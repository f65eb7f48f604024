import Events
import Foundation
import Logging

/// Follows the log into the queue tables: runs started, steps scheduled by the API, cancellations, vendor keys
/// stored, removed or suspended, and flow limits. One dispatcher leads at a time across every worker process
/// (a session-level advisory lock on a session of its own); the others stand by and take over when the
/// leader's session ends. Its checkpoint moves in the transaction that applies the events.
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
                    queue.store.pool.configuration, applicationName: "tally-dispatcher pid=\(ProcessInfo.processInfo.processIdentifier)")
                session = connection
                while !stopping() {
                    let locked = try await connection.query(
                        "SELECT pg_try_advisory_lock(hashtextextended('tally.workers.dispatcher', 0))")
                    if try locked.first?.bool(0) == true {
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

    private func lead(on connection: PostgresConnection, stopping: @Sendable () -> Bool) async throws {
        let found = try await connection.withTransaction(begin: WorkQueue.begin) {
            try await connection.query("INSERT INTO worker_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", [.string(Self.name)])
            return try await connection.query(
                "SELECT tx_id::text, global_position FROM worker_checkpoints WHERE name = $1", [.string(Self.name)])
        }
        guard let row = found.first, let transaction = UInt64(try row.string(0)) else {
            throw EventsError(.query, "the dispatcher's checkpoint is missing")
        }
        var position = FeedPosition(transactionID: transaction, globalPosition: try row.int64(1))
        logger.info("leading the dispatcher", metadata: ["position": "\(position)"])
        let filter = FeedFilter(types: WorkQueue.eventTypes)
        var wait = EventStore.FeedWait()
        while !stopping() {
            let page = try await queue.store.nextFeedPage(after: position, limit: 1000, filter: filter, pollInterval: pollInterval, wait: &wait)
            guard let last = page.events.last else { continue }
            let due = try await connection.withTransaction(begin: WorkQueue.begin) {
                let due = try await queue.apply(page.events, on: connection)
                try await connection.query(
                    "UPDATE worker_checkpoints SET tx_id = $2::text::xid8, global_position = $3, updated_at = now() WHERE name = $1",
                    [.string(Self.name), .string(String(last.feedPosition.transactionID)), .int64(last.feedPosition.globalPosition)])
                return due
            }
            position = last.feedPosition
            if due { onDue() }
        }
    }
}
