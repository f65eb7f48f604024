import Logging
import Synchronization

/// Keeps one LISTEN connection open and turns NOTIFY on `tally_events` into local wake-ups. It reconnects
/// with backoff when the connection breaks, and wakes every reader after reconnecting, because notifications
/// sent while it was away are lost. It listens on the session configuration (the direct URL when there is
/// one); when that reaches a pooler in transaction mode it does not listen at all and readers poll.
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
                guard listening.keepsSession else {
                    // LISTEN ends with the pooler's transaction; readers poll at their interval instead.
                    logger.notice(
                        """
                        the database URL reaches a pooler in transaction mode and no direct URL is set \
                        (TALLY_DIRECT_DATABASE_URL): readers poll instead of listening
                        """)
                    listening.close()
                    return
                }
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
                logger.warning(
                    "feed listener lost its connection; polling until it is back", metadata: ["error": "\(error)"])
            }
            connection?.close()
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(2))
        }
    }
}
