public import Events
import Foundation
public import Logging
public import ServiceLifecycle

/// Keeps projections current: each reads the commit-order feed from its checkpoint and applies batches,
/// writing its rows and its checkpoint in one transaction.
///
/// Several `tally` processes may run runners against one database: for each projection only the holder of
/// its lease in `leader_leases` applies, renewing it every third of `leaseDuration`; another process takes
/// the lease once it has expired (the holder died, froze or lost the database), and every batch checks the
/// lease's token beside its checkpoint lock, so a holder that wakes after losing it commits nothing. Leases
/// need no session, so this works through a pooler in transaction mode. A projection whose `apply` cannot
/// apply an event parks that event's stream (`parked_streams`) and goes on with every other stream.
public final class ProjectionRunner: Sendable {
    public struct Options: Sendable {
        /// Events per transaction.
        public var batchSize: Int
        /// How often to look for new events when no notification arrives.
        public var pollInterval: Duration
        /// How often a process that is not the leader of a projection tries to become it.
        public var leadershipRetry: Duration
        /// How often the leader looks for retries asked for its parked streams (only while it has some).
        public var retryCheckInterval: Duration
        /// How often, at most, the checkpoint records a read that found nothing of the projection's types.
        public var idleSaveInterval: Duration
        /// How long a projection's lease in `leader_leases` lasts unrenewed (renewed every third of it): a
        /// leader that died or froze is replaced within it.
        public var leaseDuration: Duration
        /// This runner in `leader_leases.holder` (followed there by a random suffix per runner, so that two
        /// runners given one name never both lead); by default `pid=<process id>`.
        public var holder: String

        public init(
            batchSize: Int = 500, pollInterval: Duration = .seconds(1), leadershipRetry: Duration = .seconds(1),
            retryCheckInterval: Duration = .milliseconds(500), idleSaveInterval: Duration = .seconds(1),
            leaseDuration: Duration = .seconds(10),
            holder: String? = nil
        ) {
            self.batchSize = max(1, batchSize)
            self.pollInterval = pollInterval
            self.leadershipRetry = leadershipRetry
            self.retryCheckInterval = retryCheckInterval
            self.idleSaveInterval = idleSaveInterval
            self.leaseDuration = leaseDuration
            self.holder = holder ?? "pid=\(ProcessInfo.processInfo.processIdentifier)"
        }
    }

    let store: EventStore
    let projections: [any Projection]
    let options: Options
    let logger: Logger
    /// `options.holder` and this runner's suffix.
    let holder: String

    public init(
        store: EventStore, projections: [any Projection], options: Options = Options(),
        logger: Logger = Logger(label: "tally.projections")
    ) {
        self.store = store
        self.projections = projections
        self.options = options
        self.logger = logger
        self.holder = "\(options.holder) \(UUID().uuidString.prefix(8).lowercased())"
    }

    /// Runs every projection until the task is cancelled or, in a `ServiceGroup`, until graceful shutdown; a
    /// projection stops between batches.
    public func run() async {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                for projection in self.projections {
                    group.addTask { await self.drive(projection) }
                }
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
                if let lease = try await LeaderLease.acquire(
                    "projection:" + projection.name, holder: holder, duration: options.leaseDuration,
                    pool: store.pool)
                {
                    backoff = options.leadershipRetry
                    try await leadLeased(projection, lease: lease, on: connection)
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

    /// Leads under `lease`, renewing it every third of its duration on the store's pool, until the checkpoint
    /// moves, the lease is lost (another holder took it after it expired) or the task is cancelled; then
    /// gives it up.
    private func leadLeased(_ projection: any Projection, lease: LeaderLease, on connection: PostgresConnection)
        async throws
    {
        do {
            try await lease.hold(
                duration: options.leaseDuration, pool: store.pool,
                lost: {
                    ProjectionsError(.checkpointMoved, "the lease of \(projection.name) was taken by another holder")
                }
            ) { try await self.lead(projection, on: connection, lease: lease) }
        } catch let error as ProjectionsError where error.code == .checkpointMoved {
            logger.notice(
                "gave up leading a projection", metadata: ["projection": "\(projection.name)", "reason": "\(error)"])
        }
    }

    /// A connection of its own for `projection`, named after it and this process (`tally-projection-tenants
    /// pid=4242`) so that `pg_stat_activity` tells the leader from the standbys. A transaction of it left idle
    /// (its process froze mid-batch, holding the checkpoint's row lock) ends within half a lease, so a frozen
    /// holder cannot hold its successor back past the lease.
    private func connect(_ projection: any Projection) async throws -> PostgresConnection {
        // The pool's URL: a lease needs no session, and the direct URL is kept for what does.
        var configuration = store.configuration.pooled
        configuration.idleInTransactionTimeoutMilliseconds = max(
            1000, Int(options.leaseDuration.components.seconds) * 500)
        return try await PostgresConnection.connectLeaderSession(
            configuration,
            applicationName: "tally-projection-\(projection.name) pid=\(ProcessInfo.processInfo.processIdentifier)")
    }

    /// Applies `projection` while this process leads it; returns when its checkpoint moved under it (a
    /// rebuild) or the task is cancelled.
    private func lead(_ projection: any Projection, on connection: PostgresConnection, lease: LeaderLease? = nil)
        async throws
    {
        try await ProjectionTables.ensure(projection, on: connection)
        var checkpoint = try await Checkpoint.load(projection, on: connection)
        checkpoint.lease = lease
        guard checkpoint.version == projection.version else {
            throw ProjectionsError(
                .versionMismatch,
                "the database has \(projection.name) version \(checkpoint.version), this binary has \(projection.version): rebuild it"
            )
        }
        if checkpoint.failed {
            // Stopped by an earlier Tally on an event it could not apply: that event's stream is parked instead.
            checkpoint = try await checkpoint.parkFailure(store: store, on: connection)
        }
        let parked = try await connection.withTransaction(begin: "BEGIN READ ONLY") {
            try await ParkedStreams.load(reader: projection.name, on: connection)
        }
        var parking = FeedParking(reader: projection.name, parked: parked)
        logger.info(
            "leading projection",
            metadata: [
                "projection": "\(projection.name)", "position": "\(checkpoint.position)",
                "parked": "\(parking.parked.count)",
            ])
        var wait = EventStore.FeedWait()
        var lastRetryCheck = ContinuousClock.now - .seconds(10)
        var lastIdleSave = ContinuousClock.now
        // Where reading goes on from: the checkpoint, or further when a read found nothing of its types.
        var scanned = checkpoint.position
        do {
            while !Task.isCancelled {
                if !parking.parked.isEmpty, ContinuousClock.now - lastRetryCheck >= options.retryCheckInterval {
                    lastRetryCheck = ContinuousClock.now
                    try await retryParked(projection, parking: &parking, checkpoint: checkpoint, on: connection)
                }
                let page = try await store.nextFeedPage(
                    after: max(scanned, checkpoint.position), limit: options.batchSize, filter: projection.feedFilter,
                    pollInterval: options.pollInterval, wait: &wait)
                scanned = page.next
                if page.events.isEmpty {
                    // Nothing of its types, but the read went past events of other types: record that (at most
                    // every `idleSaveInterval`), so a restart or `projections status` does not look at them again.
                    if scanned > checkpoint.position, page.mayHaveEvents(after: checkpoint.position),
                        ContinuousClock.now - lastIdleSave >= options.idleSaveInterval
                    {
                        lastIdleSave = ContinuousClock.now
                        checkpoint = try await apply(
                            [], to: projection, next: scanned, from: checkpoint, parking: &parking, on: connection)
                    }
                    continue
                }
                checkpoint = try await apply(
                    page.events, to: projection, next: page.next, from: checkpoint, parking: &parking, on: connection)
            }
        } catch let error as ProjectionsError where error.code == .checkpointMoved {
            logger.info(
                "projection checkpoint moved (rebuilt); reloading", metadata: ["projection": "\(projection.name)"])
        }
    }

    /// One transaction: the events' effects, the parked streams and the new checkpoint, or none of them. When
    /// the batch fails it is applied again event by event, each under a savepoint: an event that fails parks
    /// its stream, and the rest of the batch is applied.
    private func apply(
        _ events: [RecordedEvent], to projection: any Projection, next: FeedPosition, from checkpoint: Checkpoint,
        parking: inout FeedParking, on connection: PostgresConnection
    ) async throws -> Checkpoint {
        let context = ProjectionContext(connection: connection, catalog: store.catalog)
        let begin = "BEGIN"
        do {
            var attempt = parking
            let advanced = try await connection.withTransaction(begin: begin) {
                // Taken first in every batch and by a rebuild's swap, so the two take turns: a batch that finds
                // the checkpoint moved (a swap happened) rolls back and the runner reloads.
                try await checkpoint.lock(on: connection)
                let applied = try await attempt.apply(events, isolating: false, on: connection) {
                    try await projection.apply($0, in: context)
                }
                return try await checkpoint.advance(to: next, by: applied, on: connection)
            }
            parking = attempt
            return advanced
        } catch let error as ProjectionsError where error.code == .checkpointMoved {
            throw error
        } catch {
            if connection.isBroken || events.isEmpty || !FeedParking.isTheEventsFault(error) { throw error }
        }
        var attempt = parking
        let advanced = try await connection.withTransaction(begin: begin) {
            try await checkpoint.lock(on: connection)
            let applied = try await attempt.apply(events, isolating: true, on: connection) {
                try await projection.apply($0, in: context)
            }
            return try await checkpoint.advance(to: next, by: applied, on: connection)
        }
        for stream in attempt.parked.values where parking.parked[stream.stream] == nil {
            logger.error(
                "projection parked a stream it cannot apply; the others go on",
                metadata: [
                    "projection": "\(projection.name)", "stream": "\(stream.stream)",
                    "position": "\(stream.position.globalPosition)",
                    "error": "\(stream.error)",
                ])
        }
        parking = attempt
        return advanced
    }

    /// Applies the parked streams whose retry was asked for (`tally projections retry`, or an inversion
    /// found), each in version order in a transaction of its own; one that fails again stays parked.
    private func retryParked(
        _ projection: any Projection, parking: inout FeedParking, checkpoint: Checkpoint,
        on connection: PostgresConnection
    ) async throws {
        let requested = try await connection.withTransaction(begin: "BEGIN READ ONLY") {
            try await ParkedStreams.load(reader: projection.name, on: connection)
        }.values.filter { $0.retryRequestedAt != nil }.sorted { $0.parkedAt < $1.parkedAt }
        let context = ProjectionContext(connection: connection, catalog: store.catalog)
        for stream in requested {
            let events = try await ParkedStreams.heldEvents(
                stream, upTo: checkpoint.position, types: projection.eventTypes, store: store)
            do {
                try await connection.withTransaction(begin: "BEGIN") {
                    try await checkpoint.lock(on: connection)
                    if !events.isEmpty { try await projection.apply(events, in: context) }
                    try await ParkedStreams.release(stream, on: connection)
                }
                parking.parked[stream.stream] = nil
                logger.notice(
                    "a parked stream was applied",
                    metadata: [
                        "projection": "\(projection.name)", "stream": "\(stream.stream)", "events": "\(events.count)",
                    ])
            } catch let error as ProjectionsError where error.code == .checkpointMoved {
                throw error
            } catch {
                if connection.isBroken || !FeedParking.isTheEventsFault(error) { throw error }
                try await connection.withTransaction(begin: "BEGIN") {
                    try await ParkedStreams.retryFailed(stream, error: "\(error)", on: connection)
                }
                parking.parked[stream.stream]?.retryRequestedAt = nil
                logger.error(
                    "a parked stream still cannot be applied",
                    metadata: ["projection": "\(projection.name)", "stream": "\(stream.stream)", "error": "\(error)"])
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
    /// The lease the runner leads under, checked with the row lock (nil under a session lock).
    var lease: LeaderLease? = nil

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
    func lock(on connection: PostgresConnection, acceptingFailed: Bool = false) async throws {
        let rows = try await connection.query(
            "SELECT tx_id, global_position, version, status FROM projection_checkpoints WHERE projection = $1 FOR UPDATE",
            [.string(projection)])
        guard let row = rows.first,
            try FeedPosition(transactionID: row.uint64(0), globalPosition: row.int64(1)) == position,
            try row.int(2) == version, try row.string(3) == "running" || acceptingFailed
        else {
            throw ProjectionsError(.checkpointMoved, "the checkpoint of \(projection) moved under this runner")
        }
        if let lease, try await !lease.holds(on: connection) {
            throw ProjectionsError(.checkpointMoved, "the lease of \(projection) expired or was taken (fenced)")
        }
    }

    /// Moves the checkpoint inside the caller's transaction, which holds the row lock taken by `lock(on:)`.
    func advance(to position: FeedPosition, by count: Int, on connection: PostgresConnection) async throws -> Checkpoint
    {
        try await connection.query(
            """
            UPDATE projection_checkpoints
            SET tx_id = $2::text::xid8, global_position = $3, events_applied = events_applied + $4, updated_at = now()
            WHERE projection = $1
            """,
            [
                .string(projection), .text(String(position.transactionID)), .int64(position.globalPosition),
                .int64(Int64(count)),
            ])
        var next = self
        next.position = position
        return next
    }

    /// A checkpoint an earlier Tally stopped with `status = 'failed'` on an event: parks that event's stream
    /// (with the recorded error) and runs again, from the same position.
    func parkFailure(store: EventStore, on connection: PostgresConnection) async throws -> Checkpoint {
        try await connection.withTransaction(begin: "BEGIN") {
            try await lock(on: connection, acceptingFailed: true)
            let rows = try await connection.query(
                "SELECT error_position, coalesce(error, 'stopped') FROM projection_checkpoints WHERE projection = $1",
                [.string(projection)])
            if let row = rows.first, let position = try row.optionalInt64(0),
                let event = try await store.event(at: position, on: connection)
            {
                _ = try await ParkedStreams.park(event, reader: projection, error: try row.string(1), on: connection)
            }
            try await connection.query(
                """
                UPDATE projection_checkpoints SET status = 'running', error = NULL, error_position = NULL, updated_at = now()
                WHERE projection = $1
                """, [.string(projection)])
        }
        var next = self
        next.failed = false
        return next
    }
}

/// Creates a projection's tables (idempotently), each with row-level security by tenant.
///
/// `tally migrate` creates them as the schema's owner (`create(_:databaseURL:schema:)`); a runner creates a
/// projection's tables only when one is missing, which needs the owner's rights too (the service's login has
/// none: it may not change the schema).
public enum ProjectionTables {
    static func create(_ projection: any Projection, on connection: PostgresConnection) async throws {
        try await connection.withTransaction {
            for table in projection.tables {
                for statement in table.createStatements {
                    try await connection.execute(statement)
                }
            }
        }
    }

    /// Creates (or completes: policies, grants, indexes) the tables of every projection, each idempotently.
    public static func create(_ projections: [any Projection], databaseURL: String, schema: DatabaseSchema)
        async throws
    {
        let connection = try await PostgresConnection.connect(
            PostgresConfiguration(url: databaseURL, applicationName: "tally-migrate", schema: schema))
        defer { connection.close() }
        for projection in projections {
            try await create(projection, on: connection)
        }
    }

    /// The runner's start: nothing when every table exists, else the tables are created, or a clear error
    /// when this login may not create them.
    static func ensure(_ projection: any Projection, on connection: PostgresConnection) async throws {
        let present = try await connection.query(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = ANY($1)",
            [.stringArray(projection.tables.map(\.name))]
        ).first?.int(0)
        guard present != projection.tables.count else { return }
        do {
            try await create(projection, on: connection)
        } catch let error as EventsError where error.sqlState == "42501" {
            throw ProjectionsError(
                .invalidInput,
                "the tables of \(projection.name) are missing and this login may not create them: run tally migrate "
                    + "as the schema's owner")
        }
    }
}

extension ProjectionRunner: Service {}
