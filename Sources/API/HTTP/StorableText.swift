/// Finds the first string of a JSON document that PostgreSQL cannot store as `text` or `jsonb`: one holding
/// U+0000 (escaped as `\u0000`; a raw NUL byte is not JSON) or a UTF-16 surrogate escape without its other
/// half. Every request body passes through here before it is decoded, so such a string is refused with 422
/// and a JSON pointer instead of reaching the log, where a reader that stores it would fail on it forever.
///
/// Keys are checked too, and nesting deeper than `maxDepth` is refused the same way. A document that is not well-formed JSON gives nil: the parser refuses it next.
enum StorableText {
    struct Finding: Equatable {
        /// RFC 6901 pointer to the value (or to the member whose key is at fault).
        var pointer: String
        var detail: String
    }

    /// The deepest nesting a body may have.
    static let maxDepth = 32

    static func firstUnstorable(in bytes: some Collection<UInt8>) -> Finding? {
        var scanner = Scanner(bytes: Array(bytes))
        return scanner.document()
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0
        /// The pointer's segments down to the value being scanned.
        var path: [String] = []

        init(bytes: [UInt8]) { self.bytes = bytes }

        var pointer: String { path.map { "/" + Pointer.escape($0) }.joined() }

        mutating func document() -> Finding? {
            skipSpace()
            return (try? value()) ?? nil
        }

        /// Throws when the document is malformed (the parser reports that); returns a finding or nil.
        mutating func value() throws -> Finding? {
            // No body of this API nests deeply; a deep one must not exhaust the stack (of the parser either).
            guard path.count <= StorableText.maxDepth else {
                return Finding(pointer: pointer, detail: "nests more than \(StorableText.maxDepth) levels deep")
            }
            skipSpace()
            guard index < bytes.count else { throw Malformed() }
            switch bytes[index] {
            case UInt8(ascii: "{"):
                index += 1
                skipSpace()
                if peek(UInt8(ascii: "}")) { return nil }
                while true {
                    skipSpace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw Malformed() }
                    let (key, problem) = try string()
                    path.append(key)
                    if let problem { return Finding(pointer: pointer, detail: "the name of this member " + problem) }
                    skipSpace()
                    guard peek(UInt8(ascii: ":")) else { throw Malformed() }
                    if let finding = try value() { return finding }
                    path.removeLast()
                    skipSpace()
                    if peek(UInt8(ascii: ",")) { continue }
                    if peek(UInt8(ascii: "}")) { return nil }
                    throw Malformed()
                }
            case UInt8(ascii: "["):
                index += 1
                skipSpace()
                if peek(UInt8(ascii: "]")) { return nil }
                var element = 0
                while true {
                    path.append(String(element))
                    if let finding = try value() { return finding }
                    path.removeLast()
                    element += 1
                    skipSpace()
                    if peek(UInt8(ascii: ",")) { continue }
                    if peek(UInt8(ascii: "]")) { return nil }
                    throw Malformed()
                }
            case UInt8(ascii: "\""):
                let (_, problem) = try string()
                return problem.map { Finding(pointer: pointer, detail: $0) }
            default:
                // Numbers, true, false, null: their bytes are plain ASCII; the parser checks their shape.
                while index < bytes.count, !",}] \t\r\n".utf8.contains(bytes[index]) { index += 1 }
                return nil
            }
        }

        /// Reads a string from its opening quote; returns its decoded text (for keys) and the first problem.
        mutating func string() throws -> (String, String?) {
            index += 1
            var scalars = String.UnicodeScalarView()
            var problem: String?
            var start = index
            func flush(_ end: Int) {
                if start < end {
                    scalars.append(contentsOf: String(decoding: bytes[start..<end], as: UTF8.self).unicodeScalars)
                }
            }
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    flush(index)
                    index += 1
                    return (String(scalars), problem)
                }
                guard byte == UInt8(ascii: "\\") else {
                    if byte < 0x20 { throw Malformed() }
                    index += 1
                    continue
                }
                flush(index)
                guard index + 1 < bytes.count else { throw Malformed() }
                let escape = bytes[index + 1]
                index += 2
                if escape == UInt8(ascii: "u") {
                    let unit = try hex4()
                    if unit == 0 {
                        problem = problem ?? "must not contain U+0000 (NUL)"
                    } else if (0xD800..<0xDC00).contains(unit) {
                        // A high surrogate must be followed by an escaped low one.
                        if index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                            bytes[index + 1] == UInt8(ascii: "u")
                        {
                            index += 2
                            let low = try hex4()
                            if (0xDC00..<0xE000).contains(low) {
                                let value = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                                if let scalar = Unicode.Scalar(value) { scalars.append(scalar) }
                            } else {
                                problem = problem ?? "must not contain an unpaired UTF-16 surrogate"
                            }
                        } else {
                            problem = problem ?? "must not contain an unpaired UTF-16 surrogate"
                        }
                    } else if (0xDC00..<0xE000).contains(unit) {
                        problem = problem ?? "must not contain an unpaired UTF-16 surrogate"
                    } else if let scalar = Unicode.Scalar(unit) {
                        scalars.append(scalar)
                    }
                } else {
                    switch escape {
                    case UInt8(ascii: "\""): scalars.append("\"")
                    case UInt8(ascii: "\\"): scalars.append("\\")
                    case UInt8(ascii: "/"): scalars.append("/")
                    case UInt8(ascii: "b"): scalars.append("\u{08}")
                    case UInt8(ascii: "f"): scalars.append("\u{0C}")
                    case UInt8(ascii: "n"): scalars.append("\n")
                    case UInt8(ascii: "r"): scalars.append("\r")
                    case UInt8(ascii: "t"): scalars.append("\t")
                    default: throw Malformed()
                    }
                }
                start = index
            }
            throw Malformed()
        }

        mutating func hex4() throws -> UInt16 {
            guard index + 4 <= bytes.count else { throw Malformed() }
            var value: UInt16 = 0
            for byte in bytes[index..<index + 4] {
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw Malformed()
                }
                value = value << 4 | UInt16(digit)
            }
            index += 4
            return value
        }

        mutating func skipSpace() {
            while index < bytes.count, " \t\r\n".utf8.contains(bytes[index]) { index += 1 }
        }

        /// Consumes `byte` when it is next.
        mutating func peek(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }
    }

    private struct Malformed: Error {}
}
