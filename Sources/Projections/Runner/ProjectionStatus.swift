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
    /// Events of its types not yet applied (counted up to 1,000,000).
    public var lagEvents: Int64
    /// Age of the oldest event not yet applied, 0 when caught up.
    public var lagSeconds: Double
    public var error: String?
    public var errorPosition: Int64?
    public var updatedAt: Date?

    /// The status of each of `projections` in the store's database.
    public static func all(_ projections: [any Projection], store: EventStore) async throws -> [ProjectionStatus] {
        var statuses: [ProjectionStatus] = []
        for projection in projections {
            let rows = try await store.pool.query(
                """
                SELECT version, tx_id, global_position, events_applied, status, error, error_position, updated_at
                FROM projection_checkpoints WHERE projection = $1
                """, [.string(projection.name)])
            var status = ProjectionStatus(
                name: projection.name, version: projection.version, storedVersion: nil, state: .notStarted,
                position: .start, eventsApplied: 0, lagEvents: 0, lagSeconds: 0)
            if let row = rows.first {
                status.storedVersion = try row.int(0)
                status.position = FeedPosition(transactionID: try row.uint64(1), globalPosition: try row.int64(2))
                status.eventsApplied = try row.int64(3)
                status.error = try row.optionalString(5)
                status.errorPosition = try row.optionalInt64(6)
                status.updatedAt = try row.date(7)
                status.state =
                    try row.string(4) == "failed" ? .failed : status.storedVersion == projection.version ? .running : .needsRebuild
            }
            (status.lagEvents, status.lagSeconds) = try await pending(projection, after: status.position, store: store, limit: 1_000_000)
            statuses.append(status)
        }
        return statuses
    }

    /// How many events of `projection`'s types follow `position` (counted up to `limit`), and the age in
    /// seconds of the oldest of them (0 when none). Unordered, so that counting a whole log for a rebuild's
    /// ETA stays a plain scan; past `limit` the age is that of the oldest row counted.
    static func pending(
        _ projection: any Projection, after position: FeedPosition, store: EventStore, limit: Int
    ) async throws -> (events: Int64, oldestSeconds: Double) {
        let row = try await store.pool.query(
            """
            WITH pending AS (
                SELECT recorded_at FROM events
                WHERE (tx_id, global_position) > ($1::text::xid8, $2) AND event_type = ANY($3)
                LIMIT $4
            )
            SELECT count(*), coalesce(extract(epoch FROM now() - min(recorded_at)), 0)::float8 FROM pending
            """,
            [
                .text(String(position.transactionID)), .int64(position.globalPosition),
                .stringArray(projection.eventTypes.sorted()), .int64(Int64(limit)),
            ]
        ).first
        return (try row?.int64(0) ?? 0, try row?.double(1) ?? 0)
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
                    .unknownProjection, "no projection is called \(name); known: \(all.map(\.name).joined(separator: ", "))")
            }
            return projection
        }
    }
}
