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
        guard let bytes = Sodium.bytes(hex: hex), bytes.count == Sodium.aeadKeyBytes else { throw Self.malformed }
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

    private static let malformed = EventsError(
        .invalidArgument, "a master key is 64 hex digits (32 bytes); its value is not shown")

}
