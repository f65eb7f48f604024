package import Foundation

/// The rows of one statement's result, copied out of libpq's buffers (results arrive in binary format).
package struct PostgresRows: Sendable, RandomAccessCollection {
    package let columns: [Column]
    // All cells of all rows back to back; `cells[row * columns.count + column]` is a range into `storage`,
    // or nil for SQL NULL. One allocation per result keeps large feed pages cheap to decode.
    let storage: [UInt8]
    let cells: [Range<Int>?]
    /// Rows the command touched (INSERT/UPDATE/DELETE/COPY), or 0.
    package let affectedRows: Int

    package struct Column: Sendable {
        package let name: String
        package let oid: UInt32
    }

    init(columns: [Column], storage: [UInt8], cells: [Range<Int>?], affectedRows: Int) {
        self.columns = columns
        self.storage = storage
        self.cells = cells
        self.affectedRows = affectedRows
    }

    package var startIndex: Int { 0 }
    package var endIndex: Int { columns.isEmpty ? 0 : cells.count / columns.count }
    package subscript(position: Int) -> PostgresRow { PostgresRow(rows: self, index: position) }

    /// The index of the column called `name`.
    package func column(_ name: String) -> Int? {
        columns.firstIndex { $0.name == name }
    }
}

/// One row; read cells by column index with the typed accessors, which throw `EventsError.decoding`
/// when the column holds another type or NULL.
package struct PostgresRow: Sendable {
    let rows: PostgresRows
    let index: Int

    private func cell(_ column: Int) throws -> (oid: UInt32, bytes: ArraySlice<UInt8>?) {
        guard column >= 0, column < rows.columns.count else {
            throw EventsError(.decoding, "column \(column) does not exist in this result")
        }
        let range = rows.cells[index * rows.columns.count + column]
        return (rows.columns[column].oid, range.map { rows.storage[$0] })
    }

    private func mismatch(_ column: Int, _ wanted: String) -> EventsError {
        let have = rows.columns[column]
        return EventsError(.decoding, "column \(have.name) (type oid \(have.oid)) cannot be read as \(wanted)")
    }

    private func required(_ column: Int, _ wanted: String) throws -> (UInt32, ArraySlice<UInt8>) {
        let (oid, bytes) = try cell(column)
        guard let bytes else {
            throw EventsError(.decoding, "column \(rows.columns[column].name) is NULL, expected \(wanted)")
        }
        return (oid, bytes)
    }

    package func isNull(_ column: Int) throws -> Bool {
        try cell(column).bytes == nil
    }

    package func int64(_ column: Int) throws -> Int64 {
        let (oid, bytes) = try required(column, "an integer")
        let value: Int64? =
            switch oid {
            case PostgresType.int8: BigEndian.read(Int64.self, bytes)
            case PostgresType.int4: BigEndian.read(Int32.self, bytes).map(Int64.init)
            case PostgresType.int2: BigEndian.read(Int16.self, bytes).map(Int64.init)
            case PostgresType.oid: BigEndian.read(UInt32.self, bytes).map(Int64.init)
            case PostgresType.xid8: BigEndian.read(UInt64.self, bytes).flatMap { Int64(exactly: $0) }
            default: nil
            }
        guard let value else { throw mismatch(column, "an integer") }
        return value
    }

    package func optionalInt64(_ column: Int) throws -> Int64? {
        try isNull(column) ? nil : int64(column)
    }

    package func int(_ column: Int) throws -> Int {
        Int(try int64(column))
    }

    /// An `xid8` (full transaction id).
    package func uint64(_ column: Int) throws -> UInt64 {
        let (oid, bytes) = try required(column, "an xid8")
        guard oid == PostgresType.xid8 || oid == PostgresType.int8, let value = BigEndian.read(UInt64.self, bytes)
        else { throw mismatch(column, "an xid8") }
        return value
    }

    package func string(_ column: Int) throws -> String {
        let (oid, bytes) = try required(column, "text")
        switch oid {
        case PostgresType.text, PostgresType.varchar, PostgresType.name, PostgresType.bpchar, PostgresType.json:
            return String(decoding: bytes, as: UTF8.self)
        case PostgresType.jsonb:
            return String(decoding: bytes.dropFirst(), as: UTF8.self)
        default:
            throw mismatch(column, "text")
        }
    }

    package func optionalString(_ column: Int) throws -> String? {
        try isNull(column) ? nil : string(column)
    }

    /// The raw JSON text of a `json` or `jsonb` column, as UTF-8 bytes.
    package func jsonBytes(_ column: Int) throws -> [UInt8] {
        let (oid, bytes) = try required(column, "json")
        switch oid {
        case PostgresType.jsonb: return Array(bytes.dropFirst())
        case PostgresType.json, PostgresType.text: return Array(bytes)
        default: throw mismatch(column, "json")
        }
    }

    package func bytes(_ column: Int) throws -> [UInt8] {
        let (oid, bytes) = try required(column, "bytea")
        guard oid == PostgresType.bytea else { throw mismatch(column, "bytea") }
        return Array(bytes)
    }

    package func bool(_ column: Int) throws -> Bool {
        let (oid, bytes) = try required(column, "a boolean")
        guard oid == PostgresType.bool, bytes.count == 1 else { throw mismatch(column, "a boolean") }
        return bytes.first != 0
    }

    package func uuid(_ column: Int) throws -> UUID {
        let (oid, bytes) = try required(column, "a uuid")
        guard oid == PostgresType.uuid, bytes.count == 16 else { throw mismatch(column, "a uuid") }
        return PostgresType.uuid(Array(bytes))
    }

    package func optionalUUID(_ column: Int) throws -> UUID? {
        try isNull(column) ? nil : uuid(column)
    }

    package func date(_ column: Int) throws -> Date {
        let (oid, bytes) = try required(column, "a timestamp")
        guard oid == PostgresType.timestamptz || oid == PostgresType.timestamp,
            let micros = BigEndian.read(Int64.self, bytes)
        else { throw mismatch(column, "a timestamp") }
        return PostgresType.date(microseconds: micros)
    }

    /// A timestamp exactly: microseconds since 1970-01-01 UTC (no trip through a Double).
    package func unixMicroseconds(_ column: Int) throws -> Int64 {
        let (oid, bytes) = try required(column, "a timestamp")
        guard oid == PostgresType.timestamptz || oid == PostgresType.timestamp,
            let micros = BigEndian.read(Int64.self, bytes)
        else { throw mismatch(column, "a timestamp") }
        return micros + PostgresType.epochOffsetSeconds * 1_000_000
    }

    package func optionalDate(_ column: Int) throws -> Date? {
        try isNull(column) ? nil : date(column)
    }

    package func double(_ column: Int) throws -> Double {
        let (oid, bytes) = try required(column, "a float8")
        guard oid == PostgresType.float8, let bits = BigEndian.read(UInt64.self, bytes) else {
            throw mismatch(column, "a float8")
        }
        return Double(bitPattern: bits)
    }
}
