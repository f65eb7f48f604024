import Events
import Foundation
import Synchronization

/// The frames of one Server-Sent Event stream between its producers (the feed, the guard) and the writer.
/// Bounded: a producer waits while it is full, so a client that reads slowly slows the feed reader down
/// instead of losing frames. Ending it (with a last frame) wakes everyone; later sends are refused.
final class FrameQueue: Sendable {
    private struct State {
        var frames: [String] = []
        var head = 0
        var ended = false
        var consumer: CheckedContinuation<String?, Never>?
        var producers: [CheckedContinuation<Bool, Never>] = []
        var count: Int { frames.count - head }
    }

    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int = 64) {
        self.capacity = capacity
    }

    var isEnded: Bool { state.withLock { $0.ended } }

    /// Queues `frame`, waiting while the queue is full; false when the stream has ended (nothing was queued).
    func send(_ frame: String) async -> Bool {
        while true {
            enum Step {
                case done(Bool)
                case deliver(CheckedContinuation<String?, Never>)
                case wait
            }
            let step = state.withLock { state -> Step in
                if state.ended { return .done(false) }
                if let consumer = state.consumer {
                    state.consumer = nil
                    return .deliver(consumer)
                }
                guard state.count < capacity else { return .wait }
                state.frames.append(frame)
                return .done(true)
            }
            switch step {
            case .done(let queued): return queued
            case .deliver(let consumer):
                consumer.resume(returning: frame)
                return true
            case .wait:
                let retry = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                    let resumeNow = state.withLock { state -> Bool in
                        if state.ended || state.count < capacity { return true }
                        state.producers.append(continuation)
                        return false
                    }
                    if resumeNow { continuation.resume(returning: true) }
                }
                if !retry { return false }
            }
        }
    }

    /// Queues `frame` only if that needs no wait (a keepalive comment is worth nothing behind data).
    func offer(_ frame: String) {
        let consumer = state.withLock { state -> CheckedContinuation<String?, Never>? in
            guard !state.ended, state.count == 0 else { return nil }
            if let consumer = state.consumer {
                state.consumer = nil
                return consumer
            }
            state.frames.append(frame)
            return nil
        }
        consumer?.resume(returning: frame)
    }

    /// The next frame, waiting for one; nil once the stream has ended and every queued frame was taken.
    func next() async -> String? {
        await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
            let (frame, wake) = state.withLock { state -> (String??, CheckedContinuation<Bool, Never>?) in
                if state.count > 0 {
                    let frame = state.frames[state.head]
                    state.head += 1
                    if state.head > 256 {
                        state.frames.removeFirst(state.head)
                        state.head = 0
                    }
                    return (.some(frame), state.producers.isEmpty ? nil : state.producers.removeFirst())
                }
                if state.ended { return (.some(nil), nil) }
                state.consumer = continuation
                return (nil, nil)
            }
            wake?.resume(returning: true)
            if let frame { continuation.resume(returning: frame) }
        }
    }

    /// Ends the stream: `last` (if any) is the final frame, after what is queued, or instead of it when
    /// `discardQueued`. Idempotent: only the first end counts.
    func end(_ last: String? = nil, discardQueued: Bool = false) {
        let (consumer, producers, frame) = state.withLock {
            state -> (CheckedContinuation<String?, Never>?, [CheckedContinuation<Bool, Never>], String?) in
            guard !state.ended else { return (nil, [], nil) }
            state.ended = true
            if discardQueued {
                state.frames = []
                state.head = 0
            }
            let producers = state.producers
            state.producers = []
            if let consumer = state.consumer {
                state.consumer = nil
                return (consumer, producers, last)
            }
            if let last { state.frames.append(last) }
            return (nil, producers, nil)
        }
        for producer in producers { producer.resume(returning: false) }
        consumer?.resume(returning: frame)
    }
}

/// How many streams each key and tenant holds open on this instance, against the plan's limits.
final class StreamSlots: Sendable {
    private struct Counts {
        var keys: [UUID: Int] = [:]
        var tenants: [UUID: Int] = [:]
    }

    private let counts = Mutex(Counts())

    /// One open stream's place; `release()` (at the latest on deinit) gives it back once.
    final class Slot: Sendable {
        private let slots: StreamSlots
        let key: UUID
        let tenant: UUID
        private let released = Atomic(false)

        fileprivate init(_ slots: StreamSlots, key: UUID, tenant: UUID) {
            self.slots = slots
            self.key = key
            self.tenant = tenant
        }

        func release() {
            guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
            slots.counts.withLock { counts in
                counts.keys[key, default: 1] -= 1
                if counts.keys[key] == 0 { counts.keys[key] = nil }
                counts.tenants[tenant, default: 1] -= 1
                if counts.tenants[tenant] == 0 { counts.tenants[tenant] = nil }
            }
        }

        deinit { release() }
    }

    enum Refusal: Error {
        case key(open: Int)
        case tenant(open: Int)
    }

    func acquire(key: UUID, tenant: UUID, keyLimit: Int, tenantLimit: Int) -> Result<Slot, Refusal> {
        let refusal = counts.withLock { counts -> Refusal? in
            let byKey = counts.keys[key, default: 0]
            let byTenant = counts.tenants[tenant, default: 0]
            if byKey >= keyLimit { return .key(open: byKey) }
            if byTenant >= tenantLimit { return .tenant(open: byTenant) }
            counts.keys[key] = byKey + 1
            counts.tenants[tenant] = byTenant + 1
            return nil
        }
        if let refusal { return .failure(refusal) }
        return .success(Slot(self, key: key, tenant: tenant))
    }
}

/// Event ids of the streams: the feed position sealed (XChaCha20-Poly1305) under a key derived from the key
/// pepper, which every instance shares, with the tenant as associated data. A client can hand one back as
/// `Last-Event-ID` to any instance, but cannot read the log's volume from it, forge one, or use another
/// tenant's. The nonce is a keyed hash of the tenant and the position, so an event has one id however often
/// it is streamed (a client may deduplicate by id), and no two positions share a nonce.
struct StreamEventIDs: Sendable {
    private let key: [UInt8]
    private let nonceKey: [UInt8]

    init(pepper: [UInt8]) {
        key = Sodium.hmacSHA256(key: pepper, message: Array("tally.stream-event-id.v1".utf8))
        nonceKey = Sodium.hmacSHA256(key: pepper, message: Array("tally.stream-event-id.nonce.v1".utf8))
    }

    func id(for position: FeedPosition, tenant: UUID) -> String {
        let plain = BigEndian.bytes(position.transactionID) + BigEndian.bytes(position.globalPosition)
        let tenantBytes = PostgresType.uuidBytes(tenant)
        let nonce = Array(Sodium.hmacSHA256(key: nonceKey, message: tenantBytes + plain).prefix(24))
        let sealed = plain.withUnsafeBytes { Sodium.seal($0, key: key, associatedData: tenantBytes, nonce: nonce) }
        return Base64URL.encode(sealed)
    }

    func position(from id: String, tenant: UUID) -> FeedPosition? {
        guard id.utf8.count <= 128, let sealed = Base64URL.decode(id), sealed.count == 16 + Sodium.aeadOverheadBytes
        else { return nil }
        var plain = [UInt8](repeating: 0, count: 16)
        let opened = plain.withUnsafeMutableBytes {
            Sodium.open(sealed, key: key, associatedData: PostgresType.uuidBytes(tenant), into: $0)
        }
        guard opened else { return nil }
        guard let transaction = BigEndian.read(UInt64.self, plain[0..<8]),
            let globalPosition = BigEndian.read(Int64.self, plain[8..<16]), globalPosition >= 0
        else { return nil }
        return FeedPosition(transactionID: transaction, globalPosition: globalPosition)
    }
}

/// base64url without padding (RFC 4648 §5).
enum Base64URL {
    static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(
            of: "/", with: "_"
        )
        .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: String) -> [UInt8]? {
        guard text.utf8.allSatisfy({ $0.isBase64URL }) else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.utf8.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64).map { Array($0) }
    }
}

extension UInt8 {
    fileprivate var isBase64URL: Bool {
        (0x41...0x5a).contains(self) || (0x61...0x7a).contains(self) || (0x30...0x39).contains(self) || self == 0x2d
            || self == 0x5f
    }
}
