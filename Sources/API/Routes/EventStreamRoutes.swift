import Commands
import Events
import Foundation
import Hummingbird
import Logging
import Projections
import ServiceLifecycle

/// Live progress as Server-Sent Events: `GET /v1/runs/{id}/events` (one run) and `GET /v1/events` (every
/// run and workflow event of the tenant).
///
/// - Each event's `id` is opaque (its feed position, sealed for the tenant): a client that reconnects with
///   `Last-Event-ID` continues exactly after the last event it saw, on any instance. Without it, a run's
///   stream starts with the run's history; the tenant's stream starts now.
/// - Nothing is dropped: frames pass through a small bounded queue, and while the client does not read, the
///   feed is not read either.
/// - The key and the tenant are checked before every frame and at least every `checkInterval`: a revoked,
///   expired or rotated-out key, a suspended or erased tenant ends the stream with an `end` event naming the
///   reason. So do the stream's lifetime (`APISettings.streamLifetime`) and graceful shutdown; after those two
///   the client reconnects with `Last-Event-ID`.
/// - A comment line every 15 seconds keeps proxies from closing an idle stream.
/// - Each key and tenant may hold the plan's number of streams open on an instance (`keyStreams`,
///   `tenantStreams`); beyond that the request is a 429 like any other limit.
struct EventStreamRoutes {
    let services: APIServices

    static let checkInterval: Duration = .milliseconds(250)
    static let keepaliveInterval: Duration = .seconds(15)

    func run(_ request: Request, _ context: TallyContext) async throws -> Response {
        let principal = try context.tenant
        let id = try context.uuidParameter("id", "run")
        let stream = StreamName.run(id)
        let resume = try lastEventID(request, tenant: principal.tenantID)
        guard let history = try await services.store.readAll(stream, ownedBy: principal.tenantID),
            let last = history.last
        else { throw Problem.notFound("run") }
        let slot = try acquireSlot(principal)
        return respond(
            principal, slot: slot, replay: resume == nil ? history : [], from: resume ?? last.feedPosition,
            filter: FeedFilter(tenantID: principal.tenantID, categories: ["run"])
        ) { $0.stream == stream }
    }

    func tenant(_ request: Request, _ context: TallyContext) async throws -> Response {
        let principal = try context.tenant
        let resume = try lastEventID(request, tenant: principal.tenantID)
        let start: FeedPosition
        if let resume {
            start = resume
        } else {
            start = try await services.store.head()
        }
        let slot = try acquireSlot(principal)
        return respond(
            principal, slot: slot, replay: [], from: start,
            filter: FeedFilter(tenantID: principal.tenantID, categories: ["run", "workflow"])
        ) { _ in true }
    }

    func lastEventID(_ request: Request, tenant: UUID) throws -> FeedPosition? {
        guard let text = request.headers[.lastEventID] else { return nil }
        guard let position = services.streamEventIDs.position(from: text, tenant: tenant) else {
            throw Problem(
                .badRequest, "invalid-last-event-id", title: "Invalid Last-Event-ID",
                detail: "Last-Event-ID must be the id of an event this API streamed to this tenant.",
                errors: [.init(detail: "not an event id of this API for this tenant", header: "Last-Event-ID")])
        }
        return position
    }

    private func acquireSlot(_ principal: TenantPrincipal) throws -> StreamSlots.Slot {
        let plan = services.plan(principal.plan)
        switch services.streams.acquire(
            key: principal.keyID, tenant: principal.tenantID, keyLimit: plan.keyStreams, tenantLimit: plan.tenantStreams
        )
        {
        case .success(let slot):
            return slot
        case .failure(let refusal):
            var fields = RateLimitFields()
            fields.policy(.keyStreams, quota: plan.keyStreams)
            fields.policy(.tenantStreams, quota: plan.tenantStreams)
            let (policy, detail) =
                switch refusal {
                case .key:
                    (
                        RateLimitFields.Policy.keyStreams,
                        "This key holds the plan's \(plan.keyStreams) open event streams; close one first."
                    )
                case .tenant:
                    (
                        RateLimitFields.Policy.tenantStreams,
                        "The tenant's keys hold the plan's \(plan.tenantStreams) open event streams; close one first."
                    )
                }
            fields.limit(policy, remaining: 0)
            services.metrics.rateLimited(policy: policy.rawValue)
            throw Problem.quotaExceeded([policy.rawValue], retryAfter: 5, fields: fields, detail: detail)
        }
    }

    private func respond(
        _ principal: TenantPrincipal, slot: StreamSlots.Slot, replay: [RecordedEvent], from start: FeedPosition,
        filter: FeedFilter, include: @escaping @Sendable (RecordedEvent) -> Bool
    ) -> Response {
        let services = services
        let body = ResponseBody { writer in
            let queue = FrameQueue()
            let opened = ContinuousClock.now
            /// Nil while the key and the tenant may go on reading; else the `end` frame that says why not.
            @Sendable func refusal() -> String? {
                switch services.keys.standing(keyID: principal.keyID) {
                case .valid(let tenant, _, _) where tenant == principal.tenantID: return nil
                case .valid: return Self.end("unauthorized", "The API key is not valid.")
                case .rejected(let reason): return Self.end("unauthorized", reason)
                case .parked: return Self.end("parked", "This key's state is unknown; reconnect later.")
                }
            }
            let producer = Task {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        do {
                            let subscription = services.store.subscribe(from: start, filter: filter, pageSize: 200)
                            for event in replay {
                                if let end = refusal() { return queue.end(end, discardQueued: true) }
                                guard await queue.send(try Self.frame(event, principal, services)) else { return }
                            }
                            for try await event in subscription where include(event) {
                                if let end = refusal() { return queue.end(end, discardQueued: true) }
                                guard await queue.send(try Self.frame(event, principal, services)) else { return }
                            }
                            queue.end()
                        } catch {
                            if !Task.isCancelled {
                                services.logger.warning("event stream failed", metadata: ["error": "\(error)"])
                            }
                            queue.end(Self.end("error", "The stream stopped; reconnect with Last-Event-ID."))
                        }
                    }
                    group.addTask {
                        var keepalive = ContinuousClock.now + Self.keepaliveInterval
                        while !queue.isEnded, !Task.isCancelled {
                            try? await Task.sleep(for: Self.checkInterval)
                            if let end = refusal() { return queue.end(end, discardQueued: true) }
                            if ContinuousClock.now - opened >= services.settings.streamLifetime {
                                return queue.end(
                                    Self.end(
                                        "lifetime",
                                        "Streams last at most \(services.settings.streamLifetime); reconnect with Last-Event-ID."
                                    ))
                            }
                            if ContinuousClock.now >= keepalive {
                                queue.offer(": keepalive\n\n")
                                keepalive = ContinuousClock.now + Self.keepaliveInterval
                            }
                        }
                    }
                    await group.next()
                    await group.next()
                }
            }
            defer {
                queue.end()
                producer.cancel()
                slot.release()
            }
            try await withGracefulShutdownHandler {
                try await writer.write(ByteBuffer(string: ": stream open\n\n"))
                while let frame = await queue.next() {
                    try await writer.write(ByteBuffer(string: frame))
                }
            } onGracefulShutdown: {
                queue.end(Self.end("shutdown", "The server is restarting; reconnect with Last-Event-ID."))
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-store", .init("X-Accel-Buffering")!: "no"],
            body: body)
    }

    /// The last frame: `event: end` with a reason (`unauthorized`, `parked`, `lifetime`, `shutdown`, `error`).
    static func end(_ reason: String, _ detail: String) -> String {
        let data =
            (try? JSON.encode(["reason": reason, "detail": detail])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return "event: end\ndata: \(data)\n\n"
    }

    /// An event as a frame: its payload as the API writes ids (lower case), without what only the platform
    /// needs (which worker claimed a step, and with which fencing token).
    static func frame(_ event: RecordedEvent, _ principal: TenantPrincipal, _ services: APIServices) throws -> String {
        let payload = try services.store.catalog.currentJSON(event)
        let cleaned = try TenantView.payload(payload, type: event.type)
        let data =
            #"{"data":\#(String(decoding: cleaned, as: UTF8.self)),"recordedAt":"\#(JSON.timestamp(event.recordedAt))","stream":"\#(event.stream)","type":"\#(event.type)","version":\#(event.streamVersion)}"#
        let id = services.streamEventIDs.id(for: event.feedPosition, tenant: principal.tenantID)
        return "id: \(id)\nevent: \(event.type)\ndata: \(data)\n\n"
    }
}

/// What a tenant may see of an event's payload.
enum TenantView {
    /// Fields only the platform needs, by event type.
    static let platformFields: [String: Set<String>] = ["StepStarted": ["workerId", "fencingToken"]]

    /// The payload without the platform's fields, ids (`…ID`/`…Id` fields holding a UUID) in lower case.
    static func payload(_ json: [UInt8], type: String) throws -> [UInt8] {
        guard
            var object = try JSONSerialization.jsonObject(with: Data(json), options: [.fragmentsAllowed])
                as? [String: Any]
        else { return json }
        for field in platformFields[type] ?? [] { object[field] = nil }
        let cleaned = lowerCasingIDs(object, key: nil)
        return Array(
            try JSONSerialization.data(withJSONObject: cleaned, options: [.sortedKeys, .withoutEscapingSlashes]))
    }

    private static func lowerCasingIDs(_ value: Any, key: String?) -> Any {
        switch value {
        case let object as [String: Any]:
            return object.reduce(into: [String: Any]()) { $0[$1.key] = lowerCasingIDs($1.value, key: $1.key) }
        case let array as [Any]:
            return array.map { lowerCasingIDs($0, key: key) }
        case let text as String:
            guard let key, key == "id" || key.hasSuffix("ID") || key.hasSuffix("Id") || key.hasSuffix("IDs"),
                UUID(uuidString: text) != nil
            else { return text }
            return text.lowercased()
        default:
            return value
        }
    }
}

extension EventStreamRoutes {
    /// The Server-Sent Event streams, under `/v1`.
    func addRoutes(to tenant: RouterGroup<TallyContext>) {
        tenant.get("/runs/{id}/events", use: run)
        tenant.get("/events", use: self.tenant)
    }
}
