import Foundation
import Hummingbird
import HummingbirdTesting
import Synchronization
import TestSupport
import Testing

@testable import API
@testable import Events
@testable import Projections

#if canImport(Glibc)
    import Glibc
#endif

/// The event streams against hostile and careless clients: revoked keys, clients that stop reading, too many
/// streams, forged ids, and what a frame shows of the platform.
@Suite("API: event streams", .timeLimit(.minutes(5)))
struct EventStreamTests {
    /// A live server (a real socket) with the projection runner and the API's background work.
    static func withLive(
        settings: APISettings = APIHarness.settings(),
        _ body: @escaping @Sendable (any TestClientProtocol, Int, EventStore) async throws -> Void
    ) async throws {
        try await APIHarness.with(settings: settings, live: true) { harness, client in
            try await body(client, try #require(client.port), harness.store)
        }
    }

    static func startRun(_ client: any TestClientProtocol, _ key: String, _ workflow: String) async throws -> String {
        let reply = try await client.call(
            .post, "/v1/runs", token: key,
            json: #"{"workflowId":"\#(workflow)","input":{"linkedinUrl":"https://www.linkedin.com/in/a"}}"#)
        #expect(reply.status == .accepted, "\(reply.text)")
        return try #require(reply["runs"]?[0]?["id"]?.stringValue)
    }

    @Test("a revoked key's stream ends with an end event and delivers nothing appended after the revocation")
    func revokedKeyEnds() async throws {
        try await Self.withLive { client, port, _ in
            let (tenant, key, keyID) = try await client.tenantWithKey("acme")
            let second = try #require(
                try await client.call(
                    .post, "/v1/admin/tenants/\(tenant)/keys", token: APIHarness.operatorToken, json: #"{"name":"b"}"#
                ).string("key"))
            let workflow = try await client.workflow(key)
            let stream = try StreamConnection(port: port, path: "/v1/events", token: key)
            defer { stream.close() }
            try await stream.waitOpen()
            let before = try await Self.startRun(client, key, workflow)
            #expect(try await stream.frames(until: { $0.event == "StepScheduled" }).count == 2)

            let revoked = try await client.call(
                .delete, "/v1/admin/tenants/\(tenant)/keys/\(keyID)", token: APIHarness.operatorToken)
            #expect(revoked.status == .noContent)
            let revokedAt = ContinuousClock.now
            // A run started with the tenant's other key while the stream is being read: never streamed.
            let starting = Task { try await Self.startRun(client, second, workflow) }
            let rest = try await stream.frames(until: { $0.event == "end" })
            let ended = ContinuousClock.now - revokedAt
            let after = try await starting.value
            #expect(rest.last?.event == "end")
            #expect(rest.last?.data.contains(#""reason":"unauthorized""#) == true, "\(rest)")
            #expect(!rest.contains { $0.data.contains(after) }, "a run started after the revocation was streamed")
            #expect(rest.dropLast().allSatisfy { $0.data.contains(before) })
            // The guard looks every 250 ms; the bound leaves room for a loaded machine.
            #expect(ended < .seconds(3), "the stream ended \(ended) after the revocation")
            #expect(try await stream.isClosed(), "the server closes the stream after its end event")
        }
    }

    @Test("a suspended tenant's streams end; a forged, foreign or old-style Last-Event-ID is a 400")
    func suspensionAndForgedIDs() async throws {
        try await Self.withLive { client, port, _ in
            let (tenant, key, _) = try await client.tenantWithKey("acme")
            let (_, other, _) = try await client.tenantWithKey("other")
            let workflow = try await client.workflow(key)
            let run = try await Self.startRun(client, key, workflow)
            let stream = try StreamConnection(port: port, path: "/v1/runs/\(run)/events", token: key)
            defer { stream.close() }
            let history = try await stream.frames(until: { $0.event == "StepScheduled" })
            #expect(history.map(\.event) == ["RunStarted", "StepScheduled"])
            // The ids are opaque and say nothing about the log's size.
            #expect(history.allSatisfy { !$0.id.contains("/") && $0.id.count > 40 })

            let otherWorkflow = try await client.workflow(other)
            let otherRun = try await Self.startRun(client, other, otherWorkflow)
            for (token, path, id) in [
                (key, "/v1/runs/\(run)/events", "12/7"),
                (key, "/v1/events", String(history[0].id.dropLast(2)) + "AA"),
                (other, "/v1/runs/\(otherRun)/events", history[0].id),
                (other, "/v1/events", history[0].id),
                (key, "/v1/events", String(repeating: "A", count: 5000)),
            ] {
                let reply = try await client.call(.get, path, token: token, headers: [.lastEventID: id])
                #expect(reply.status == .badRequest, "\(path) \(id.prefix(20)): \(reply.text)")
                #expect(reply.string("type") == Problem.typeBase + "invalid-last-event-id")
            }
            // The tenant's own id resumes.
            let resumed = try StreamConnection(
                port: port, path: "/v1/runs/\(run)/events", token: key, lastEventID: history[0].id)
            defer { resumed.close() }
            #expect(try await resumed.frames(until: { $0.event == "StepScheduled" }).map(\.id) == [history[1].id])

            let suspended = try await client.call(
                .post, "/v1/admin/tenants/\(tenant)/suspend", token: APIHarness.operatorToken,
                json: #"{"reason":"test"}"#)
            #expect(suspended.status == .ok, "\(suspended.text)")
            for connection in [stream, resumed] {
                let end = try await connection.frames(until: { $0.event == "end" })
                #expect(end.last?.data.contains("suspended") == true, "\(end)")
            }
        }
    }

    @Test("a client that stops reading loses nothing: 12,000 events appended meanwhile all arrive, in order")
    func slowClientLosesNothing() async throws {
        try await Self.withLive { client, port, store in
            let (tenant, key, _) = try await client.tenantWithKey("acme")
            let tenantID = try #require(UUID(uuidString: tenant))
            let stream = try StreamConnection(port: port, path: "/v1/events", token: key)
            defer { stream.close() }
            try await stream.waitOpen()
            // The client reads nothing while the events are appended: the old stream buffered 10,000 frames and
            // dropped the rest.
            var runs: [String] = []
            for _ in 0..<12 {
                var appends: [StreamAppend] = []
                for _ in 0..<1000 {
                    let run = UUID()
                    runs.append(run.lowercased)
                    appends.append(
                        StreamAppend(
                            stream: .run(run), tenantID: tenantID, expected: .noStream,
                            events: [try Fixtures.runStarted(run: run, tenant: tenantID)]))
                }
                try await store.append(appends)
            }
            let last = try #require(runs.last)
            let frames = try await stream.frames(until: { $0.data.contains(last) }, timeout: .seconds(120))
            let started = frames.filter { $0.event == "RunStarted" }
            #expect(started.count == runs.count)
            #expect(Set(started.map(\.id)).count == runs.count, "every frame has its own id")
            // In append order: each frame names the run appended in that place.
            #expect(zip(started, runs).allSatisfy { $0.data.contains(#""runId":"\#($1)""#) })
        }
    }

    static let oneStreamPerKey = try! Plans([
        Plan(
            name: "pro", keyRequestsPerSecond: 1000, tenantRequestsPerSecond: 1000, monthlyAPICalls: nil,
            monthlyRuns: nil, keyStreams: 1, tenantStreams: 2)
    ])

    @Test("streams per key and per tenant are capped by the plan: beyond them a 429 like any limit")
    func caps() async throws {
        try await Self.withLive(settings: APIHarness.settings(plans: Self.oneStreamPerKey)) { client, port, _ in
            let (tenant, key, _) = try await client.tenantWithKey("acme")
            func newKey() async throws -> String {
                try #require(
                    try await client.call(
                        .post, "/v1/admin/tenants/\(tenant)/keys", token: APIHarness.operatorToken,
                        json: #"{"name":"k"}"#
                    ).string("key"))
            }
            let (second, third) = (try await newKey(), try await newKey())
            let first = try StreamConnection(port: port, path: "/v1/events", token: key)
            defer { first.close() }
            try await first.waitOpen()
            let refused = try await client.call(.get, "/v1/events", token: key)
            #expect(refused.status == .tooManyRequests, "\(refused.text)")
            #expect(refused.headers[.retryAfter] != nil)
            #expect(refused.headers[.rateLimitPolicy]?.contains(#""key-streams";q=1"#) == true)
            #expect(refused["violated-policies"]?[0]?.stringValue == "key-streams")

            let other = try StreamConnection(port: port, path: "/v1/events", token: second)
            defer { other.close() }
            try await other.waitOpen()
            let byTenant = try await client.call(.get, "/v1/events", token: third)
            #expect(byTenant.status == .tooManyRequests, "\(byTenant.text)")
            #expect(byTenant["violated-policies"]?[0]?.stringValue == "tenant-streams")
        }
    }

    @Test("a stream ends after its lifetime and says so; its place is free again")
    func lifetime() async throws {
        var settings = APIHarness.settings(plans: Self.oneStreamPerKey)
        settings.streamLifetime = .seconds(1)
        try await Self.withLive(settings: settings) { client, port, _ in
            let (_, key, _) = try await client.tenantWithKey("acme")
            let first = try StreamConnection(port: port, path: "/v1/events", token: key)
            defer { first.close() }
            let end = try await first.frames(until: { $0.event == "end" })
            #expect(end.last?.data.contains(#""reason":"lifetime""#) == true, "\(end)")
            #expect(try await first.isClosed())
            // The same key (one stream allowed) opens another.
            let again = try StreamConnection(port: port, path: "/v1/events", token: key)
            defer { again.close() }
            try await again.waitOpen()
        }
    }

    @Test("frames write ids in lower case and show nothing of the platform: no worker, no fencing token")
    func framesShowTheTenantView() async throws {
        try await Self.withLive { client, port, store in
            let (tenant, key, _) = try await client.tenantWithKey("acme")
            let workflow = try await client.workflow(key)
            let run = try await Self.startRun(client, key, workflow)
            let runID = try #require(UUID(uuidString: run))
            try await store.append(
                [
                    try EventCatalog.tally.encode(
                        StepStarted(runID: runID, step: 1, attempt: 1, workerID: "worker-host-4711", fencingToken: 1))
                ], to: .run(runID), tenantID: UUID(uuidString: tenant), expected: .exactly(2))
            let stream = try StreamConnection(port: port, path: "/v1/runs/\(run)/events", token: key)
            defer { stream.close() }
            let frames = try await stream.frames(until: { $0.event == "StepStarted" })
            #expect(frames.map(\.event) == ["RunStarted", "StepScheduled", "StepStarted"])
            for frame in frames {
                #expect(!frame.data.contains(run.uppercased()) && !frame.data.contains(tenant.uppercased()))
            }
            #expect(
                frames[0].data.contains(#""runId":"\#(run)""#) && frames[0].data.contains(#""tenantId":"\#(tenant)""#))
            #expect(!frames[2].data.contains("worker") && !frames[2].data.contains("fencing"), "\(frames[2].data)")
            #expect(!frames.contains { $0.data.contains(#""position""#) })
        }
    }
}

/// One event stream over a socket, read incrementally: a test decides when (and whether) to read.
final class StreamConnection: Sendable {
    struct Frame: Sendable, CustomStringConvertible {
        var id = ""
        var event = ""
        var data = ""
        var description: String { "\(event) \(data.prefix(120))" }
    }

    let fd: Int32
    private struct Buffer {
        var bytes: [UInt8] = []
        var start = 0
        /// The last chunk of the chunked body (`0`) was seen: the response is over.
        var ended = false
        var text: String { String(decoding: bytes[start...], as: UTF8.self) }
    }
    private let pending = Mutex(Buffer())

    init(port: Int, path: String, token: String, lastEventID: String? = nil) throws {
        fd = try SSE.connectLoopback(port)
        var request =
            "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\nAccept: text/event-stream\r\n"
        if let lastEventID { request += "Last-Event-ID: \(lastEventID)\r\n" }
        request += "\r\n"
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
    }

    func close() { _ = Glibc.close(fd) }

    struct Timeout: Error, CustomStringConvertible {
        var description: String
    }

    // Reads block a thread: they run on one of their own (offPool), never on the cooperative pool that the
    // server in this process needs.

    /// Reads until the stream says it is open (the first comment line).
    func waitOpen(timeout: Duration = .seconds(30)) async throws {
        try await offPool { try self.waitOpenBlocking(timeout: timeout) }
    }

    /// Reads frames until one satisfies `stop` (included) or the stream closes; throws on the deadline.
    func frames(until stop: @escaping @Sendable (Frame) -> Bool, timeout: Duration = .seconds(30)) async throws
        -> [Frame]
    {
        try await offPool { try self.framesBlocking(until: stop, timeout: timeout) }
    }

    /// True once the response is over: its last chunk came, or the server closed the connection.
    func isClosed() async throws -> Bool {
        try await offPool { try self.isClosedBlocking() }
    }

    private func waitOpenBlocking(timeout: Duration) throws {
        let deadline = ContinuousClock.now + timeout
        while !pending.withLock({ $0.text.contains(": stream open") }) {
            guard ContinuousClock.now < deadline, try receive() else {
                throw Timeout(description: "the stream did not open: \(pending.withLock { $0.text.prefix(300) })")
            }
        }
    }

    private func framesBlocking(until stop: (Frame) -> Bool, timeout: Duration) throws -> [Frame] {
        let deadline = ContinuousClock.now + timeout
        var frames: [Frame] = []
        var frame = Frame()
        while true {
            // Whole lines only; chunk-size lines of the chunked encoding are hex digits and carry no field.
            while let line = takeLine() {
                if line.isEmpty {
                    if !frame.event.isEmpty {
                        frames.append(frame)
                        if stop(frame) { return frames }
                    }
                    frame = Frame()
                } else if line.hasPrefix("id: ") {
                    frame.id = String(line.dropFirst(4))
                } else if line.hasPrefix("event: ") {
                    frame.event = String(line.dropFirst(7))
                } else if line.hasPrefix("data: ") {
                    frame.data = String(line.dropFirst(6))
                }
            }
            guard ContinuousClock.now < deadline else {
                throw Timeout(
                    description:
                        "\(frames.count) frames and no stop before the deadline; last: \(frames.last.map { "\($0)" } ?? "none")"
                )
            }
            guard try receive() else { return frames }
        }
    }

    private func isClosedBlocking() throws -> Bool {
        while true {
            while takeLine() != nil {}
            if pending.withLock({ $0.ended }) { return true }
            guard try receive() else { return true }
        }
    }

    /// One read into the buffer; false at end of file. Reads time out after 10 s (the socket's option).
    private func receive() throws -> Bool {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &buffer, buffer.count, 0)
        if n < 0 {
            let seen = pending.withLock { String(decoding: $0.bytes.suffix(600), as: UTF8.self) }
            throw Timeout(description: "no bytes for 10 s (errno \(errno)); the last received: \(seen)")
        }
        if n == 0 { return false }
        pending.withLock { $0.bytes += buffer[0..<n] }
        return true
    }

    private func takeLine() -> String? {
        pending.withLock { buffer -> String? in
            guard let newline = buffer.bytes[buffer.start...].firstIndex(of: 0x0a) else { return nil }
            var line = Array(buffer.bytes[buffer.start..<newline])
            if line.last == 0x0d { line.removeLast() }
            buffer.start = newline + 1
            if buffer.start > 1 << 20 {
                buffer.bytes.removeFirst(buffer.start)
                buffer.start = 0
            }
            // A chunk-size line of 0 is the chunked body's end; no event line is a bare 0.
            if line == [0x30] { buffer.ended = true }
            return String(decoding: line, as: UTF8.self)
        }
    }
}

@Suite("API: stream event ids")
struct StreamEventIDTests {
    @Test("an id opens to its position for its tenant only; a changed byte opens to nothing")
    func roundTrip() throws {
        let ids = StreamEventIDs(pepper: APIHarness.pepper)
        let tenant = UUID()
        for position in [
            FeedPosition(transactionID: 0, globalPosition: 0), FeedPosition(transactionID: 812, globalPosition: 5),
            FeedPosition(transactionID: UInt64.max, globalPosition: Int64.max),
        ] {
            let id = ids.id(for: position, tenant: tenant)
            #expect(ids.position(from: id, tenant: tenant) == position, "\(id)")
            #expect(ids.id(for: position, tenant: tenant) == id, "one event, one id")
            #expect(ids.id(for: position, tenant: UUID()) != id)
            #expect(ids.position(from: id, tenant: UUID()) == nil)
            var bytes = Array(id.utf8)
            bytes[bytes.count / 2] = bytes[bytes.count / 2] == 0x41 ? 0x42 : 0x41
            #expect(ids.position(from: String(decoding: bytes, as: UTF8.self), tenant: tenant) == nil)
        }
    }
}
