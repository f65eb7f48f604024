import Crypto
import Foundation

/// SHA-256 of a byte stream, computed on a thread of its own, so that hashing runs beside the caller's work
/// (the archive export hashes every byte it compresses: with libsodium's portable SHA-256 on the same thread
/// the hash alone was 40% of the export's CPU). swift-crypto's SHA-256 (BoringSSL's, with the CPU's SHA
/// extensions where there are any) is several times faster. Updates are hashed in the order given; at most
/// eight wait, so memory stays bounded and a caller faster than the hash waits for it.
final class BackgroundSHA256: @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [[UInt8]] = []
    private var closed = false
    private var result: [UInt8]?
    private static let maximumQueued = 8

    init() {
        let thread = Thread { self.run() }
        thread.name = "tally-sha256"
        thread.start()
    }

    /// Hands `bytes` to the hashing thread (waits while eight updates are queued).
    func update(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        condition.lock()
        defer { condition.unlock() }
        while queue.count >= Self.maximumQueued { condition.wait() }
        queue.append(bytes)
        condition.broadcast()
    }

    /// The digest of every update; the thread ends. Call once.
    func finish() -> [UInt8] {
        condition.lock()
        defer { condition.unlock() }
        closed = true
        condition.broadcast()
        while result == nil { condition.wait() }
        return result ?? []
    }

    /// Ends the thread without waiting for the digest (an abandoned writer).
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    private func run() {
        var hash = Crypto.SHA256()
        while true {
            condition.lock()
            while queue.isEmpty, !closed { condition.wait() }
            guard !queue.isEmpty else {
                condition.unlock()
                break
            }
            let next = queue.removeFirst()
            condition.broadcast()
            condition.unlock()
            next.withUnsafeBytes { hash.update(bufferPointer: $0) }
        }
        let digest = Array(hash.finalize())
        condition.lock()
        result = digest
        condition.broadcast()
        condition.unlock()
    }
}
