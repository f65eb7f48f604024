/// The one error type of the Projections module.
public struct ProjectionsError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, as an extensible set.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case unexpectedEvent, versionMismatch, unknownProjection, checkpointMoved, verificationFailed, notCaughtUp,
                invalidInput
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A projection was handed an event it cannot apply (a bug, or a log that breaks an invariant).
        public static let unexpectedEvent = Code(.unexpectedEvent)
        /// The database holds another version of the projection than this binary's: it needs a rebuild.
        public static let versionMismatch = Code(.versionMismatch)
        /// No projection has that name.
        public static let unknownProjection = Code(.unknownProjection)
        /// Someone else moved the projection's checkpoint (a rebuild swapped new tables in).
        public static let checkpointMoved = Code(.checkpointMoved)
        /// A verified rebuild differs from the live tables; nothing was swapped.
        public static let verificationFailed = Code(.verificationFailed)
        /// A read needed a projection to have applied the whole log, and it has not (stopped, or too far behind).
        public static let notCaughtUp = Code(.notCaughtUp)
        /// A file or argument given to a billing command cannot be used; the message says where.
        public static let invalidInput = Code(.invalidInput)

        public var description: String { base.rawValue }
    }

    public var code: Code
    /// Safe to log and show: never payloads or secrets.
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
