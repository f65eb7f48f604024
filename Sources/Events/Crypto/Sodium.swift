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

    /// Length of an X25519 public or secret key.
    package static let boxKeyBytes = 32

    /// The X25519 key pair `seed` (32 bytes) determines.
    package static func boxKeyPair(seed: [UInt8]) -> (publicKey: [UInt8], secretKey: [UInt8]) {
        ensureInitialized()
        precondition(seed.count == Int(crypto_box_SEEDBYTES), "a key-pair seed is 32 bytes")
        var publicKey = [UInt8](repeating: 0, count: Int(crypto_box_PUBLICKEYBYTES))
        var secretKey = [UInt8](repeating: 0, count: Int(crypto_box_SECRETKEYBYTES))
        _ = publicKey.withUnsafeMutableBufferPointer { pk in
            secretKey.withUnsafeMutableBufferPointer { sk in
                seed.withUnsafeBufferPointer {
                    crypto_box_seed_keypair(pk.baseAddress!, sk.baseAddress!, $0.baseAddress!)
                }
            }
        }
        return (publicKey, secretKey)
    }

    /// A sealed box: `message` encrypted to `publicKey` under a fresh ephemeral key, so that only the
    /// holder of the secret key opens it and the sender keeps no way to.
    package static func sealBox(_ message: [UInt8], to publicKey: [UInt8]) -> [UInt8] {
        ensureInitialized()
        precondition(publicKey.count == Int(crypto_box_PUBLICKEYBYTES), "an X25519 public key is 32 bytes")
        var out = [UInt8](repeating: 0, count: message.count + Int(crypto_box_sealbytes()))
        let bytes = message.isEmpty ? [0] : message
        _ = out.withUnsafeMutableBufferPointer { out in
            bytes.withUnsafeBufferPointer { m in
                publicKey.withUnsafeBufferPointer {
                    crypto_box_seal(out.baseAddress!, m.baseAddress!, UInt64(message.count), $0.baseAddress!)
                }
            }
        }
        return out
    }

    /// Opens a sealed box; nil when it was not sealed to this key pair or a byte is wrong.
    package static func openBox(_ sealed: [UInt8], publicKey: [UInt8], secretKey: [UInt8]) -> [UInt8]? {
        ensureInitialized()
        let overhead = Int(crypto_box_sealbytes())
        guard sealed.count >= overhead, publicKey.count == Int(crypto_box_PUBLICKEYBYTES),
            secretKey.count == Int(crypto_box_SECRETKEYBYTES)
        else { return nil }
        var out = [UInt8](repeating: 0, count: max(1, sealed.count - overhead))
        let opened = out.withUnsafeMutableBufferPointer { out in
            sealed.withUnsafeBufferPointer { c in
                publicKey.withUnsafeBufferPointer { pk in
                    secretKey.withUnsafeBufferPointer { sk in
                        crypto_box_seal_open(
                            out.baseAddress!, c.baseAddress!, UInt64(c.count), pk.baseAddress!, sk.baseAddress!)
                    }
                }
            }
        }
        // The plaintext is a key: the working buffer is wiped, only the returned copy lives on.
        defer { memzero(&out) }
        guard opened == 0 else { return nil }
        return Array(out.prefix(sealed.count - overhead))
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
        _ = messageBytes.withUnsafeBufferPointer {
            crypto_auth_hmacsha256_update(&state, $0.baseAddress!, UInt64(message.count))
        }
        _ = mac.withUnsafeMutableBufferPointer { crypto_auth_hmacsha256_final(&state, $0.baseAddress!) }
        sodium_memzero(&state, MemoryLayout<crypto_auth_hmacsha256_state>.size)
        return mac
    }

    /// Compares in time that depends only on the lengths, never on where the bytes differ.
    package static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        ensureInitialized()
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return a.withUnsafeBufferPointer { x in
            b.withUnsafeBufferPointer { y in sodium_memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 }
        }
    }

    /// Key length of XChaCha20-Poly1305.
    package static let aeadKeyBytes = 32
    /// What sealing adds to a message: the random 24-byte nonce in front and the 16-byte tag.
    package static let aeadOverheadBytes = 24 + 16

    /// XChaCha20-Poly1305 (IETF) under a 32-byte `key`, with a random nonce prefixed to the ciphertext.
    /// `associatedData` is authenticated, not encrypted: opening with any other fails. `nonce` (24 bytes)
    /// replaces the random one only where the same message must seal to the same bytes, and then must be
    /// derived from the message and a secret (never reused for another message under the key).
    package static func seal(
        _ message: UnsafeRawBufferPointer, key: [UInt8], associatedData: [UInt8], nonce: [UInt8]? = nil
    ) -> [UInt8] {
        ensureInitialized()
        precondition(key.count == aeadKeyBytes, "an AEAD key is 32 bytes")
        let nonceBytes = Int(crypto_aead_xchacha20poly1305_ietf_npubbytes())
        precondition(nonce == nil || nonce?.count == nonceBytes, "an XChaCha20 nonce is 24 bytes")
        var out =
            (nonce ?? randomBytes(nonceBytes))
            + [UInt8](repeating: 0, count: message.count + Int(crypto_aead_xchacha20poly1305_ietf_abytes()))
        var written: UInt64 = 0
        // A zero-length buffer may have no base address; libsodium reads nothing when the length is 0.
        let empty: [UInt8] = [0]
        out.withUnsafeMutableBufferPointer { out in
            key.withUnsafeBufferPointer { key in
                associatedData.withUnsafeBufferPointer { ad in
                    empty.withUnsafeBufferPointer { empty in
                        let messagePointer =
                            message.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? empty.baseAddress!
                        _ = crypto_aead_xchacha20poly1305_ietf_encrypt(
                            out.baseAddress! + nonceBytes, &written, messagePointer, UInt64(message.count),
                            ad.baseAddress ?? empty.baseAddress!, UInt64(ad.count), nil, out.baseAddress!,
                            key.baseAddress!)
                    }
                }
            }
        }
        return out
    }

    /// Opens what `seal` produced into `plaintext` (exactly `sealed.count - aeadOverheadBytes` bytes); false
    /// when the key, the associated data or a byte of `sealed` is wrong. Nothing is written on failure.
    package static func open(
        _ sealed: [UInt8], key: [UInt8], associatedData: [UInt8], into plaintext: UnsafeMutableRawBufferPointer
    ) -> Bool {
        ensureInitialized()
        guard key.count == aeadKeyBytes, sealed.count >= aeadOverheadBytes,
            plaintext.count == sealed.count - aeadOverheadBytes
        else {
            return false
        }
        let nonceBytes = Int(crypto_aead_xchacha20poly1305_ietf_npubbytes())
        var written: UInt64 = 0
        var scratch: [UInt8] = [0]
        // An empty array may have no storage; libsodium reads nothing when the length is 0.
        let adBytes = associatedData.isEmpty ? [0] : associatedData
        return sealed.withUnsafeBufferPointer { sealed in
            key.withUnsafeBufferPointer { key in
                adBytes.withUnsafeBufferPointer { ad in
                    scratch.withUnsafeMutableBufferPointer { scratch in
                        let out = plaintext.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? scratch.baseAddress!
                        return crypto_aead_xchacha20poly1305_ietf_decrypt(
                            out, &written, nil, sealed.baseAddress! + nonceBytes, UInt64(sealed.count - nonceBytes),
                            ad.baseAddress!, UInt64(associatedData.count), sealed.baseAddress!, key.baseAddress!) == 0
                    }
                }
            }
        }
    }

    /// Overwrites `bytes` with zeros in a way the compiler cannot drop.
    package static func memzero(_ bytes: UnsafeMutableRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        sodium_memzero(base, bytes.count)
    }

    /// Overwrites the array's storage with zeros (its length stays).
    package static func memzero(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { memzero($0) }
    }

    /// The bytes of hexadecimal text (either case); nil when it is not an even number of hex digits.
    package static func bytes(hex: String) -> [UInt8]? {
        func nibble(_ digit: UInt8) -> UInt8? {
            switch digit {
            case 0x30...0x39: digit - 0x30
            case 0x61...0x66: digit - 0x61 + 10
            case 0x41...0x46: digit - 0x41 + 10
            default: nil
            }
        }
        let digits = Array(hex.utf8)
        guard digits.count.isMultiple(of: 2) else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
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
