public import Foundation

/// The registry of event types: encodes typed events for appending and decodes recorded ones, upcasting
/// payloads written by older versions first.
public struct EventCatalog: Sendable {
    private struct Entry: Sendable {
        let type: any DomainEvent.Type
        let schemaVersion: Int
    }

    private let entries: [String: Entry]
    private let upcasters: [String: [Int: Upcaster]]

    /// Registers `types`; two types with one name, or two upcasters for one step, are programming errors.
    public init(_ types: [any DomainEvent.Type], upcasters: [Upcaster] = []) {
        var entries: [String: Entry] = [:]
        for type in types {
            precondition(entries[type.eventType] == nil, "event type \(type.eventType) registered twice")
            entries[type.eventType] = Entry(type: type, schemaVersion: type.schemaVersion)
        }
        var steps: [String: [Int: Upcaster]] = [:]
        for upcaster in upcasters {
            precondition(steps[upcaster.eventType, default: [:]][upcaster.fromVersion] == nil, "duplicate upcaster")
            steps[upcaster.eventType, default: [:]][upcaster.fromVersion] = upcaster
        }
        self.entries = entries
        self.upcasters = steps
    }

    /// Every registered type name, sorted.
    public var eventTypes: [String] { entries.keys.sorted() }

    /// Every registered type with the schema version this build writes.
    public var schemaVersions: [String: Int] { entries.mapValues(\.schemaVersion) }

    /// Whether `type` is registered.
    public func contains(_ type: String) -> Bool { entries[type] != nil }

    /// The Swift type registered under `type`.
    func eventType(named type: String) -> (any DomainEvent.Type)? { entries[type]?.type }

    /// The JSON encoder every event payload goes through: sorted keys and ISO 8601 dates with fractional
    /// seconds, so the same event always encodes to the same bytes (idempotent re-appends compare bytes).
    public static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true)))
        }
        return encoder
    }

    public static func makeDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            guard let date = parseDate(try container.decode(String.self)) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an ISO 8601 date")
            }
            return date
        }
        return decoder
    }

    /// An ISO 8601 date as payloads hold them: with milliseconds as written, or without fractional seconds.
    static func parseDate(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true)) {
            return date
        }
        return try? Date(text, strategy: .iso8601)
    }

    /// Encodes `event` for appending.
    public func encode<E: DomainEvent>(_ event: E, id: UUID = UUID(), metadata: EventMetadata = .init()) throws
        -> EventData
    {
        precondition(entries[E.eventType] != nil, "event type \(E.eventType) is not in the catalog")
        let json = try Self.makeEncoder().encode(event)
        return EventData(
            id: id, type: E.eventType, schemaVersion: E.schemaVersion, json: Array(json), metadata: metadata)
    }

    /// Decodes a recorded event into its current typed shape.
    public func decode(_ recorded: RecordedEvent) throws -> any DomainEvent {
        guard let entry = entries[recorded.type] else {
            throw EventsError(
                .unknownEventType,
                "the event at position \(recorded.globalPosition) has type \(recorded.type), which this build does not know",
                position: recorded.globalPosition)
        }
        let json = try upcastIfNeeded(recorded, entry: entry)
        return try decode(entry.type, json: json, recorded: recorded)
    }

    /// Decodes a recorded event as `E`, failing clearly when it is another type.
    public func decode<E: DomainEvent>(_ type: E.Type, _ recorded: RecordedEvent) throws -> E {
        guard let event = try decode(recorded) as? E else {
            throw EventsError(
                .decoding,
                "the event at position \(recorded.globalPosition) is a \(recorded.type), not a \(E.eventType)",
                position: recorded.globalPosition)
        }
        return event
    }

    /// The payload as JSON in its current shape (upcast when old), for tools that print events.
    public func currentJSON(_ recorded: RecordedEvent) throws -> [UInt8] {
        guard let entry = entries[recorded.type] else { return try recorded.json() }
        return try upcastIfNeeded(recorded, entry: entry)
    }

    private func upcastIfNeeded(_ recorded: RecordedEvent, entry: Entry) throws -> [UInt8] {
        let json = try recorded.json()
        guard recorded.schemaVersion != entry.schemaVersion else { return json }
        guard recorded.schemaVersion < entry.schemaVersion, recorded.schemaVersion >= 1 else {
            throw EventsError(
                .decoding,
                "the event at position \(recorded.globalPosition) has \(recorded.type) schema version \(recorded.schemaVersion); this build knows up to \(entry.schemaVersion)",
                position: recorded.globalPosition)
        }
        var value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(json))
        } catch {
            throw EventsError(
                .decoding, "the payload of the event at position \(recorded.globalPosition) is not JSON",
                position: recorded.globalPosition, underlying: error)
        }
        for version in recorded.schemaVersion..<entry.schemaVersion {
            guard let step = upcasters[recorded.type]?[version] else {
                throw EventsError(
                    .decoding,
                    "no upcaster for \(recorded.type) from schema version \(version) (event at position \(recorded.globalPosition))",
                    position: recorded.globalPosition)
            }
            do {
                value = try step.transform(value)
            } catch {
                throw EventsError(
                    .decoding,
                    "the \(recorded.type) at position \(recorded.globalPosition) could not be upcast from schema version \(version)",
                    position: recorded.globalPosition, underlying: error)
            }
        }
        do {
            return Array(try JSONEncoder().encode(value))
        } catch {
            throw EventsError(
                .decoding, "an upcast payload did not encode", position: recorded.globalPosition, underlying: error)
        }
    }

    private func decode<E: DomainEvent>(_ type: E.Type, json: [UInt8], recorded: RecordedEvent) throws
        -> any DomainEvent
    {
        do {
            return try PayloadDecoder().decode(E.self, from: json)
        } catch {
            throw EventsError(
                .decoding, "the payload of the \(recorded.type) at position \(recorded.globalPosition) does not decode",
                position: recorded.globalPosition, underlying: error)
        }
    }
}
