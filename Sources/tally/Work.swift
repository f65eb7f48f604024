import ArgumentParser
import Events
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals
import Workers

struct Work: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a worker: claim due steps under flow control, call the vendors, commit the outcomes.",
        discussion: """
            Environment:
              DATABASE_URL                  libpq URL of the database (a pooler in transaction mode is fine).
              TALLY_DIRECT_DATABASE_URL     a direct session URL beside a pooled DATABASE_URL, for LISTEN and
                                            leadership; without it, readers poll.
              TALLY_SCHEMA                  the schema of every Tally object (default tally).
              TALLY_POOL_MODE               auto (default), transaction or session: what DATABASE_URL reaches.
              TALLY_LEADER_LEASE_SECONDS    how long the dispatcher's leader lease lasts unrenewed (default 10).
              TALLY_MASTER_KEY, TALLY_MASTER_KEY_FILE
                                            master key of the sealed vendor secrets (64 hex digits); required.
              TALLY_VENDOR_BASE_URLS        vendor=url,... overrides of the vendors' base URLs (prospeo,
                                            findymail, zerobounce); --vendors-url sets all three at once.
            Any number of workers may run against one database, on any hosts: flow control lives in
            PostgreSQL, one of them at a time follows the log into the run queue, and a step whose worker died
            is claimed again when its lease runs out (the fencing token keeps the late worker from committing).
            SIGTERM or SIGINT stops gracefully: no new claims, calls in flight finish and are committed.
            """)

    @OptionGroup var database: DatabaseOptions

    @Option(help: "Vendor calls in flight in this process at most.")
    var slots: Int = 64

    @Option(help: "Seconds a claim holds a step; must exceed the call timeout by at least 2 s.")
    var leaseSeconds: Double = 30

    @Option(help: "Seconds a vendor call may take before it counts as a transient failure.")
    var callTimeoutSeconds: Double = 20

    @Option(help: "Milliseconds of the first retry's backoff (doubling per failure, with jitter).")
    var retryBaseMs: Int = 500

    @Option(help: "One base URL for all three vendors (the fake vendor server's).")
    var vendorsURL: String?

    @Option(help: "This worker's name in StepStarted events (default: host pid=N).")
    var workerID: String?

    @Flag(inversion: .prefixedNo, help: "Take part in following the log into the run queue.")
    var dispatch = true

    func validate() throws {
        guard (1...10_000).contains(slots) else { throw ValidationError("--slots must be between 1 and 10000.") }
        guard callTimeoutSeconds > 0, leaseSeconds >= callTimeoutSeconds + 2 else {
            throw ValidationError("--lease-seconds must exceed --call-timeout-seconds by at least 2 s.")
        }
        guard retryBaseMs > 0 else { throw ValidationError("--retry-base-ms must be positive.") }
    }

    func run() async throws {
        var logger = Logger(label: "tally.worker")
        logger.logLevel = .info
        let environment = ProcessEnvironment.values
        guard let masterKey = try ServeSettings.checkMasterKey(environment) else {
            throw ValidationError(
                "TALLY_MASTER_KEY or TALLY_MASTER_KEY_FILE must be set: workers open the tenants' vendor keys.")
        }
        let endpoints = try Self.endpoints(environment: environment, vendorsURL: vendorsURL)
        let store = try database.makeStore(applicationName: "tally-work", maxConnections: 8)
        defer { store.close() }
        try await refuseRestoredDatabase(store)
        let caller = VendorCaller(endpoints: endpoints, timeout: .milliseconds(Int64(callTimeoutSeconds * 1000)))
        let worker = Worker(
            store: store, masterKey: masterKey, caller: caller,
            configuration: WorkerConfiguration(
                workerID: workerID ?? WorkerConfiguration.defaultWorkerID, slots: slots,
                lease: .milliseconds(Int64(leaseSeconds * 1000)),
                backoff: .init(base: .milliseconds(retryBaseMs)), dispatch: dispatch,
                leaderLease: try database.resolvedLeaderLease()),
            logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: worker)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
        try await caller.shutdown()
        let stats = worker.stats
        logger.info(
            "worker done",
            metadata: ["claimed": "\(stats.claimed)", "committed": "\(stats.committed)", "fenced": "\(stats.fenced)"])
    }

    /// The vendors' base URLs: production, then TALLY_VENDOR_BASE_URLS, then --vendors-url.
    static func endpoints(environment: [String: String], vendorsURL: String?) throws -> VendorEndpoints {
        func checked(_ text: String, _ what: String) throws -> String {
            guard let url = URL(string: text), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw ValidationError("\(what) must be an http or https URL.")
            }
            return text.hasSuffix("/") ? String(text.dropLast()) : text
        }
        var endpoints = VendorEndpoints.production
        if let pairs = environment["TALLY_VENDOR_BASE_URLS"], !pairs.isEmpty {
            for pair in pairs.split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2, let vendor = Vendor(rawValue: parts[0]) else {
                    throw ValidationError(
                        "TALLY_VENDOR_BASE_URLS must be vendor=url pairs separated by commas (vendors: prospeo, findymail, zerobounce)."
                    )
                }
                let url = try checked(parts[1], "TALLY_VENDOR_BASE_URLS")
                switch vendor {
                case .prospeo: endpoints.prospeo = url
                case .findymail: endpoints.findymail = url
                case .zerobounce: endpoints.zerobounce = url
                }
            }
        }
        if let vendorsURL { endpoints = .fake(try checked(vendorsURL, "--vendors-url")) }
        return endpoints
    }
}
