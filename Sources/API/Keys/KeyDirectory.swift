import Commands
import Events
import Foundation
import HTTPTypes
import Logging
import Projections
import Synchronization

/// Every tenant and API key, in memory, kept current from the log: verifying a key on the hot path does no
/// database round trip. It starts from the `tenants` and `api_keys` projections (or the log's start when
/// they are not built) and follows the feed's `tenant` and `apikey` streams, woken by the same
/// LISTEN/NOTIFY as every reader, so a revocation, a suspension or a plan change made by any instance takes
/// effect here within the notification latency (the poll interval at worst).
///
/// A well-formed key that is not in memory costs one indexed lookup of its keyed hash in `api_keys` (a key
/// issued a moment ago by another instance is there: issuing waits for that projection), never a feed read;
/// a key still unknown is remembered as unknown for a few seconds (a bounded set that other events do not
/// clear), so guessing costs no I/O either. An event the directory cannot decode parks its stream here: a key
/// of a parked key or tenant stream is answered 503, never from state that may be stale.
final class KeyDirectory: Sendable {
    /// A key as `api_keys` has it (the read model's row type).
    typealias Key = APIKeyRow

    struct Tenant: Sendable {
        var id: UUID
        var name: String
        var slug: String
        var plan: String
        var status: String
    }

    private struct State {
        var keys: [String: Key] = [:]
        var hashByKeyID: [UUID: String] = [:]
        var tenants: [UUID: Tenant] = [:]
        var position = FeedPosition.start
        var unknown: [String: ContinuousClock.Instant] = [:]
        var loaded = false
        /// Streams with an event the directory could not decode, and why.
        var parked: [String: String] = [:]
    }

    /// How many unknown keys are remembered at most.
    static let unknownCapacity = 10_000
    /// How long an unknown key is remembered as unknown.
    let unknownFor: Duration

    enum Verdict: Sendable, Equatable {
        case valid(tenantID: UUID, keyID: UUID, plan: String)
        case rejected(String)
        /// The key's or its tenant's stream is parked: its state cannot be known.
        case parked
    }

    let store: EventStore
    private let pepper: [UInt8]
    private let state = Mutex(State())
    private let logger: Logger
    /// Called with true when a key was answered from memory, false when it needed the log.
    private let observe: @Sendable (Bool) -> Void
    static let filter = FeedFilter(categories: ["tenant", "apikey"])

    init(
        store: EventStore, pepper: [UInt8], logger: Logger, unknownFor: Duration = .seconds(5),
        observe: @escaping @Sendable (Bool) -> Void = { _ in }
    ) {
        self.unknownFor = unknownFor
        self.observe = observe
        self.store = store
        self.pepper = pepper
        self.logger = logger
    }

    /// Loads the projections' rows and catches up with the log. Call before serving.
    func load() async throws {
        let snapshot = try await store.pool.withConnection { connection in
            try await connection.withTransaction(
                begin: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
            ) {
                let tables = ["tenants", "api_keys"]
                let checkpoints = try await ProjectionCheckpoints.positions(of: tables, on: connection)
                guard try await ProjectionCheckpoints.tablesExist(tables, on: connection), checkpoints.count == 2,
                    let position = checkpoints.values.min()
                else {
                    var empty = State()
                    empty.loaded = true
                    return empty
                }
                var snapshot = State()
                snapshot.loaded = true
                snapshot.position = position
                for row in try await TenantsProjection.allTenants(on: connection) {
                    snapshot.tenants[row.id] = Tenant(
                        id: row.id, name: row.name, slug: row.slug, plan: row.plan, status: row.status)
                }
                for key in try await APIKeysProjection.allKeys(on: connection) {
                    snapshot.keys[key.hash] = key
                    snapshot.hashByKeyID[key.id] = key.hash
                }
                return snapshot
            }
        }
        state.withLock { $0 = snapshot }
        try await refresh()
    }

    /// Follows the log until cancelled; errors (the database away) are retried.
    func follow(pollInterval: Duration) async {
        var wait = EventStore.FeedWait()
        while !Task.isCancelled {
            do {
                if !isLoaded { try await load() }
                let position = state.withLock { $0.position }
                let page = try await store.nextFeedPage(
                    after: position, limit: 1000, filter: Self.filter, pollInterval: pollInterval, wait: &wait)
                apply(page)
            } catch {
                if Task.isCancelled { return }
                logger.warning("key directory cannot read the log; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Reads and applies everything the log has after the directory's position.
    func refresh() async throws {
        while true {
            let position = state.withLock { $0.position }
            let page = try await store.readFeed(after: position, limit: 1000, filter: Self.filter)
            apply(page)
            if page.isComplete { return }
        }
    }

    /// Applies a page past the directory's position (a concurrent reader may have applied some already) and
    /// moves the position to where the page's read stopped. An event that does not decode parks its stream.
    private func apply(_ page: FeedPage) {
        let decoded = page.events.map { recorded in
            (recorded, Result { try store.catalog.decode(recorded) })
        }
        let newlyParked = state.withLock { state -> [(String, String)] in
            var newlyParked: [(String, String)] = []
            for (recorded, result) in decoded where state.position < recorded.feedPosition {
                let stream = recorded.stream.rawValue
                if state.parked[stream] == nil {
                    switch result {
                    case .success(let event):
                        Self.apply(event, at: recorded.recordedAt, to: &state)
                    case .failure(let error):
                        state.parked[stream] = "\(error)"
                        newlyParked.append((stream, "\(error)"))
                    }
                }
                state.position = recorded.feedPosition
            }
            if state.position < page.next { state.position = page.next }
            return newlyParked
        }
        for (stream, error) in newlyParked {
            logger.error(
                "key directory parked a stream it cannot decode",
                metadata: ["stream": "\(stream)", "error": "\(error)"])
        }
    }

    /// Streams the directory parked, with the error.
    var parkedStreams: [String: String] { state.withLock { $0.parked } }

    /// Applies events this instance just appended, at once: the feed may not show them yet (an older
    /// transaction anywhere in the cluster holds its horizon back), and a revocation must not wait for that.
    /// The position does not move, so the feed delivers them again later; applying an event twice leaves the
    /// same state, and the feed's order settles anything in between.
    func applyOwn(_ events: [any DomainEvent]) {
        let now = Date()
        state.withLock { state in
            for event in events { Self.apply(event, at: now, to: &state) }
        }
    }

    private static func apply(_ event: any DomainEvent, at recordedAt: Date, to state: inout State) {
        switch event {
        case let event as TenantCreated:
            state.tenants[event.tenantID] = Tenant(
                id: event.tenantID, name: event.name, slug: event.slug, plan: event.plan, status: "active")
        case let event as PlanChanged:
            state.tenants[event.tenantID]?.plan = event.toPlan
        case let event as TenantSuspended:
            state.tenants[event.tenantID]?.status = "suspended"
        case let event as TenantReinstated:
            state.tenants[event.tenantID]?.status = "active"
        case let event as TenantErased:
            state.tenants[event.tenantID]?.status = "erased"
            state.tenants[event.tenantID]?.name = ""
        case let event as KeyIssued:
            state.unknown[event.keyHash] = nil
            if let old = state.hashByKeyID[event.keyID], old != event.keyHash { state.keys[old] = nil }
            state.keys[event.keyHash] = Key(
                id: event.keyID, tenantID: event.tenantID, name: event.name, displayPrefix: event.displayPrefix,
                hash: event.keyHash,
                status: "active", expiresAt: event.expiresAt, graceUntil: nil, replacedBy: nil, createdAt: recordedAt)
            state.hashByKeyID[event.keyID] = event.keyHash
        case let event as KeyRevoked:
            if let hash = state.hashByKeyID[event.keyID] { state.keys[hash]?.status = "revoked" }
        case let event as KeyRotated:
            if let hash = state.hashByKeyID[event.keyID] {
                state.keys[hash]?.status = "rotated"
                state.keys[hash]?.graceUntil = event.graceUntil
                state.keys[hash]?.replacedBy = event.replacementKeyID
            }
        default:
            break
        }
    }

    var isLoaded: Bool { state.withLock { $0.loaded } }

    /// Verifies a bearer key. A malformed key is rejected before any I/O.
    func verify(_ plaintext: Substring, now: Date = Date()) async throws -> Verdict {
        guard APIKeyFormat.isWellFormed(plaintext) else { return .rejected("The API key is malformed.") }
        if !isLoaded {
            do {
                try await load()
            } catch {
                throw Problem(
                    .serviceUnavailable, "unavailable", title: "Service unavailable",
                    detail: "API keys cannot be verified while the database is unreachable.",
                    headers: [.retryAfter: "1"])
            }
        }
        let hash = APIKeyFormat.keyedHash(plaintext, pepper: pepper)
        if let verdict = lookup(hash, now: now) {
            observe(true)
            return verdict
        }
        observe(false)
        let recentlyUnknown = state.withLock { state in
            guard let until = state.unknown[hash] else { return false }
            return ContinuousClock.now < until
        }
        if recentlyUnknown { return .rejected("The API key is not valid.") }
        do {
            // Not in memory: an indexed lookup, not a feed read. Found means the directory is behind the
            // projection (another instance issued it a moment ago): catch up, which reads only what is new.
            if try await isIssued(hash) {
                try await refresh()
                if let verdict = lookup(hash, now: now) { return verdict }
            }
        } catch {
            logger.warning("key lookup could not read api_keys", metadata: ["error": "\(error)"])
            throw Problem(
                .serviceUnavailable, "unavailable", title: "Service unavailable",
                detail: "API keys cannot be verified while the database is unreachable.", headers: [.retryAfter: "1"])
        }
        state.withLock { state in
            let now = ContinuousClock.now
            if state.unknown.count >= Self.unknownCapacity {
                state.unknown = state.unknown.filter { $0.value > now }
                // Still full of live entries: forget the oldest half.
                if state.unknown.count >= Self.unknownCapacity {
                    let keep = state.unknown.sorted { $0.value > $1.value }.prefix(Self.unknownCapacity / 2)
                    state.unknown = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
                }
            }
            state.unknown[hash] = now + unknownFor
        }
        return .rejected("The API key is not valid.")
    }

    /// Whether `api_keys` has a key with this keyed hash (one index lookup).
    private func isIssued(_ hash: String) async throws -> Bool {
        try await store.pool.withConnection { connection in
            try await connection.withTransaction(begin: "BEGIN READ ONLY") {
                try await APIKeysProjection.isIssued(hash: hash, on: connection)
            }
        }
    }

    private func lookup(_ hash: String, now: Date) -> Verdict? {
        state.withLock { state -> Verdict? in
            guard let key = state.keys[hash] else { return nil }
            // The dictionary found it by hash; compare the stored hash in constant time all the same.
            guard Sodium.constantTimeEquals(Array(key.hash.utf8), Array(hash.utf8)) else { return nil }
            if state.parked[StreamName.apiKey(key.id).rawValue] != nil
                || state.parked[StreamName.tenant(key.tenantID).rawValue] != nil
            {
                return .parked
            }
            guard let tenant = state.tenants[key.tenantID] else { return .rejected("The API key is not valid.") }
            switch key.status {
            case "revoked": return .rejected("The API key has been revoked.")
            case "rotated" where (key.graceUntil ?? .distantPast) <= now:
                return .rejected("The API key was rotated and its grace period is over.")
            default: break
            }
            if let expiresAt = key.expiresAt, expiresAt <= now { return .rejected("The API key has expired.") }
            guard tenant.status == "active" else { return .rejected("The tenant is \(tenant.status).") }
            return .valid(tenantID: tenant.id, keyID: key.id, plan: tenant.plan)
        }
    }

    func tenant(_ id: UUID) -> Tenant? { state.withLock { $0.tenants[id] } }

    /// The verdict on a key that was verified before, by its id, from memory only: what an open stream asks
    /// before each frame and every quarter second, so that it ends once its key or tenant is no longer valid.
    func standing(keyID: UUID, now: Date = Date()) -> Verdict {
        guard let hash = state.withLock({ $0.hashByKeyID[keyID] }), let verdict = lookup(hash, now: now) else {
            return .rejected("The API key is not valid.")
        }
        return verdict
    }
}
