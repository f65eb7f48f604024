public import Foundation

/// Stream `vendorsecret-{tenantId}:{vendor}`: a tenant stored its own key for a vendor, sealed with the
/// tenant's data key before it was ever written (XChaCha20-Poly1305; tenant, vendor and secret version are
/// the associated data).
public struct VendorSecretSealed: DomainEvent {
    public static let eventType = "VendorSecretSealed"
    public static let schemaVersion = 1
    public var tenantID: UUID
    public var vendor: Vendor
    /// Increases with every replacement; part of the associated data.
    public var secretVersion: Int
    /// Which wrapped tenant key sealed it.
    public var tenantKeyVersion: Int
    /// Nonce and ciphertext (base64 in JSON).
    public var sealed: Data
    /// A keyed fingerprint of the plaintext (never the plaintext): names the flow-control key.
    public var fingerprint: String

    public init(
        tenantID: UUID, vendor: Vendor, secretVersion: Int, tenantKeyVersion: Int, sealed: Data, fingerprint: String
    ) {
        self.tenantID = tenantID
        self.vendor = vendor
        self.secretVersion = secretVersion
        self.tenantKeyVersion = tenantKeyVersion
        self.sealed = sealed
        self.fingerprint = fingerprint
    }

    enum CodingKeys: String, CodingKey {
        case tenantID = "tenantId", vendor, secretVersion, tenantKeyVersion, sealed, fingerprint
    }
}

/// Stream `vendorsecret-{tenantId}:{vendor}`: the tenant removed its key for the vendor.
public struct VendorSecretRemoved: DomainEvent {
    public static let eventType = "VendorSecretRemoved"
    public static let schemaVersion = 1
    public var tenantID: UUID
    public var vendor: Vendor
    public var secretVersion: Int

    public init(tenantID: UUID, vendor: Vendor, secretVersion: Int) {
        self.tenantID = tenantID
        self.vendor = vendor
        self.secretVersion = secretVersion
    }

    enum CodingKeys: String, CodingKey { case tenantID = "tenantId", vendor, secretVersion }
}

/// Stream `vendorsecret-{tenantId}:{vendor}`: the vendor said the key is invalid or out of credits; runs that
/// need it are parked until the tenant stores a new key.
public struct VendorKeySuspended: DomainEvent {
    public static let eventType = "VendorKeySuspended"
    public static let schemaVersion = 1
    public var tenantID: UUID
    public var vendor: Vendor
    public var secretVersion: Int
    public var fingerprint: String
    /// The vendor's own words or code (`INVALID_API_KEY`, HTTP 402...), never the key.
    public var reason: String

    public init(tenantID: UUID, vendor: Vendor, secretVersion: Int, fingerprint: String, reason: String) {
        self.tenantID = tenantID
        self.vendor = vendor
        self.secretVersion = secretVersion
        self.fingerprint = fingerprint
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey { case tenantID = "tenantId", vendor, secretVersion, fingerprint, reason }
}
