/// How an event's payload bytes are stored. The tag is stored beside the bytes, so a reader never guesses.
public struct PayloadCodec: Hashable, Sendable, CustomStringConvertible {
    /// The number stored in `events.codec`.
    public let tag: Int16

    /// UTF-8 JSON as it is.
    public static let json = PayloadCodec(tag: 1)
    /// UTF-8 JSON compressed with LZ4 (block format, original length as 4 little-endian bytes in front).
    public static let lz4JSON = PayloadCodec(tag: 2)

    public var description: String {
        switch self {
        case .json: "json"
        case .lz4JSON: "lz4+json"
        default: "unknown(\(tag))"
        }
    }

    /// Payloads of at least this many bytes are compressed (when that makes them smaller). Small events,
    /// the common case, skip the compressor entirely.
    public static let compressionThreshold = 1024

    /// Chooses the codec for a JSON payload and encodes it.
    static func encode(json: [UInt8], threshold: Int = compressionThreshold) -> (PayloadCodec, [UInt8]) {
        guard json.count >= threshold else { return (.json, json) }
        let compressed = LZ4.compress(json)
        return compressed.count < json.count ? (.lz4JSON, compressed) : (.json, json)
    }

    /// Returns the JSON bytes of a stored payload, or a clear error naming the event's position.
    static func decode(tag: Int16, bytes: [UInt8], position: Int64) throws -> [UInt8] {
        switch PayloadCodec(tag: tag) {
        case .json:
            return bytes
        case .lz4JSON:
            guard let json = LZ4.decompress(bytes) else {
                throw EventsError(
                    .corruptPayload, "the LZ4 payload of the event at position \(position) is corrupt",
                    position: position)
            }
            return json
        default:
            throw EventsError(
                .unknownCodec,
                "the event at position \(position) uses payload codec \(tag), which this build does not know",
                position: position)
        }
    }
}
