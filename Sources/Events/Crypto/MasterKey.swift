/// The key that wraps every tenant's data key. It is never stored in the database: it comes from the
/// environment or a key file (`TALLY_MASTER_KEY`, `TALLY_MASTER_KEY_FILE`). Its `description` shows only its
/// id, so logging one by mistake reveals nothing.
public struct MasterKey: Sendable, CustomStringConvertible {
    let bytes: [UInt8]
    /// A short keyed fingerprint of the key (16 hex digits), recorded beside each tenant key it wraps so
    /// that a process with another master key says so instead of failing to open.
    public let id: String

    /// Parses 64 hex digits (either case); throws `invalidArgument` without echoing the value.
    public init(hex: String) throws {
        let digits = Array(hex.utf8)
        guard digits.count == 2 * Sodium.aeadKeyBytes else { throw Self.malformed }
        var bytes = [UInt8]()
        bytes.reserveCapacity(Sodium.aeadKeyBytes)
        var index = 0
        while index < digits.count {
            guard let high = Self.nibble(digits[index]), let low = Self.nibble(digits[index + 1]) else { throw Self.malformed }
            bytes.append(high << 4 | low)
            index += 2
        }
        self.init(bytes: bytes)
    }

    init(bytes: [UInt8]) {
        self.bytes = bytes
        id = String(Sodium.hex(Sodium.hmacSHA256(key: bytes, message: Array("tally.master-key-id.v1".utf8))).prefix(16))
    }

    /// A new random key, as 64 hex digits.
    public static func generateHex() -> String {
        var bytes = Sodium.randomBytes(Sodium.aeadKeyBytes)
        defer { Sodium.memzero(&bytes) }
        return Sodium.hex(bytes)
    }

    public var description: String { "MasterKey(id: \(id))" }

    private static let malformed = EventsError(.invalidArgument, "a master key is 64 hex digits (32 bytes); its value is not shown")

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case 0x30...0x39: digit - 0x30
        case 0x61...0x66: digit - 0x61 + 10
        case 0x41...0x46: digit - 0x41 + 10
        default: nil
        }
    }
}
