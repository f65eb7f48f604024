import Events
import Foundation
import Logging
import Synchronization

/// The answers of `GET /v1/runs/{id}`, in memory, so that reading a run costs no database round trip while
/// it does not change. An answer is kept with the `workflow_runs` checkpoint it was read at (read before
/// the rows, so the rows are at least that new); the cache follows the feed's `run` streams and remembers
/// each run's latest event; an answer older than its run's latest event is never served. Commands of this
/// instance note their own appends at once, so a write here is read back here; another instance's write
/// is seen as soon as the feed shows it (the notification latency).
final class RunCache: Sendable {
    private struct Entry {
        var tenant: UUID
        var body: [UInt8]
        var position: FeedPosition
    }

    private struct State {
        var entries: [UUID: Entry] = [:]
        var latest: [UUID: FeedPosition] = [:]
        /// Where the follower started: an answer read at an older checkpoint may miss events it never saw.
        var start: FeedPosition?
        /// How far the follower has read.
        var followed: FeedPosition?
    }

    private let state = Mutex(State())
    private let store: EventStore
    private let logger: Logger
    static let capacity = 50_000

    init(store: EventStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    func lookup(_ run: UUID, tenant: UUID) -> [UInt8]? {
        state.withLock { state in
            guard let entry = state.entries[run], entry.tenant == tenant else { return nil }
            if let latest = state.latest[run], entry.position < latest {
                state.entries[run] = nil
                return nil
            }
            return entry.body
        }
    }

    func store(_ run: UUID, tenant: UUID, body: [UInt8], readAt position: FeedPosition) {
        state.withLock { state in
            guard let start = state.start, start <= position else { return }
            if let latest = state.latest[run], position < latest { return }
            if state.entries.count >= Self.capacity || state.latest.count >= 4 * Self.capacity {
                // Forget everything; from here on only answers at least as new as the follower are kept.
                let followed = state.followed
                state = State()
                state.start = followed
                state.followed = followed
                guard let followed, followed <= position else { return }
            }
            state.entries[run] = Entry(tenant: tenant, body: body, position: position)
        }
    }

    /// An event of `run` at `position`: older answers are stale from now on.
    func noteEvent(_ run: UUID, at position: FeedPosition) {
        state.withLock { state in
            if let known = state.latest[run], position <= known { return }
            state.latest[run] = position
            if let entry = state.entries[run], entry.position < position { state.entries[run] = nil }
        }
    }

    /// Follows the feed's run streams from its head until cancelled.
    func follow(pollInterval: Duration) async {
        var position: FeedPosition?
        var wait = EventStore.FeedWait()
        while !Task.isCancelled {
            do {
                if position == nil {
                    let head = try await store.head()
                    position = head
                    state.withLock { state in
                        state = State()
                        state.start = head
                        state.followed = head
                    }
                }
                let page = try await store.nextFeedPage(
                    after: position!, limit: 1000, filter: FeedFilter(categories: ["run"]), pollInterval: pollInterval,
                    wait: &wait)
                for event in page.events {
                    if let run = UUID(uuidString: String(event.stream.rawValue.dropFirst(4))) {
                        noteEvent(run, at: event.feedPosition)
                    }
                }
                position = page.next
                state.withLock { $0.followed = page.next }
            } catch {
                if Task.isCancelled { return }
                logger.warning("run cache cannot read the log; emptied until it can", metadata: ["error": "\(error)"])
                state.withLock { $0 = State() }
                position = nil
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }
}
