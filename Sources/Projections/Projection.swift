public import Events

/// A read model derived only from the log. The runner applies batches of events in commit order inside one
/// transaction together with the projection's checkpoint, so a projection is exactly-once in effect.
///
/// Changing what `apply` writes bumps `version`; a new version is built by a rebuild into new tables, never by
/// changing the old ones in place.
public protocol Projection: Sendable {
    /// Stable name, used for its tables and checkpoint (`tenants`, `workflow_runs`...).
    var name: String { get }
    /// Bumped whenever `apply` changes what it writes.
    var version: Int { get }
    /// The event types `apply` needs; the runner reads only these.
    var eventTypes: Set<String> { get }
}

extension Projection {
    /// The feed filter that selects this projection's events.
    public var feedFilter: FeedFilter { FeedFilter(types: eventTypes) }
}
