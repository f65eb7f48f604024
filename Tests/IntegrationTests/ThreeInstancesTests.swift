import Foundation
import Synchronization
import TestSupport
import Testing

@testable import Events

/// Three `tally serve` processes on one database behave as one: a key's and a tenant's requests per second
/// hold across all of them.
@Suite("Three tally serve instances", .serialized, .timeLimit(.minutes(5)))
struct ThreeInstancesTests {
    /// One answer as a client saw it: when it sent the request and when the answer arrived.
    struct Sample: Sendable {
        var key: Int
        var sent: Double
        var received: Double
        var status: Int
    }

    @Test(
        "under load through three instances, no aligned second admits more than a key's or a tenant's limit, and the database granted no more"
    )
    func rateLimitsAcrossInstances() async throws {
        let (name, url) = try await TestDatabase.create()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("three-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let plans = folder.appendingPathComponent("plans.json")
        // Key 6/s, tenant 9/s: two keys of one tenant, together limited by the tenant.
        try Data(
            #"""
            {"plans": [{"name": "pro", "keyRequestsPerSecond": 6, "tenantRequestsPerSecond": 9},
                       {"name": "capped", "keyRequestsPerSecond": 1000, "tenantRequestsPerSecond": 1000,
                        "monthlyApiCalls": \#(Self.quota)}]}
            """#.utf8
        ).write(to: plans)
        let ports = try (0..<3).map { _ in try HTTP.freePort() }
        var instances: [Subprocess] = []
        func stopInstances() async -> [Subprocess.Result?] {
            for instance in instances { instance.terminate() }
            var exits: [Subprocess.Result?] = []
            for instance in instances { exits.append(try? await instance.finish(timeout: .seconds(60))) }
            instances = []
            return exits
        }
        func stopAll() async -> [Subprocess.Result?] {
            let exits = await stopInstances()
            await TestDatabase.drop(name)
            try? FileManager.default.removeItem(at: folder)
            return exits
        }
        do {
            try await TestDatabase.createProjectionTables(url)
            // The first instance also runs the projections; the others serve only, as a deployment scaled for
            // requests would (and two more runners would only load the cores the suite shares).
            for (index, port) in ports.enumerated() {
                instances.append(
                    try Subprocess(
                        CLI.binary,
                        ["serve", "--database-url", TestDatabase.serviceURL(url), "--listen", "127.0.0.1:\(port)"]
                            + (index == 0 ? [] : ["--no-projections"]),
                        environment: ProjectionTakeoverTests.environment.merging([
                            "TALLY_PLANS_FILE": plans.path
                        ]) { $1 }))
            }
            let token = ProjectionTakeoverTests.environment["TALLY_OPERATOR_TOKEN"]!
            try await Eventually.wait("every instance to answer") {
                for port in ports where try await HTTP.request(port: port, "GET", "/readyz").status != 200 {
                    return false
                }
                return true
            }
            let tenant = try await HTTP.request(
                port: ports[0], "POST", "/v1/admin/tenants", token: token,
                body: #"{"name": "Shared", "slug": "shared", "plan": "pro"}"#)
            let tenantID = try #require(tenant.json?["id"] as? String, "\(tenant)")
            var keys: [String] = []
            var keyIDs: [UUID] = []
            for index in 0..<2 {
                let key = try await HTTP.request(
                    port: ports[index], "POST", "/v1/admin/tenants/\(tenantID)/keys", token: token,
                    body: #"{"name": "key \#(index)"}"#)
                keys.append(try #require(key.json?["key"] as? String, "\(key)"))
                keyIDs.append(try #require((key.json?["id"] as? String).flatMap { UUID(uuidString: $0) }, "\(key)"))
            }
            // Keys reach every instance through the log.
            try await Eventually.wait("both keys on every instance") {
                for port in ports {
                    for key in keys {
                        let status = try await HTTP.request(port: port, "GET", "/v1/tenant", token: key).status
                        if status != 200 && status != 429 { return false }
                    }
                }
                return true
            }

            // 3 instances × 2 keys, one client each (each alone asks far more than the limits; more would only load
            // the two cores that the rest of the suite shares), for three to four seconds. Clients send only
            // between 150 and 700 ms into each second, so that an answer sent and received in the same second was
            // admitted in it (one machine, one clock); the few that straddle a second are counted apart.
            let box = SampleBox()
            let end = Date().timeIntervalSince1970.rounded(.down) + 4
            try await withThrowingTaskGroup(of: Void.self) { group in
                for port in ports {
                    for (index, key) in keys.enumerated() {
                        group.addTask {
                            let taken = try await offPool {
                                HTTP.hammer(port: port, token: key, keyIndex: index, until: end)
                            }
                            box.append(taken)
                        }
                    }
                }
                try await group.waitForAll()
            }
            let all = box.samples.withLock { $0 }
            let admitted = all.filter { $0.status == 200 }
            #expect(all.allSatisfy { $0.status == 200 || $0.status == 429 }, "\(Set(all.map(\.status)))")
            #expect(all.contains { $0.status == 429 }, "the load exceeds the limits")
            var perKey: [Int64: [Int: Int]] = [:]
            var perTenant: [Int64: Int] = [:]
            var straddling = 0
            for sample in admitted {
                let second = Int64(sample.sent.rounded(.down))
                guard Int64(sample.received.rounded(.down)) == second else {
                    straddling += 1
                    continue
                }
                perKey[second, default: [:]][sample.key, default: 0] += 1
                perTenant[second, default: 0] += 1
            }
            #expect(
                perKey.values.allSatisfy { $0.values.allSatisfy { $0 <= 6 } }, "\(perKey.sorted { $0.key < $1.key })")
            #expect(perTenant.values.allSatisfy { $0 <= 9 }, "\(perTenant.sorted { $0.key < $1.key })")
            // Admissions seen in whole: never more than the limit for every second a request was in flight in
            // (a request sent in one second may be admitted in the next, when nothing else was sent).
            let touched = Set(
                all.flatMap { Int64($0.sent.rounded(.down))...Int64($0.received.rounded(.down)) }
            ).count
            #expect(admitted.count <= 9 * touched, "\(admitted.count) admitted in \(touched) seconds")
            let seconds = Set(all.map { Int64($0.sent.rounded(.down)) }).count
            #expect(admitted.count >= seconds, "each second admits some: \(perTenant)")
            #expect(straddling <= admitted.count / 3, "\(straddling) of \(admitted.count) straddled a second")

            // The database's view: no window of any subject was granted more than its limit.
            let store = EventStore(configuration: .init(databaseURL: url, maxConnections: 2))
            defer { store.close() }
            let over = try await store.pool.query(
                """
                SELECT count(*) FROM rate_budgets
                WHERE (subject = ANY($1) AND granted > 6) OR (subject = $2 AND granted > 9)
                """, [.uuidArray(keyIDs), .uuid(try #require(UUID(uuidString: tenantID)))]
            ).first?.int(0)
            #expect(over == 0)
            let full =
                try await store.pool.query(
                    "SELECT count(*) FROM rate_budgets WHERE subject = $1 AND granted = 9",
                    [.uuid(try #require(UUID(uuidString: tenantID)))]
                ).first?.int(0) ?? 0
            #expect(full >= 1, "the tenant took whole windows across the instances")

            // A monthly quota across the three: a tenant of its own, on a plan whose rates do not bind, hammered
            // through every instance until long after the quota is spent.
            let capped = try await HTTP.request(
                port: ports[0], "POST", "/v1/admin/tenants", token: token,
                body: #"{"name": "Capped", "slug": "capped", "plan": "capped"}"#)
            let cappedID = try #require((capped.json?["id"] as? String).flatMap { UUID(uuidString: $0) }, "\(capped)")
            let cappedKey = try await HTTP.request(
                port: ports[0], "POST", "/v1/admin/tenants/\(cappedID.lowercased)/keys", token: token,
                body: #"{"name": "capped"}"#)
            let capKey = try #require(cappedKey.json?["key"] as? String, "\(cappedKey)")
            let setup = SampleBox()
            try await Eventually.wait("the capped key on every instance") {
                for port in ports {
                    let status = try await HTTP.request(port: port, "GET", "/v1/tenant", token: capKey).status
                    setup.append([Sample(key: 0, sent: 0, received: 0, status: status)])
                    if status != 200 && status != 429 { return false }
                }
                return true
            }
            let quotaBox = SampleBox()
            // Two clients per instance, each until its instance has refused it twice in a row (a deadline of a
            // minute, for a loaded machine).
            let quotaDeadline = Date().timeIntervalSince1970 + 60
            try await withThrowingTaskGroup(of: Void.self) { group in
                for port in ports + ports {
                    group.addTask {
                        let taken = try await offPool {
                            HTTP.untilRefused(port: port, token: capKey, times: 2, deadline: quotaDeadline)
                        }
                        quotaBox.append(taken)
                    }
                }
                try await group.waitForAll()
            }
            let quotaSamples = quotaBox.samples.withLock { $0 }
            #expect(
                quotaSamples.allSatisfy { $0.status == 200 || $0.status == 429 }, "\(Set(quotaSamples.map(\.status)))")
            let quotaAdmitted =
                quotaSamples.filter { $0.status == 200 }.count
                + setup.samples.withLock { $0 }.filter { $0.status == 200 }.count
            #expect(quotaSamples.filter { $0.status == 429 }.count >= 12, "every client was refused in the end")
            // Every instance went on being asked until it refused, which it does only with nothing left of what it
            // took (and the database nothing left to give): the quota, exactly, no more.
            #expect(quotaAdmitted == Self.quota, "\(quotaAdmitted) admitted across three instances")

            // The log agrees once the instances stopped (each flushed its usage and gave back what it held).
            let exits = await stopInstances()
            for exit in exits { #expect(exit?.status == 0, "\(exit?.stderr.suffix(2000) ?? "not reaped")") }
            let usage = try await store.read(stream: .usage(tenant: cappedID))
            let calls = try usage.map { try store.catalog.decode(UsageRecorded.self, $0).apiCalls }.reduce(0, +)
            #expect(calls == Self.quota, "usage in the log: \(calls)")
            let granted = try await store.pool.query(
                "SELECT granted FROM quota_grants WHERE tenant_id = $1 AND meter = 'api_calls'", [.uuid(cappedID)]
            ).first?.int(0)
            #expect(granted == Self.quota, "the database granted \(granted ?? -1)")
        } catch {
            _ = await stopAll()
            throw error
        }
        _ = await stopAll()
    }

    static let quota = 40

    final class SampleBox: Sendable {
        let samples = Mutex<[Sample]>([])
        func append(_ more: [Sample]) { samples.withLock { $0 += more } }
    }
}

/// A blocking HTTP/1.1 client over loopback, one connection per request (`Connection: close`).
enum HTTP {
    struct Answer: Sendable, CustomStringConvertible {
        var status: Int
        var body: String
        var json: [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
        }
        var description: String { "\(status) \(body)" }
    }

    static func request(port: Int, _ method: String, _ path: String, token: String? = nil, body: String? = nil)
        async throws -> Answer
    {
        try await offPool { exchange(port: port, method, path, token: token, body: body) }
    }

    static func exchange(port: Int, _ method: String, _ path: String, token: String? = nil, body: String? = nil)
        -> Answer
    {
        guard let fd = try? SSE.connectLoopback(port) else { return Answer(status: -1, body: "") }
        defer { close(fd) }
        var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        if let token { request += "Authorization: Bearer \(token)\r\n" }
        if let body {
            request += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        } else {
            request += "\r\n"
        }
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            received += buffer[0..<n]
        }
        let text = String(decoding: received, as: UTF8.self)
        guard text.count >= 12, let status = Int(text.dropFirst(9).prefix(3)) else {
            return Answer(status: -1, body: text)
        }
        let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        return Answer(status: status, body: body)
    }

    /// GET /v1/tenant as fast as answers come, between 150 and 700 ms into each second, until `end`.
    static func hammer(port: Int, token: String, keyIndex: Int, until end: Double) -> [ThreeInstancesTests.Sample] {
        var samples: [ThreeInstancesTests.Sample] = []
        while true {
            let now = Date().timeIntervalSince1970
            guard now < end else { return samples }
            let fraction = now - now.rounded(.down)
            if fraction < 0.15 || fraction > 0.7 {
                // Pacing the load, not waiting for anything: the next send window opens at 150 ms.
                let pause = fraction < 0.15 ? 0.15 - fraction : 1.15 - fraction
                usleep(useconds_t(pause * 1_000_000))
                continue
            }
            let answer = exchange(port: port, "GET", "/v1/tenant", token: token)
            samples.append(
                .init(key: keyIndex, sent: now, received: Date().timeIntervalSince1970, status: answer.status))
        }
    }

    /// GET /v1/tenant until `times` answers in a row are 429, or the deadline.
    static func untilRefused(port: Int, token: String, times: Int, deadline: Double) -> [ThreeInstancesTests.Sample] {
        var samples: [ThreeInstancesTests.Sample] = []
        var refusals = 0
        while refusals < times, Date().timeIntervalSince1970 < deadline {
            let sent = Date().timeIntervalSince1970
            let answer = exchange(port: port, "GET", "/v1/tenant", token: token)
            samples.append(.init(key: 0, sent: sent, received: Date().timeIntervalSince1970, status: answer.status))
            refusals = answer.status == 429 ? refusals + 1 : 0
        }
        return samples
    }

    /// A port nothing listens on now (the kernel's choice for a socket bound to port 0).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw SSE.ConnectFailed() }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
