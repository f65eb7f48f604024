public import Foundation

extension EventStore {
    /// One round trip to the database; throws `.unavailable` when it cannot be reached.
    public func ping() async throws {
        try await pool.query("SELECT 1")
    }

    /// The running transactions that can hold the feed's horizon back, oldest first: those in this database
    /// of a role that may append to the log (the rule of `tally_feed_horizon()`). Readers cannot pass the first
    /// until it ends. A transaction of another database or application never appears here: it holds nothing.
    public func horizonHolders(olderThanSeconds: Double = 0, limit: Int = 5) async throws -> [HorizonHolder] {
        let rows = try await pool.query(
            """
            SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.state, ''), a.xact_start,
                   coalesce(extract(epoch FROM now() - a.xact_start), 0)::float8
            FROM pg_stat_activity a
            WHERE a.backend_xid IS NOT NULL AND a.pid <> pg_backend_pid()
              AND a.datid = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND EXISTS (SELECT 1 FROM pg_roles r
                          WHERE has_table_privilege(r.oid, 'events', 'INSERT') AND pg_has_role(a.usesysid, r.oid, 'MEMBER'))
              AND (a.xact_start IS NULL OR now() - a.xact_start >= make_interval(secs => $1))
            ORDER BY age(a.backend_xid) DESC
            LIMIT $2
            """, [.text(String(olderThanSeconds)), .int64(Int64(limit))])
        return try rows.map { row in
            HorizonHolder(
                pid: Int(try row.int64(0)), applicationName: try row.string(1), state: try row.string(2),
                transactionStart: try row.optionalDate(3), ageSeconds: try row.double(4))
        }
    }

    /// Events recorded by migration 7 as sorting before an earlier version of their own stream (written before
    /// the database enforced the order); readers park those streams and apply them in version order.
    public func feedOrderInversions() async throws -> Int {
        try await pool.query("SELECT count(*) FROM feed_order_inversions").first?.int(0) ?? 0
    }
}

/// A database backend whose open transaction holds back the commit-order feed.
public struct HorizonHolder: Sendable, Hashable, Codable {
    /// `pg_stat_activity.pid`: `SELECT pg_terminate_backend(pid)` ends it.
    public var pid: Int
    public var applicationName: String
    /// `active`, `idle in transaction`...
    public var state: String
    /// When its transaction started; nil when PostgreSQL does not show it to this role (another role's session).
    public var transactionStart: Date?
    public var ageSeconds: Double
}
