/// Why a command was refused. Nothing was appended; the caller answers in its own words (the API maps
/// each kind to a problem: 404, 409 or 422).
public struct CommandError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of refusal, which decides the answer's status.
    public enum Kind: Sendable, Equatable {
        /// What the command names does not exist, or belongs to another tenant (the two look alike).
        case notFound
        /// The resource is in a state where the command does not apply.
        case conflict
        /// An input the command depends on is not usable (a workflow that cannot start runs).
        case invalid
    }

    /// Why it was refused.
    public var kind: Kind
    /// What the command is about, in the API's words: `tenant`, `key`, `run`, `workflow`, `vendor secret`.
    public var resource: String
    /// A stable machine-readable reason for a conflict (`slug-taken`, `run-finished`); nil for a plain one.
    public var code: String?
    /// A short title to go with `code`.
    public var title: String?
    /// A sentence for the client; it never quotes a secret.
    public var detail: String
    /// For `.invalid`: the JSON pointer of the input at fault.
    public var pointer: String?

    /// A refusal of `kind` about `resource`.
    public init(
        _ kind: Kind, _ resource: String, code: String? = nil, title: String? = nil, detail: String,
        pointer: String? = nil
    ) {
        self.kind = kind
        self.resource = resource
        self.code = code
        self.title = title
        self.detail = detail
        self.pointer = pointer
    }

    static func notFound(_ resource: String) -> CommandError {
        CommandError(.notFound, resource, detail: "No \(resource) with this id exists.")
    }

    static func conflict(_ resource: String, _ detail: String) -> CommandError {
        CommandError(.conflict, resource, detail: detail)
    }

    /// The resource and the detail, for logs.
    public var description: String { "\(resource): \(detail)" }
}
