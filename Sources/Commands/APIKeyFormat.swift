import Events
import Foundation

/// Tenant API keys: `tly_` + 32 hex digits (128 random bits) + 8 hex digits of checksum (the first four
/// bytes of SHA-256 over the random part). The checksum lets a typo or a truncated key be rejected without
/// any I/O; the database only ever sees the keyed hash.
package enum APIKeyFormat {
    package static let prefix = "tly_"
    package static let length = 4 + 32 + 8

    /// A new key in plaintext; shown to its owner once.
    package static func generate() -> String {
        let random = Sodium.hex(Sodium.randomBytes(16))
        return prefix + random + checksum(random)
    }

    /// Whether `text` has the shape and checksum of a key (no I/O).
    package static func isWellFormed(_ text: Substring) -> Bool {
        guard text.utf8.count == length, text.hasPrefix(prefix) else { return false }
        let body = text.utf8.dropFirst(4)
        guard body.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else { return false }
        let random = String(decoding: body.prefix(32), as: UTF8.self)
        let given = Array(body.suffix(8))
        return Sodium.constantTimeEquals(given, Array(checksum(random).utf8))
    }

    /// The short prefix stored for display (`tly_` + 8 hex digits): enough to recognise a key, useless to guess it.
    package static func displayPrefix(_ key: String) -> String { String(key.prefix(12)) }

    /// The keyed hash stored and looked up: HMAC-SHA-256 under the server's pepper, hex.
    package static func keyedHash(_ key: some StringProtocol, pepper: [UInt8]) -> String {
        Sodium.hex(Sodium.hmacSHA256(key: pepper, message: Array(key.utf8)))
    }

    private static func checksum(_ random: String) -> String {
        Sodium.hex(Array(Sodium.sha256(Array(random.utf8)).prefix(4)))
    }
}
