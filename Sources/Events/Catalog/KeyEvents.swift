public import Foundation

/// Stream `apikey-{keyId}`: an API key was issued. Only its keyed hash and display prefix are recorded; the
/// plaintext is shown to the caller once and exists nowhere else.
public struct KeyIssued: DomainEvent {
    public static let eventType = "KeyIssued"
    public static let schemaVersion = 1
    public var keyID: UUID
    public var tenantID: UUID
    public var name: String
    /// The first characters of the key (`tly_ab12...`), for people to recognise it.
    public var displayPrefix: String
    /// HMAC-SHA-256 of the key under the server's pepper, hex.
    public var keyHash: String
    public var expiresAt: Date?

    public init(keyID: UUID, tenantID: UUID, name: String, displayPrefix: String, keyHash: String, expiresAt: Date?) {
        self.keyID = keyID
        self.tenantID = tenantID
        self.name = name
        self.displayPrefix = displayPrefix
        self.keyHash = keyHash
        self.expiresAt = expiresAt
    }

    enum CodingKeys: String, CodingKey {
        case keyID = "keyId", tenantID = "tenantId", name, displayPrefix, keyHash, expiresAt
    }
}

/// Stream `apikey-{keyId}`: the key stops working now.
public struct KeyRevoked: DomainEvent {
    public static let eventType = "KeyRevoked"
    public static let schemaVersion = 1
    public var keyID: UUID
    public var tenantID: UUID
    public var reason: String

    public init(keyID: UUID, tenantID: UUID, reason: String) {
        self.keyID = keyID
        self.tenantID = tenantID
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey { case keyID = "keyId", tenantID = "tenantId", reason }
}

/// Stream `apikey-{keyId}` of the old key: it was replaced by `replacementKeyID` (whose KeyIssued is appended
/// in the same transaction) and keeps working until `graceUntil`.
public struct KeyRotated: DomainEvent {
    public static let eventType = "KeyRotated"
    public static let schemaVersion = 1
    public var keyID: UUID
    public var tenantID: UUID
    public var replacementKeyID: UUID
    public var graceUntil: Date

    public init(keyID: UUID, tenantID: UUID, replacementKeyID: UUID, graceUntil: Date) {
        self.keyID = keyID
        self.tenantID = tenantID
        self.replacementKeyID = replacementKeyID
        self.graceUntil = graceUntil
    }

    enum CodingKeys: String, CodingKey {
        case keyID = "keyId", tenantID = "tenantId", replacementKeyID = "replacementKeyId", graceUntil
    }
}
