public import Events
public import Foundation

/// Where a projection is, as `tally projections status` shows it.
public struct ProjectionStatus: Sendable, Codable, Hashable {
    public enum State: String, Sendable, Codable, Hashable {
        /// Applying events (or waiting for new ones).
        case running
        /// Stopped before an event it could not apply; see `error` and `errorPosition`.
        case failed
        /// No runner has started it yet in this database.
        case notStarted = "not started"
        /// The database holds another version than this binary's: it needs a rebuild.
        case needsRebuild = "needs rebuild"
    }

    public var name: String
    public var version: Int
    public var storedVersion: Int?
    public var state: State
    public var position: FeedPosition
    public var eventsApplied: Int64
    /// Events of any type after its position, which it has not read past yet (counted up to 1,000). A
    /// runner that keeps up records where it read to every second, matching events or not.
    public var lagEvents: Int64
    /// Age of the oldest of them, 0 when caught up.
    public var lagSeconds: Double
    /// Streams the projection could not apply and holds back (`tally projections retry`).
    public var parkedStreams: Int
    public var error: String?
    public var errorPosition: Int64?
    public var updatedAt: Date?
    /// The holder of its lease in `leader_leases` (`pid=4242 1a2b3c4d`), nil when no runner leads it now.
    public var leader: String?

    /// How many events after a position `pending` counts at most.
    public static let lagCountLimit = 1_000

    /// The status of each of `projections` in the store's database, in one statement: lag is counted over at
    /// most `lagCountLimit` index entries after each checkpoint, and its age is one probe, never a scan.
    public static func all(_ projections: [any Projection], store: EventStore) async throws -> [ProjectionStatus] {
        let rows = try await store.asOperator(readOnly: true) { connection in
            try await connection.query(
                """
                SELECT n.name, c.version, c.tx_id, c.global_position, c.events_applied, c.status, c.error, c.error_position,
                       c.updated_at, lag.events, lag.seconds,
                       (SELECT count(*) FROM parked_streams p WHERE p.reader = n.name),
                       (SELECT l.holder FROM leader_leases l
                        WHERE l.name = 'projection:' || n.name AND l.expires_at > clock_timestamp())
                FROM unnest($1::text[]) WITH ORDINALITY AS n(name, ord)
                LEFT JOIN projection_checkpoints c ON c.projection = n.name
                CROSS JOIN LATERAL (
                    SELECT count(*) AS events,
                           coalesce(extract(epoch FROM now() - (
                               SELECT recorded_at FROM events
                               WHERE (tx_id, global_position) > (coalesce(c.tx_id, '0'), coalesce(c.global_position, 0))
                               ORDER BY tx_id, global_position LIMIT 1)), 0)::float8 AS seconds
                    FROM (SELECT 1 FROM events
                          WHERE (tx_id, global_position) > (coalesce(c.tx_id, '0'), coalesce(c.global_position, 0))
                          ORDER BY tx_id, global_position LIMIT $2) w
                ) lag
                ORDER BY n.ord
                """, [.stringArray(projections.map(\.name)), .int64(Int64(lagCountLimit))])
        }
        var statuses: [ProjectionStatus] = []
        for (projection, row) in zip(projections, rows) {
            var status = ProjectionStatus(
                name: projection.name, version: projection.version, storedVersion: nil, state: .notStarted,
                position: .start, eventsApplied: 0, lagEvents: try row.int64(9), lagSeconds: try row.double(10),
                parkedStreams: try row.int(11))
            status.leader = try row.optionalString(12)
            if try !row.isNull(1) {
                status.storedVersion = try row.int(1)
                status.position = FeedPosition(transactionID: try row.uint64(2), globalPosition: try row.int64(3))
                status.eventsApplied = try row.int64(4)
                status.error = try row.optionalString(6)
                status.errorPosition = try row.optionalInt64(7)
                status.updatedAt = try row.date(8)
                status.state =
                    try row.string(5) == "failed"
                    ? .failed : status.storedVersion == projection.version ? .running : .needsRebuild
            }
            statuses.append(status)
        }
        return statuses
    }
}

/// The product's projections, in the order they are listed.
public enum ProductProjections {
    public static let all: [any Projection] = [
        TenantsProjection(), APIKeysProjection(), VendorSecretsProjection(), WorkflowsProjection(), RunsProjection(),
        UsageCountersProjection(), BillingProjection(),
    ]

    /// The projections called `names`; throws naming the first unknown one.
    public static func named(_ names: [String]) throws -> [any Projection] {
        try names.map { name in
            guard let projection = all.first(where: { $0.name == name }) else {
                throw ProjectionsError(
                    .unknownProjection,
                    "no projection is called \(name); known: \(all.map(\.name).joined(separator: ", "))")
            }
            return projection
        }
    }
}
