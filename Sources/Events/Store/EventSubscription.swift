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
        let store: EventStore
        /// The position of the last event returned.
        public private(set) var position: FeedPosition
        let filter: FeedFilter
        let pageSize: Int
        /// Where the next read starts: past everything read so far, matched or not.
        private var scanned: FeedPosition
        private var buffer: [RecordedEvent] = []
        private var index = 0
        private var wait = EventStore.FeedWait()

        init(store: EventStore, position: FeedPosition, filter: FeedFilter, pageSize: Int) {
            self.store = store
            self.position = position
            self.scanned = position
            self.filter = filter
            self.pageSize = pageSize
        }

        public mutating func next() async throws -> RecordedEvent? {
            while true {
                if index < buffer.count {
                    let event = buffer[index]
                    index += 1
                    position = event.feedPosition
                    return event
                }
                if Task.isCancelled { return nil }
                let page = try await store.nextFeedPage(
                    after: scanned, limit: pageSize, filter: filter, pollInterval: store.configuration.pollInterval,
                    wait: &wait)
                scanned = page.next
                buffer = page.events
                index = 0
            }
        }
    }
}
