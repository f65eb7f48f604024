/// Turns the rows of `COPY (SELECT <columns> ...) TO STDOUT (FORMAT binary)` straight into archive event
/// records, byte for byte what `ArchivedEvent.appendRecord` writes: PostgreSQL's binary forms are already
/// the archive's (big-endian integers, UUID bytes, text as UTF-8, `bytea` as is), except `recorded_at`
/// (microseconds since 2000, made since 1970) and `jsonb` (a version byte before the text). No row becomes an
/// event value on the way: this is the export's inner loop. Chunks may split rows anywhere.
struct ArchiveCopyTranscoder {
    /// The columns the COPY's query selects, in this order.
    static let columns =
        "event_id, tenant_id, stream_id, stream_version, event_type, schema_version, codec, recorded_at, tx_id, "
        + "global_position, metadata, payload"
    private static let columnCount = 12
    private static let signature: [UInt8] = Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00]
    /// 2000-01-01 minus 1970-01-01, in microseconds.
    private static let epochShift: Int64 = 946_684_800_000_000

    /// Records of the events transcoded since the caller last emptied it.
    var records: [UInt8] = []
    private(set) var events: Int64 = 0
    private(set) var first: FeedPosition?
    private(set) var last: FeedPosition?
    private(set) var streams = Set<String>()
    /// The COPY's end mark was read.
    private(set) var ended = false

    private var pending: [UInt8] = []
    private var headerRead = false
    private var spans: [(start: Int, length: Int)] = []

    init() {
        records.reserveCapacity(Self.flushBytes + (1 << 16))
        spans.reserveCapacity(Self.columnCount)
    }

    /// How many bytes of records the caller should let build up before it writes them.
    static let flushBytes = 1 << 20

    mutating func consume(_ chunk: UnsafeBufferPointer<UInt8>) throws {
        if pending.isEmpty {
            let used = try parse(UnsafeRawBufferPointer(chunk))
            if used < chunk.count { pending.append(contentsOf: chunk[used...]) }
        } else {
            pending.append(contentsOf: chunk)
            let whole = pending
            let used = try whole.withUnsafeBytes { try parse($0) }
            pending.removeFirst(used)
        }
    }

    /// Throws unless the COPY ended with its end mark and nothing after it.
    func finish() throws {
        guard ended, pending.isEmpty else {
            throw EventsError(.decoding, "the log's COPY ended in the middle of a row")
        }
    }

    /// Transcodes every whole row in `bytes`; returns how many bytes that consumed.
    private mutating func parse(_ bytes: UnsafeRawBufferPointer) throws -> Int {
        var offset = 0
        if !headerRead {
            guard bytes.count >= Self.signature.count + 8 else { return 0 }
            guard bytes.prefix(Self.signature.count).elementsEqual(Self.signature) else {
                throw EventsError(.decoding, "the log's COPY did not start with the binary signature")
            }
            let extensionLength = Int(Self.uint32(bytes, Self.signature.count + 4))
            guard bytes.count >= Self.signature.count + 8 + extensionLength else { return 0 }
            offset = Self.signature.count + 8 + extensionLength
            headerRead = true
        }
        while offset + 2 <= bytes.count {
            guard !ended else { throw EventsError(.decoding, "the log's COPY went on after its end mark") }
            let fields = Int16(bitPattern: UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1]))
            if fields == -1 {
                ended = true
                offset += 2
                continue
            }
            guard Int(fields) == Self.columnCount else {
                throw EventsError(.decoding, "a row of the log's COPY has \(fields) columns, not \(Self.columnCount)")
            }
            var cursor = offset + 2
            spans.removeAll(keepingCapacity: true)
            for _ in 0..<Self.columnCount {
                guard cursor + 4 <= bytes.count else { return offset }
                let length = Int(Int32(bitPattern: Self.uint32(bytes, cursor)))
                cursor += 4
                if length < 0 {
                    spans.append((cursor, -1))
                    continue
                }
                guard cursor + length <= bytes.count else { return offset }
                spans.append((cursor, length))
                cursor += length
            }
            try emit(bytes)
            offset = cursor
        }
        return offset
    }

    private mutating func emit(_ bytes: UnsafeRawBufferPointer) throws {
        func field(_ index: Int, length expected: Int? = nil) throws -> UnsafeRawBufferPointer {
            let (start, length) = spans[index]
            guard length >= 0, expected.map({ $0 == length }) ?? true else {
                throw EventsError(.decoding, "column \(index + 1) of a row of the log's COPY has length \(length)")
            }
            return UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)])
        }
        func length(_ value: Int) {
            withUnsafeBytes(of: UInt32(value).bigEndian) { records.append(contentsOf: $0) }
        }
        records.append(LogArchive.Kind.event.rawValue)
        let lengthAt = records.count
        length(0)
        records.append(contentsOf: try field(0, length: 16))
        if spans[1].length < 0 {
            records.append(0)
        } else {
            records.append(1)
            records.append(contentsOf: try field(1, length: 16))
        }
        let stream = try field(2)
        length(stream.count)
        records.append(contentsOf: stream)
        records.append(contentsOf: try field(3, length: 8))
        let type = try field(4)
        length(type.count)
        records.append(contentsOf: type)
        records.append(contentsOf: try field(5, length: 4))
        records.append(contentsOf: try field(6, length: 2))
        let recordedAt = Int64(bitPattern: Self.uint64(try field(7, length: 8), 0)) &+ Self.epochShift
        withUnsafeBytes(of: recordedAt.bigEndian) { records.append(contentsOf: $0) }
        let transaction = try field(8, length: 8)
        records.append(contentsOf: transaction)
        let global = try field(9, length: 8)
        records.append(contentsOf: global)
        let metadata = try field(10)
        guard metadata.first == 1 else {
            throw EventsError(.decoding, "a row's metadata is not jsonb version 1")
        }
        length(metadata.count - 1)
        records.append(contentsOf: UnsafeRawBufferPointer(rebasing: metadata[1...]))
        let payload = try field(11)
        length(payload.count)
        records.append(contentsOf: payload)
        let recordLength = UInt32(records.count - lengthAt - 4)
        for index in 0..<4 { records[lengthAt + index] = UInt8(truncatingIfNeeded: recordLength >> (24 - 8 * index)) }

        let position = FeedPosition(
            transactionID: Self.uint64(transaction, 0), globalPosition: Int64(bitPattern: Self.uint64(global, 0)))
        if first == nil { first = position }
        last = position
        events += 1
        streams.insert(String(decoding: stream, as: UTF8.self))
    }

    private static func uint32(_ bytes: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        var value: UInt32 = 0
        for index in at..<(at + 4) { value = value << 8 | UInt32(bytes[index]) }
        return value
    }

    private static func uint64(_ bytes: UnsafeRawBufferPointer, _ at: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in at..<(at + 8) { value = value << 8 | UInt64(bytes[index]) }
        return value
    }
}
