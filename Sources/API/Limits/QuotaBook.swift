import Events
import Foundation
import Logging
import Projections
import Synchronization

/// Monthly quotas (API calls, runs) per tenant for the current billing period. The counts come from the
/// `usage_counters` projection, refreshed in the background once a second for the tenants seen in the last
/// minutes, plus what this instance admitted since the last refresh; a tenant's first request after a start
/// loads its counts (one query), every later one is answered from memory. What other instances admitted
/// in the last second or two (metering flush plus projection lag) is not seen yet: that is the most a
/// quota can be overrun by (docs/api.md).
final class QuotaBook: Sendable {
    struct Usage: Sendable {
        var period: BillingPeriod
        var apiCalls: Int64
        var runs: Int64
        var lastSeen: ContinuousClock.Instant
    }

    enum Meter: Sendable { case apiCalls, runs }

    private let store: EventStore
    private let usage = Mutex<[UUID: Usage]>([:])
    private let logger: Logger

    init(store: EventStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    /// Used so far in the current period, loading the tenant's counts when they are not in memory.
    func used(_ tenant: UUID, now: Date = Date()) async throws -> Usage {
        let period = PeriodClock.at(now).period
        if let known = usage.withLock({ table -> Usage? in
            guard var entry = table[tenant], entry.period == period else { return nil }
            entry.lastSeen = .now
            table[tenant] = entry
            return entry
        }) {
            return known
        }
        let loaded =
            try await load([tenant], period: period)[tenant]
            ?? Usage(period: period, apiCalls: 0, runs: 0, lastSeen: .now)
        return usage.withLock { table in
            if let entry = table[tenant], entry.period == period { return entry }
            table[tenant] = loaded
            return loaded
        }
    }

    /// Counts `amount` against the tenant's meter if the quota allows it all; returns whether it did and
    /// what remains (nil for unlimited).
    func admit(_ tenant: UUID, _ meter: Meter, amount: Int64, quota: Int64?, now: Date = Date()) async throws -> (
        allowed: Bool, remaining: Int64?
    ) {
        _ = try await used(tenant, now: now)
        return usage.withLock { table in
            guard var entry = table[tenant] else { return (true, nil) }
            let current = meter == .apiCalls ? entry.apiCalls : entry.runs
            guard let quota else {
                Self.add(amount, to: meter, of: &entry)
                table[tenant] = entry
                return (true, nil)
            }
            guard current + amount <= quota else { return (false, max(0, quota - current)) }
            Self.add(amount, to: meter, of: &entry)
            table[tenant] = entry
            return (true, quota - current - amount)
        }
    }

    /// Gives back what `admit` counted for work that did not happen (its append failed). At worst, when a
    /// refresh in between replaced the count with a higher one from the projection, the tenant may be
    /// admitted `amount` more until the next refresh, a second later.
    func release(_ tenant: UUID, _ meter: Meter, amount: Int64, now: Date = Date()) {
        let period = PeriodClock.at(now).period
        usage.withLock { table in
            guard var entry = table[tenant], entry.period == period else { return }
            Self.add(-amount, to: meter, of: &entry)
            entry.apiCalls = max(0, entry.apiCalls)
            entry.runs = max(0, entry.runs)
            table[tenant] = entry
        }
    }

    private static func add(_ amount: Int64, to meter: Meter, of entry: inout Usage) {
        switch meter {
        case .apiCalls: entry.apiCalls += amount
        case .runs: entry.runs += amount
        }
    }

    /// Refreshes the tenants seen in the last ten minutes from the projection, once a second, until cancelled.
    func refreshContinuously() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            let period = BillingPeriod(containing: Date())
            let active = usage.withLock { table in
                table = table.filter { ContinuousClock.now - $0.value.lastSeen < .seconds(600) }
                return Array(table.keys)
            }
            guard !active.isEmpty else { continue }
            do {
                let fresh = try await load(active, period: period)
                usage.withLock { table in
                    for tenant in active {
                        let lastSeen = table[tenant]?.lastSeen ?? .now
                        var entry = fresh[tenant] ?? Usage(period: period, apiCalls: 0, runs: 0, lastSeen: lastSeen)
                        entry.lastSeen = lastSeen
                        // Never let a lagging projection lower what this instance already admitted.
                        if let old = table[tenant], old.period == period {
                            entry.apiCalls = max(entry.apiCalls, old.apiCalls)
                            entry.runs = max(entry.runs, old.runs)
                        }
                        table[tenant] = entry
                    }
                }
            } catch {
                logger.warning("quota refresh failed", metadata: ["error": "\(error)"])
            }
        }
    }

    private func load(_ tenants: [UUID], period: BillingPeriod) async throws -> [UUID: Usage] {
        let rows = try await readOrEmpty { try await self.usageRows(tenants, period: period) }
        var result: [UUID: Usage] = [:]
        for row in rows {
            let tenant = try row.uuid(0)
            var entry = result[tenant] ?? Usage(period: period, apiCalls: 0, runs: 0, lastSeen: .now)
            if try row.string(1) == "api_calls" {
                entry.apiCalls = try row.int64(2)
            } else {
                entry.runs = try row.int64(2)
            }
            result[tenant] = entry
        }
        return result
    }

    /// Before any runner created `usage_counters` there is nothing counted yet.
    private func usageRows(_ tenants: [UUID], period: BillingPeriod) async throws -> [PostgresRow] {
        let rows = try await store.pool.withConnection { connection in
            try await connection.withTransaction(begin: "BEGIN READ ONLY") {
                try await connection.query(
                    """
                    SELECT tenant_id, meter, quantity FROM usage_counters
                    WHERE period = $1 AND tenant_id = ANY($2) AND meter IN ('api_calls', 'runs')
                    """, [.string(period.description), .uuidArray(tenants)])
            }
        }
        return Array(rows)
    }
}
