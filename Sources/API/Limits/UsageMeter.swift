import Events
import Foundation
import Logging
import Synchronization

/// Counts the API calls this instance admitted, per key, and appends them as `UsageRecorded` events (one
/// per key and flush, on the tenant's usage stream) at least once a second and at shutdown. A failed flush
/// keeps the counts and retries the same events (same ids, so an append that did land is not counted twice).
/// A hard crash loses what was counted since the last flush: at most one second of calls (docs/api.md).
final class UsageMeter: Sendable {
    private struct Pending {
        var tenantID: UUID
        var count: Int
        var windowStart: Date
        var windowEnd: Date
    }

    private struct State {
        var counts: [UUID: Pending] = [:]
        /// A batch whose append failed; retried with the same event ids before anything newer.
        var unsent: [StreamAppend] = []
    }

    private let store: EventStore
    private let state = Mutex(State())
    private let instanceID: String
    private let logger: Logger

    init(store: EventStore, instanceID: String, logger: Logger) {
        self.store = store
        self.instanceID = instanceID
        self.logger = logger
    }

    func count(key: UUID, tenant: UUID, at now: Date = Date()) {
        state.withLock { state in
            if var pending = state.counts[key] {
                pending.count += 1
                pending.windowEnd = max(pending.windowEnd, now)
                state.counts[key] = pending
            } else {
                state.counts[key] = Pending(tenantID: tenant, count: 1, windowStart: now, windowEnd: now)
            }
        }
    }

    /// Appends what was counted; returns the number of events appended.
    @discardableResult
    func flush() async throws -> Int {
        let batch = try state.withLock { state -> [StreamAppend] in
            if state.unsent.isEmpty {
                state.unsent = try Self.appends(for: state.counts, instanceID: instanceID)
                state.counts = [:]
            }
            return state.unsent
        }
        guard !batch.isEmpty else { return 0 }
        try await store.append(batch)
        state.withLock { $0.unsent = [] }
        return batch.reduce(0) { total, append in total + append.events.count }
    }

    /// Flushes every second until cancelled, then once more.
    func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            do {
                try await flush()
            } catch {
                logger.warning(
                    "usage flush failed; the counts are kept for the next one", metadata: ["error": "\(error)"])
            }
        }
    }

    private static func appends(for counts: [UUID: Pending], instanceID: String) throws -> [StreamAppend] {
        var byTenant: [UUID: [EventData]] = [:]
        for (key, pending) in counts.sorted(by: { $0.key.uuidString < $1.key.uuidString }) {
            let event = UsageRecorded(
                tenantID: pending.tenantID, keyID: key, windowStart: pending.windowStart, windowEnd: pending.windowEnd,
                apiCalls: pending.count, instanceID: instanceID)
            byTenant[pending.tenantID, default: []].append(
                try EventCatalog.tally.encode(event, metadata: EventMetadata(actor: "meter:\(instanceID)")))
        }
        return byTenant.map { tenant, events in
            StreamAppend(stream: .usage(tenant: tenant), tenantID: tenant, expected: .any, events: events)
        }
    }
}
