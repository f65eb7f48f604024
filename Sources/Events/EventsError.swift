/// The one error type of the Events module: the log, its codecs, migrations and the PostgreSQL layer.
///
/// `description` is safe to log and to show: it never contains SQL parameter values, payloads or secrets.
/// What PostgreSQL said in detail (which may quote values) is only in `debugDescription`, after the values
/// the query sent have been redacted from it.
public struct EventsError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What went wrong, as an extensible set: new codes never break a caller's `switch`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case unavailable, timeout, poolClosed, query, conflict, duplicateEventIDs, invalidArgument
            case unknownEventType, unknownCodec, corruptPayload, decoding, migrationChecksumMismatch
            case migrationUnknown, appendOnly
            case masterKeyMismatch, secretUnopenable, tenantKeyDestroyed
            case serializationFailure
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The database cannot be reached, or the connection broke; retrying later may succeed.
        public static let unavailable = Code(.unavailable)
        /// No connection became free within the pool's acquire timeout.
        public static let timeout = Code(.timeout)
        /// The pool was shut down.
        public static let poolClosed = Code(.poolClosed)
        /// PostgreSQL rejected a statement; `sqlState` says why.
        public static let query = Code(.query)
        /// A stream was not at the expected version; `actualVersion` holds where it is. Nothing was written.
        public static let conflict = Code(.conflict)
        /// Event ids already in the log were appended again with different content. Nothing was written.
        public static let duplicateEventIDs = Code(.duplicateEventIDs)
        /// The caller passed something unusable (empty append, bad stream name, bad URL...).
        public static let invalidArgument = Code(.invalidArgument)
        /// An event's type is not in the catalog.
        public static let unknownEventType = Code(.unknownEventType)
        /// An event's payload carries a codec tag this build does not know.
        public static let unknownCodec = Code(.unknownCodec)
        /// An event's payload bytes cannot be decompressed.
        public static let corruptPayload = Code(.corruptPayload)
        /// A payload or row could not be decoded into the requested type.
        public static let decoding = Code(.decoding)
        /// An applied migration's SQL differs from the one built into this binary.
        public static let migrationChecksumMismatch = Code(.migrationChecksumMismatch)
        /// The database has a migration applied that this binary does not know (it is older than the schema).
        public static let migrationUnknown = Code(.migrationUnknown)
        /// Something tried to change or remove events; the log only grows.
        public static let appendOnly = Code(.appendOnly)
        /// A tenant key is wrapped under another master key than this process has (rotated, or misconfigured).
        public static let masterKeyMismatch = Code(.masterKeyMismatch)
        /// A sealed secret did not open: its bytes, tenant, vendor or version are not the ones it was sealed for.
        public static let secretUnopenable = Code(.secretUnopenable)
        /// The tenant was erased: its data key is destroyed and nothing sealed for it opens any more.
        public static let tenantKeyDestroyed = Code(.tenantKeyDestroyed)
        /// The transaction lost a race with another one and nothing of it was committed: run the whole
        /// transaction again (SQLSTATE 40001 or 40P01). An append from a transaction older than its stream's
        /// last append is refused this way (`stream` names the stream), so that the feed keeps every stream's order.
        public static let serializationFailure = Code(.serializationFailure)

        public var description: String { base.rawValue }
    }

    /// What went wrong.
    public var code: Code
    /// A sentence for people; never contains parameter values, payloads or secrets.
    public var message: String
    /// The five-character SQLSTATE PostgreSQL reported, when it did.
    public var sqlState: String?
    /// For conflicts: the stream that was not at the expected version.
    public var stream: String?
    /// For conflicts: the version the stream is actually at (0 when it does not exist).
    public var actualVersion: Int64?
    /// For per-event failures: the event's global position in the log.
    public var position: Int64?
    /// The constraint PostgreSQL named (unique and check violations).
    public var constraint: String?
    /// PostgreSQL's detail and hint, with the query's parameter values redacted. Not for end users.
    public var detail: String?
    /// The error underneath, if any.
    public var underlying: (any Error)?

    /// Creates an error; prefer the static helpers of each component.
    public init(
        _ code: Code, _ message: String, sqlState: String? = nil, stream: String? = nil,
        actualVersion: Int64? = nil, position: Int64? = nil, constraint: String? = nil, detail: String? = nil,
        underlying: (any Error)? = nil
    ) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.stream = stream
        self.actualVersion = actualVersion
        self.position = position
        self.constraint = constraint
        self.detail = detail
        self.underlying = underlying
    }

    /// The table does not exist (SQLSTATE 42P01): a read model no runner has created yet reads as empty.
    public var isUndefinedTable: Bool { sqlState == "42P01" }

    public var description: String {
        var text = "\(code): \(message)"
        if let sqlState { text += " (SQLSTATE \(sqlState))" }
        return text
    }

    public var debugDescription: String {
        var text = description
        if let stream { text += " stream=\(stream)" }
        if let actualVersion { text += " actualVersion=\(actualVersion)" }
        if let position { text += " position=\(position)" }
        if let constraint { text += " constraint=\(constraint)" }
        if let detail { text += " detail=\(detail)" }
        if let underlying { text += " underlying=\(String(reflecting: underlying))" }
        return text
    }
}
