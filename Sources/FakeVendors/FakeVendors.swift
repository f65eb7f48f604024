import Events
import Foundation
import HTTPTypes
import Hummingbird
public import Logging
import NIOCore
import ServiceLifecycle

/// A fake of Prospeo, Findymail and ZeroBounce on one port, answering in the vendors' own shapes with outcomes
/// chosen by the input (docs/fake-vendors.md has the table). Tests start it in-process; `tally fake-vendors` runs it.
public final class FakeVendors: Sendable {
    /// The port it listens on (the one picked when the configuration asked for port 0).
    public let port: Int
    /// What it was started with.
    public let configuration: FakeVendorsConfiguration
    private let books: FakeVendorBooks
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    private init(
        port: Int, configuration: FakeVendorsConfiguration, books: FakeVendorBooks, group: ServiceGroup,
        task: Task<Void, any Error>
    ) {
        self.port = port
        self.configuration = configuration
        self.books = books
        self.group = group
        self.task = task
    }

    /// The base URL to give `VendorEndpoints.fake(_:)`, e.g. "http://127.0.0.1:9100".
    public var baseURL: String {
        let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
        return "http://\(host):\(port)"
    }

    /// Starts listening and returns once the port is bound; throws when the configuration is unusable or the
    /// address cannot be bound.
    public static func start(
        _ configuration: FakeVendorsConfiguration, logger: Logger = Logger(label: "tally.fake-vendors")
    ) async throws -> FakeVendors {
        let problems = configuration.problems
        guard problems.isEmpty else { throw FakeVendorsError(problems.joined(separator: "; ")) }
        let books = FakeVendorBooks(configuration: configuration)
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let application = Application(
            router: buildRouter(books: books),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port), serverName: "tally-fake-vendors"),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            },
            logger: logger)
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: application)], gracefulShutdownSignals: [], logger: logger))
        let task = Task {
            defer { continuation.finish() }
            try await group.run()
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            try await task.value
            throw FakeVendorsError("the server stopped before it listened")
        }
        return FakeVendors(port: port, configuration: configuration, books: books, group: group, task: task)
    }

    /// Stops listening after the requests in flight are answered.
    public func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }

    /// Waits until the server stops (after `stop()`), rethrowing what stopped it otherwise.
    public func wait() async throws {
        try await task.value
    }

    /// What the server has seen since it started or was last reset (also `GET /__fake/stats`).
    public func stats() -> FakeVendorStats {
        books.stats
    }

    /// Forgets the stats, the one-shot traps already fired, the enriched records and the credits charged, and
    /// re-seeds the generator (also `POST /__fake/reset`).
    public func reset() {
        books.reset()
    }

    /// How the stats name a key: the first 12 hex digits of its SHA-256, so the key itself is never shown.
    public static func keyID(_ key: String) -> String {
        String(Sodium.hex(Sodium.sha256(Array(key.utf8))).prefix(12))
    }
}

/// Why the fake vendor server could not start.
public struct FakeVendorsError: Error, CustomStringConvertible {
    /// What went wrong.
    public var description: String

    init(_ description: String) { self.description = description }
}
