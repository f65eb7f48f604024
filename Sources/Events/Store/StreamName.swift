public import Foundation

/// A stream's name: `category-id`, e.g. `run-5b0c...`. The category (before the first `-`) groups streams of
/// one kind for readers that filter the feed.
public struct StreamName: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The full name as stored in `events.stream_id`.
    public let rawValue: String

    /// Validates `rawValue`: a lower-case category, `-`, and an id of letters, digits and `-_.:`; at most 200
    /// characters.
    public init(_ rawValue: String) throws {
        guard Self.isValid(rawValue) else {
            throw EventsError(
                .invalidArgument,
                "a stream name is `category-id`: lower-case letters or digits, a dash, then letters, digits or -_.: (at most 200 characters)"
            )
        }
        self.rawValue = rawValue
    }

    /// For names already known to be valid (built by the helpers below, or checked with `isValid`).
    init(unchecked rawValue: String) {
        self.rawValue = rawValue
    }

    /// The part before the first `-`.
    public var category: String {
        String(rawValue.prefix { $0 != "-" })
    }

    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        try self.init(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    static func isValid(_ value: String) -> Bool {
        let bytes = Array(value.utf8)
        guard bytes.count <= 200, let dash = bytes.firstIndex(of: UInt8(ascii: "-")), dash > 0, dash < bytes.count - 1
        else { return false }
        let categoryOK = bytes[..<dash].allSatisfy { (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) }
        let idOK = bytes[(dash + 1)...].allSatisfy { byte in
            (0x61...0x7a).contains(byte) || (0x41...0x5a).contains(byte) || (0x30...0x39).contains(byte)
                || [UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":")].contains(byte)
        }
        return categoryOK && idOK
    }

    // The product's streams. Ids are lower-cased UUIDs so that names compare as text.
    public static func tenant(_ id: UUID) -> StreamName { StreamName(unchecked: "tenant-\(id.lowercased)") }
    public static func apiKey(_ id: UUID) -> StreamName { StreamName(unchecked: "apikey-\(id.lowercased)") }
    public static func vendorSecret(tenant: UUID, vendor: Vendor) -> StreamName {
        StreamName(unchecked: "vendorsecret-\(tenant.lowercased):\(vendor.rawValue)")
    }
    public static func workflow(_ id: UUID) -> StreamName { StreamName(unchecked: "workflow-\(id.lowercased)") }
    public static func run(_ id: UUID) -> StreamName { StreamName(unchecked: "run-\(id.lowercased)") }
    public static func usage(tenant: UUID) -> StreamName { StreamName(unchecked: "usage-\(tenant.lowercased)") }
    /// A vendor's default flow limits (`tenant` nil) or one tenant's override.
    public static func flowLimits(vendor: Vendor, tenant: UUID?) -> StreamName {
        StreamName(unchecked: "flowlimits-\(vendor.rawValue)" + (tenant.map { ":\($0.lowercased)" } ?? ""))
    }
}

extension UUID {
    /// The canonical lower-case text form PostgreSQL prints.
    public var lowercased: String { uuidString.lowercased() }
}
