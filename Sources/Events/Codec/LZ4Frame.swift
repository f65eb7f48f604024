internal import CTallyLZ4
import Foundation

/// Writes one LZ4 frame (the interoperable `.lz4` format: `lz4 -d` reads it) to a file, with a checksum of
/// every block and of the whole content. Memory stays at one input chunk and its compressed bound, whatever
/// is written.
final class LZ4FrameWriter {
    private var context: OpaquePointer?
    private var preferences = LZ4F_preferences_t()
    private let file: FileHandle
    private let path: String
    private let partialPath: String
    private var input: [UInt8] = []
    private var output: [UInt8]
    private static let chunk = 1 << 20
    /// Compressed bytes written so far.
    private(set) var bytesWritten: Int64 = 0

    /// Writes the frame header into `path`.partial (readable by the owner only); `finish()` renames it to
    /// `path`, replacing a file there, so a failed or interrupted write never leaves a file that looks whole.
    init(path: String) throws {
        self.path = path
        partialPath = path + ".partial"
        guard
            FileManager.default.createFile(atPath: partialPath, contents: nil, attributes: [.posixPermissions: 0o600]),
            let file = FileHandle(forWritingAtPath: partialPath)
        else {
            throw EventsError(.invalidArgument, "cannot create \(partialPath)")
        }
        self.file = file
        preferences.frameInfo.blockSizeID = LZ4F_max256KB
        preferences.frameInfo.blockMode = LZ4F_blockLinked
        preferences.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled
        preferences.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled
        output = []
        try Self.check(LZ4F_createCompressionContext(&context, UInt32(LZ4F_VERSION)), "creating a compression context")
        output = [UInt8](repeating: 0, count: max(LZ4F_compressBound(Self.chunk, &preferences), 64))
        let header = output.withUnsafeMutableBytes {
            LZ4F_compressBegin(context, $0.baseAddress, $0.count, &preferences)
        }
        try Self.check(header, "writing the frame header")
        try emit(Int(header))
        input.reserveCapacity(Self.chunk)
    }

    deinit {
        LZ4F_freeCompressionContext(context)
        if !finished {
            try? file.close()
            try? FileManager.default.removeItem(atPath: partialPath)
        }
    }

    func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let take = min(Self.chunk - input.count, bytes.count - offset)
            input += bytes[offset..<(offset + take)]
            offset += take
            if input.count == Self.chunk { try compressInput() }
        }
    }

    /// Compresses what is buffered, writes the frame's end mark and checksum, and flushes the file to disk.
    func finish() throws {
        try compressInput()
        let end = output.withUnsafeMutableBytes { LZ4F_compressEnd(context, $0.baseAddress, $0.count, nil) }
        try Self.check(end, "ending the frame")
        try emit(Int(end))
        try file.synchronize()
        try file.close()
        guard rename(partialPath, path) == 0 else {
            throw EventsError(.invalidArgument, "cannot rename \(partialPath) to \(path)")
        }
        finished = true
    }

    private var finished = false

    private func compressInput() throws {
        guard !input.isEmpty else { return }
        let written = output.withUnsafeMutableBytes { out in
            input.withUnsafeBytes {
                LZ4F_compressUpdate(context, out.baseAddress, out.count, $0.baseAddress, $0.count, nil)
            }
        }
        try Self.check(written, "compressing")
        input.removeAll(keepingCapacity: true)
        try emit(Int(written))
    }

    private func emit(_ count: Int) throws {
        guard count > 0 else { return }
        try file.write(contentsOf: output[0..<count])
        bytesWritten += Int64(count)
    }

    fileprivate static func check(_ code: Int, _ what: String) throws {
        if LZ4F_isError(code) != 0 {
            throw EventsError(.decoding, "LZ4 frame: \(what) failed: \(String(cString: LZ4F_getErrorName(code)))")
        }
    }
}

/// Reads the content of one LZ4 frame from a file, checking every block and the content checksum. A
/// truncated file, a damaged byte, or bytes after the frame are errors naming the offset in the file.
final class LZ4FrameReader {
    private var context: OpaquePointer?
    private let file: FileHandle
    private var compressed: [UInt8] = []
    private var compressedOffset = 0
    /// Bytes of the file consumed by the decompressor so far.
    private(set) var fileOffset: Int64 = 0
    /// Decompressed content: `buffer[decompressedOffset..<decompressedCount]` is not read yet.
    private var buffer = [UInt8](repeating: 0, count: 256 << 10)
    private var decompressedCount = 0
    private var decompressedOffset = 0
    private var frameEnded = false
    /// Read from the file at a time: a damaged byte is placed within one such stretch.
    private static let chunk = 64 << 10
    let fileSize: Int64

    init(path: String) throws {
        guard let file = FileHandle(forReadingAtPath: path) else {
            throw EventsError(.invalidArgument, "cannot open \(path)")
        }
        self.file = file
        fileSize = Int64(
            (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)??.int64Value ?? 0)
        try LZ4FrameWriter.check(
            LZ4F_createDecompressionContext(&context, UInt32(LZ4F_VERSION)), "creating a decompression context")
    }

    deinit {
        LZ4F_freeDecompressionContext(context)
        try? file.close()
    }

    /// Exactly `count` bytes of content, or nil at the end of the content (and an error when the content ends
    /// inside them).
    func read(_ count: Int) throws -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            if decompressedOffset == decompressedCount {
                guard try refill() else {
                    if out.isEmpty { return nil }
                    throw EventsError(
                        .decoding, "the archive's content ends inside a record (at byte \(fileOffset) of the file)")
                }
                continue
            }
            let take = min(count - out.count, decompressedCount - decompressedOffset)
            out += buffer[decompressedOffset..<(decompressedOffset + take)]
            decompressedOffset += take
        }
        return out
    }

    /// After the content's last record: the frame must be complete (its checksum checked) and the file end.
    func expectEnd() throws {
        let more = try decompressedOffset < decompressedCount || refill()
        if more {
            throw EventsError(
                .decoding, "the archive has content after its trailer (at byte \(fileOffset) of the file)")
        }
    }

    /// Decompresses more content; false when the frame has ended (and nothing follows it in the file).
    private func refill() throws -> Bool {
        decompressedCount = 0
        decompressedOffset = 0
        while decompressedCount == 0 {
            if frameEnded {
                let trailing = try compressedOffset < compressed.count || !(file.read(upToCount: 1) ?? Data()).isEmpty
                if trailing {
                    throw EventsError(
                        .decoding, "the archive has bytes after its LZ4 frame (at byte \(fileOffset) of the file)")
                }
                return false
            }
            if compressedOffset == compressed.count {
                let data = try file.read(upToCount: Self.chunk) ?? Data()
                if data.isEmpty {
                    throw EventsError(
                        .decoding,
                        "the archive is truncated: the LZ4 frame ends at byte \(fileOffset) of the file before its end mark"
                    )
                }
                compressed = Array(data)
                compressedOffset = 0
            }
            var produced = buffer.count
            var consumed = compressed.count - compressedOffset
            let hint = buffer.withUnsafeMutableBytes { out in
                compressed.withUnsafeBytes { source in
                    LZ4F_decompress(
                        context, out.baseAddress, &produced, source.baseAddress! + compressedOffset, &consumed, nil)
                }
            }
            if LZ4F_isError(hint) != 0 {
                let end = fileOffset + Int64(compressed.count - compressedOffset)
                throw EventsError(
                    .decoding,
                    "the archive is damaged in bytes \(fileOffset)-\(end) of the file: \(String(cString: LZ4F_getErrorName(hint)))"
                )
            }
            compressedOffset += consumed
            fileOffset += Int64(consumed)
            if hint == 0 { frameEnded = true }
            decompressedCount = produced
        }
        return true
    }
}
