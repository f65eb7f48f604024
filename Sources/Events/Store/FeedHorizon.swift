import Synchronization

/// The feed's horizon as this process last computed it with `tally_feed_horizon()`, shared by every reader of
/// one store. Any value it ever held stays safe (no event will appear below it later), so readers may use it
/// however old it is. It is computed again only when a read finds committed events held above the horizon it
/// used; readers whose reads overlap share one computation that started after their reads began, so looking
/// at every backend of the cluster (pg_stat_activity) is paid only while something holds the feed back, and
/// about once per round of reads, not once per reader.
final class FeedHorizon: Sendable {
    private struct State {
        var value: UInt64 = 0
        /// When the computation that gave `value` began.
        var computedFrom: ContinuousClock.Instant?
        var inFlight: (started: ContinuousClock.Instant, task: Task<UInt64, any Error>)?
    }

    private let state = Mutex(State())

    /// The newest horizon known (0 before the first computation).
    var value: UInt64 { state.withLock { $0.value } }

    /// A horizon computed after `readStarted`: by this call on `connection`, or by a computation that began
    /// after it; returns it when it is above `used`, nil otherwise.
    func refresh(after used: UInt64, readStarted: ContinuousClock.Instant, on connection: PostgresConnection)
        async throws -> UInt64?
    {
        while true {
            let (task, fresh) = state.withLock { state -> (Task<UInt64, any Error>?, Bool) in
                if let from = state.computedFrom, from >= readStarted { return (nil, true) }
                if let flight = state.inFlight { return (flight.task, flight.started >= readStarted) }
                let started = ContinuousClock.now
                // The task records its result itself, so that whoever awaits it finds the state updated.
                let task = Task { [self] in
                    do {
                        let computed = try await connection.query("SELECT tally_feed_horizon()").first?.uint64(0) ?? 0
                        return self.state.withLock { state -> UInt64 in
                            state.value = max(state.value, computed)
                            state.computedFrom = max(state.computedFrom ?? started, started)
                            state.inFlight = nil
                            return state.value
                        }
                    } catch {
                        self.state.withLock { $0.inFlight = nil }
                        throw error
                    }
                }
                state.inFlight = (started, task)
                return (task, true)
            }
            guard let task else {
                let known = value
                return known > used ? known : nil
            }
            // One computation that began before this read: await it, then look again (it cleared itself).
            let computed: UInt64
            do {
                computed = try await task.value
            } catch {
                if fresh { throw error }
                continue
            }
            if fresh { return computed > used ? computed : nil }
        }
    }
}
