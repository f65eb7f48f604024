import Foundation
import Projections
import Synchronization

/// The billing period of a moment, with its bounds; the current one is computed once per period instead of
/// on every request (a calendar computation costs more than the rest of a cached key check).
enum PeriodClock {
    struct Current: Sendable {
        var period: BillingPeriod
        var start: Date
        var end: Date
    }

    private static let cached = Mutex<Current?>(nil)

    static func at(_ now: Date) -> Current {
        if let current = cached.withLock({ $0 }), current.start <= now, now < current.end { return current }
        let period = BillingPeriod(containing: now)
        let current = Current(period: period, start: period.start, end: period.end)
        cached.withLock { $0 = current }
        return current
    }
}
