extension EventStore {
    /// One round trip to the database; throws `.unavailable` when it cannot be reached.
    public func ping() async throws {
        try await pool.query("SELECT 1")
    }

    /// The running transactions that hold the commit-order horizon back, oldest first: readers cannot pass
    /// the first until it ends. The horizon is cluster-wide, so these may be in other databases too.
    public func horizonHolders(olderThanSeconds: Double = 0, limit: Int = 5) async throws -> [HorizonHolder] {
        let rows = try await pool.query(
            """
            SELECT pid, coalesce(application_name, ''), coalesce(state, ''), xact_start,
                   extract(epoch FROM now() - xact_start)::float8
            FROM pg_stat_activity
            WHERE backend_xid IS NOT NULL AND xact_start IS NOT NULL
              AND now() - xact_start >= make_interval(secs => $1)
            ORDER BY age(backend_xid) DESC
            LIMIT $2
            """, [.text(String(olderThanSeconds)), .int64(Int64(limit))])
        return try rows.map { row in
            HorizonHolder(
                pid: Int(try row.int64(0)), applicationName: try row.string(1), state: try row.string(2),
                transactionStart: try row.date(3), ageSeconds: try row.double(4))
        }
    }
}

public import Foundation

/// A database backend whose open transaction holds back the commit-order feed.
public struct HorizonHolder: Sendable, Hashable, Codable {
    /// `pg_stat_activity.pid`: `SELECT pg_terminate_backend(pid)` ends it.
    public var pid: Int
    public var applicationName: String
    /// `active`, `idle in transaction`...
    public var state: String
    public var transactionStart: Date
    public var ageSeconds: Double
}
