internal import CTallySodium

/// The few libsodium primitives the log needs; `sodium_init` runs once before any of them.
package enum Sodium {
    private static let initialized: Bool = sodium_init() >= 0

    private static func ensureInitialized() {
        precondition(initialized, "libsodium failed to initialize")
    }

    /// SHA-256 of `bytes`.
    package static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        ensureInitialized()
        var digest = [UInt8](repeating: 0, count: Int(crypto_hash_sha256_bytes()))
        _ = digest.withUnsafeMutableBufferPointer { out in
            bytes.withUnsafeBufferPointer { crypto_hash_sha256(out.baseAddress!, $0.baseAddress, UInt64($0.count)) }
        }
        return digest
    }

    /// `count` bytes from the operating system's CSPRNG.
    package static func randomBytes(_ count: Int) -> [UInt8] {
        ensureInitialized()
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, $0.count) }
        return bytes
    }

    /// HMAC-SHA-256 of `message` under `key` (any length).
    package static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        ensureInitialized()
        var state = crypto_auth_hmacsha256_state()
        var mac = [UInt8](repeating: 0, count: Int(crypto_auth_hmacsha256_BYTES))
        // An empty array may have no storage; libsodium reads nothing when the length is 0.
        let keyBytes = key.isEmpty ? [0] : key
        let messageBytes = message.isEmpty ? [0] : message
        _ = keyBytes.withUnsafeBufferPointer { crypto_auth_hmacsha256_init(&state, $0.baseAddress!, key.count) }
        _ = messageBytes.withUnsafeBufferPointer { crypto_auth_hmacsha256_update(&state, $0.baseAddress!, UInt64(message.count)) }
        _ = mac.withUnsafeMutableBufferPointer { crypto_auth_hmacsha256_final(&state, $0.baseAddress!) }
        sodium_memzero(&state, MemoryLayout<crypto_auth_hmacsha256_state>.size)
        return mac
    }

    /// Compares in time that depends only on the lengths, never on where the bytes differ.
    package static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        ensureInitialized()
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { y in sodium_memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 } }
    }

    /// Lower-case hexadecimal.
    package static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
