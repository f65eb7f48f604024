public import Events
import Foundation

/// The one place where a command becomes events. Each command reads the streams it decides on, decides
/// (or refuses with a `CommandError`), and appends at the versions it read, so a command that raced another
/// on the same stream fails with the store's `.conflict` and changes nothing. The API's routes, the Stripe
/// webhook, the CLI and the tests all call these; none of them builds these events itself.
public struct Commands: Sendable {
    /// How a command's appends reach the store, all or nothing.
    public typealias Append = @Sendable ([StreamAppend]) async throws -> [AppendResult]

    /// The log the commands read their streams from.
    public let store: EventStore
    private let appendBody: Append

    /// `append` is how the appends reach the store (the API times them); the store's own by default.
    public init(store: EventStore, append: Append? = nil) {
        self.store = store
        self.appendBody = append ?? { try await store.append($0) }
    }

    /// Appends `appends` carrying `events`, all or nothing.
    func append(_ appends: [StreamAppend], events: [any DomainEvent]) async throws -> Applied {
        let results = try await appendBody(appends)
        return Applied(events: events, positions: results.flatMap(\.feedPositions))
    }

    /// One event on one stream at `expected`.
    func append(
        _ event: any DomainEvent, to stream: StreamName, tenant: UUID, expected: ExpectedVersion,
        metadata: EventMetadata
    ) async throws -> Applied {
        try await append(
            [
                StreamAppend(
                    stream: stream, tenantID: tenant, expected: expected,
                    events: [try EventCatalog.tally.encode(event, metadata: metadata)])
            ], events: [event])
    }
}
