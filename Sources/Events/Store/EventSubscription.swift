/// Follows the commit-order feed from a position: first everything after it, then new events as they commit.
///
/// Woken by LISTEN/NOTIFY and by appends in this process; it polls at the store's poll interval in any case,
/// so a lost notification only costs latency. When committed events wait behind an older open transaction,
/// it looks again every 5 ms, backing off to 100 ms, until that transaction ends.
public struct EventSubscription: AsyncSequence, Sendable {
    public typealias Element = RecordedEvent

    let store: EventStore
    let start: FeedPosition
    let filter: FeedFilter
    let pageSize: Int

    public func makeAsyncIterator() -> Iterator {
        Iterator(store: store, position: start, filter: filter, pageSize: pageSize)
    }

    public struct Iterator: AsyncIteratorProtocol {
        /// The longest a subscriber waits between looks while committed events wait behind the horizon.
        static let horizonPollLimit: Duration = .milliseconds(100)

        let store: EventStore
        /// The position of the last event returned.
        public private(set) var position: FeedPosition
        let filter: FeedFilter
        let pageSize: Int
        private var buffer: [RecordedEvent] = []
        private var index = 0

        init(store: EventStore, position: FeedPosition, filter: FeedFilter, pageSize: Int) {
            self.store = store
            self.position = position
            self.filter = filter
            self.pageSize = pageSize
        }

        public mutating func next() async throws -> RecordedEvent? {
            var backoff: Duration = .milliseconds(5)
            while true {
                if index < buffer.count {
                    let event = buffer[index]
                    index += 1
                    position = event.feedPosition
                    return event
                }
                if Task.isCancelled { return nil }
                let generation = store.changes.generation
                let page = try await store.readFeed(after: position, limit: pageSize, filter: filter)
                if !page.events.isEmpty {
                    buffer = page.events
                    index = 0
                    continue
                }
                let interval = store.configuration.pollInterval
                if try await store.hasEventsBeyondHorizon() {
                    // Nothing announces that the horizon moved (the transaction holding it may not even be in
                    // this database), so keep looking at a short, bounded interval.
                    let horizonPoll = Swift.min(interval, Self.horizonPollLimit)
                    await store.changes.wait(after: generation, timeout: Swift.min(backoff, horizonPoll))
                    backoff = Swift.min(backoff * 2, horizonPoll)
                } else {
                    await store.changes.wait(after: generation, timeout: interval)
                }
            }
        }
    }
}
