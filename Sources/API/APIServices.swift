import Commands
public import Events
public import Foundation
public import Logging
public import Projections
import Prometheus
public import ServiceLifecycle

/// What the API needs to start, validated by `tally serve`.
public struct APISettings: Sendable {
    /// Interface to bind (`127.0.0.1`, `0.0.0.0`).
    public var host: String
    public var port: Int
    public var operatorToken: String
    public var keyPepper: [UInt8]
    public var plans: Plans
    /// Names this process in the usage events it appends.
    public var instanceID: String
    /// How long a command waits for the projection it changed, so that a read right after it sees it.
    public var consistencyTimeout: Duration
    /// How long a rotated key keeps working.
    public var rotationGrace: Duration
    /// `/readyz` fails when a projection is further behind than this.
    public var readyLagSeconds: Double = 30
    /// How long a Server-Sent Event stream stays open before it ends (`event: end`, reason `lifetime`) and the
    /// client reconnects with `Last-Event-ID`: a stream's key and plan are checked again on the way in, and no
    /// connection stays pinned to one instance forever.
    public var streamLifetime: Duration = .seconds(3600)
    /// The Stripe webhook endpoint's signing secrets (`whsec_...`, `TALLY_STRIPE_WEBHOOK_SECRETS`); a
    /// signature under any of them is accepted, so that a secret can be rolled. Empty: the endpoint refuses
    /// every delivery (503).
    public var stripeWebhookSecrets: [String]
    /// How far a Stripe signature's timestamp may be from now, in the past or the future.
    public var stripeSignatureTolerance: Duration = .seconds(300)
    /// The clock Stripe signature timestamps are checked against (tests move it).
    public var now: @Sendable () -> Date = { Date() }
    /// Wraps the tenants' data keys that seal vendor secrets; without it storing a vendor secret answers 503.
    public var masterKey: MasterKey?

    public init(
        host: String = "127.0.0.1", port: Int = 8080, operatorToken: String, keyPepper: [UInt8],
        plans: Plans = .defaults,
        instanceID: String = "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)",
        consistencyTimeout: Duration = .seconds(2), rotationGrace: Duration = .seconds(86_400),
        stripeWebhookSecrets: [String] = []
    ) {
        self.host = host
        self.port = port
        self.operatorToken = operatorToken
        self.keyPepper = keyPepper
        self.plans = plans
        self.instanceID = instanceID
        self.consistencyTimeout = consistencyTimeout
        self.rotationGrace = rotationGrace
        self.stripeWebhookSecrets = stripeWebhookSecrets
    }

    /// Parses `host:port` (`TALLY_LISTEN`); nil when malformed.
    public static func parseListen(_ listen: String) -> (host: String, port: Int)? {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(listen[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }
}

/// The API's state shared by every request: the key directory, limits, metering, metrics.
public final class APIServices: Sendable {
    let settings: APISettings
    let store: EventStore
    let database: Database
    let keys: KeyDirectory
    let limiter: RateLimiter
    let quotas: QuotaBook
    let meter: UsageMeter
    let runs: RunCache
    /// Every command the routes run (their appends are timed in `appendLatency`).
    let commands: Commands
    let metrics = APIMetrics()
    let routes = RouteTable()
    let streams = StreamSlots()
    let streamEventIDs: StreamEventIDs
    let operatorTokenDigest: [UInt8]
    /// Seals vendor secrets; nil when no master key is configured.
    let vault: SecretVault?
    let logger: Logger

    private init(settings: APISettings, store: EventStore, database: Database, logger: Logger) {
        self.settings = settings
        self.store = store
        self.database = database
        self.logger = logger
        let metrics = self.metrics
        keys = KeyDirectory(store: store, pepper: settings.keyPepper, logger: logger) { hit in
            hit ? metrics.keyCacheHits.increment() : metrics.keyCacheMisses.increment()
        }
        quotas = QuotaBook(store: store, logger: logger)
        limiter = RateLimiter(store: store, logger: logger)
        runs = RunCache(store: store, logger: logger)
        meter = UsageMeter(store: store, instanceID: settings.instanceID, logger: logger)
        operatorTokenDigest = Sodium.sha256(Array(settings.operatorToken.utf8))
        streamEventIDs = StreamEventIDs(pepper: settings.keyPepper)
        vault = settings.masterKey.map { SecretVault(pool: store.pool, masterKey: $0) }
        commands = Commands(store: store) { appends in
            let started = ContinuousClock.now
            defer { metrics.appendLatency.record(.now - started) }
            return try await store.append(appends)
        }
    }

    /// Loads the key directory. When the database is not reachable yet the API starts all the same: the
    /// directory loads as soon as it is, and until then tenant requests get 503.
    public static func start(settings: APISettings, store: EventStore, logger: Logger) async -> APIServices {
        let services = APIServices(
            settings: settings, store: store, database: Database(pool: store.pool, logger: logger), logger: logger)
        do {
            try await services.keys.load()
        } catch {
            logger.warning(
                "the key directory could not load yet; retrying in the background", metadata: ["error": "\(error)"])
        }
        return services
    }

    /// The background work until cancelled or, in a `ServiceGroup`, until graceful shutdown: following keys,
    /// refreshing quotas, flushing usage, expiring idempotency records. Flushes usage once more and gives back
    /// unspent quota chunks before it returns.
    public func run() async {
        await cancelWhenGracefulShutdown { await self.background() }
        await flushUsage()
        // What this instance took of the tenants' quotas and did not spend, for the instances that go on.
        await quotas.giveBackUnspent(idleFor: .zero)
    }

    private func background() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.keys.follow(pollInterval: self.store.configuration.pollInterval) }
            group.addTask { await self.quotas.refreshContinuously() }
            group.addTask { await self.runs.follow(pollInterval: self.store.configuration.pollInterval) }
            group.addTask { await self.meter.run() }
            group.addTask {
                await self.sweep(
                    "idempotency", every: .seconds(600),
                    "DELETE FROM idempotency_keys WHERE expires_at < now() - interval '1 hour'")
            }
            group.addTask { await self.limiter.run() }
            // Windows of the shared rate budgets that ended over a minute ago are of no use.
            group.addTask {
                await self.sweep(
                    "rate budget", every: .seconds(30), first: .seconds(30),
                    "DELETE FROM rate_budgets WHERE second < extract(epoch FROM now())::bigint - 60")
            }
            await group.waitForAll()
        }
    }

    /// Appends the API calls counted and not yet appended (graceful shutdown calls it).
    public func flushUsage() async {
        do {
            try await meter.flush()
        } catch {
            logger.error(
                "the last usage flush failed; these API calls are not metered", metadata: ["error": "\(error)"])
        }
    }

    /// Deletes what `sql` names as expired, every `interval` until cancelled (any instance may).
    private func sweep(_ what: String, every interval: Duration, first: Duration = .zero, _ sql: String) async {
        try? await Task.sleep(for: first)
        while !Task.isCancelled {
            do {
                try await database.asOperator { connection in try await connection.query(sql) }
            } catch {
                logger.warning("\(what) sweep failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// The plan by name; an unknown name (a plan removed from the configuration) gets the most restrictive one.
    func plan(_ name: String) -> Plan {
        if let plan = settings.plans[name] { return plan }
        logger.warning(
            "tenant plan is not configured; applying the most restrictive plan", metadata: ["plan": "\(name)"])
        return mostRestrictivePlan
    }

    /// The plan with the lowest tenant rate (ties broken by name, so every instance picks the same one).
    var mostRestrictivePlan: Plan {
        settings.plans.all.values.min { ($0.tenantRequestsPerSecond, $0.name) < ($1.tenantRequestsPerSecond, $1.name) }!
    }

    /// After a command: this instance's key directory applies the events at once when `toKeys` (a suspended
    /// tenant's keys stop here before the log reaches the other instances), and the answer waits until
    /// `projection` shows them, so that a read right after the command sees it.
    func applied(_ applied: Applied, projection: String, toKeys: Bool = false) async {
        if toKeys { keys.applyOwn(applied.events) }
        if let last = applied.last { await awaitProjection(projection, last) }
    }

    /// Waits until `projection` has applied `position` (so that a read right after a command sees it), at
    /// most the consistency timeout; returns whether it did.
    @discardableResult
    func awaitProjection(_ projection: String, _ position: FeedPosition) async -> Bool {
        let deadline = ContinuousClock.now + settings.consistencyTimeout
        var pause = Duration.milliseconds(2)
        while ContinuousClock.now < deadline {
            if (try? await ProjectionCheckpoints.hasApplied(projection, position, pool: store.pool)) == true {
                return true
            }
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(50))
        }
        return false
    }
}

extension APIServices: Service {}
