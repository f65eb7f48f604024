/// A position in the commit-order feed: the writing transaction's id, then the global position.
///
/// Readers only take events whose transaction id is below the oldest transaction still running, in this
/// order, so an event whose transaction commits late is never skipped by a reader that already moved on.
public struct FeedPosition: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// The `xid8` of the transaction that wrote the event.
    public var transactionID: UInt64
    /// The event's `global_position`.
    public var globalPosition: Int64

    public init(transactionID: UInt64, globalPosition: Int64) {
        self.transactionID = transactionID
        self.globalPosition = globalPosition
    }

    /// Before the first event.
    public static let start = FeedPosition(transactionID: 0, globalPosition: 0)

    public static func < (lhs: FeedPosition, rhs: FeedPosition) -> Bool {
        (lhs.transactionID, lhs.globalPosition) < (rhs.transactionID, rhs.globalPosition)
    }

    /// `transactionID/globalPosition`, the form the CLI and checkpoints print.
    public var description: String { "\(transactionID)/\(globalPosition)" }

    /// Parses `transactionID/globalPosition`.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let transaction = UInt64(parts[0]), let position = Int64(parts[1]), position >= 0 else {
            return nil
        }
        self.init(transactionID: transaction, globalPosition: position)
    }
}
