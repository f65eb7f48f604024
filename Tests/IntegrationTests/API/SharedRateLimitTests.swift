import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@testable import API
@testable import Events

/// Requests-per-second limits shared by every instance through `rate_budgets`: several limiters on one
/// database stand for several `tally serve` processes; time is given, so windows are exact.
@Suite("API: rate limits shared by every instance", .timeLimit(.minutes(5)))
struct SharedRateLimitTests {
    static let logger = Logger(label: "test.rate") { _ in SwiftLogNoOpLogHandler() }

    /// A second far from now, so that the sweep of old windows cannot touch it.
    static func at(_ second: Int64, _ fraction: Double = 0.5) -> Date {
        Date(timeIntervalSince1970: Double(second) + fraction)
    }

    /// Admissions per subject, from many tasks.
    final class Tally: Sendable {
        let counts = Mutex<[UUID: Int]>([:])
        func add(_ subject: UUID) { counts.withLock { $0[subject, default: 0] += 1 } }
    }

    /// Counts the round trips a limiter makes.
    final class Claims: Sendable {
        let count = Atomic<Int>(0)
        func claim(_ store: EventStore) -> RateLimiter.Claim {
            { subjects, second, wants, limits in
                self.count.add(1, ordering: .relaxed)
                return try await RateLimiter.claim(store, subjects, second, wants, limits)
            }
        }
    }

    @Test(
        "three instances hammering two keys of one tenant: every window admits each key exactly its limit and the tenant at most its own, and the database never granted more"
    )
    func threeInstances() async throws {
        try await TestDatabase.withStore { store, _ in
            let limiters = (0..<3).map { _ in RateLimiter(store: store, logger: Self.logger) }
            let keys = [UUID(), UUID()]
            let tenant = UUID()
            let lonely = UUID()
            let lonelyTenant = UUID()
            let start = Int64(Date().timeIntervalSince1970) + 100_000
            for second in start..<start + 3 {
                // 3 instances × 2 keys × 30 concurrent requests; key limit 10, tenant limit 15. Beside them a key of
                // its own tenant (limit 7, tenant 1000), where only the key binds.
                let admitted = Tally()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    let subjects = keys.map { ($0, tenant, 10, 15) } + [(lonely, lonelyTenant, 7, 1000)]
                    for limiter in limiters {
                        for (key, tenant, keyLimit, tenantLimit) in subjects {
                            for index in 0..<30 {
                                group.addTask {
                                    let decision = try await limiter.admit(
                                        key: key, tenant: tenant, keyLimit: keyLimit, tenantLimit: tenantLimit,
                                        now: Self.at(second, Double(index) / 40))
                                    if decision.allowed { admitted.add(key) }
                                }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                for limiter in limiters { await limiter.claimsFinished() }
                let counts = admitted.counts.withLock { $0 }
                #expect(counts[lonely] == 7, "only the key binds: exactly its limit, \(counts)")
                let shared = keys.map { counts[$0, default: 0] }
                #expect(shared.allSatisfy { $0 <= 10 } && shared.reduce(0, +) <= 15, "\(shared)")
                #expect(shared.reduce(0, +) >= 1)
                let granted = try await store.pool.query(
                    "SELECT subject, granted FROM rate_budgets WHERE second = $1", [.int64(second)])
                var bySubject: [UUID: Int] = [:]
                for row in granted { bySubject[try row.uuid(0)] = try row.int(1) }
                #expect(bySubject[lonely] == 7 && bySubject[tenant].map { $0 <= 15 } == true, "\(bySubject)")
                #expect(keys.allSatisfy { bySubject[$0].map { $0 <= 10 } == true }, "\(bySubject)")
            }
        }
    }

    @Test(
        "in the steady state an admitted request waits for no claim: chunks are taken ahead and topped up in the background, a few round trips per window"
    )
    func steadyState() async throws {
        try await TestDatabase.withStore { store, _ in
            let claims = Claims()
            let limiter = RateLimiter(claim: claims.claim(store), logger: Self.logger)
            let key = UUID()
            let tenant = UUID()
            let start = Int64(Date().timeIntervalSince1970) + 200_000
            var waitedAfterFirst = 0
            var claimsAfterFirst = 0
            for second in start..<start + 6 {
                let before = claims.count.load(ordering: .relaxed)
                for index in 0..<80 {
                    let decision = try await limiter.admit(
                        key: key, tenant: tenant, keyLimit: 100, tenantLimit: 400,
                        now: Self.at(second, Double(index) / 100))
                    #expect(decision.allowed, "80 of 100 per second are admitted")
                    if second > start { waitedAfterFirst += decision.waited }
                    await limiter.claimsFinished()
                }
                await limiter.prepareNext(now: Self.at(second, 0.85))
                if second > start { claimsAfterFirst += claims.count.load(ordering: .relaxed) - before }
            }
            #expect(waitedAfterFirst == 0)
            // Five windows of 80 requests: the chunk taken ahead (half of the last window's use) and its top-ups,
            // for the key and the tenant together: a handful per window, however many requests it holds.
            #expect(claimsAfterFirst <= 5 * 5, "\(claimsAfterFirst) claims for 400 requests")
        }
    }

    @Test(
        "a request of the next window that comes while its chunk is still being taken ahead waits for that chunk and is admitted from it; the window admits its whole limit"
    )
    func lateChunkAhead() async throws {
        try await TestDatabase.withStore { store, _ in
            let key = UUID()
            let tenant = UUID()
            let second = Int64(Date().timeIntervalSince1970) + 500_000
            final class Late: Sendable {
                let limiter = Mutex<RateLimiter?>(nil)
                let early = Mutex<Task<RateLimiter.Decision, any Error>?>(nil)
                let claims = Mutex<[Int64: Int]>([:])
            }
            let late = Late()
            let limiter = RateLimiter(
                claim: { subjects, window, wants, limits in
                    late.claims.withLock { $0[window, default: 0] += 1 }
                    // The claim ahead for the next window is slow: a request of that window comes first, finds
                    // no room and must wait for this claim, not ask beside it.
                    if window == second + 1, let limiter = late.limiter.withLock({ $0 }),
                        late.early.withLock({ $0 == nil })
                    {
                        late.early.withLock {
                            $0 = Task {
                                try await limiter.admit(
                                    key: key, tenant: tenant, keyLimit: 12, tenantLimit: 100,
                                    now: Self.at(second + 1, 0.1))
                            }
                        }
                        try await Eventually.wait("the request to move the key into the next window") {
                            limiter.window(of: key) == second + 1
                        }
                    }
                    return try await RateLimiter.claim(store, subjects, window, wants, limits)
                }, logger: Self.logger)
            late.limiter.withLock { $0 = limiter }
            for index in 0..<6 {
                let decision = try await limiter.admit(
                    key: key, tenant: tenant, keyLimit: 12, tenantLimit: 100, now: Self.at(second, Double(index) / 10))
                #expect(decision.allowed)
            }
            await limiter.claimsFinished()
            await limiter.prepareNext(now: Self.at(second, 0.85))
            let early = try #require(late.early.withLock { $0 })
            let first = try await early.value
            #expect(first.allowed && first.waited >= 1, "admitted from the chunk it waited for")
            // Six spent in the window before: a chunk of three ahead, of which the request spent one (no top-up
            // yet), so the only claim of the window is the one taken ahead.
            #expect(late.claims.withLock { $0[second + 1] } == 1, "the request asked for nothing beside the chunk")
            var admitted = 1
            for index in 0..<20 {
                let decision = try await limiter.admit(
                    key: key, tenant: tenant, keyLimit: 12, tenantLimit: 100,
                    now: Self.at(second + 1, 0.2 + Double(index) / 40))
                if decision.allowed { admitted += 1 }
                await limiter.claimsFinished()
            }
            #expect(admitted == 12, "the window's whole limit, the chunk taken ahead included")
        }
    }

    @Test("a request that waited for a claim past its window's end is counted in the window it is admitted in")
    func waitedPastItsWindow() async throws {
        try await TestDatabase.withStore { store, _ in
            let limiter = RateLimiter(store: store, logger: Self.logger)
            let key = UUID()
            let stamped = Date().addingTimeInterval(-10)
            let decision = try await limiter.admit(
                key: key, tenant: UUID(), keyLimit: 5, tenantLimit: 50, now: stamped)
            #expect(decision.allowed)
            let window = try #require(limiter.window(of: key))
            #expect(window >= Int64(stamped.timeIntervalSince1970) + 9, "counted now, not ten seconds ago")
        }
    }

    @Test("a claim the database refuses is that request's error (a 503 at the API); the next request claims again")
    func claimFails() async throws {
        try await TestDatabase.withStore { store, _ in
            final class Refusing: Sendable { let on = Atomic<Bool>(true) }
            let refusing = Refusing()
            let claims = Claims()
            let real = claims.claim(store)
            let limiter = RateLimiter(
                claim: { subjects, second, wants, limits in
                    if refusing.on.load(ordering: .relaxed) { throw EventsError(.unavailable, "refused by the test") }
                    return try await real(subjects, second, wants, limits)
                }, logger: Self.logger)
            let key = UUID()
            let tenant = UUID()
            let second = Int64(Date().timeIntervalSince1970) + 400_000
            await #expect(throws: EventsError.self) {
                try await limiter.admit(key: key, tenant: tenant, keyLimit: 5, tenantLimit: 50, now: Self.at(second))
            }
            #expect(claims.count.load(ordering: .relaxed) == 0, "nothing reached the database")
            refusing.on.store(false, ordering: .relaxed)
            let decision = try await limiter.admit(
                key: key, tenant: tenant, keyLimit: 5, tenantLimit: 50, now: Self.at(second, 0.6))
            #expect(decision.allowed && decision.waited == 1)
            await limiter.claimsFinished()
            #expect(
                try await store.pool.query(
                    "SELECT granted FROM rate_budgets WHERE subject = $1 AND second = $2", [.uuid(key), .int64(second)]
                ).first?.int(0) ?? 0 >= 1)
        }
    }

    @Test(
        "an instance that stops loses only the share it took; the others get the rest of the window, then all of the next"
    )
    func instanceStops() async throws {
        try await TestDatabase.withStore { store, _ in
            let key = UUID()
            let tenant = UUID()
            let second = Int64(Date().timeIntervalSince1970) + 300_000
            var gone: RateLimiter? = RateLimiter(store: store, logger: Self.logger)
            var spent = 0
            for index in 0..<3 {
                if try await gone!.admit(
                    key: key, tenant: tenant, keyLimit: 40, tenantLimit: 1000, now: Self.at(second, Double(index) / 10)
                ).allowed {
                    spent += 1
                }
            }
            await gone!.claimsFinished()
            gone = nil
            let taken = try #require(
                try await store.pool.query(
                    "SELECT granted FROM rate_budgets WHERE subject = $1 AND second = $2", [.uuid(key), .int64(second)]
                ).first?.int(0))
            #expect(spent == 3 && taken >= 3 && taken < 40)
            let survivor = RateLimiter(store: store, logger: Self.logger)
            func admitted(_ second: Int64) async throws -> Int {
                var count = 0
                for index in 0..<60 {
                    let decision = try await survivor.admit(
                        key: key, tenant: tenant, keyLimit: 40, tenantLimit: 1000,
                        now: Self.at(second, 0.3 + Double(index) / 100))
                    if decision.allowed { count += 1 }
                    await survivor.claimsFinished()
                }
                return count
            }
            #expect(try await admitted(second) == 40 - taken)
            #expect(try await admitted(second + 1) == 40)
        }
    }
}
