package import Foundation

/// A statement parameter, sent to PostgreSQL in binary form with its type, or as text for the server to parse.
///
/// Values always travel as parameters, never spliced into SQL text.
package struct PostgresValue: Sendable {
    /// The PostgreSQL type OID (0 lets the server infer it from the statement).
    package let oid: UInt32
    /// 0 text, 1 binary.
    package let format: Int32
    /// The encoded value; `nil` is SQL NULL.
    package let bytes: [UInt8]?

    package init(oid: UInt32, format: Int32, bytes: [UInt8]?) {
        self.oid = oid
        self.format = format
        self.bytes = bytes
    }

    /// SQL NULL of an unspecified type.
    package static let null = PostgresValue(oid: 0, format: 0, bytes: nil)

    /// Text the server parses for the parameter's inferred type (use for xid8, jsonb, numeric...).
    package static func text(_ value: String) -> PostgresValue {
        PostgresValue(oid: 0, format: 0, bytes: Array(value.utf8))
    }

    package static func string(_ value: String) -> PostgresValue {
        PostgresValue(oid: PostgresType.text, format: 1, bytes: Array(value.utf8))
    }

    package static func string(_ value: String?) -> PostgresValue {
        value.map(string) ?? PostgresValue(oid: PostgresType.text, format: 1, bytes: nil)
    }

    package static func int64(_ value: Int64) -> PostgresValue {
        PostgresValue(oid: PostgresType.int8, format: 1, bytes: BigEndian.bytes(value))
    }

    package static func int32(_ value: Int32) -> PostgresValue {
        PostgresValue(oid: PostgresType.int4, format: 1, bytes: BigEndian.bytes(value))
    }

    package static func int16(_ value: Int16) -> PostgresValue {
        PostgresValue(oid: PostgresType.int2, format: 1, bytes: BigEndian.bytes(value))
    }

    package static func bool(_ value: Bool) -> PostgresValue {
        PostgresValue(oid: PostgresType.bool, format: 1, bytes: [value ? 1 : 0])
    }

    package static func bytes(_ value: [UInt8]) -> PostgresValue {
        PostgresValue(oid: PostgresType.bytea, format: 1, bytes: value)
    }

    package static func uuid(_ value: UUID) -> PostgresValue {
        PostgresValue(oid: PostgresType.uuid, format: 1, bytes: PostgresType.uuidBytes(value))
    }

    package static func uuid(_ value: UUID?) -> PostgresValue {
        value.map(uuid) ?? PostgresValue(oid: PostgresType.uuid, format: 1, bytes: nil)
    }

    package static func timestamp(_ value: Date) -> PostgresValue {
        PostgresValue(
            oid: PostgresType.timestamptz, format: 1, bytes: BigEndian.bytes(PostgresType.microseconds(value)))
    }

    /// JSON text as `jsonb` in binary form (a version byte, then the text).
    package static func jsonb(_ json: [UInt8]) -> PostgresValue {
        PostgresValue(oid: PostgresType.jsonb, format: 1, bytes: [1] + json)
    }

    /// A one-dimensional array in PostgreSQL's binary array format; `nil` elements are NULLs.
    package static func array(of elementOID: UInt32, _ elements: [[UInt8]?]) -> PostgresValue {
        var out: [UInt8] = []
        out.reserveCapacity(20 + elements.reduce(0) { $0 + 4 + ($1?.count ?? 0) })
        let hasNull: Int32 = elements.contains { $0 == nil } ? 1 : 0
        out += BigEndian.bytes(Int32(1))
        out += BigEndian.bytes(hasNull)
        out += BigEndian.bytes(Int32(bitPattern: elementOID))
        out += BigEndian.bytes(Int32(elements.count))
        out += BigEndian.bytes(Int32(1))
        for element in elements {
            if let element {
                out += BigEndian.bytes(Int32(element.count))
                out += element
            } else {
                out += BigEndian.bytes(Int32(-1))
            }
        }
        return PostgresValue(oid: PostgresType.arrayOID(of: elementOID), format: 1, bytes: out)
    }

    package static func stringArray(_ values: [String?]) -> PostgresValue {
        array(of: PostgresType.text, values.map { $0.map { Array($0.utf8) } })
    }

    package static func int32Array(_ values: [Int32?]) -> PostgresValue {
        array(of: PostgresType.int4, values.map { $0.map { BigEndian.bytes($0) } })
    }

    package static func timestampArray(_ values: [Date?]) -> PostgresValue {
        array(of: PostgresType.timestamptz, values.map { $0.map { BigEndian.bytes(PostgresType.microseconds($0)) } })
    }

    package static func stringArray(_ values: [String]) -> PostgresValue {
        array(of: PostgresType.text, values.map { Array($0.utf8) })
    }

    package static func int64Array(_ values: [Int64]) -> PostgresValue {
        array(of: PostgresType.int8, values.map { BigEndian.bytes($0) })
    }

    package static func int32Array(_ values: [Int32]) -> PostgresValue {
        array(of: PostgresType.int4, values.map { BigEndian.bytes($0) })
    }

    package static func int16Array(_ values: [Int16]) -> PostgresValue {
        array(of: PostgresType.int2, values.map { BigEndian.bytes($0) })
    }

    package static func uuidArray(_ values: [UUID?]) -> PostgresValue {
        array(of: PostgresType.uuid, values.map { $0.map(PostgresType.uuidBytes) })
    }

    package static func byteaArray(_ values: [[UInt8]]) -> PostgresValue {
        array(of: PostgresType.bytea, values)
    }

    /// jsonb elements in binary form: a version byte (1) and the JSON text.
    package static func jsonbArray(_ values: [[UInt8]]) -> PostgresValue {
        array(of: PostgresType.jsonb, values.map { [1] + $0 })
    }
}

/// Type OIDs and binary conversions of the PostgreSQL types Tally uses.
package enum PostgresType {
    package static let bool: UInt32 = 16
    package static let bytea: UInt32 = 17
    package static let name: UInt32 = 19
    package static let int8: UInt32 = 20
    package static let int2: UInt32 = 21
    package static let int4: UInt32 = 23
    package static let text: UInt32 = 25
    package static let oid: UInt32 = 26
    package static let json: UInt32 = 114
    package static let float8: UInt32 = 701
    package static let bpchar: UInt32 = 1042
    package static let varchar: UInt32 = 1043
    package static let timestamp: UInt32 = 1114
    package static let timestamptz: UInt32 = 1184
    package static let uuid: UInt32 = 2950
    package static let jsonb: UInt32 = 3802
    package static let xid8: UInt32 = 5069

    package static func arrayOID(of element: UInt32) -> UInt32 {
        switch element {
        case bool: 1000
        case bytea: 1001
        case int2: 1005
        case int4: 1007
        case text: 1009
        case int8: 1016
        case float8: 1022
        case timestamptz: 1185
        case uuid: 2951
        case jsonb: 3807
        default: 0
        }
    }

    /// 2000-01-01T00:00:00Z, PostgreSQL's epoch, in seconds since 1970.
    static let epochOffsetSeconds: Int64 = 946_684_800

    /// PostgreSQL's microseconds since its epoch. Never traps: a date past what a timestamp holds (years
    /// 4713 BC to 294276 AD) becomes `infinity` or `-infinity`, which PostgreSQL stores as Int64.max and .min.
    /// Whatever reaches this from a request is range-checked before (422); this only keeps a bad value from
    /// taking the process down.
    package static func microseconds(_ date: Date) -> Int64 {
        let micros = (date.timeIntervalSince1970 * 1_000_000).rounded() - Double(epochOffsetSeconds * 1_000_000)
        guard micros.isFinite else { return micros < 0 || micros.isNaN ? Int64.min : Int64.max }
        if micros > Double(maxMicroseconds) { return Int64.max }
        if micros < Double(minMicroseconds) { return Int64.min }
        return Int64(micros)
    }

    /// The inverse of `microseconds(_:)`: `infinity` and `-infinity` are `distantFuture` and `distantPast`.
    package static func date(microseconds: Int64) -> Date {
        if microseconds == Int64.max { return .distantFuture }
        if microseconds == Int64.min { return .distantPast }
        return Date(timeIntervalSince1970: Double(microseconds) / 1_000_000 + Double(epochOffsetSeconds))
    }

    /// The finite range of timestamptz: 4714-11-24 00:00:00 BC to 294276-12-31 23:59:59.999999, in
    /// microseconds since 2000-01-01.
    static let minMicroseconds: Int64 = -211_813_488_000_000_000
    static let maxMicroseconds: Int64 = 9_223_371_331_199_999_999

    package static func uuidBytes(_ value: UUID) -> [UInt8] {
        withUnsafeBytes(of: value.uuid) { Array($0) }
    }

    /// The UUID of 16 bytes in network order (the caller checks the count).
    package static func uuid(_ b: [UInt8]) -> UUID {
        UUID(
            uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15])
        )
    }
}

package enum BigEndian {
    package static func bytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }

    package static func read<T: FixedWidthInteger>(_ type: T.Type, _ bytes: ArraySlice<UInt8>) -> T? {
        guard bytes.count == MemoryLayout<T>.size else { return nil }
        var value: T = 0
        for byte in bytes {
            value = (value << 8) | T(byte)
        }
        return value
    }
}
