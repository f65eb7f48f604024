internal import CTallyLZ4

/// LZ4 block compression with the original length stored in front (the block format does not keep it).
enum LZ4 {
    /// Payloads above this never decompress: a corrupt length prefix must not make a reader allocate gigabytes.
    static let maximumDecompressedSize = 64 * 1024 * 1024

    static func compress(_ input: [UInt8]) -> [UInt8] {
        let bound = Int(LZ4_compressBound(Int32(input.count)))
        var output = [UInt8](repeating: 0, count: 4 + bound)
        let length = UInt32(input.count)
        output[0] = UInt8(truncatingIfNeeded: length)
        output[1] = UInt8(truncatingIfNeeded: length >> 8)
        output[2] = UInt8(truncatingIfNeeded: length >> 16)
        output[3] = UInt8(truncatingIfNeeded: length >> 24)
        let written = input.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { destination in
                source.withMemoryRebound(to: CChar.self) { source in
                    UnsafeMutableRawPointer(destination.baseAddress! + 4).withMemoryRebound(
                        to: CChar.self, capacity: bound
                    ) {
                        LZ4_compress_default(source.baseAddress, $0, Int32(input.count), Int32(bound))
                    }
                }
            }
        }
        output.removeLast(bound - Int(written))
        return output
    }

    /// Returns nil when the bytes are not a valid LZ4 block of the declared length.
    static func decompress(_ input: [UInt8]) -> [UInt8]? {
        guard input.count >= 4 else { return nil }
        let length = Int(input[0]) | Int(input[1]) << 8 | Int(input[2]) << 16 | Int(input[3]) << 24
        guard length <= maximumDecompressedSize else { return nil }
        if length == 0 { return input.count == 4 ? [] : nil }
        var output = [UInt8](repeating: 0, count: length)
        let produced = input.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { destination in
                UnsafeRawPointer(source.baseAddress! + 4).withMemoryRebound(to: CChar.self, capacity: input.count - 4) {
                    source in
                    UnsafeMutableRawPointer(destination.baseAddress!).withMemoryRebound(
                        to: CChar.self, capacity: length
                    ) {
                        LZ4_decompress_safe(source, $0, Int32(input.count - 4), Int32(length))
                    }
                }
            }
        }
        return produced == length ? output : nil
    }
}
