/// A typed event of Tally's domain: a past-tense fact with a stable type name and a schema version.
///
/// Changing a payload's shape bumps `schemaVersion` and registers an `Upcaster` from the previous version,
/// so events already in the log keep decoding. The log is never rewritten.
public protocol DomainEvent: Codable, Sendable, Equatable {
    /// The name stored in `events.event_type`; never changes once events of it exist.
    static var eventType: String { get }
    /// The current shape's version; what `encode` writes.
    static var schemaVersion: Int { get }
}

/// The vendors a workflow can call with a tenant's own key.
public enum Vendor: String, Codable, Sendable, CaseIterable, Hashable {
    case prospeo
    case findymail
    case zerobounce
}
