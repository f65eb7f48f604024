import API
import ArgumentParser
import Events
import Foundation
import Hummingbird
import Logging
import Projections
import ServiceLifecycle
import UnixSignals

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the HTTP API and the projection runner (each can be turned off to scale them separately).",
        discussion: """
            Environment (the names are the contract; a flag, where there is one, wins):
              DATABASE_URL                  libpq URL of the database (a pooler in transaction mode is fine).
              TALLY_DIRECT_DATABASE_URL     a direct session URL beside a pooled DATABASE_URL, for LISTEN and
                                            leadership; without it, readers poll.
              TALLY_SCHEMA                  the schema of every Tally object (default tally).
              TALLY_MIGRATE_DATABASE_URL    the schema owner's URL, for --migrate while DATABASE_URL is the
                                            service's own login.
              TALLY_POOL_MODE               auto (default), transaction or session: what DATABASE_URL reaches.
              TALLY_LEADER_LEASE_SECONDS    how long a projection's leader lease lasts unrenewed: a leader that
                                            died or froze is replaced within it (default 10).
              TALLY_LISTEN                  host:port to listen on (default 127.0.0.1:8080).
              TALLY_OPERATOR_TOKEN          bearer token of the operator endpoints; at least 32 characters.
              TALLY_KEY_PEPPER              secret under which API keys are hashed; at least 32 characters.
                                            Changing it invalidates every issued key.
              TALLY_PLANS_FILE              JSON file of plans ({"plans": [...]}, see docs/api.md); default:
                                            free, pro and enterprise.
              TALLY_MASTER_KEY, TALLY_MASTER_KEY_FILE
                                            master key of the sealed vendor secrets (64 hex digits); without
                                            it PUT /v1/vendor-secrets/{vendor} answers 503.
              TALLY_STRIPE_WEBHOOK_SECRETS  signing secrets of the Stripe webhook endpoint, comma-separated
                                            whsec_... (two while one is rolled); without them
                                            POST /webhooks/stripe refuses every delivery (503).
              TALLY_VENDOR_BASE_URLS        vendor=url,... overrides of the vendors' base URLs; checked when given.
            A missing or weak secret is a refusal to start; --development instead generates throwaway ones
            (printed nowhere) so that a laptop can run the service without configuration.
            Several processes may run against one database and behave as one system: each projection is
            applied by one of them at a time (the holder of its lease), keys and plans reach every instance
            through the log. SIGTERM or SIGINT stops gracefully: the listener closes, requests in flight
            finish, live event streams end, counted API calls are appended, then the process exits 0.
            """)

    @OptionGroup var database: DatabaseOptions

    @Option(help: "host:port to listen on (default: $TALLY_LISTEN or 127.0.0.1:8080).")
    var listen: String?

    @Flag(inversion: .prefixedNo, help: "Serve the HTTP API in this process.")
    var api = true

    @Flag(inversion: .prefixedNo, help: "Run the projection runner in this process.")
    var projections = true

    @Flag(help: "Generate throwaway secrets that are not configured instead of refusing to start.")
    var development = false

    @Flag(help: "Migrate first (as $TALLY_MIGRATE_DATABASE_URL when set), creating the projections' tables.")
    var migrate = false

    func run() async throws {
        var logger = Logger(label: "tally")
        logger.logLevel = .info
        let environment = ProcessEnvironment.values
        guard api || projections else { throw ValidationError("--no-api and --no-projections leave nothing to run.") }
        var settings = try ServeSettings.resolve(
            environment: environment, listen: listen, development: development, logger: logger)
        settings.masterKey = try ServeSettings.checkMasterKey(environment)
        if migrate {
            let migrator = try database.makeMigrator()
            do {
                let applied = try await Migrate.apply(migrator)
                logger.info("migrated", metadata: ["applied": "\(applied.count)", "schema": "\(migrator.schema)"])
            } catch {
                reportError(error)
                throw ExitCode(1)
            }
        }
        let store = try database.makeStore(applicationName: "tally-serve", maxConnections: 32)
        defer { store.close() }
        try await refuseRestoredDatabase(store)

        // One group; graceful shutdown runs in reverse order: the HTTP server drains first, then the API's
        // background work (the usage meter flushes, unspent quota goes back), then the runner (between batches).
        var services: [any Service] = []
        if projections {
            services.append(
                ProjectionRunner(
                    store: store, projections: ProductProjections.all,
                    options: .init(leaseDuration: try database.resolvedLeaderLease()), logger: logger))
        }
        if api {
            let apiServices = await APIServices.start(settings: settings, store: store, logger: logger)
            services.append(apiServices)
            services.append(buildApplication(services: apiServices, logger: logger))
        }
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }
}

/// The settings of `tally serve`, validated from the environment.
enum ServeSettings {
    static func resolve(environment: [String: String], listen: String?, development: Bool, logger: Logger) throws
        -> APISettings
    {
        let listenText = listen ?? environment["TALLY_LISTEN"] ?? "127.0.0.1:8080"
        guard let (host, port) = APISettings.parseListen(listenText) else {
            throw ValidationError("TALLY_LISTEN / --listen must be host:port, got \(listenText)")
        }
        func secret(_ name: String) throws -> String {
            if let value = environment[name], !value.isEmpty {
                guard value.count >= 32 else { throw ValidationError("\(name) must be at least 32 characters.") }
                return value
            }
            guard development else {
                throw ValidationError(
                    "\(name) is not set; refusing to start without it (use --development for throwaway values).")
            }
            logger.warning(
                "generated a throwaway secret; it lasts until this process exits", metadata: ["secret": "\(name)"])
            return Sodium.hex(Sodium.randomBytes(32))
        }
        let operatorToken = try secret("TALLY_OPERATOR_TOKEN")
        let pepper = try secret("TALLY_KEY_PEPPER")
        var plans = Plans.defaults
        if let path = environment["TALLY_PLANS_FILE"], !path.isEmpty {
            do {
                plans = try Plans(contentsOf: path)
            } catch {
                throw ValidationError("TALLY_PLANS_FILE: \(error)")
            }
        }
        try checkMasterKey(environment)
        let stripeSecrets = (environment["TALLY_STRIPE_WEBHOOK_SECRETS"] ?? "").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard stripeSecrets.allSatisfy({ $0.hasPrefix("whsec_") && $0.utf8.count > 6 }) else {
            throw ValidationError(
                "TALLY_STRIPE_WEBHOOK_SECRETS must be comma-separated secrets that start with whsec_.")
        }
        if stripeSecrets.isEmpty {
            logger.notice("TALLY_STRIPE_WEBHOOK_SECRETS is not set: POST /webhooks/stripe refuses every delivery (503)")
        }
        if let urls = environment["TALLY_VENDOR_BASE_URLS"], !urls.isEmpty {
            for pair in urls.split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2, Vendor(rawValue: parts[0]) != nil, let url = URL(string: parts[1]),
                    ["http", "https"].contains(url.scheme ?? ""), url.host != nil
                else {
                    throw ValidationError(
                        "TALLY_VENDOR_BASE_URLS must be vendor=url pairs separated by commas (vendors: prospeo, findymail, zerobounce)."
                    )
                }
            }
        }
        return APISettings(
            host: host, port: port, operatorToken: operatorToken, keyPepper: Array(pepper.utf8), plans: plans,
            stripeWebhookSecrets: stripeSecrets)
    }

    /// The master key from TALLY_MASTER_KEY or TALLY_MASTER_KEY_FILE; nil when neither is set.
    @discardableResult
    static func checkMasterKey(_ environment: [String: String]) throws -> MasterKey? {
        var value = environment["TALLY_MASTER_KEY"]
        if let path = environment["TALLY_MASTER_KEY_FILE"], !path.isEmpty {
            guard value == nil else {
                throw ValidationError("Set TALLY_MASTER_KEY or TALLY_MASTER_KEY_FILE, not both.")
            }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ValidationError("TALLY_MASTER_KEY_FILE: cannot read \(path).")
            }
            value = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard let value, !value.isEmpty else { return nil }
        guard let key = try? MasterKey(hex: value) else {
            throw ValidationError("The master key must be 64 hex digits (32 bytes); its value is not shown.")
        }
        return key
    }
}
