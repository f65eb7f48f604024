public import Foundation

/// A self-describing copy of the log, or of one tenant's part of it, in one LZ4 frame (docs/operations.md,
/// "Archives"). The frame's content is `TALLYLOG`, the format version (4 bytes), then records, each a kind
/// byte, a 4-byte big-endian length and the body: one header, the tenants' data keys, the events in feed
/// order, one trailer. The trailer holds the SHA-256 of every content byte before it.
public enum LogArchive {
    static let magic = Array("TALLYLOG".utf8)
    /// The version this build writes and reads.
    public static let formatVersion: UInt32 = 1
    /// No record of a valid archive is longer (an event's payload is at most a few MiB).
    static let maximumRecordBytes = 256 << 20

    enum Kind: UInt8 {
        case header = 1
        case tenantKey = 2
        case event = 3
        case trailer = 4
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()
}

/// What an archive says about itself before its first event.
public struct ArchiveHeader: Codable, Sendable, Hashable {
    public var formatVersion: UInt32
    public var createdAt: Date
    public var source: ArchiveSource
    /// The tenant whose events these are; nil for a platform archive (every stream, platform ones too).
    public var tenant: UUID?
    /// The archive holds the events after this position (nil: from the log's start)...
    public var after: String?
    /// ...up to and including this one: the newest event readers could see when the export began.
    public var upTo: String
    /// Every event type this build knows, with its schema version.
    public var catalog: [String: Int]
}

/// The database an archive was taken from.
public struct ArchiveSource: Codable, Sendable, Hashable {
    public var database: String
    /// `pg_control_system().system_identifier`, when the role may read it.
    public var systemIdentifier: String?
    public var serverVersion: String
}

/// What an archive says about itself after its last event.
public struct ArchiveTrailer: Codable, Sendable, Hashable {
    public var events: Int64
    public var streams: Int64
    public var tenantKeys: Int64
    /// The source positions of the first and last event (nil when there are none).
    public var firstPosition: String?
    public var lastPosition: String?
    /// SHA-256 (hex) of every content byte before the trailer record.
    public var sha256: String
}

/// A tenant's data key as an archive carries it: `wrapped` as the source stored it (under the master key
/// `masterKeyID`), or `sealed` to the target database's transfer key, which only that database's master key
/// opens. A destroyed key travels as destroyed: an erased tenant stays unreadable.
public struct ArchivedTenantKey: Codable, Sendable, Hashable {
    public enum Form: String, Codable, Sendable { case wrapped, sealed, destroyed }
    public var tenantID: UUID
    public var keyVersion: Int
    public var form: Form
    public var masterKeyID: String?
    /// Base64 of the wrapped or sealed key; empty when destroyed.
    public var material: String
    public var createdAt: Date

    enum CodingKeys: String, CodingKey {
        case tenantID = "tenantId"
        case keyVersion, form
        case masterKeyID = "masterKeyId"
        case material, createdAt
    }
}

/// One event as an archive carries it: everything the log stores, the payload's bytes and codec exactly as
/// stored, and where it stood in the source's feed.
public struct ArchivedEvent: Sendable, Hashable {
    public var id: UUID
    public var tenantID: UUID?
    public var stream: String
    public var streamVersion: Int64
    public var type: String
    public var schemaVersion: Int32
    public var codec: Int16
    /// `recorded_at` exactly: microseconds since 1970-01-01 UTC.
    public var recordedAtMicroseconds: Int64
    public var sourcePosition: FeedPosition
    public var metadataJSON: [UInt8]
    public var payload: [UInt8]

    init(
        id: UUID, tenantID: UUID?, stream: String, streamVersion: Int64, type: String, schemaVersion: Int32,
        codec: Int16,
        recordedAtMicroseconds: Int64, sourcePosition: FeedPosition, metadataJSON: [UInt8], payload: [UInt8]
    ) {
        self.id = id
        self.tenantID = tenantID
        self.stream = stream
        self.streamVersion = streamVersion
        self.type = type
        self.schemaVersion = schemaVersion
        self.codec = codec
        self.recordedAtMicroseconds = recordedAtMicroseconds
        self.sourcePosition = sourcePosition
        self.metadataJSON = metadataJSON
        self.payload = payload
    }

    /// Appends the event's record (kind, length, body) to `out`, with no intermediate arrays: this is the
    /// export's inner loop.
    func appendRecord(to out: inout [UInt8]) {
        func integer<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.bigEndian) { out.append(contentsOf: $0) }
        }
        func uuid(_ value: UUID) {
            withUnsafeBytes(of: value.uuid) { out.append(contentsOf: $0) }
        }
        func text(_ value: String) {
            integer(UInt32(value.utf8.count))
            out.append(contentsOf: value.utf8)
        }
        out.append(LogArchive.Kind.event.rawValue)
        let lengthAt = out.count
        integer(UInt32(0))
        uuid(id)
        if let tenantID {
            out.append(1)
            uuid(tenantID)
        } else {
            out.append(0)
        }
        text(stream)
        integer(streamVersion)
        text(type)
        integer(schemaVersion)
        integer(codec)
        integer(recordedAtMicroseconds)
        integer(sourcePosition.transactionID)
        integer(sourcePosition.globalPosition)
        integer(UInt32(metadataJSON.count))
        out.append(contentsOf: metadataJSON)
        integer(UInt32(payload.count))
        out.append(contentsOf: payload)
        let length = UInt32(out.count - lengthAt - 4)
        for index in 0..<4 { out[lengthAt + index] = UInt8(truncatingIfNeeded: length >> (24 - 8 * index)) }
    }

    init(decoding body: [UInt8]) throws {
        var reader = ByteReader(body)
        id = try reader.uuid()
        tenantID = try reader.byte() == 1 ? try reader.uuid() : nil
        stream = try reader.text()
        streamVersion = try reader.integer(Int64.self)
        type = try reader.text()
        schemaVersion = try reader.integer(Int32.self)
        codec = try reader.integer(Int16.self)
        recordedAtMicroseconds = try reader.integer(Int64.self)
        sourcePosition = FeedPosition(
            transactionID: try reader.integer(UInt64.self), globalPosition: try reader.integer(Int64.self))
        metadataJSON = try reader.bytes(Int(try reader.integer(UInt32.self)))
        payload = try reader.bytes(Int(try reader.integer(UInt32.self)))
        guard reader.atEnd else { throw ByteReader.malformed }
    }
}

/// Reads the fields of an event record; any overrun is `malformed`.
struct ByteReader {
    private let bytes: [UInt8]
    private var offset = 0
    static let malformed = EventsError(.decoding, "an event record of the archive is malformed")

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { offset == bytes.count }

    mutating func bytes(_ count: Int) throws -> [UInt8] {
        guard count >= 0, bytes.count - offset >= count else { throw Self.malformed }
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    mutating func byte() throws -> UInt8 { try bytes(1)[0] }

    mutating func integer<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
        guard let value = BigEndian.read(T.self, try bytes(MemoryLayout<T>.size)[...]) else { throw Self.malformed }
        return value
    }

    mutating func uuid() throws -> UUID {
        PostgresType.uuid(try bytes(16))
    }

    mutating func text() throws -> String {
        let raw = try bytes(Int(try integer(UInt32.self)))
        guard let text = String(validating: raw, as: UTF8.self) else { throw Self.malformed }
        return text
    }
}
