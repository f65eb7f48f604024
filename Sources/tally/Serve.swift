import API
import ArgumentParser
import Events
import Foundation
import Hummingbird
import Logging
import Projections

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the HTTP API and the projection runner.",
        discussion: """
            Environment: DATABASE_URL (libpq URL), TALLY_LISTEN (host:port, default 127.0.0.1:8080).
            Several processes may run against one database: each projection is applied by one of them at a
            time. Stops gracefully on SIGTERM or SIGINT.
            """)

    @OptionGroup var database: DatabaseOptions

    @Option(help: "host:port to listen on (default: $TALLY_LISTEN or 127.0.0.1:8080).")
    var listen: String?

    @Flag(inversion: .prefixedNo, help: "Run the projection runner in this process.")
    var projections = true

    func run() async throws {
        let listenText = listen ?? ProcessInfo.processInfo.environment["TALLY_LISTEN"] ?? "127.0.0.1:8080"
        guard let api = APIConfiguration(listen: listenText) else {
            throw ValidationError("TALLY_LISTEN / --listen must be host:port, got \(listenText)")
        }
        var logger = Logger(label: "tally")
        logger.logLevel = .info
        let store = try database.makeStore(applicationName: "tally-serve")
        defer { store.close() }
        let app = buildApplication(configuration: api, store: store, logger: logger)
        let runner = projections ? ProjectionRunner(store: store, projections: ProductProjections.all, logger: logger) : nil
        try await withThrowingTaskGroup(of: Void.self) { group in
            if let runner {
                group.addTask { await runner.run() }
            }
            // Returns after a graceful shutdown (SIGTERM/SIGINT); then the runner stops between batches.
            try await app.runService()
            group.cancelAll()
        }
    }
}
