public import Foundation

/// Who and what caused an event; stored beside it as JSON.
public struct EventMetadata: Hashable, Sendable, Codable {
    /// Groups every event that one original request led to.
    public var correlationID: UUID?
    /// The event or command that directly caused this one.
    public var causationID: UUID?
    /// Who acted: `operator`, `key:<id>`, `stripe`, `worker:<id>`, `system`.
    public var actor: String?
    /// The HTTP request id (`X-Request-Id`) of the request that appended it.
    public var requestID: String?

    public init(correlationID: UUID? = nil, causationID: UUID? = nil, actor: String? = nil, requestID: String? = nil) {
        self.correlationID = correlationID
        self.causationID = causationID
        self.actor = actor
        self.requestID = requestID
    }

    enum CodingKeys: String, CodingKey {
        case correlationID = "correlationId"
        case causationID = "causationId"
        case actor
        case requestID = "requestId"
    }
}

extension EventMetadata {
    /// Compact JSON with sorted keys, written by hand: it is on every append's path, where a JSONEncoder
    /// costs more than the rest of the encoding together.
    var json: [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "{")]
        func add(_ key: String, _ value: String?) {
            guard let value else { return }
            if out.count > 1 { out.append(UInt8(ascii: ",")) }
            out += Array("\"\(key)\":".utf8)
            JSONText.appendString(value, to: &out)
        }
        add("actor", actor)
        add("causationId", causationID?.lowercased)
        add("correlationId", correlationID?.lowercased)
        add("requestId", requestID)
        out.append(UInt8(ascii: "}"))
        return out
    }
}

/// Writes JSON string literals.
enum JSONText {
    static func appendString(_ value: String, to out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0..<0x20:
                out += [UInt8(ascii: "\\"), UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xf)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// An event to append: its id, type, schema version and JSON payload. Build it from a typed event with
/// `EventCatalog.encode(_:id:metadata:)`.
public struct EventData: Sendable, Hashable {
    /// Unique in the whole log. Appending the same id again returns the original result.
    public var id: UUID
    public var type: String
    public var schemaVersion: Int
    /// UTF-8 JSON; the store compresses large payloads.
    public var json: [UInt8]
    public var metadata: EventMetadata

    public init(id: UUID = UUID(), type: String, schemaVersion: Int, json: [UInt8], metadata: EventMetadata = .init()) {
        self.id = id
        self.type = type
        self.schemaVersion = schemaVersion
        self.json = json
        self.metadata = metadata
    }
}

/// One stream's part of an append: the events, the tenant they belong to and the version expected.
public struct StreamAppend: Sendable {
    public var stream: StreamName
    /// The owning tenant (row-level security and tenant filters use it); nil for platform-wide streams.
    public var tenantID: UUID?
    public var expected: ExpectedVersion
    public var events: [EventData]

    public init(stream: StreamName, tenantID: UUID?, expected: ExpectedVersion, events: [EventData]) {
        self.stream = stream
        self.tenantID = tenantID
        self.expected = expected
        self.events = events
    }
}

/// What an append wrote to one stream (or, for a repeated append, what the original wrote).
public struct AppendResult: Sendable, Hashable {
    public var stream: StreamName
    /// The stream's version after the append: use it as the next expected version.
    public var streamVersion: Int64
    /// Each event's global position, in append order.
    public var globalPositions: [Int64]
    /// Each event's feed position.
    public var feedPositions: [FeedPosition]
}

/// An event as stored in the log.
public struct RecordedEvent: Sendable {
    public var feedPosition: FeedPosition
    public var globalPosition: Int64 { feedPosition.globalPosition }
    public var tenantID: UUID?
    public var stream: StreamName
    public var streamVersion: Int64
    public var id: UUID
    public var type: String
    public var schemaVersion: Int
    public var codec: PayloadCodec
    /// The payload exactly as stored (maybe compressed); `json()` decodes it.
    public var storedPayload: [UInt8]
    /// The metadata's JSON text.
    public var metadataJSON: [UInt8]
    public var recordedAt: Date

    /// The payload's JSON, decompressed; a clear error naming the position when the codec is unknown or the
    /// bytes are corrupt.
    public func json() throws -> [UInt8] {
        try PayloadCodec.decode(tag: codec.tag, bytes: storedPayload, position: globalPosition)
    }

    public func metadata() throws -> EventMetadata {
        do {
            return try JSONDecoder().decode(EventMetadata.self, from: Data(metadataJSON))
        } catch {
            throw EventsError(
                .decoding, "the metadata of the event at position \(globalPosition) does not decode",
                position: globalPosition, underlying: error)
        }
    }
}

/// Which events a feed reader wants; nil means all.
public struct FeedFilter: Sendable, Hashable {
    public var tenantID: UUID?
    public var types: Set<String>?
    public var categories: Set<String>?

    public init(tenantID: UUID? = nil, types: Set<String>? = nil, categories: Set<String>? = nil) {
        self.tenantID = tenantID
        self.types = types
        self.categories = categories
    }

    public static let all = FeedFilter()
}

/// One page of the commit-order feed.
public struct FeedPage: Sendable {
    public var events: [RecordedEvent]
    /// Where the next page starts: after the last event of a full page, else where the read stopped scanning
    /// (the horizon), so that the events it skipped for the filter are never read again.
    public var next: FeedPosition
    /// Whether the read reached the horizon: every event visible now that the filter selects is in this page.
    public var isComplete: Bool
    /// The transaction id the read stopped below.
    public var horizon: UInt64
    /// Whether committed events wait above the horizon (an older transaction that may append is running).
    public var isHeld: Bool
    /// The newest transaction id in the log (nil when it is empty).
    public var newestTransaction: UInt64?

    public init(
        events: [RecordedEvent], next: FeedPosition, isComplete: Bool, horizon: UInt64, isHeld: Bool,
        newestTransaction: UInt64?
    ) {
        self.events = events
        self.next = next
        self.isComplete = isComplete
        self.horizon = horizon
        self.isHeld = isHeld
        self.newestTransaction = newestTransaction
    }

    /// Whether the log may hold events after `position` (of any type): false means nothing was appended past it.
    public func mayHaveEvents(after position: FeedPosition) -> Bool {
        guard let newest = newestTransaction else { return false }
        return newest >= position.transactionID
    }
}
