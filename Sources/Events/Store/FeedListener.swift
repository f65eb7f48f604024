import Logging
import Synchronization

/// Keeps one LISTEN connection open and turns NOTIFY on `tally_events` into local wake-ups. It reconnects
/// with backoff when the connection breaks, and wakes every reader after reconnecting, because notifications
/// sent while it was away are lost.
final class FeedListener: Sendable {
    static let channel = "tally_events"

    private let configuration: PostgresConfiguration
    private let signal: ChangeSignal
    private let logger: Logger
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(configuration: PostgresConfiguration, signal: ChangeSignal, logger: Logger) {
        self.configuration = configuration
        self.signal = signal
        self.logger = logger
    }

    /// Starts listening unless already started.
    func start() {
        task.withLock { task in
            guard task == nil else { return }
            task = Task { [self] in await self.run() }
        }
    }

    func stop() {
        task.withLock { $0 }?.cancel()
    }

    private func run() async {
        var backoff: Duration = .milliseconds(50)
        while !Task.isCancelled {
            var connection: PostgresConnection?
            do {
                let listening = try await PostgresConnection.connect(configuration)
                connection = listening
                try await listening.execute("LISTEN \(Self.channel)")
                backoff = .milliseconds(50)
                signal.signal()
                while !Task.isCancelled {
                    let notifications = try await listening.waitForNotifications(timeoutMilliseconds: 250)
                    if !notifications.isEmpty {
                        signal.signal()
                    }
                }
            } catch {
                logger.warning("feed listener lost its connection; polling until it is back", metadata: ["error": "\(error)"])
            }
            connection?.close()
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(2))
        }
    }
}

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
                    try await connection.execute("BEGIN; SET LOCAL synchronous_commit TO off; NOTIFY \(FeedListener.channel); COMMIT")
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
