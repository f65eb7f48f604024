public import Events
public import Foundation

/// Reading a stream to decide a command.
extension EventStore {
    /// The whole stream, in version order, read a page at a time.
    public func readAll(_ stream: StreamName) async throws -> [RecordedEvent] {
        var events: [RecordedEvent] = []
        while true {
            let page = try await read(stream: stream, from: Int64(events.count) + 1, limit: 1000)
            events += page
            if page.count < 1000 { return events }
        }
    }

    /// The stream's events when it exists and belongs to `tenant`; nil otherwise. Callers answer both cases
    /// alike, so another tenant's stream is indistinguishable from a missing one.
    public func readAll(_ stream: StreamName, ownedBy tenant: UUID) async throws -> [RecordedEvent]? {
        let events = try await readAll(stream)
        guard let first = events.first, first.tenantID == tenant else { return nil }
        return events
    }
}
