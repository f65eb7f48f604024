extension Migration {
    /// Leadership that does not need a session: a lease per role (a projection, the dispatcher) with its
    /// holder, an expiry on the database's clock and a fencing token that grows at every change of holder.
    /// Used where a session advisory lock cannot be held: behind a pooler in transaction mode.
    static let leaderLeases = Migration(
        version: 11, name: "leader_leases",
        sql: #"""
            CREATE TABLE leader_leases (
                name text PRIMARY KEY,
                holder text NOT NULL,
                token bigint NOT NULL,
                acquired_at timestamptz NOT NULL,
                renewed_at timestamptz NOT NULL,
                expires_at timestamptz NOT NULL
            );
            """#)
}
