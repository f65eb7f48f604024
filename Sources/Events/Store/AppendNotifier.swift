import Synchronization

/// Sends `NOTIFY tally_events` after appends, coalesced: at most one in flight and at most one per
/// `minimumInterval`, with one more after it if appends happened meanwhile. Appends themselves never NOTIFY:
/// a NOTIFY inside a transaction takes a database-wide lock at commit and would serialize every writer.
final class AppendNotifier: Sendable {
    private struct State {
        var inFlight = false
        var pending = false
    }

    /// Bounds the NOTIFY transactions a busy process sends (to 200/s) at the cost of that much wake-up latency
    /// for other processes; local readers are woken directly.
    static let minimumInterval: Duration = .milliseconds(5)

    private let pool: PostgresPool
    private let state = Mutex(State())

    init(pool: PostgresPool) {
        self.pool = pool
    }

    func appended() {
        let start = state.withLock { state -> Bool in
            if state.inFlight {
                state.pending = true
                return false
            }
            state.inFlight = true
            return true
        }
        guard start else { return }
        Task { [self] in
            repeat {
                // Nothing depends on this commit being durable: it only wakes readers, who also poll.
                try? await pool.withConnection { connection in
                    try await connection.execute(
                        "BEGIN; SET LOCAL synchronous_commit TO off; NOTIFY \(FeedListener.channel); COMMIT")
                }
                try? await Task.sleep(for: Self.minimumInterval)
            } while state.withLock { state in
                if state.pending {
                    state.pending = false
                    return true
                }
                state.inFlight = false
                return false
            }
        }
    }
}
