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

@Suite("API: errors, request ids, metrics, secrets, live events", .timeLimit(.minutes(5)))
struct OperationsAPITests {
    @Test("unknown routes are 404 problems, known paths with another method 405 with Allow")
    func routing() async throws {
        try await APIHarness.with { harness, client in
            let unknown = try await client.call(.get, "/v1/nope")
            #expect(unknown.status == .notFound && unknown.headers[.contentType] == "application/problem+json")
            #expect(unknown["status"] == .number(404))
            let wrong = try await client.call(.patch, "/v1/runs")
            #expect(wrong.status == .methodNotAllowed)
            #expect(wrong.headers[.allow] == "GET, POST")
            #expect(try await client.call(.delete, "/v1/admin/tenants").headers[.allow] == "GET, POST")
        }
    }

    @Test("X-Request-Id (or the traceparent's trace id) is echoed and lands in the appended events' metadata")
    func requestIDs() async throws {
        try await APIHarness.with { harness, client in
            let (tenant, key, _) = try await client.tenantWithKey("acme")
            let given = try await client.call(
                .post, "/v1/workflows", token: key, json: #"{"name":"w","finders":["prospeo"]}"#,
                headers: [.requestID: "req-42"])
            #expect(given.headers[.requestID] == "req-42")
            let workflow = try #require(given.string("id"))
            let metadata = try await harness.store.read(stream: .workflow(UUID(uuidString: workflow)!)).first?
                .metadata()
            #expect(metadata?.requestID == "req-42")
            #expect(metadata?.actor?.hasPrefix("key:") == true)

            let traced = try await client.call(
                .post, "/v1/admin/tenants/\(tenant)/suspend", token: APIHarness.operatorToken, json: "{}",
                headers: [.traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"])
            #expect(traced.headers[.requestID] == "4bf92f3577b34da6a3ce929d0e0e4736")
            let suspended = try await harness.store.read(stream: .tenant(UUID(uuidString: tenant)!)).last?.metadata()
            #expect(suspended?.requestID == "4bf92f3577b34da6a3ce929d0e0e4736" && suspended?.actor == "operator")

            let generated = try await client.call(.get, "/healthz", headers: [.requestID: "bad id with spaces \u{7f}"])
            #expect(UUID(uuidString: generated.headers[.requestID] ?? "") != nil, "an unusable id is replaced")
        }
    }

    @Test(
        "/metrics exposes request counts and latency per route, key-cache hits, rate-limit rejections and projection lag"
    )
    func metrics() async throws {
        try await APIHarness.with { harness, client in
            let (_, key, _) = try await client.tenantWithKey("acme")
            for _ in 0..<3 { try await client.call(.get, "/v1/tenant", token: key) }
            let text = try await client.call(.get, "/metrics").text
            #expect(
                text.contains(#"tally_http_requests_total{route="/v1/tenant",method="GET",status="200"} 3"#),
                "\(text.prefix(2000))")
            #expect(text.contains("tally_http_request_duration_seconds_bucket"))
            #expect(text.contains("tally_key_cache_hits_total"))
            #expect(text.contains(#"tally_projection_lag_events{projection="tenants"}"#))
            #expect(text.contains("tally_append_duration_seconds_count"))
        }
    }

    @Test(
        "plaintext keys appear only in the issuing response: never in the log, any table, idempotency records or log lines"
    )
    func secretsStayOut() async throws {
        try await APIHarness.with { harness, client in
            let (tenant, key, keyID) = try await client.tenantWithKey("acme")
            let rotated = try await client.call(
                .post, "/v1/admin/tenants/\(tenant)/keys/\(keyID)/rotate", token: APIHarness.operatorToken, json: "{}",
                headers: [.idempotencyKey: #""rotate-1""#])
            let newKey = try #require(rotated["key"]?["key"]?.stringValue)
            let repeated = try await client.call(
                .post, "/v1/admin/tenants/\(tenant)/keys/\(keyID)/rotate", token: APIHarness.operatorToken, json: "{}",
                headers: [.idempotencyKey: #""rotate-1""#])
            #expect(
                repeated.status == .conflict && !repeated.text.contains(newKey),
                "the replay does not reveal the key again")
            for secret in [key, newKey] {
                try await client.call(.get, "/v1/tenant", token: secret)
                try await client.call(.get, "/v1/tenant", token: secret + "x")
            }
            try await harness.services.meter.flush()
            try await TestDatabase.settle(harness.store)
            // Every text and byte column of every table, the log included.
            let dump = try await harness.services.database.asOperator(readOnly: true) { connection in
                let tables = try await connection.query(
                    "SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname IN ('tally', 'tally_rebuild')"
                )
                var text = ""
                for table in tables {
                    let rows = try await connection.query("SELECT t::text FROM \(try table.string(0)) t")
                    for row in rows { text += try row.string(0) + "\n" }
                }
                return text
            }
            #expect(dump.contains(String(key.prefix(12))), "the display prefix is stored")
            for secret in [key, newKey, String(key.dropFirst(4)), String(newKey.dropFirst(4))] {
                #expect(!dump.contains(secret))
                #expect(!LogCapture.shared.contains(secret))
            }
            let payloads = try await harness.store.readFeed(after: .start, limit: 10_000)
            for event in payloads.events {
                let json = String(decoding: try harness.store.catalog.currentJSON(event), as: UTF8.self)
                #expect(!json.contains(key) && !json.contains(newKey))
            }
        }
    }

    @Test(
        "Server-Sent Events over a real socket: a run's history then live events; Last-Event-ID resumes after the last one seen"
    )
    func serverSentEvents() async throws {
        try await APIHarness.with(live: true) { _, client in
            let port = try #require(client.port)
            let (_, key, _) = try await client.tenantWithKey("acme")
            let workflow = try await client.workflow(key)
            let run = try #require(
                try await client.call(
                    .post, "/v1/runs", token: key,
                    json: #"{"workflowId":"\#(workflow)","input":{"linkedinUrl":"https://www.linkedin.com/in/a"}}"#
                )["runs"]?[0]?["id"]?.stringValue)

            let runOpen = SSE.Opened()
            let reader = Task {
                try await SSE.read(
                    port: port, path: "/v1/runs/\(run)/events", token: key, count: 3, opened: runOpen)
            }
            try await Eventually.wait("the run's stream to open") { runOpen.isOpen }
            #expect(try await client.call(.post, "/v1/runs/\(run)/cancel", token: key).status == .ok)
            let frames = try await reader.value
            #expect(frames.map(\.event) == ["RunStarted", "StepScheduled", "RunCancelled"])
            #expect(frames[0].data.contains(#""stream":"run-\#(run)""#))

            let resumed = try await SSE.read(
                port: port, path: "/v1/runs/\(run)/events", token: key, lastEventID: frames[1].id, count: 1)
            #expect(
                resumed.map(\.event) == ["RunCancelled"] && resumed[0].id == frames[2].id, "\(frames) \(resumed)")

            let (_, other, _) = try await client.tenantWithKey("other")
            let denied = try await SSE.read(port: port, path: "/v1/runs/\(run)/events", token: other, count: 1)
            #expect(denied.isEmpty, "another tenant's run streams nothing (404)")

            // The tenant's stream starts now and carries only its own runs.
            let tenantOpen = SSE.Opened()
            let tenantStream = Task {
                try await SSE.read(port: port, path: "/v1/events", token: key, count: 2, opened: tenantOpen)
            }
            // The stream's start is taken before the server writes ": stream open"; runs created after that
            // line arrived are on it.
            try await Eventually.wait("the tenant's stream to open") { tenantOpen.isOpen }
            let otherWorkflow = try await client.workflow(other)
            try await client.call(
                .post, "/v1/runs", token: other,
                json: #"{"workflowId":"\#(otherWorkflow)","input":{"linkedinUrl":"https://www.linkedin.com/in/o"}}"#
            )
            let mine = try #require(
                try await client.call(
                    .post, "/v1/runs", token: key,
                    json: #"{"workflowId":"\#(workflow)","input":{"linkedinUrl":"https://www.linkedin.com/in/b"}}"#
                )["runs"]?[0]?["id"]?.stringValue)
            let live = try await tenantStream.value
            #expect(live.map(\.event) == ["RunStarted", "StepScheduled"])
            #expect(live.allSatisfy { $0.data.contains(#""stream":"run-\#(mine)""#) })
        }
    }
}

/// A minimal blocking HTTP/1.1 client for event streams (the test client waits for a body's end, and an
/// event stream has none).
enum SSE {
    struct Frame: Sendable {
        var id: String
        var event: String
        var data: String
    }

    /// Set once the server's `: stream open` line has arrived.
    final class Opened: Sendable {
        private let flag = Mutex(false)
        var isOpen: Bool { flag.withLock { $0 } }
        func set() { flag.withLock { $0 = true } }
    }

    static func read(
        port: Int, path: String, token: String, lastEventID: String? = nil, count: Int, opened: Opened? = nil
    ) async throws -> [Frame] {
        try await offPool {
            let fd = try connectLoopback(port)
            defer { close(fd) }
            var request =
                "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\nAccept: text/event-stream\r\n"
            if let lastEventID { request += "Last-Event-ID: \(lastEventID)\r\n" }
            request += "\r\n"
            _ = request.withCString { send(fd, $0, strlen($0), 0) }
            var received = ""
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let frames = parse(received)
                if frames.count >= count || received.hasPrefix("HTTP/1.1 404") { return Array(frames.prefix(count)) }
                let n = recv(fd, &buffer, buffer.count, 0)
                if n <= 0 { return frames }
                received += String(decoding: buffer[0..<n], as: UTF8.self)
                if received.contains(": stream open") { opened?.set() }
            }
        }
    }

    struct ConnectFailed: Error {}

    /// A TCP connection to 127.0.0.1:`port` whose reads give up after 60 s (10 s was passed once in a full
    /// suite run on two cores).
    static func connectLoopback(_ port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ConnectFailed() }
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(fd)
            throw ConnectFailed()
        }
        return fd
    }

    /// The status code of a GET (connection closed after the answer's head).
    static func status(port: Int, path: String, token: String) async throws -> Int {
        try await offPool {
            guard let fd = try? connectLoopback(port) else { return -1 }
            defer { close(fd) }
            let request =
                "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\nConnection: close\r\n\r\n"
            _ = request.withCString { send(fd, $0, strlen($0), 0) }
            var buffer = [UInt8](repeating: 0, count: 64)
            let n = recv(fd, &buffer, buffer.count, 0)
            guard n >= 12 else { return -1 }
            return Int(String(decoding: buffer[9..<12], as: UTF8.self)) ?? -1
        }
    }

    static func parse(_ text: String) -> [Frame] {
        guard let start = text.range(of: "\r\n\r\n") else { return [] }
        var frames: [Frame] = []
        // Chunked transfer encoding: chunk-size lines are hex digits only; event lines never are.
        // "\r\n" is one Character in Swift: normalise before splitting lines.
        let body = text[start.upperBound...].replacingOccurrences(of: "\r\n", with: "\n")
        for block in body.components(separatedBy: "\n\n") {
            var frame = Frame(id: "", event: "", data: "")
            for line in block.split(separator: "\n") {
                if line.hasPrefix("id: ") { frame.id = String(line.dropFirst(4)) }
                if line.hasPrefix("event: ") { frame.event = String(line.dropFirst(7)) }
                if line.hasPrefix("data: ") { frame.data = String(line.dropFirst(6)) }
            }
            if !frame.event.isEmpty, !frame.data.isEmpty { frames.append(frame) }
        }
        return frames
    }
}
