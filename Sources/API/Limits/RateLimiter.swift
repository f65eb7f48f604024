import Foundation
import Synchronization

/// Requests per second per key and per tenant, in fixed one-second windows aligned to the clock's seconds.
/// A request is admitted only when both windows have room, and then counts in both, so within any
/// aligned second one instance admits at most the plan's rate for a key and for a tenant. Each instance
/// counts for itself: with N instances behind a balancer the bound is N times the plan's rate (documented
/// in docs/api.md).
final class RateLimiter: Sendable {
    struct Decision: Sendable {
        var allowed: Bool
        var keyRemaining: Int
        var tenantRemaining: Int
        /// Seconds until the windows reset (always 1 for one-second windows: a fraction is rounded up).
        var reset: Int
        var violated: [String]
    }

    private struct Window {
        var second: Int64
        var count: Int
    }

    private let windows = Mutex<[UUID: Window]>([:])

    func admit(key: UUID, tenant: UUID, keyLimit: Int, tenantLimit: Int, now: Date = Date()) -> Decision {
        let second = Int64(now.timeIntervalSince1970.rounded(.down))
        return windows.withLock { windows in
            if windows.count > 100_000 { windows = windows.filter { $0.value.second == second } }
            let keyUsed = windows[key].map { $0.second == second ? $0.count : 0 } ?? 0
            let tenantUsed = windows[tenant].map { $0.second == second ? $0.count : 0 } ?? 0
            var violated: [String] = []
            if keyUsed >= keyLimit { violated.append("key-rps") }
            if tenantUsed >= tenantLimit { violated.append("tenant-rps") }
            guard violated.isEmpty else {
                return Decision(
                    allowed: false, keyRemaining: max(0, keyLimit - keyUsed), tenantRemaining: max(0, tenantLimit - tenantUsed), reset: 1,
                    violated: violated)
            }
            windows[key] = Window(second: second, count: keyUsed + 1)
            windows[tenant] = Window(second: second, count: tenantUsed + 1)
            return Decision(
                allowed: true, keyRemaining: keyLimit - keyUsed - 1, tenantRemaining: tenantLimit - tenantUsed - 1, reset: 1, violated: [])
        }
    }
}
