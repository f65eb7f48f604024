import Events
import Foundation
import Hummingbird
import ServiceLifecycle

/// Live progress as Server-Sent Events: `GET /v1/runs/{id}/events` (one run) and `GET /v1/events` (every
/// run and workflow event of the tenant). Each event's `id` is its feed position, so a client that
/// reconnects with `Last-Event-ID` continues exactly after the last event it saw. Without it, a run's
/// stream starts with the run's history; the tenant's stream starts now. A comment line every 15 seconds
/// keeps proxies from closing an idle stream; graceful shutdown ends the streams.
struct EventStreamRoutes {
    let services: APIServices

    func run(_ request: Request, _ context: TallyContext) async throws -> Response {
        let principal = try context.tenant
        let id = try context.uuidParameter("id", "run")
        let stream = StreamName.run(id)
        guard let history = try await services.store.readAll(stream, ownedBy: principal.tenantID) else { throw Problem.notFound("run") }
        let resume = try Self.lastEventID(request)
        let replay = resume == nil ? history : []
        let start = resume ?? history.last!.feedPosition
        return respond(replay: replay, from: start, filter: FeedFilter(tenantID: principal.tenantID, categories: ["run"])) { $0.stream == stream }
    }

    func tenant(_ request: Request, _ context: TallyContext) async throws -> Response {
        let principal = try context.tenant
        let start: FeedPosition
        if let resume = try Self.lastEventID(request) {
            start = resume
        } else {
            start = try await services.store.head()
        }
        return respond(replay: [], from: start, filter: FeedFilter(tenantID: principal.tenantID, categories: ["run", "workflow"])) { _ in true }
    }

    static func lastEventID(_ request: Request) throws -> FeedPosition? {
        guard let text = request.headers[.lastEventID] else { return nil }
        guard let position = FeedPosition(text) else {
            throw Problem(
                .badRequest, "invalid-last-event-id", title: "Invalid Last-Event-ID",
                detail: "Last-Event-ID must be an id this stream sent (transaction/position).",
                errors: [.init(detail: "not an event id of this API", header: "Last-Event-ID")])
        }
        return position
    }

    private func respond(
        replay: [RecordedEvent], from start: FeedPosition, filter: FeedFilter, include: @escaping @Sendable (RecordedEvent) -> Bool
    ) -> Response {
        let store = services.store
        let body = ResponseBody { writer in
            let (lines, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingOldest(10_000))
            let producer = Task {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        do {
                            for event in replay { continuation.yield(try Self.frame(event, store: store)) }
                            for try await event in store.subscribe(from: start, filter: filter, pageSize: 200) where include(event) {
                                continuation.yield(try Self.frame(event, store: store))
                            }
                        } catch {
                            continuation.yield(": the stream stopped; reconnect with Last-Event-ID\n\n")
                        }
                        continuation.finish()
                    }
                    group.addTask {
                        while !Task.isCancelled {
                            try? await Task.sleep(for: .seconds(15))
                            continuation.yield(": keepalive\n\n")
                        }
                    }
                    await group.next()
                    group.cancelAll()
                }
            }
            continuation.onTermination = { _ in producer.cancel() }
            defer { producer.cancel() }
            try await withGracefulShutdownHandler {
                try await writer.write(ByteBuffer(string: ": stream open\n\n"))
                for await line in lines {
                    try await writer.write(ByteBuffer(string: line))
                }
            } onGracefulShutdown: {
                continuation.finish()
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store", .init("X-Accel-Buffering")!: "no"],
            body: body)
    }

    private static func frame(_ event: RecordedEvent, store: EventStore) throws -> String {
        let payload = String(decoding: try store.catalog.currentJSON(event), as: UTF8.self)
        let data =
            #"{"data":\#(payload),"position":"\#(event.feedPosition)","recordedAt":"\#(JSON.timestamp(event.recordedAt))","stream":"\#(event.stream)","type":"\#(event.type)","version":\#(event.streamVersion)}"#
        return "id: \(event.feedPosition)\nevent: \(event.type)\ndata: \(data)\n\n"
    }
}
