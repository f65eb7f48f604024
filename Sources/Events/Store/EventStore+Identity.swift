import Foundation

/// Whether this database is the one its log's positions and its readers' checkpoints were written in
/// (docs/operations.md, "Restores").
extension EventStore {
    /// What is wrong with this database as a home for its log, each with the command that repairs it; empty
    /// when nothing is. `serve` and `work` refuse to start on any of these:
    ///
    /// - the log holds transaction ids this cluster has not reached yet (restored from a dump into another
    ///   cluster, or a cluster whose xid epoch moved back): new events would sort in the feed before old ones
    ///   and every reader would skip them;
    /// - a reader's checkpoint stands beyond the log's last event (the log is older than the read models:
    ///   restored from an older backup, or rewound). The readers keep their checkpoints in their own modules'
    ///   tables, so their owners read them: `readers` is each reader's global position by name, read before
    ///   this call (the log's last position is read after them, so a reader that moves on meanwhile is never
    ///   taken for one ahead of the log);
    /// - the database was migrated in another cluster than this one (restored from a dump) and nobody has
    ///   re-anchored it here yet.
    public func restoreProblems(readers: [String: Int64]) async throws -> [String] {
        var problems: [String] = []
        let xids = try await pool.query(
            "SELECT (SELECT max(tx_id) FROM events)::text, pg_snapshot_xmax(pg_current_snapshot())::text"
        ).first
        if let newest = try xids?.optionalString(0).flatMap(UInt64.init),
            let next = try xids.flatMap({ UInt64(try $0.string(1)) }),
            newest >= next
        {
            problems.append(
                "the log holds transaction ids up to \(newest) but this cluster has only reached \(next): the database was restored "
                    + "into another cluster (pg_dump) or the cluster's transaction counter moved back, and new events would sort "
                    + "before old ones. Repair: tally log export --out FILE here; create an empty database, tally migrate it, "
                    + "tally log import FILE into it and tally projections rebuild --all there; then point the service at it"
            )
        }
        let last = try await pool.query("SELECT coalesce(max(global_position), 0) FROM events").first?.int64(0) ?? 0
        let ahead = readers.filter { $0.value > last }.keys.sorted()
        if !ahead.isEmpty {
            problems.append(
                "the checkpoints of \(ahead.joined(separator: ", ")) stand beyond the log's last event: the log is older than "
                    + "its read models (restored from an older backup, or rewound). Repair: tally projections rebuild --all"
            )
        }
        if let anchored = try await anchoredSystem(), let current = try await currentSystem(), anchored != current {
            problems.append(
                "this database was migrated in cluster \(anchored), and this is cluster \(current): it was restored from a dump. "
                    + "Repair: tally log reanchor (it checks that the log's transaction ids fit this cluster first)")
        }
        return problems
    }

    /// Records this cluster as the log's, once nothing but the anchor itself is wrong (`readers` as for
    /// ``restoreProblems(readers:)``); returns what it did.
    public func reanchor(readers: [String: Int64]) async throws -> String {
        let problems = try await restoreProblems(readers: readers)
        let others = problems.filter { !$0.contains("tally log reanchor") }
        guard others.isEmpty else {
            throw EventsError(
                .invalidArgument, "re-anchoring would not make this database sound: " + others.joined(separator: "; "))
        }
        guard let current = try await currentSystem() else {
            return "this role cannot read the cluster's system identifier: there is nothing to re-anchor"
        }
        let before = try await anchoredSystem()
        _ = try await pool.query(
            "UPDATE log_identity SET system_identifier = $1, anchored_at = now()", [.string(current)])
        return before == current
            ? "the log is anchored in cluster \(current) already" : "the log is anchored in cluster \(current) now"
    }

    private func anchoredSystem() async throws -> String? {
        try await pool.query("SELECT system_identifier FROM log_identity").first?.optionalString(0)
    }

    private func currentSystem() async throws -> String? {
        // pg_control_system() is open to every role by default; a platform may have revoked it.
        try? await pool.query("SELECT system_identifier::text FROM pg_control_system()").first?.optionalString(0)
    }
}
