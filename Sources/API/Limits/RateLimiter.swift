import Events
import Foundation
import Logging
import Synchronization

/// Requests per second per key and per tenant, in fixed one-second windows aligned to the clock's seconds,
/// shared by every instance. A request is admitted only when both windows have room, and then counts in both.
///
/// Each instance takes chunks of a window's budget from PostgreSQL (`claim_rate_budgets`, migration 13) and
/// admits from memory until its chunk is spent. The database never hands out more of a window than the limit,
/// so across all instances a key (or tenant) is admitted at most its limit in any aligned second, whatever
/// their number. In the steady state an admitted request makes no round trip: while a window is busy, a chunk
/// is topped up in the background once half of it is spent, and at 850 ms into each second every subject
/// active in it takes a chunk of the next window. A subject's first request in a window that nothing prepared
/// waits for one claim (one round trip, both subjects at once). What an instance took and did not spend lapses
/// with its window: other instances may then admit less than the limit, never more. Windows are the
/// instances' own clocks' seconds (keep them synchronised: a skew of d lets two windows overlap by d).
final class RateLimiter: Sendable {
    struct Decision: Sendable {
        var allowed: Bool
        var keyRemaining: Int
        var tenantRemaining: Int
        /// Seconds until the windows reset (always 1 for one-second windows: a fraction is rounded up).
        var reset: Int
        var violated: [String]
        /// How many claims the request waited for (0 in the steady state).
        var waited = 0
    }

    /// A grant the database gave: how much, and how much of the window all instances have taken with it.
    struct Grant: Sendable {
        var given: Int
        var taken: Int
    }

    /// Takes chunks of windows: subjects, window, wants, limits → what each got. The database's function in
    /// production.
    typealias Claim =
        @Sendable (_ subjects: [UUID], _ second: Int64, _ wants: [Int], _ limits: [Int]) async throws
        -> [UUID: Grant]

    /// One subject's share of one window on this instance.
    private struct Budget {
        var second: Int64
        var limit: Int
        /// Taken from the window by this instance, and spent of that.
        var granted = 0
        var used = 0
        /// The window's total taken by every instance, as of this instance's last grant.
        var taken = 0
        /// The database had less than was asked: nothing more is to be had in this window.
        var exhausted = false
        /// The claim under way for this subject (a request's, a top-up or the chunk taken ahead), which others wait on.
        var claiming: Pending?
        /// What was spent in the window before (sizes the chunks).
        var previousUsed = 0
        /// A chunk of the next window, taken ahead.
        var next: (second: Int64, grant: Grant, exhausted: Bool)?

        /// Moves to `second`, starting from the chunk taken ahead when there is one.
        mutating func roll(to second: Int64, limit: Int) {
            self.limit = limit
            guard self.second < second else { return }
            previousUsed = self.second == second - 1 ? used : 0
            let ahead = next.flatMap { $0.second == second ? $0 : nil }
            self.second = second
            granted = ahead?.grant.given ?? 0
            taken = ahead?.grant.taken ?? 0
            exhausted = ahead?.exhausted ?? false
            used = 0
            next = nil
        }

        var hasRoom: Bool { used < granted }

        /// Counts a grant of this window that asked for `want`.
        mutating func add(_ grant: Grant, want: Int) {
            granted += grant.given
            taken = max(taken, grant.taken)
            if grant.given < want { exhausted = true }
        }

        /// Half the chunk is spent and more may be had: time to take more in the background.
        var wantsTopUp: Bool { wantsTopUp(spent: 2) }

        /// A 1/`spent` part of the chunk is spent and more may be had.
        func wantsTopUp(spent: Int) -> Bool { !exhausted && claiming == nil && used * spent >= granted }

        /// What this instance can still count on: its unspent chunk, plus what no instance has taken.
        var remaining: Int { max(0, granted - used) + (exhausted ? 0 : max(0, limit - max(taken, granted))) }

        /// A chunk of this window: sized by the last window's spending or this one's, whichever is more.
        var want: Int { Self.chunk(limit: limit, spent: max(previousUsed, used)) }

        /// An eighth of the limit, or half of what a window spent when that is more.
        static func chunk(limit: Int, spent: Int) -> Int { max(1, min(limit, max((limit + 7) / 8, spent / 2))) }
    }

    /// A claim under way, for the subjects it covers.
    private struct Pending: Sendable {
        var id: UUID
        var task: Task<Void, any Error>
    }

    private typealias Wanted = (subject: UUID, want: Int, limit: Int)

    private let budgets = Mutex<[UUID: Budget]>([:])
    private let claim: Claim
    private let logger: Logger

    init(claim: @escaping Claim, logger: Logger) {
        self.claim = claim
        self.logger = logger
    }

    /// Budgets taken from `rate_budgets` through `store`.
    convenience init(store: EventStore, logger: Logger) {
        self.init(claim: { try await RateLimiter.claim(store, $0, $1, $2, $3) }, logger: logger)
    }

    func admit(key: UUID, tenant: UUID, keyLimit: Int, tenantLimit: Int, now: Date = Date()) async throws -> Decision {
        var second = Int64(now.timeIntervalSince1970.rounded(.down))
        // Each claim either gives this window more or finds it exhausted, so this ends within the limit's
        // number of claims (shared with the requests that wait on the same one).
        var waited = 0
        while true {
            switch decide(key: key, tenant: tenant, keyLimit: keyLimit, tenantLimit: tenantLimit, second: second) {
            case .decided(var decision):
                decision.waited = waited
                return decision
            case .wait(let others, let own):
                // Another request's claim that failed is not this one's error: its next look claims again.
                for claim in others { _ = try? await claim.value }
                try await own?.value
                waited += 1
                // A request that waited past its window's end counts in the window it is admitted in: its own is
                // over (and may have been forgotten, so claiming for it again would find it taken and refuse).
                second = max(second, Int64(Date().timeIntervalSince1970.rounded(.down)))
            }
        }
    }

    /// The window this instance counts `subject` in, if any (for tests).
    func window(of subject: UUID) -> Int64? { budgets.withLock { $0[subject]?.second } }

    /// Waits for every claim under way (tests use it to step time deterministically).
    func claimsFinished() async {
        while let task = budgets.withLock({ $0.values.lazy.compactMap(\.claiming?.task).first }) {
            _ = try? await task.value
        }
    }

    private enum Step {
        case decided(Decision)
        /// Claims to wait for: others' under way, and the one this request started.
        case wait(others: [Task<Void, any Error>], own: Task<Void, any Error>?)
    }

    private func decide(key: UUID, tenant: UUID, keyLimit: Int, tenantLimit: Int, second stamped: Int64) -> Step {
        budgets.withLock { budgets in
            // A request stamped just before a window this instance has already moved to counts in that one.
            let second = max(stamped, budgets[key]?.second ?? stamped, budgets[tenant]?.second ?? stamped)
            var keyBudget = budgets[key] ?? Budget(second: second, limit: keyLimit)
            var tenantBudget = budgets[tenant] ?? Budget(second: second, limit: tenantLimit)
            keyBudget.roll(to: second, limit: keyLimit)
            tenantBudget.roll(to: second, limit: tenantLimit)
            if keyBudget.hasRoom, tenantBudget.hasRoom {
                keyBudget.used += 1
                tenantBudget.used += 1
                budgets[key] = keyBudget
                budgets[tenant] = tenantBudget
                // One round trip for both when either is half spent and the other well on its way.
                if keyBudget.wantsTopUp || tenantBudget.wantsTopUp {
                    var topUp: [Wanted] = []
                    if keyBudget.wantsTopUp(spent: keyBudget.wantsTopUp ? 2 : 4) {
                        topUp.append((key, keyBudget.want, keyLimit))
                    }
                    if tenantBudget.wantsTopUp(spent: tenantBudget.wantsTopUp ? 2 : 4) {
                        topUp.append((tenant, tenantBudget.want, tenantLimit))
                    }
                    _ = startClaim(topUp, second: second, in: &budgets)
                }
                return .decided(
                    Decision(
                        allowed: true, keyRemaining: keyBudget.remaining, tenantRemaining: tenantBudget.remaining,
                        reset: 1, violated: []))
            }
            budgets[key] = keyBudget
            budgets[tenant] = tenantBudget
            if (!keyBudget.hasRoom && keyBudget.exhausted) || (!tenantBudget.hasRoom && tenantBudget.exhausted) {
                return .decided(Self.refusal(keyBudget, tenantBudget))
            }
            var wanted: [Wanted] = []
            if !keyBudget.hasRoom { wanted.append((key, keyBudget.want, keyLimit)) }
            if !tenantBudget.hasRoom { wanted.append((tenant, tenantBudget.want, tenantLimit)) }
            let others = wanted.compactMap { budgets[$0.subject]?.claiming?.task }
            return .wait(others: others, own: startClaim(wanted, second: second, in: &budgets))
        }
    }

    private static func refusal(_ key: Budget, _ tenant: Budget) -> Decision {
        var violated: [String] = []
        if !key.hasRoom { violated.append("key-rps") }
        if !tenant.hasRoom { violated.append("tenant-rps") }
        return Decision(
            allowed: false, keyRemaining: key.remaining, tenantRemaining: tenant.remaining, reset: 1,
            violated: violated)
    }

    /// Starts one claim of `second` for the subjects of `wanted` that have none under way, and marks them, so
    /// that a burst of requests at a window's start costs one round trip, not one per request (and never a
    /// queue for the pool). Nil when every subject already has one. Called under the budgets' lock.
    private func startClaim(_ wanted: [Wanted], second: Int64, in budgets: inout [UUID: Budget])
        -> Task<Void, any Error>?
    {
        let fresh = wanted.filter { budgets[$0.subject] != nil && budgets[$0.subject]?.claiming == nil }
        guard !fresh.isEmpty else { return nil }
        let id = UUID()
        let task = Task {
            defer {
                self.budgets.withLock { budgets in
                    for item in fresh where budgets[item.subject]?.claiming?.id == id {
                        budgets[item.subject]?.claiming = nil
                    }
                }
            }
            do {
                try await self.record(fresh, second: second)
            } catch {
                self.logger.warning("rate budget claim failed", metadata: ["error": "\(error)"])
                throw error
            }
        }
        for item in fresh { budgets[item.subject]?.claiming = Pending(id: id, task: task) }
        return task
    }

    /// Claims chunks of `second` and counts them: in that window when this instance is in it (also when a
    /// chunk taken ahead arrives after its window began), as the next window's when it is the one before. A
    /// grant of a window this instance has left is of no use any more.
    private func record(_ wanted: [Wanted], second: Int64) async throws {
        let grants = try await claim(wanted.map(\.subject), second, wanted.map(\.want), wanted.map(\.limit))
        budgets.withLock { budgets in
            for (subject, want, _) in wanted {
                guard var budget = budgets[subject] else { continue }
                let grant = grants[subject] ?? Grant(given: 0, taken: budget.limit)
                if budget.second == second {
                    budget.add(grant, want: want)
                } else if budget.second == second - 1 {
                    budget.next = (second, grant, grant.given < want)
                }
                budgets[subject] = budget
            }
        }
    }

    /// Takes a chunk of the next window, for every subject active in the current one. It is the claim under
    /// way for those subjects, so a request of the next window that finds no room waits for it rather than
    /// asking beside it (which could find the window taken, by this very chunk, and refuse).
    func prepareNext(now: Date = Date()) async {
        let second = Int64(now.timeIntervalSince1970.rounded(.down))
        let task = budgets.withLock { budgets -> Task<Void, any Error>? in
            // Subjects idle for a few seconds are forgotten.
            budgets = budgets.filter { $0.value.second >= second - 5 }
            let wanted = budgets.compactMap { subject, budget -> Wanted? in
                guard budget.second == second, budget.used > 0, budget.next == nil else { return nil }
                return (subject, Budget.chunk(limit: budget.limit, spent: budget.used), budget.limit)
            }
            return startClaim(wanted, second: second + 1, in: &budgets)
        }
        // A failure is logged by the claim; the next window's requests claim for themselves.
        _ = try? await task?.value
    }

    /// Until cancelled: at 850 ms into every second, chunks of the next window for the busy subjects.
    func run() async {
        while !Task.isCancelled {
            let now = Date().timeIntervalSince1970
            let fraction = now - now.rounded(.down)
            let pause = fraction < 0.85 ? 0.85 - fraction : 1.85 - fraction
            try? await Task.sleep(for: .seconds(pause))
            guard !Task.isCancelled else { return }
            await prepareNext()
        }
    }

    /// One round trip to `claim_rate_budgets`.
    static func claim(
        _ store: EventStore, _ subjects: [UUID], _ second: Int64, _ wants: [Int], _ limits: [Int]
    ) async throws -> [UUID: Grant] {
        let rows = try await store.pool.query(
            "SELECT subject, given, taken FROM claim_rate_budgets($1, $2, $3, $4)",
            [
                .uuidArray(subjects), .int64(second), .int32Array(wants.map { Int32(clamping: $0) }),
                .int32Array(limits.map { Int32(clamping: $0) }),
            ])
        var grants: [UUID: Grant] = [:]
        for row in rows { grants[try row.uuid(0)] = Grant(given: try row.int(1), taken: try row.int(2)) }
        return grants
    }
}
