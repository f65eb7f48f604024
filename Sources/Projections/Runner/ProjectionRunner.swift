public import Events
import Foundation
public import Logging

/// Keeps projections current: each reads the commit-order feed from its checkpoint and applies batches,
/// writing its rows and its checkpoint in one transaction.
///
/// Several `tally` processes may run runners against one database: for each projection only the holder of
/// its advisory lock applies, on the connection that holds the lock (so a writer that lost the lock has lost
/// its transaction too), and another process takes over when that session ends. A projection whose `apply`
/// throws stops at that event with the error recorded; the others go on.
public final class ProjectionRunner: Sendable {
    public struct Options: Sendable {
        /// Events per transaction.
        public var batchSize: Int
        /// How often to look for new events when no notification arrives.
        public var pollInterval: Duration
        /// How often a process that is not the leader of a projection tries to become it.
        public var leadershipRetry: Duration

        public init(batchSize: Int = 500, pollInterval: Duration = .seconds(1), leadershipRetry: Duration = .seconds(1)) {
            self.batchSize = max(1, batchSize)
            self.pollInterval = pollInterval
            self.leadershipRetry = leadershipRetry
        }
    }

    let store: EventStore
    let projections: [any Projection]
    let options: Options
    let logger: Logger

    public init(store: EventStore, projections: [any Projection], options: Options = Options(), logger: Logger = Logger(label: "tally.projections")) {
        self.store = store
        self.projections = projections
        self.options = options
        self.logger = logger
    }

    /// Runs every projection until the task is cancelled.
    public func run() async {
        await withDiscardingTaskGroup { group in
            for projection in projections {
                group.addTask { await self.drive(projection) }
            }
        }
    }

    private func drive(_ projection: any Projection) async {
        var backoff = options.leadershipRetry
        // The session that asks for the lock, kept while another process leads: a standby costs one idle session
        // instead of a new backend every second, and shows in pg_stat_activity next to the leader.
        var session: PostgresConnection?
        while !Task.isCancelled {
            do {
                let connection: PostgresConnection
                if let session {
                    connection = session
                } else {
                    connection = try await connect(projection)
                    session = connection
                }
                let locked = try await connection.query(
                    "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", [.string("tally.projection." + projection.name)])
                if try locked.first?.bool(0) == true {
                    backoff = options.leadershipRetry
                    try await lead(projection, on: connection)
                    // The projection stopped or was rebuilt: end the session (and the lock) and ask again.
                    session = nil
                    connection.close()
                }
            } catch is CancellationError {
                break
            } catch {
                logger.error(
                    "projection runner error", metadata: ["projection": "\(projection.name)", "error": "\(error)"])
                backoff = min(backoff * 2, .seconds(30))
                session?.close()
                session = nil
            }
            try? await Task.sleep(for: backoff)
        }
        session?.close()
    }

    /// A session of its own for `projection`, named after it and this process (`tally-projection-tenants pid=4242`)
    /// so that `pg_stat_activity` tells the leader from the standbys.
    private func connect(_ projection: any Projection) async throws -> PostgresConnection {
        try await PostgresConnection.connectLeaderSession(
            store.pool.configuration,
            applicationName: "tally-projection-\(projection.name) pid=\(ProcessInfo.processInfo.processIdentifier)")
    }

    /// Applies `projection` while this process leads it; returns when it fails or the task is cancelled.
    private func lead(_ projection: any Projection, on connection: PostgresConnection) async throws {
        try await ProjectionTables.create(projection, on: connection)
        var checkpoint = try await Checkpoint.load(projection, on: connection)
        guard checkpoint.version == projection.version else {
            throw ProjectionsError(
                .versionMismatch,
                "the database has \(projection.name) version \(checkpoint.version), this binary has \(projection.version): rebuild it")
        }
        guard checkpoint.failed == false else {
            logger.warning("projection is stopped on an error; rebuild it once the cause is fixed", metadata: ["projection": "\(projection.name)"])
            // A rebuild's swap resets the status: then lead again from the rebuilt position.
            while !Task.isCancelled, try await Checkpoint.load(projection, on: connection).failed {
                try await Task.sleep(for: options.pollInterval)
            }
            return
        }
        logger.info("leading projection", metadata: ["projection": "\(projection.name)", "position": "\(checkpoint.position)"])
        var wait = EventStore.FeedWait()
        while !Task.isCancelled {
            let page = try await store.nextFeedPage(
                after: checkpoint.position, limit: options.batchSize, filter: projection.feedFilter, pollInterval: options.pollInterval,
                wait: &wait)
            if page.events.isEmpty { continue }
            do {
                checkpoint = try await apply(page.events, to: projection, from: checkpoint, on: connection)
            } catch let error as ProjectionsError where error.code == .checkpointMoved {
                logger.info("projection checkpoint moved (rebuilt); reloading", metadata: ["projection": "\(projection.name)"])
                return
            } catch {
                if connection.isBroken { throw error }
                try await isolateFailure(page.events, projection: projection, from: checkpoint, on: connection)
                return
            }
        }
    }

    /// One transaction: the events' effects and the new checkpoint, or neither.
    private func apply(
        _ events: [RecordedEvent], to projection: any Projection, from checkpoint: Checkpoint, on connection: PostgresConnection
    ) async throws -> Checkpoint {
        try await connection.withTransaction(begin: "BEGIN; SET LOCAL tally.operator = 'on'") {
            // Taken first in every batch and by a rebuild's swap, so the two take turns: a batch that finds
            // the checkpoint moved (a swap happened) rolls back and the runner reloads.
            try await checkpoint.lock(on: connection)
            try await projection.apply(events, in: ProjectionContext(connection: connection, catalog: store.catalog))
            return try await checkpoint.advance(to: events.last!.feedPosition, by: events.count, on: connection)
        }
    }

    /// A batch failed: apply its events one by one so the checkpoint stops right before the bad one, whose
    /// position and error are recorded.
    private func isolateFailure(
        _ events: [RecordedEvent], projection: any Projection, from start: Checkpoint, on connection: PostgresConnection
    ) async throws {
        var checkpoint = start
        for event in events {
            do {
                checkpoint = try await apply([event], to: projection, from: checkpoint, on: connection)
            } catch let error as ProjectionsError where error.code == .checkpointMoved {
                return
            } catch {
                logger.error(
                    "projection stopped on an event it cannot apply",
                    metadata: ["projection": "\(projection.name)", "position": "\(event.globalPosition)", "error": "\(error)"])
                try await checkpoint.fail(at: event.globalPosition, error: "\(error)", on: connection)
                return
            }
        }
    }
}

/// A projection's row in `projection_checkpoints`.
struct Checkpoint: Sendable {
    let projection: String
    let version: Int
    var position: FeedPosition
    var failed: Bool

    static func load(_ projection: any Projection, on connection: PostgresConnection) async throws -> Checkpoint {
        try await connection.query(
            "INSERT INTO projection_checkpoints (projection, version) VALUES ($1, $2) ON CONFLICT (projection) DO NOTHING",
            [.string(projection.name), .int32(Int32(projection.version))])
        // Nothing applied yet: a new version simply starts from zero, no rebuild needed.
        try await connection.query(
            "UPDATE projection_checkpoints SET version = $2 WHERE projection = $1 AND global_position = 0 AND version <> $2",
            [.string(projection.name), .int32(Int32(projection.version))])
        let rows = try await connection.query(
            "SELECT version, tx_id, global_position, status FROM projection_checkpoints WHERE projection = $1",
            [.string(projection.name)])
        let row = rows[0]
        return Checkpoint(
            projection: projection.name, version: try row.int(0),
            position: FeedPosition(transactionID: try row.uint64(1), globalPosition: try row.int64(2)),
            failed: try row.string(3) == "failed")
    }

    /// Locks the checkpoint row for the caller's transaction; throws `.checkpointMoved` when it is no longer
    /// where this runner believes it is.
    func lock(on connection: PostgresConnection) async throws {
        let rows = try await connection.query(
            "SELECT tx_id, global_position, version, status FROM projection_checkpoints WHERE projection = $1 FOR UPDATE",
            [.string(projection)])
        guard let row = rows.first,
            try FeedPosition(transactionID: row.uint64(0), globalPosition: row.int64(1)) == position,
            try row.int(2) == version, try row.string(3) == "running"
        else {
            throw ProjectionsError(.checkpointMoved, "the checkpoint of \(projection) moved under this runner")
        }
    }

    /// Moves the checkpoint inside the caller's transaction, which holds the row lock taken by `lock(on:)`.
    func advance(to position: FeedPosition, by count: Int, on connection: PostgresConnection) async throws -> Checkpoint {
        try await connection.query(
            """
            UPDATE projection_checkpoints
            SET tx_id = $2::text::xid8, global_position = $3, events_applied = events_applied + $4, updated_at = now()
            WHERE projection = $1
            """,
            [.string(projection), .text(String(position.transactionID)), .int64(position.globalPosition), .int64(Int64(count))])
        var next = self
        next.position = position
        return next
    }

    func fail(at position: Int64, error: String, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            UPDATE projection_checkpoints SET status = 'failed', error = $2, error_position = $3, updated_at = now()
            WHERE projection = $1
            """, [.string(projection), .string(error), .int64(position)])
    }
}

/// Creates a projection's tables (idempotently), each with row-level security by tenant.
enum ProjectionTables {
    static func create(_ projection: any Projection, on connection: PostgresConnection) async throws {
        try await connection.withTransaction {
            for table in projection.tables {
                for statement in table.createStatements {
                    try await connection.execute(statement)
                }
            }
        }
    }
}
