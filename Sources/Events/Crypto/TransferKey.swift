import Foundation

/// A database's transfer key: an X25519 key pair derived from its master key, so that another database can
/// seal tenant data keys to it (`tally log export --seal-keys-to`) that only this one opens. The public half
/// is printed by `tally secrets transfer-key`; the secret half is never stored anywhere.
public struct TransferPublicKey: Sendable, Hashable, CustomStringConvertible {
    let bytes: [UInt8]

    /// Parses 64 hex digits.
    public init(hex: String) throws {
        guard let bytes = Sodium.bytes(hex: hex), bytes.count == Sodium.boxKeyBytes else {
            throw EventsError(
                .invalidArgument, "a transfer key is 64 hex digits (tally secrets transfer-key prints one)")
        }
        self.bytes = bytes
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    /// 64 hex digits.
    public var hex: String { Sodium.hex(bytes) }
    /// A short fingerprint, recorded beside each key sealed to it.
    public var id: String { "transfer:" + String(Sodium.hex(Sodium.sha256(bytes)).prefix(16)) }
    public var description: String { hex }

    /// Seals a tenant's data key; the tenant and the key version are sealed with it and checked on opening.
    func seal(_ dataKey: [UInt8], tenant: UUID, version: Int) -> [UInt8] {
        var message = PostgresType.uuidBytes(tenant) + BigEndian.bytes(Int32(clamping: version)) + dataKey
        defer { Sodium.memzero(&message) }
        return Sodium.sealBox(message, to: bytes)
    }

}

extension MasterKey {
    /// This database's transfer key (public half).
    public var transferKey: TransferPublicKey { TransferPublicKey(bytes: transferKeyPair().publicKey) }

    /// Opens a data key sealed to this database's transfer key for `tenant` and `version`; nil when it was
    /// sealed to another key, for another tenant or version, or a byte is wrong.
    func openTransferred(_ sealed: [UInt8], tenant: UUID, version: Int) -> [UInt8]? {
        var pair = transferKeyPair()
        defer { Sodium.memzero(&pair.secretKey) }
        guard var message = Sodium.openBox(sealed, publicKey: pair.publicKey, secretKey: pair.secretKey) else {
            return nil
        }
        defer { Sodium.memzero(&message) }
        let prefix = PostgresType.uuidBytes(tenant) + BigEndian.bytes(Int32(clamping: version))
        guard message.count == prefix.count + Sodium.aeadKeyBytes, Array(message.prefix(prefix.count)) == prefix else {
            return nil
        }
        return Array(message.suffix(Sodium.aeadKeyBytes))
    }

    private func transferKeyPair() -> (publicKey: [UInt8], secretKey: [UInt8]) {
        var seed = Sodium.hmacSHA256(key: bytes, message: Array("tally.transfer-key.v1".utf8))
        defer { Sodium.memzero(&seed) }
        return Sodium.boxKeyPair(seed: seed)
    }
}
