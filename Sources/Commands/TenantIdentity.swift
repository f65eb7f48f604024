import Events
public import Foundation

extension UUID {
    /// A tenant's id, derived from its slug: a slug can be taken once, and a Stripe subscription can name its
    /// tenant by slug without a lookup.
    public static func tenant(slug: String) -> UUID { derived(from: "tally.tenant.slug:" + slug) }

    /// A name-based UUID (version 5 layout over SHA-256): the same name always gives the same id.
    public static func derived(from name: String) -> UUID {
        var bytes = Array(Sodium.sha256(Array(name.utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0f) | 0x50
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        return UUID(
            uuid: (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8], bytes[9],
                bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
            ))
    }
}

/// Tenant slugs: 3 to 40 of a-z, 0-9 and `-`, starting with a letter.
public enum TenantSlug {
    /// Whether `slug` can name a tenant.
    public static func isValid(_ slug: String) -> Bool {
        let bytes = Array(slug.utf8)
        guard (3...40).contains(bytes.count), (0x61...0x7a).contains(bytes[0]) else { return false }
        return bytes.allSatisfy { (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2d }
    }
}
