import Foundation
import Hummingbird
import HummingbirdTesting
import Projections
import Synchronization
import TestSupport
import Testing

@testable import API
@testable import Events

@Suite("API: rate limits, quotas and idempotency", .timeLimit(.minutes(5)))
struct LimitsAPITests {
    static let tight = try! Plans([
        Plan(
            name: "tight", keyRequestsPerSecond: 5, tenantRequestsPerSecond: 8, monthlyAPICalls: 1_000, monthlyRuns: 3),
        Plan(
            name: "tiny", keyRequestsPerSecond: 100, tenantRequestsPerSecond: 100, monthlyAPICalls: 6, monthlyRuns: nil),
        Plan(
            name: "pro", keyRequestsPerSecond: 100, tenantRequestsPerSecond: 100, monthlyAPICalls: nil, monthlyRuns: nil
        ),
    ])

    @Test("under concurrent load no aligned second admits more than the plan's rate; 429s carry the one contract")
    func rateLimit() async throws {
        try await APIHarness.with(plans: Self.tight) { harness, client in
            let (_, key, _) = try await client.tenantWithKey("acme", plan: "tight")
            final class Outcomes: Sendable {
                let admitted = Mutex<[Int64: Int]>([:])
                let rejected = Mutex<[Reply]>([])
            }
            let outcomes = Outcomes()
            let shared = SharedClient(client: client)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<60 {
                    group.addTask {
                        let reply = try await shared.client.call(.get, "/v1/tenant", token: key)
                        let second = Int64(Date().timeIntervalSince1970)
                        if reply.status == .ok {
                            outcomes.admitted.withLock { $0[second, default: 0] += 1 }
                        } else {
                            outcomes.rejected.withLock { $0.append(reply) }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let perSecond = outcomes.admitted.withLock { $0 }
            let total = perSecond.values.reduce(0, +)
            // The bound: 5 per aligned second per key. A reply observed in the next second may have been
            // admitted in the previous one, so the observed seconds bound the count by 5 × (seconds + 1).
            #expect(total <= 5 * (perSecond.count + 1), "\(perSecond)")
            #expect(total >= 5)
            let refusals = outcomes.rejected.withLock { $0 }
            #expect(!refusals.isEmpty)
            for reply in refusals {
                #expect(reply.status == .tooManyRequests)
                #expect(reply.string("type") == "https://iana.org/assignments/http-problem-types#quota-exceeded")
                #expect(reply["violated-policies"]?.arrayValue.contains(.string("key-rps")) == true)
                let retryAfter = Int(reply.headers[.retryAfter] ?? "") ?? 0
                #expect(retryAfter >= 1)
                #expect(reply.headers[.rateLimitPolicy]?.contains(#""key-rps";q=5;w=1"#) == true)
                let reset = reply.headers[.rateLimit]?.split(separator: ",").first { $0.contains("key-rps") }?.split(
                    separator: ";"
                )
                .first { $0.hasPrefix("t=") }.flatMap { Int($0.dropFirst(2)) }
                #expect(reset != nil && retryAfter >= reset!, "Retry-After is never earlier than the reset")
            }
            try await Task.sleep(for: .seconds(1.1))
            let later = try await client.call(.get, "/v1/tenant", token: key)
            #expect(later.status == .ok)
            #expect(later.headers[.rateLimit]?.contains(#""key-rps";r=4;t=1"#) == true)
        }
    }

    @Test("an exhausted monthly quota is 429 naming the quota, with Retry-After at the end of the billing period")
    func quotas() async throws {
        try await APIHarness.with(plans: Self.tight) { harness, client in
            let (_, key, _) = try await client.tenantWithKey("acme", plan: "tiny")
            var statuses: [HTTPResponse.Status] = []
            for _ in 0..<8 { statuses.append(try await client.call(.get, "/v1/tenant", token: key).status) }
            #expect(statuses.filter { $0 == .ok }.count == 6)
            let refused = try await client.call(.get, "/v1/tenant", token: key)
            #expect(refused.status == .tooManyRequests)
            #expect(refused["violated-policies"] == .array([.string("api-calls")]))
            let retryAfter = Double(refused.headers[.retryAfter] ?? "") ?? 0
            let untilPeriodEnd = BillingPeriod(containing: Date()).end.timeIntervalSinceNow
            #expect(abs(retryAfter - untilPeriodEnd) < 5)

            let (_, runner, _) = try await client.tenantWithKey("runner", plan: "tight")
            let workflow = try await client.workflow(runner)
            let two = (0..<2).map { _ in #"{"linkedinUrl":"https://www.linkedin.com/in/x"}"# }.joined(separator: ",")
            #expect(
                try await client.call(
                    .post, "/v1/runs", token: runner, json: #"{"workflowId":"\#(workflow)","inputs":[\#(two)]}"#
                ).status == .accepted)
            let over = try await client.call(
                .post, "/v1/runs", token: runner, json: #"{"workflowId":"\#(workflow)","inputs":[\#(two)]}"#)
            #expect(over.status == .tooManyRequests)
            #expect(over["violated-policies"] == .array([.string("runs")]))
        }
    }

    @Test(
        "Idempotency-Key: a repeat replays the stored response, another payload is 422, in flight is 409, expired runs again"
    )
    func idempotency() async throws {
        try await APIHarness.with(plans: Self.tight) { harness, client in
            let (tenant, key, _) = try await client.tenantWithKey("acme", plan: "pro")
            let body = #"{"name":"wf","finders":["prospeo"]}"#
            let first = try await client.call(
                .post, "/v1/workflows", token: key, json: body, headers: [.idempotencyKey: #""k-1""#])
            #expect(first.status == .created)
            let again = try await client.call(
                .post, "/v1/workflows", token: key, json: body, headers: [.idempotencyKey: #""k-1""#])
            #expect(again.status == .created && again.text == first.text)
            #expect(again.headers[.idempotentReplayed] == "true")
            #expect(again.headers[.location] == first.headers[.location])
            #expect(
                try await client.call(.get, "/v1/workflows", token: key)["items"]?.arrayValue.count == 1,
                "the repeat defined nothing")

            let other = try await client.call(
                .post, "/v1/workflows", token: key, json: #"{"name":"other","finders":["prospeo"]}"#,
                headers: [.idempotencyKey: #""k-1""#])
            #expect(other.status == .unprocessableContent)

            // A second tenant's same key is its own.
            let (_, keyB, _) = try await client.tenantWithKey("bravo", plan: "pro")
            #expect(
                try await client.call(
                    .post, "/v1/workflows", token: keyB, json: body, headers: [.idempotencyKey: #""k-1""#]
                ).status == .created)

            // A first request still running (claimed a moment ago).
            try await harness.services.database.asOperator { connection in
                try await connection.query(
                    """
                    INSERT INTO idempotency_keys (tenant_id, key, method, path, fingerprint, state, locked_until, expires_at)
                    VALUES ($1, 'k-2', 'POST', '/v1/workflows', 'x', 'in_flight', now() + interval '1 minute', now() + interval '1 day')
                    """, [.uuid(UUID(uuidString: tenant)!)])
            }
            let busy = try await client.call(
                .post, "/v1/workflows", token: key, json: body, headers: [.idempotencyKey: #""k-2""#])
            #expect(busy.status == .unprocessableContent || busy.status == .conflict)
            try await harness.services.database.asOperator { connection in
                try await connection.query(
                    "UPDATE idempotency_keys SET fingerprint = $1 WHERE key = 'k-2'",
                    [
                        .string(Sodium.hex(Sodium.sha256(Array("POST /v1/workflows\n\(body)".utf8))))
                    ])
            }
            #expect(
                try await client.call(
                    .post, "/v1/workflows", token: key, json: body, headers: [.idempotencyKey: #""k-2""#]
                ).status == .conflict)

            // Past the retention the key is free again: the request runs anew.
            try await harness.services.database.asOperator { connection in
                try await connection.query(
                    "UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = 'k-1'")
            }
            let anew = try await client.call(
                .post, "/v1/workflows", token: key, json: body, headers: [.idempotencyKey: #""k-1""#])
            #expect(anew.status == .created && anew.string("id") != first.string("id"))
            #expect(anew.headers[.idempotentReplayed] == nil)

            #expect(
                try await client.call(
                    .post, "/v1/workflows", token: key, json: body, headers: [.idempotencyKey: "\"\""]
                ).status == .badRequest)
            // Errors are stored too: a repeated invalid request gets the same problem.
            let invalid = try await client.call(
                .post, "/v1/workflows", token: key, json: #"{"name":""}"#, headers: [.idempotencyKey: "bad-1"])
            let replayed = try await client.call(
                .post, "/v1/workflows", token: key, json: #"{"name":""}"#, headers: [.idempotencyKey: "bad-1"])
            #expect(
                invalid.status == .unprocessableContent && replayed.text == invalid.text
                    && replayed.headers[.idempotentReplayed] == "true")
        }
    }
}
