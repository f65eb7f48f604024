import Foundation
import Logging
import Projections
import Synchronization
import TestSupport
import Testing

@testable import API
@testable import Events

/// Monthly quotas shared by every instance through `quota_grants`: several quota books on one database stand
/// for several `tally serve` processes.
@Suite("API: monthly quotas shared by every instance", .timeLimit(.minutes(5)))
struct SharedQuotaTests {
    static let logger = Logger(label: "test.quota") { _ in SwiftLogNoOpLogHandler() }

    /// Counts the claims a book makes, and can stand in for what `usage_counters` counted.
    final class Probe: Sendable {
        let claims = Atomic<Int>(0)
        let counted: Int64

        init(counted: Int64 = 0) { self.counted = counted }

        func book(_ store: EventStore) -> QuotaBook {
            QuotaBook(
                claim: { tenant, period, meter, want, quota, counted in
                    self.claims.add(1, ordering: .relaxed)
                    return try await QuotaBook.claim(store, tenant, period, meter, want, quota, counted)
                },
                giveBack: { try await QuotaBook.giveBack(store, $0, $1, $2, $3) },
                counted: { tenants, _ in
                    Dictionary(uniqueKeysWithValues: tenants.map { ($0, [.apiCalls: self.counted, .runs: 0]) })
                }, logger: SharedQuotaTests.logger)
        }
    }

    static func granted(_ store: EventStore, _ tenant: UUID, _ meter: String = "api_calls") async throws -> Int64? {
        try await store.pool.query(
            "SELECT granted FROM quota_grants WHERE tenant_id = $1 AND meter = $2", [.uuid(tenant), .string(meter)]
        ).first?.int64(0)
    }

    /// Admits `count` calls of one each from `books`, all at once; returns how many were allowed.
    static func hammer(_ books: [QuotaBook], _ tenant: UUID, count: Int, quota: Int64) async throws -> Int {
        try await withThrowingTaskGroup(of: Int.self) { group in
            for book in books {
                for _ in 0..<count {
                    group.addTask {
                        try await book.admit(tenant, .apiCalls, amount: 1, quota: quota).allowed ? 1 : 0
                    }
                }
            }
            return try await group.reduce(0, +)
        }
    }

    @Test(
        "three instances hammering one tenant's quota never admit more than it; what they held goes back, and in the end exactly the quota is admitted and granted"
    )
    func threeInstances() async throws {
        try await TestDatabase.withStore { store, _ in
            let probe = Probe()
            let books = (0..<3).map { _ in probe.book(store) }
            let tenant = UUID()
            let quota: Int64 = 500
            let first = try await Self.hammer(books, tenant, count: 300, quota: quota)
            #expect(first <= 500 && first > 0, "\(first)")
            // A burst of a tenant's first requests waits for a claim under way rather than sending its own.
            let claims = probe.claims.load(ordering: .relaxed)
            #expect(claims < 60, "\(claims) claims for 900 requests")
            #expect(try await Self.granted(store, tenant).map { $0 <= 500 } == true)
            for book in books { await book.claimsFinished() }
            for book in books { await book.giveBackUnspent(idleFor: .zero) }
            #expect(try await Self.granted(store, tenant) == Int64(first), "the database holds what was spent")
            // Again, and then a fourth instance alone until it is refused (the three, having found the quota
            // taken a moment ago, refuse from memory for a second): the rest of the quota, and nothing more.
            let second = try await Self.hammer(books, tenant, count: 300, quota: quota)
            for book in books { await book.claimsFinished() }
            for book in books { await book.giveBackUnspent(idleFor: .zero) }
            let fourth = probe.book(store)
            var last = 0
            while try await fourth.admit(tenant, .apiCalls, amount: 1, quota: quota).allowed { last += 1 }
            #expect(first + second + last == 500, "\(first) + \(second) + \(last)")
            #expect(try await Self.granted(store, tenant) == 500)
            #expect(try await !books[1].admit(tenant, .apiCalls, amount: 1, quota: quota).allowed)
        }
    }

    @Test("in the steady state an admitted call makes no round trip: a tenant's 5,000 calls take a few dozen claims")
    func fewClaims() async throws {
        try await TestDatabase.withStore { store, _ in
            let probe = Probe()
            let book = probe.book(store)
            let tenant = UUID()
            var allowed = 0
            for _ in 0..<5000 where try await book.admit(tenant, .apiCalls, amount: 1, quota: 1_000_000).allowed {
                allowed += 1
            }
            #expect(allowed == 5000)
            let claims = probe.claims.load(ordering: .relaxed)
            #expect(claims <= 100, "\(claims) claims for 5,000 calls")
        }
    }

    @Test(
        "a batch is admitted whole or refused whole; a release and a give-back return it; a raised quota admits at once; an instance that dies never lets anyone over"
    )
    func batchesAndReturns() async throws {
        try await TestDatabase.withStore { store, _ in
            let probe = Probe()
            let (a, b, dead) = (probe.book(store), probe.book(store), probe.book(store))
            let tenant = UUID()
            #expect(try await a.admit(tenant, .runs, amount: 7, quota: 10).allowed)
            let refused = try await b.admit(tenant, .runs, amount: 5, quota: 10)
            #expect(!refused.allowed && refused.remaining.map { $0 < 5 } == true, "\(refused)")
            var admitted: Int64 = 7
            // What is left, one at a time, from whichever instance holds it.
            for book in [b, a, b, a, b] where try await book.admit(tenant, .runs, amount: 1, quota: 10).allowed {
                admitted += 1
            }
            for book in [a, b] { await book.claimsFinished() }
            for book in [a, b] { await book.giveBackUnspent(idleFor: .zero) }
            while try await a.admit(tenant, .runs, amount: 1, quota: 10).allowed { admitted += 1 }
            #expect(admitted == 10)
            #expect(try await Self.granted(store, tenant, "runs") == 10)

            // Work that did not happen gives its count back to the instance that admitted it, and from there to
            // the database.
            a.release(tenant, .runs, amount: 3)
            #expect(try await a.admit(tenant, .runs, amount: 2, quota: 10).allowed)
            await a.claimsFinished()
            await a.giveBackUnspent(idleFor: .zero)
            #expect(try await Self.granted(store, tenant, "runs") == 9)
            // b found the quota taken a moment ago and refuses from memory until it asks again (at most once a
            // second), then gets the one that came back.
            try await Eventually.wait("b to take the returned run") {
                try await b.admit(tenant, .runs, amount: 1, quota: 10).allowed
            }
            #expect(try await Self.granted(store, tenant, "runs") == 10)

            // A plan upgrade: the new quota is asked for at once.
            #expect(try await b.admit(tenant, .runs, amount: 2, quota: 12).allowed)
            #expect(try await !b.admit(tenant, .runs, amount: 1, quota: 12).allowed)

            // An instance that takes a chunk and dies (never gives it back): the others are refused that much
            // before the quota, never admitted past it.
            let other = UUID()
            #expect(try await dead.admit(other, .apiCalls, amount: 1, quota: 100).allowed)
            await dead.claimsFinished()
            let held = try #require(try await Self.granted(store, other))
            #expect(held > 1 && held <= 13, "a chunk is at most an eighth of the quota: \(held)")
            var rest: Int64 = 0
            while try await a.admit(other, .apiCalls, amount: 1, quota: 100).allowed { rest += 1 }
            #expect(rest == 100 - held, "\(rest) admitted beside a dead instance's \(held)")
            #expect(try await Self.granted(store, other) == 100)
        }
    }

    @Test(
        "a period's grants start from what usage_counters already counted, so a restart mid-period cannot admit it again"
    )
    func startsFromCounted() async throws {
        try await TestDatabase.withStore { store, _ in
            let book = Probe(counted: 8).book(store)
            let tenant = UUID()
            var allowed = 0
            while try await book.admit(tenant, .apiCalls, amount: 1, quota: 10).allowed { allowed += 1 }
            #expect(allowed == 2)
            #expect(try await Self.granted(store, tenant) == 10)
        }
    }
}
