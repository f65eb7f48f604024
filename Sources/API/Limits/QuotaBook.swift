import Events
import Foundation
import Logging
import Projections
import Synchronization

/// Monthly quotas (API calls, runs) per tenant for the current billing period, shared by every instance.
///
/// Each instance takes chunks of a tenant's quota from PostgreSQL (`claim_quota`, migration 14) and admits
/// from memory until its chunk is spent. The database never hands out more of a period than the quota, so
/// across all instances a tenant is admitted at most its quota, whatever their number: the bound on an
/// overrun is zero. In the steady state an admitted request makes no round trip: a chunk (about a second of
/// the tenant's spending here, never more than an eighth of what is left) is topped up in the background
/// once half of it is spent. A tenant's first request on an instance loads what `usage_counters` counted
/// (the floor a period's grants start from) and waits for one claim. What an instance took and did not
/// spend goes back (`return_quota`) when the tenant is idle there for five seconds and when the instance
/// stops; an instance that dies keeps its unspent chunk taken, so the tenant may be refused up to that much
/// before its quota (docs/api.md). Once the database has no more to give, refusals come from memory, and
/// the instance asks again at most once a second (others may have given some back) or when the quota changes.
final class QuotaBook: Sendable {
    enum Meter: String, Sendable, CaseIterable { case apiCalls = "api_calls", runs }

    /// A grant the database gave: how much, and how much of the period all instances have taken with it.
    struct Grant: Sendable {
        var given: Int64
        var taken: Int64
    }

    /// Takes a chunk of a tenant's quota: tenant, period, meter, want, quota, already counted → the grant.
    typealias Claim =
        @Sendable (_ tenant: UUID, _ period: String, _ meter: Meter, _ want: Int64, _ quota: Int64, _ counted: Int64)
        async throws -> Grant
    /// Gives back an unspent part of a grant: tenant, period, meter, amount.
    typealias GiveBack =
        @Sendable (_ tenant: UUID, _ period: String, _ meter: Meter, _ amount: Int64) async throws -> Void
    /// What `usage_counters` counted for these tenants in the period.
    typealias Counted = @Sendable (_ tenants: [UUID], _ period: BillingPeriod) async throws -> [UUID: [Meter: Int64]]

    private struct Subject: Hashable {
        var tenant: UUID
        var meter: Meter
    }

    /// A claim under way for a subject; its value is the decision of the request that started it (nil for a
    /// top-up).
    private struct Pending: Sendable {
        var id: UUID
        var task: Task<(allowed: Bool, remaining: Int64)?, any Error>
    }

    /// One tenant's meter in one period on this instance.
    private struct Share {
        var period: BillingPeriod
        var quota: Int64
        /// Taken from the period's quota by this instance and not given back, and spent of that.
        var granted: Int64 = 0
        var used: Int64 = 0
        /// The period's total taken by every instance, as of this instance's last grant.
        var taken: Int64 = 0
        /// When a claim last got less than it asked (for this quota).
        var exhaustedAt: ContinuousClock.Instant?
        var claiming: Pending?
        /// What the requests waiting for the claim under way want: the next claim asks for it too.
        var waiting: Int64 = 0
        var lastUsed = ContinuousClock.now
        /// Spent in the current second and in the one before (sizes the chunks).
        var second: Int64 = 0
        var spentThisSecond: Int64 = 0
        var spentLastSecond: Int64 = 0

        var unspent: Int64 { max(0, granted - used) }

        /// What this instance can still count on: its unspent chunk, plus what no instance has taken.
        var remaining: Int64 { unspent + max(0, quota - max(taken, granted)) }

        /// About a second of this instance's spending, at least 4, at most an eighth of what is left.
        var chunk: Int64 {
            let left = max(1, (quota - taken) / 8)
            return min(left, max(4, spentThisSecond, spentLastSecond))
        }

        func exhausted(at now: ContinuousClock.Instant) -> Bool {
            exhaustedAt.map { now - $0 < .seconds(1) } ?? false
        }

        mutating func spend(_ amount: Int64, at now: Date) {
            used += amount
            lastUsed = .now
            let current = Int64(now.timeIntervalSince1970.rounded(.down))
            if current != second {
                spentLastSecond = current == second + 1 ? spentThisSecond : 0
                spentThisSecond = 0
                second = current
            }
            spentThisSecond += amount
        }
    }

    /// What `usage_counters` counted for a tenant in a period: the floor its grants start from.
    private struct Counts {
        var period: BillingPeriod
        var meters: [Meter: Int64]
        var lastSeen: ContinuousClock.Instant
    }

    private let shares = Mutex<[Subject: Share]>([:])
    private let counts = Mutex<[UUID: Counts]>([:])
    private let claim: Claim
    private let giveBack: GiveBack
    private let counted: Counted
    private let logger: Logger

    init(claim: @escaping Claim, giveBack: @escaping GiveBack, counted: @escaping Counted, logger: Logger) {
        self.claim = claim
        self.giveBack = giveBack
        self.counted = counted
        self.logger = logger
    }

    /// Grants from `quota_grants` through `store`.
    convenience init(store: EventStore, logger: Logger) {
        self.init(
            claim: { try await QuotaBook.claim(store, $0, $1, $2, $3, $4, $5) },
            giveBack: { try await QuotaBook.giveBack(store, $0, $1, $2, $3) },
            counted: { try await QuotaBook.counted(store, $0, $1) }, logger: logger)
    }

    /// Counts `amount` against the tenant's meter if the quota allows it all; returns whether it did and
    /// what remains (nil for unlimited).
    func admit(_ tenant: UUID, _ meter: Meter, amount: Int64, quota: Int64?, now: Date = Date()) async throws -> (
        allowed: Bool, remaining: Int64?
    ) {
        guard let quota else { return (true, nil) }
        let period = PeriodClock.at(now).period
        let subject = Subject(tenant: tenant, meter: meter)
        // Each wait is for a claim that asked for every waiting request and either gave the subject that or
        // found the quota taken; a request that waited this often all the same (newcomers spent each grant
        // first) claims for itself, so this ends.
        var waits = 0
        while true {
            switch decide(
                subject, amount: amount, quota: quota, period: period, now: now, waited: waits > 0, mayWait: waits < 16)
            {
            case .decided(let allowed, let remaining):
                return (allowed, remaining)
            case .wait(let task):
                _ = try? await task.value
                waits += 1
            case .own(let task):
                if let decision = try await task.value { return (decision.allowed, decision.remaining) }
            }
        }
    }

    private typealias Decided = (allowed: Bool, remaining: Int64)

    private enum Step {
        case decided(allowed: Bool, remaining: Int64)
        case wait(Task<Decided?, any Error>)
        /// The claim this request started, which decides it.
        case own(Task<Decided?, any Error>)
    }

    private func decide(
        _ subject: Subject, amount: Int64, quota: Int64, period: BillingPeriod, now: Date, waited: Bool, mayWait: Bool
    ) -> Step {
        shares.withLock { shares -> Step in
            var share = shares[subject] ?? Share(period: period, quota: quota)
            if share.period != period { share = Share(period: period, quota: quota) }
            // A request that waited is counted among the waiting until it is decided or waits again.
            if waited { share.waiting = max(0, share.waiting - amount) }
            if share.quota != quota {
                share.quota = quota
                share.exhaustedAt = nil
            }
            shares[subject] = share
            if share.unspent >= amount {
                share.spend(amount, at: now)
                shares[subject] = share
                // Half the chunk is spent and more may be had: more in the background.
                if share.claiming == nil, !share.exhausted(at: .now), share.unspent * 2 <= share.chunk {
                    _ = startClaim(
                        subject, period: period, want: share.chunk + share.waiting, quota: quota, reserving: nil,
                        register: true,
                        in: &shares)
                }
                return .decided(allowed: true, remaining: share.remaining)
            }
            if share.exhausted(at: .now) { return .decided(allowed: false, remaining: share.remaining) }
            if mayWait, let pending = share.claiming {
                share.waiting += amount
                shares[subject] = share
                return .wait(pending.task)
            }
            // Registered at once, so that a burst of a tenant's first requests waits for one claim rather than
            // sending one each (and queueing for the pool).
            let own = startClaim(
                subject, period: period, want: amount - share.unspent + share.waiting + share.chunk, quota: quota,
                reserving: amount,
                register: mayWait, in: &shares)
            return own.map { .own($0) } ?? .decided(allowed: false, remaining: share.remaining)
        }
    }

    /// Waits for every claim under way (tests use it before they look at the database).
    func claimsFinished() async {
        while let task = shares.withLock({ $0.values.lazy.compactMap(\.claiming?.task).first }) {
            _ = try? await task.value
        }
    }

    /// Starts a claim of `want` for `subject` (after loading what `usage_counters` counted, on the subject's
    /// first claim in the period); when `reserving`, the request that started it is decided by its outcome
    /// (admitted when the subject then has that much unspent). A registered claim is the
    /// subject's claim under way, which others wait on; a top-up (nil `reserving`) is not started beside
    /// another claim, nor for a subject no longer in `period`. Called under the shares' lock.
    private func startClaim(
        _ subject: Subject, period: BillingPeriod, want: Int64, quota: Int64, reserving amount: Int64?, register: Bool,
        in shares: inout [Subject: Share]
    ) -> Task<Decided?, any Error>? {
        if amount == nil, shares[subject]?.period != period || shares[subject]?.claiming != nil { return nil }
        let id = UUID()
        let task = Task<Decided?, any Error> {
            defer {
                self.shares.withLock { shares in
                    if shares[subject]?.claiming?.id == id { shares[subject]?.claiming = nil }
                }
            }
            let grant: Grant
            do {
                let floor = try await self.floor(subject.tenant, subject.meter, period)
                grant = try await self.claim(subject.tenant, period.description, subject.meter, want, quota, floor)
            } catch {
                self.logger.warning("quota claim failed", metadata: ["error": "\(error)"])
                throw error
            }
            return self.record(grant, want: want, of: subject, period: period, reserving: amount)
        }
        if register, shares[subject]?.period == period { shares[subject]?.claiming = Pending(id: id, task: task) }
        return task
    }

    /// Counts a grant, and decides the request that claimed it.
    private func record(
        _ grant: Grant, want: Int64, of subject: Subject, period: BillingPeriod, reserving amount: Int64?
    ) -> Decided? {
        shares.withLock { shares -> Decided? in
            // A grant of a period this instance has left is of no use any more (the period is over).
            guard var share = shares[subject], share.period == period else { return amount.map { _ in (false, 0) } }
            share.granted += grant.given
            share.taken = max(share.taken, grant.taken)
            if grant.given < want { share.exhaustedAt = .now }
            defer { shares[subject] = share }
            guard let amount else { return nil }
            guard share.unspent >= amount else { return (false, share.remaining) }
            share.spend(amount, at: Date())
            return (true, share.remaining)
        }
    }

    /// Gives back what `admit` counted for work that did not happen (its append failed): this instance's
    /// chunk has it again.
    func release(_ tenant: UUID, _ meter: Meter, amount: Int64, now: Date = Date()) {
        let period = PeriodClock.at(now).period
        shares.withLock { shares in
            let subject = Subject(tenant: tenant, meter: meter)
            guard var share = shares[subject], share.period == period else { return }
            share.used = max(0, share.used - amount)
            shares[subject] = share
        }
    }

    /// What `usage_counters` counted for the tenant's meter, loaded on its first claim in the period.
    private func floor(_ tenant: UUID, _ meter: Meter, _ period: BillingPeriod) async throws -> Int64 {
        if let known = counts.withLock({ table -> Int64? in
            guard var entry = table[tenant], entry.period == period else { return nil }
            entry.lastSeen = .now
            table[tenant] = entry
            return entry.meters[meter] ?? 0
        }) {
            return known
        }
        let loaded = try await counted([tenant], period)[tenant] ?? [:]
        counts.withLock { $0[tenant] = Counts(period: period, meters: loaded, lastSeen: .now) }
        return loaded[meter] ?? 0
    }

    /// Once a second until cancelled: refreshes the counts of the tenants claimed for in the last ten
    /// minutes and gives back the chunks of tenants idle here for five seconds.
    func refreshContinuously() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            await giveBackUnspent(idleFor: .seconds(5))
            let period = BillingPeriod(containing: Date())
            let active = counts.withLock { table in
                table = table.filter { ContinuousClock.now - $0.value.lastSeen < .seconds(600) }
                return Array(table.keys)
            }
            guard !active.isEmpty else { continue }
            do {
                let fresh = try await counted(active, period)
                counts.withLock { table in
                    for tenant in active {
                        table[tenant] = Counts(
                            period: period, meters: fresh[tenant] ?? [:], lastSeen: table[tenant]?.lastSeen ?? .now)
                    }
                }
            } catch {
                logger.warning("quota refresh failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Gives back the unspent chunks of subjects idle for `idle` (every one with `.zero`: at shutdown), and
    /// forgets subjects of an earlier period and those idle for ten minutes. A chunk is taken off this
    /// instance before it goes back, so nothing is admitted from it meanwhile; one that cannot go back is
    /// lost to the tenant until the period ends (logged).
    func giveBackUnspent(idleFor idle: Duration) async {
        let period = BillingPeriod(containing: Date())
        let returns = shares.withLock { shares -> [(Subject, Int64)] in
            var returns: [(Subject, Int64)] = []
            let now = ContinuousClock.now
            for (subject, var share) in shares {
                guard share.period == period else {
                    shares[subject] = nil
                    continue
                }
                guard share.claiming == nil, now - share.lastUsed >= idle else { continue }
                if share.unspent > 0 {
                    returns.append((subject, share.unspent))
                    share.granted = share.used
                }
                shares[subject] = now - share.lastUsed >= .seconds(600) ? nil : share
            }
            return returns
        }
        for (subject, amount) in returns {
            do {
                try await giveBack(subject.tenant, period.description, subject.meter, amount)
            } catch {
                logger.warning(
                    "an unspent quota chunk could not be given back",
                    metadata: ["tenant": "\(subject.tenant)", "amount": "\(amount)", "error": "\(error)"])
            }
        }
    }

    // MARK: - The database

    /// One round trip to `claim_quota`.
    static func claim(
        _ store: EventStore, _ tenant: UUID, _ period: String, _ meter: Meter, _ want: Int64, _ quota: Int64,
        _ counted: Int64
    ) async throws -> Grant {
        let row = try await store.pool.query(
            "SELECT given, taken FROM claim_quota($1, $2, $3, $4, $5, $6)",
            [.uuid(tenant), .string(period), .string(meter.rawValue), .int64(want), .int64(quota), .int64(counted)]
        ).first
        guard let row else { return Grant(given: 0, taken: quota) }
        return Grant(given: try row.int64(0), taken: try row.int64(1))
    }

    static func giveBack(_ store: EventStore, _ tenant: UUID, _ period: String, _ meter: Meter, _ amount: Int64)
        async throws
    {
        try await store.pool.query(
            "SELECT return_quota($1, $2, $3, $4)",
            [.uuid(tenant), .string(period), .string(meter.rawValue), .int64(amount)])
    }

    /// Before any runner created `usage_counters` there is nothing counted yet.
    static func counted(_ store: EventStore, _ tenants: [UUID], _ period: BillingPeriod) async throws -> [UUID: [Meter:
        Int64]]
    {
        let rows = try await readOrEmpty {
            try await store.pool.withConnection { connection in
                try await connection.withTransaction(begin: "BEGIN READ ONLY") {
                    try await UsageCountersProjection.counters(
                        ofTenants: tenants, meters: Meter.allCases.map(\.rawValue), in: period, on: connection)
                }
            }
        }
        var result: [UUID: [Meter: Int64]] = [:]
        for row in rows {
            guard let meter = Meter(rawValue: row.meter) else { continue }
            result[row.tenantID, default: [:]][meter] = row.quantity
        }
        return result
    }
}
