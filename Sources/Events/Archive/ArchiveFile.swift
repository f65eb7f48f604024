import Crypto
import Foundation

/// One record of an archive's content.
public enum ArchiveRecord: Sendable {
    case header(ArchiveHeader)
    case tenantKey(ArchivedTenantKey)
    case event(ArchivedEvent)
    case trailer(ArchiveTrailer)
}

/// Writes an archive's records into its LZ4 frame, hashing the content as it goes (on a thread of its own,
/// beside the compression).
final class ArchiveWriter {
    private let frame: LZ4FrameWriter
    private let hash = BackgroundSHA256()

    init(path: String) throws {
        do {
            frame = try LZ4FrameWriter(path: path)
        } catch {
            hash.close()
            throw error
        }
        try writeHashed(LogArchive.magic + BigEndian.bytes(LogArchive.formatVersion))
    }

    deinit { hash.close() }

    var compressedBytes: Int64 { frame.bytesWritten }

    func header(_ header: ArchiveHeader) throws {
        try record(.header, Array(try LogArchive.encoder.encode(header)))
    }

    func tenantKey(_ key: ArchivedTenantKey) throws {
        try record(.tenantKey, Array(try LogArchive.encoder.encode(key)))
    }

    /// Writes a page of events with one hash update and one frame write.
    func events(_ events: [ArchivedEvent]) throws {
        page.removeAll(keepingCapacity: true)
        for event in events { event.appendRecord(to: &page) }
        try writeHashed(page)
    }

    private var page: [UInt8] = []

    /// Writes event records already encoded (`ArchiveCopyTranscoder`) with one hash update and one frame write.
    func eventRecords(_ records: [UInt8]) throws {
        try writeHashed(records)
    }

    /// Writes the trailer with the content's hash, ends the frame and flushes the file.
    func finish(_ trailer: (_ sha256: String) -> ArchiveTrailer) throws -> ArchiveTrailer {
        let done = trailer(Sodium.hex(hash.finish()))
        let body = Array(try LogArchive.encoder.encode(done))
        try frame.write([LogArchive.Kind.trailer.rawValue] + BigEndian.bytes(UInt32(body.count)) + body)
        try frame.finish()
        return done
    }

    private func record(_ kind: LogArchive.Kind, _ body: [UInt8]) throws {
        try writeHashed([kind.rawValue] + BigEndian.bytes(UInt32(body.count)) + body)
    }

    private func writeHashed(_ bytes: [UInt8]) throws {
        hash.update(bytes)
        try frame.write(bytes)
    }
}

/// What a whole archive held, once every check passed.
public struct ArchiveSummary: Sendable, Hashable {
    public var header: ArchiveHeader
    public var trailer: ArchiveTrailer
    public var fileBytes: Int64
}

/// Reads an archive record by record and checks it on the way: the frame's block and content checksums, the
/// record structure, one header first and one trailer last with nothing after, tenant keys before events,
/// events strictly in feed order, of the header's tenant, each stream's versions consecutive (from 1 when
/// the archive starts at the log's start), and the trailer's counts, positions and SHA-256. Each failure
/// says which record, and the source position of the last event that was whole. Memory: one record, and one
/// version per stream.
public final class ArchiveReader {
    private let frame: LZ4FrameReader
    private var hash = Crypto.SHA256()
    private var header: ArchiveHeader?
    private var trailer: ArchiveTrailer?
    private var versions: [String: Int64] = [:]
    private var events: Int64 = 0
    private var keys: Int64 = 0
    private var records = 0
    private var first: FeedPosition?
    private var last: FeedPosition?

    public init(path: String) throws {
        frame = try LZ4FrameReader(path: path)
        let start: [UInt8]?
        do { start = try frame.read(LogArchive.magic.count + 4) } catch let error as EventsError {
            throw failure(error.message)
        }
        guard let start, Array(start.prefix(LogArchive.magic.count)) == LogArchive.magic else {
            throw EventsError(.decoding, "\(path) is not a Tally log archive")
        }
        let version = BigEndian.read(UInt32.self, start.suffix(4)) ?? 0
        guard version == LogArchive.formatVersion else {
            throw EventsError(
                .decoding,
                "the archive has format version \(version); this build reads version \(LogArchive.formatVersion)")
        }
        hash.update(data: start)
    }

    /// The compressed bytes read so far, and the file's size: progress.
    public var bytesRead: Int64 { frame.fileOffset }
    public var fileBytes: Int64 { frame.fileSize }

    /// The next record, checked; nil after the trailer (and the end of the file) were checked.
    public func next() throws -> ArchiveRecord? {
        do {
            return try readNext()
        } catch let error as EventsError where !error.message.hasPrefix(Self.notWhole) {
            throw failure(error.message)
        }
    }

    private static let notWhole = "the archive is not whole: "

    private func readNext() throws -> ArchiveRecord? {
        guard trailer == nil else { return nil }
        guard let prefix = try frame.read(5) else { throw failure("the archive ends without a trailer") }
        let length = Int(BigEndian.read(UInt32.self, prefix[1...]) ?? 0)
        guard let kind = LogArchive.Kind(rawValue: prefix[0]), length <= LogArchive.maximumRecordBytes else {
            throw failure("record \(records + 1) has an unknown kind or an impossible length")
        }
        guard let body = try frame.read(length), body.count == length else {
            throw failure("record \(records + 1) is cut short")
        }
        records += 1
        if kind != .trailer {
            hash.update(data: prefix)
            hash.update(data: body)
        }
        switch kind {
        case .header:
            guard header == nil, records == 1 else { throw failure("a second header") }
            let decoded = try decode(ArchiveHeader.self, body)
            header = decoded
            return .header(decoded)
        case .tenantKey:
            guard header != nil, events == 0 else { throw failure("a tenant key after the first event") }
            let key = try decode(ArchivedTenantKey.self, body)
            if let tenant = header?.tenant, key.tenantID != tenant {
                throw failure("a key of another tenant than the archive's")
            }
            keys += 1
            return .tenantKey(key)
        case .event:
            guard let header else { throw failure("an event before the header") }
            let event: ArchivedEvent
            do { event = try ArchivedEvent(decoding: body) } catch {
                throw failure("record \(records) is not a whole event")
            }
            try check(event, header)
            return .event(event)
        case .trailer:
            guard header != nil else { throw failure("a trailer before the header") }
            let decoded = try decode(ArchiveTrailer.self, body)
            let digest = Sodium.hex(Array(hash.finalize()))
            guard decoded.sha256 == digest else {
                throw failure("the content's SHA-256 is \(digest); the trailer says \(decoded.sha256)")
            }
            guard decoded.events == events, decoded.streams == Int64(versions.count), decoded.tenantKeys == keys else {
                throw failure(
                    "the trailer counts \(decoded.events) events, \(decoded.streams) streams and \(decoded.tenantKeys) keys; the archive holds \(events), \(versions.count) and \(keys)"
                )
            }
            guard decoded.firstPosition == first?.description, decoded.lastPosition == last?.description else {
                throw failure("the trailer's first and last positions are not the archive's")
            }
            try frame.expectEnd()
            trailer = decoded
            return .trailer(decoded)
        }
    }

    /// Reads to the end; the summary of an archive that passed every check.
    public func verify() throws -> ArchiveSummary {
        while try next() != nil {}
        return try summary()
    }

    /// The summary, once `next()` returned nil.
    public func summary() throws -> ArchiveSummary {
        guard let header, let trailer else { throw failure("the archive was not read to its end") }
        return ArchiveSummary(header: header, trailer: trailer, fileBytes: frame.fileSize)
    }

    private func check(_ event: ArchivedEvent, _ header: ArchiveHeader) throws {
        if let last, !(last < event.sourcePosition) {
            throw failure("the event at \(event.sourcePosition) is not after the one before it in feed order")
        }
        if let tenant = header.tenant, event.tenantID != tenant {
            throw failure("the event at \(event.sourcePosition) is not of the archive's tenant")
        }
        let expected = versions[event.stream].map { $0 + 1 } ?? (header.after == nil ? 1 : event.streamVersion)
        // What the log's own constraints refuse, refused here: an import must not fail half-way on it.
        guard event.schemaVersion > 0, !event.type.isEmpty, !event.stream.isEmpty else {
            throw failure("the event at \(event.sourcePosition) has no type, stream or schema version")
        }
        guard event.streamVersion == expected, event.streamVersion > 0 else {
            throw failure(
                "the event at \(event.sourcePosition) is version \(event.streamVersion) of \(event.stream); the stream is at \(expected - 1)"
            )
        }
        versions[event.stream] = event.streamVersion
        events += 1
        if first == nil { first = event.sourcePosition }
        last = event.sourcePosition
    }

    private func decode<T: Decodable>(_ type: T.Type, _ body: [UInt8]) throws -> T {
        do {
            return try LogArchive.decoder.decode(T.self, from: Data(body))
        } catch {
            throw failure("record \(records) does not decode")
        }
    }

    private func failure(_ what: String) -> EventsError {
        let at = last.map { "after the event at source position \($0)" } ?? "before its first event"
        return EventsError(.decoding, "\(Self.notWhole)\(what) (\(at), \(events) events read)")
    }
}
