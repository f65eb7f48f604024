/// How the fake vendor server behaves beyond the answers chosen by the input (see docs/fake-vendors.md).
public struct FakeVendorsConfiguration: Sendable, Hashable {
    /// Address to listen on.
    public var host: String
    /// Port to listen on; 0 picks any free port (read it from `FakeVendors.port`).
    public var port: Int
    /// Added to every answer.
    public var latencyMilliseconds: Int
    /// A further delay drawn uniformly from 0...jitterMilliseconds for every answer, from the seeded generator.
    public var jitterMilliseconds: Int
    /// The fraction (0...1) of calls answered with HTTP 500, drawn from the seeded generator.
    public var failureRate: Double
    /// Seed of the generator behind `failureRate` and `jitterMilliseconds`: the same seed and the same arrival order
    /// give the same answers.
    public var seed: UInt64
    /// How long the `slow` labels sleep before answering.
    public var slowMilliseconds: Int
    /// Requests per second allowed per key and vendor; above it the vendor answers 429 (Prospeo's
    /// RATE_LIMITED_BURST). nil for no limit.
    public var rateLimit: Int?

    /// Creates a configuration; the defaults answer at once, never fail at random and have no rate limit.
    public init(
        host: String = "127.0.0.1", port: Int = 0, latencyMilliseconds: Int = 0, jitterMilliseconds: Int = 0,
        failureRate: Double = 0, seed: UInt64 = 1, slowMilliseconds: Int = 3000, rateLimit: Int? = nil
    ) {
        self.host = host
        self.port = port
        self.latencyMilliseconds = latencyMilliseconds
        self.jitterMilliseconds = jitterMilliseconds
        self.failureRate = failureRate
        self.seed = seed
        self.slowMilliseconds = slowMilliseconds
        self.rateLimit = rateLimit
    }

    /// Problems with the values, empty when they are usable.
    public var problems: [String] {
        var problems: [String] = []
        if !(0...65535).contains(port) { problems.append("port must be between 0 and 65535") }
        if latencyMilliseconds < 0 { problems.append("latency must not be negative") }
        if jitterMilliseconds < 0 { problems.append("jitter must not be negative") }
        if slowMilliseconds < 0 { problems.append("slow delay must not be negative") }
        if !(0...1).contains(failureRate) { problems.append("failure rate must be between 0 and 1") }
        if let rateLimit, rateLimit < 1 { problems.append("rate limit must be at least 1 request per second") }
        return problems
    }
}
