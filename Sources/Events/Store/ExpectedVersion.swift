/// What an append expects of its stream; checked before anything is written.
public enum ExpectedVersion: Hashable, Sendable, CustomStringConvertible {
    /// Append whatever the stream's version.
    case any
    /// The stream must not exist yet.
    case noStream
    /// The stream must be exactly at this version (its number of events; the first event is version 1).
    case exactly(Int64)

    /// The encoding the append statements take: -1 any, 0 no stream, n exactly n.
    var databaseValue: Int64 {
        switch self {
        case .any: -1
        case .noStream: 0
        case .exactly(let version): version
        }
    }

    public var description: String {
        switch self {
        case .any: "any"
        case .noStream: "no stream"
        case .exactly(let version): "exactly \(version)"
        }
    }
}
