public import Events

/// What a command appended: its events (for caches that apply their own writes at once) and where they
/// landed in the feed (to wait for a projection to show them). Empty when there was nothing to change.
public struct Applied: Sendable {
    /// The events appended, in order.
    public var events: [any DomainEvent]
    /// Where each appended event landed in the feed.
    public var positions: [FeedPosition]

    /// What an append of `events` at `positions` did.
    public init(events: [any DomainEvent] = [], positions: [FeedPosition] = []) {
        self.events = events
        self.positions = positions
    }

    /// Nothing was appended: the command found the resource already as asked (it is idempotent).
    public static let nothing = Applied()

    /// The newest position appended, nil when nothing was.
    public var last: FeedPosition? { positions.max() }
}
