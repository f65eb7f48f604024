public import Events
public import Foundation

/// A tenant's key for one vendor as its stream says now, for deciding commands.
public struct VendorSecretState: Sendable {
    /// The stream's version (0: no stream).
    public var version: Int64 = 0
    /// The newest secret version the stream names (0: none yet).
    public var secretVersion = 0
    /// Whether a key is stored (active or suspended) and not removed.
    public var present = false

    /// The state of the tenant's key for `vendor` (all zero when it never had one).
    public static func load(tenant: UUID, vendor: Vendor, store: EventStore) async throws -> VendorSecretState {
        var state = VendorSecretState()
        for recorded in try await store.readAll(.vendorSecret(tenant: tenant, vendor: vendor)) {
            state.version = recorded.streamVersion
            switch try store.catalog.decode(recorded) {
            case let event as VendorSecretSealed:
                state.secretVersion = max(state.secretVersion, event.secretVersion)
                state.present = true
            case let event as VendorSecretRemoved:
                state.secretVersion = max(state.secretVersion, event.secretVersion)
                state.present = false
            default: break
            }
        }
        return state
    }
}

/// A vendor key just sealed and appended.
public struct StoredVendorSecret: Sendable {
    /// The sealed secret as appended (ciphertext and fingerprint only).
    public var event: VendorSecretSealed
    /// Whether it replaced a key the tenant had for the vendor.
    public var replaced: Bool
    /// What was appended.
    public var applied: Applied
}

extension Commands {
    /// Seals `plaintext` with the tenant's data key and appends it as the vendor's next secret version. The
    /// plaintext is not kept: the caller zeroes its copy. An erased tenant's key is destroyed, so sealing
    /// fails with the vault's error.
    package func storeVendorSecret(
        tenant: UUID, vendor: Vendor, plaintext: [UInt8], vault: SecretVault, metadata: EventMetadata
    ) async throws -> StoredVendorSecret {
        let state = try await VendorSecretState.load(tenant: tenant, vendor: vendor, store: store)
        let secretVersion = state.secretVersion + 1
        let sealed = try await vault.seal(plaintext, tenant: tenant, vendor: vendor, secretVersion: secretVersion)
        let event = VendorSecretSealed(
            tenantID: tenant, vendor: vendor, secretVersion: secretVersion, tenantKeyVersion: sealed.tenantKeyVersion,
            sealed: Data(sealed.sealed), fingerprint: sealed.fingerprint)
        let applied = try await append(
            event, to: .vendorSecret(tenant: tenant, vendor: vendor), tenant: tenant,
            expected: state.version == 0 ? .noStream : .exactly(state.version), metadata: metadata)
        return StoredVendorSecret(event: event, replaced: state.present, applied: applied)
    }

    /// Appends `VendorSecretRemoved`; `.notFound` when the tenant has no key for the vendor. The sealed bytes
    /// stay in the log (it only grows); erasing the tenant is what makes them unreadable.
    public func removeVendorSecret(tenant: UUID, vendor: Vendor, metadata: EventMetadata) async throws -> Applied {
        let state = try await VendorSecretState.load(tenant: tenant, vendor: vendor, store: store)
        guard state.present else { throw CommandError.notFound("vendor secret") }
        let event = VendorSecretRemoved(tenantID: tenant, vendor: vendor, secretVersion: state.secretVersion)
        return try await append(
            event, to: .vendorSecret(tenant: tenant, vendor: vendor), tenant: tenant,
            expected: .exactly(state.version), metadata: metadata)
    }
}
