public import Events
public import Foundation

/// A key as its stream says now, for deciding commands.
public struct KeyState: Sendable {
    /// `active`, `rotated` or `revoked`.
    public var status = "active"
    /// The name given when it was issued.
    public var name = ""
    /// When it stops working, if it expires.
    public var expiresAt: Date?
    /// The stream's version the decision was made at.
    public var version: Int64 = 0

    /// The key's state; a `.notFound` error when it does not exist or belongs to another tenant.
    public static func load(_ id: UUID, tenant: UUID, store: EventStore) async throws -> KeyState {
        guard let events = try await store.readAll(.apiKey(id), ownedBy: tenant) else {
            throw CommandError.notFound("key")
        }
        var state = KeyState()
        for recorded in events {
            state.version = recorded.streamVersion
            switch try store.catalog.decode(recorded) {
            case let event as KeyIssued:
                state.name = event.name
                state.expiresAt = event.expiresAt
            case is KeyRevoked: state.status = "revoked"
            case is KeyRotated: state.status = "rotated"
            default: break
            }
        }
        return state
    }
}

/// A key just issued: its event and its plaintext, which exists nowhere else and is shown once.
public struct IssuedKey: Sendable {
    /// The event, with the keyed hash and display prefix only.
    public var issued: KeyIssued
    /// The key itself: shown once, stored nowhere.
    public var plaintext: String
    /// What was appended.
    public var applied: Applied
}

/// A rotation: the replacement key, and until when the rotated one keeps working.
public struct RotatedKey: Sendable {
    /// The new key.
    public var replacement: IssuedKey
    /// The old key's rotation, with the end of its grace period.
    public var rotated: KeyRotated
}

extension Commands {
    /// Issues a key to an active tenant. Only the key's keyed hash (under `pepper`) and display prefix are
    /// in the event.
    public func issueKey(
        tenant: UUID, name: String, expiresAt: Date?, pepper: [UInt8], metadata: EventMetadata
    ) async throws -> IssuedKey {
        let state = try await self.tenant(tenant)
        guard state.status == "active" else {
            throw CommandError.conflict("tenant", "The tenant is \(state.status); keys are issued to active tenants.")
        }
        let (issued, plaintext) = Self.newKey(tenant: tenant, name: name, expiresAt: expiresAt, pepper: pepper)
        let applied = try await append(
            issued, to: .apiKey(issued.keyID), tenant: tenant, expected: .noStream, metadata: metadata)
        return IssuedKey(issued: issued, plaintext: plaintext, applied: applied)
    }

    /// Revokes a key; nothing when it is revoked already.
    public func revokeKey(_ keyID: UUID, tenant: UUID, reason: String, metadata: EventMetadata) async throws
        -> Applied
    {
        let key = try await KeyState.load(keyID, tenant: tenant, store: store)
        guard key.status != "revoked" else { return .nothing }
        let revoked = KeyRevoked(keyID: keyID, tenantID: tenant, reason: reason)
        return try await append(
            revoked, to: .apiKey(keyID), tenant: tenant, expected: .exactly(key.version), metadata: metadata)
    }

    /// Issues a replacement with the same name and expiry and marks the old key rotated (valid for `grace`
    /// more), atomically. Only an active key rotates.
    public func rotateKey(
        _ keyID: UUID, tenant: UUID, grace: Duration, pepper: [UInt8], metadata: EventMetadata
    ) async throws -> RotatedKey {
        let key = try await KeyState.load(keyID, tenant: tenant, store: store)
        guard key.status == "active" else {
            throw CommandError.conflict("key", "Only an active key can be rotated; this one is \(key.status).")
        }
        let (issued, plaintext) = Self.newKey(tenant: tenant, name: key.name, expiresAt: key.expiresAt, pepper: pepper)
        let graceUntil = Date().addingTimeInterval(Double(grace.components.seconds))
        let rotated = KeyRotated(
            keyID: keyID, tenantID: tenant, replacementKeyID: issued.keyID, graceUntil: graceUntil)
        let applied = try await append(
            [
                StreamAppend(
                    stream: .apiKey(issued.keyID), tenantID: tenant, expected: .noStream,
                    events: [try EventCatalog.tally.encode(issued, metadata: metadata)]),
                StreamAppend(
                    stream: .apiKey(keyID), tenantID: tenant, expected: .exactly(key.version),
                    events: [try EventCatalog.tally.encode(rotated, metadata: metadata)]),
            ], events: [issued, rotated])
        return RotatedKey(
            replacement: IssuedKey(issued: issued, plaintext: plaintext, applied: applied), rotated: rotated)
    }

    static func newKey(tenant: UUID, name: String, expiresAt: Date?, pepper: [UInt8]) -> (KeyIssued, String) {
        let plaintext = APIKeyFormat.generate()
        let issued = KeyIssued(
            keyID: UUID(), tenantID: tenant, name: name, displayPrefix: APIKeyFormat.displayPrefix(plaintext),
            keyHash: APIKeyFormat.keyedHash(plaintext, pepper: pepper), expiresAt: expiresAt)
        return (issued, plaintext)
    }
}
