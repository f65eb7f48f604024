import Events
import Synchronization
import Synthetic

/// The fake server's mutable state: stats, one-shot traps already fired, Prospeo's enriched records, rate windows
/// and the seeded generator. One lock; every critical section is a few dictionary operations.
final class FakeVendorBooks: Sendable {
    /// What the server decided about a request when it arrived.
    struct Arrival {
        var keyID: String
        var delayMilliseconds: Int
        var randomFailure: Bool
        /// Seconds until the key's rate window resets, when this request is over the configured rate.
        var rateLimitedForSeconds: Int?
    }

    private struct State {
        var stats = FakeVendorStats()
        var inFlightTotal = 0
        var fired: Set<String> = []
        var enriched: Set<String> = []
        var windows: [String: (index: Int, count: Int)] = [:]
        var generator: SeededRandom
    }

    let configuration: FakeVendorsConfiguration
    private let started = ContinuousClock.now
    private let state: Mutex<State>

    init(configuration: FakeVendorsConfiguration) {
        self.configuration = configuration
        state = Mutex(State(generator: SeededRandom(seed: configuration.seed)))
    }

    /// Counts a request in and draws its delay and random failure; pair with `leave(_:)`.
    func arrive(key: String, vendor: Vendor) -> Arrival {
        let keyID = FakeVendors.keyID(key)
        let elapsed = ContinuousClock.now - started
        let milliseconds = Int(
            elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
        return state.withLock { state in
            state.stats.requests += 1
            state.inFlightTotal += 1
            state.stats.maxInFlight = max(state.stats.maxInFlight, state.inFlightTotal)
            var books = state.stats.keys[keyID] ?? .init()
            books.requests += 1
            books.requestsByVendor[vendor.rawValue, default: 0] += 1
            books.inFlight += 1
            books.maxInFlight = max(books.maxInFlight, books.inFlight)
            if books.arrivalMilliseconds.count < FakeVendorStats.maxArrivals {
                books.arrivalMilliseconds.append(milliseconds)
            }
            state.stats.keys[keyID] = books

            var arrival = Arrival(
                keyID: keyID, delayMilliseconds: configuration.latencyMilliseconds, randomFailure: false)
            if configuration.jitterMilliseconds > 0 {
                arrival.delayMilliseconds += Int(state.generator.next() % UInt64(configuration.jitterMilliseconds + 1))
            }
            if configuration.failureRate > 0 {
                arrival.randomFailure = state.generator.nextUnit() < configuration.failureRate
            }
            if let limit = configuration.rateLimit {
                // Fixed one-second windows from the server's start, per key and vendor (each vendor limits its own keys).
                let window = keyID + "|" + vendor.rawValue
                let index = milliseconds / 1000
                var current = state.windows[window] ?? (index, 0)
                if current.index != index { current = (index, 0) }
                current.count += 1
                state.windows[window] = current
                if current.count > limit { arrival.rateLimitedForSeconds = 1 }
            }
            return arrival
        }
    }

    /// Counts a request out.
    func leave(_ keyID: String) {
        state.withLock { state in
            state.inFlightTotal = max(0, state.inFlightTotal - 1)
            if var books = state.stats.keys[keyID] {
                books.inFlight = max(0, books.inFlight - 1)
                state.stats.keys[keyID] = books
            }
        }
    }

    /// True the first time it is asked for this trap; later calls are answered normally.
    func fireOnce(_ trap: String) -> Bool {
        state.withLock { $0.fired.insert(trap).inserted }
    }

    /// Records a Prospeo enrichment; true when this key had already enriched this record (free, like Prospeo).
    func enrichAgain(keyID: String, record: String) -> Bool {
        state.withLock { !$0.enriched.insert(keyID + "|" + record).inserted }
    }

    /// Adds credits charged to a key.
    func charge(keyID: String, vendor: Vendor, credits: Int) {
        guard credits > 0 else { return }
        state.withLock { state in
            var books = state.stats.keys[keyID] ?? .init()
            books.credits += credits
            books.creditsByVendor[vendor.rawValue, default: 0] += credits
            state.stats.keys[keyID] = books
        }
    }

    var stats: FakeVendorStats {
        state.withLock { $0.stats }
    }

    /// Forgets everything, as if the server had just started (requests in flight stay counted until they end).
    func reset() {
        state.withLock { state in
            var fresh = State(generator: SeededRandom(seed: configuration.seed))
            fresh.inFlightTotal = state.inFlightTotal
            for (keyID, books) in state.stats.keys where books.inFlight > 0 {
                var kept = FakeVendorStats.Key()
                kept.inFlight = books.inFlight
                kept.maxInFlight = books.inFlight
                fresh.stats.keys[keyID] = kept
            }
            fresh.stats.maxInFlight = state.inFlightTotal
            state = fresh
        }
    }
}
