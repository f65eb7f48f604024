public import Events

/// Reads of `projection_checkpoints` for the readers of the projections' tables: how far a read model is.
public enum ProjectionCheckpoints {
    /// Where the projections called `names` have applied the log to, by name; a projection that has never
    /// run is missing.
    package static func positions(of names: [String], on connection: PostgresConnection) async throws
        -> [String: FeedPosition]
    {
        var positions: [String: FeedPosition] = [:]
        for row in try await connection.query(
            "SELECT projection, tx_id, global_position FROM projection_checkpoints WHERE projection = ANY($1)",
            [.stringArray(names)])
        {
            positions[try row.string(0)] = FeedPosition(
                transactionID: try row.uint64(1), globalPosition: try row.int64(2))
        }
        return positions
    }

    /// Every projection's global position by name, for the restore check (`EventStore.restoreProblems`).
    public static func globalPositions(_ store: EventStore) async throws -> [String: Int64] {
        var positions: [String: Int64] = [:]
        for row in try await store.pool.query("SELECT projection, global_position FROM projection_checkpoints") {
            positions[try row.string(0)] = try row.int64(1)
        }
        return positions
    }

    /// Whether `projection` has applied the log up to `position`, or stopped on a failure (so that no
    /// one waits for it in vain); false when it has never run.
    package static func hasApplied(_ projection: String, _ position: FeedPosition, pool: PostgresPool) async throws
        -> Bool
    {
        let rows = try await pool.query(
            """
            SELECT (tx_id, global_position) >= ($2::text::xid8, $3), status FROM projection_checkpoints WHERE projection = $1
            """, [.string(projection), .text(String(position.transactionID)), .int64(position.globalPosition)])
        guard let row = rows.first else { return false }
        return try row.bool(0) || row.string(1) == "failed"
    }

    /// Whether the projections' tables called `tables` all exist in the session's schema.
    package static func tablesExist(_ tables: [String], on connection: PostgresConnection) async throws -> Bool {
        let count = try await connection.query(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = ANY($1)",
            [.stringArray(tables)]
        ).first?.int64(0)
        return count == Int64(Set(tables).count)
    }
}
