import Commands
import Foundation
import Hummingbird
import HummingbirdTesting
import TestSupport
import Testing

@testable import API
@testable import Events
@testable import Projections

@Suite("API: tenant endpoints", .timeLimit(.minutes(5)))
struct TenantAPITests {
    @Test("a malformed, unknown or missing key is a 401 problem before anything else, and costs no usage")
    func keyChecks() async throws {
        try await APIHarness.with { harness, client in
            let (_, key, _) = try await client.tenantWithKey("acme")
            var typo = Array(key)
            typo[10] = typo[10] == "a" ? "b" : "a"
            let unknownButWellFormed = APIKeyFormat.generate()
            for credential in [nil, "tly_short", String(typo), unknownButWellFormed, APIHarness.operatorToken] {
                let reply = try await client.call(.get, "/v1/tenant", token: credential)
                #expect(reply.status == .unauthorized)
                #expect(reply.headers[.contentType] == "application/problem+json")
                #expect(reply.headers[.rateLimit] == nil, "a 401 is not counted")
            }
            #expect(APIKeyFormat.isWellFormed(Substring(key)) && !APIKeyFormat.isWellFormed(Substring(String(typo))))
        }
    }

    @Test("workflows and runs: define, start one and a batch, read, list with filters and a cursor, cancel once")
    func runs() async throws {
        try await APIHarness.with { harness, client in
            let (_, key, _) = try await client.tenantWithKey("acme")
            let workflow = try await client.workflow(key)
            #expect(
                try await client.call(.get, "/v1/workflows/\(workflow)", token: key)["definition"]?["finders"]?
                    .arrayValue.count == 2)
            #expect(try await client.call(.get, "/v1/workflows", token: key)["items"]?.arrayValue.count == 1)
            let badWorkflow = try await client.call(
                .post, "/v1/workflows", token: key, json: #"{"name":"x","finders":["zerobounce","mailchimp"]}"#)
            #expect(badWorkflow.status == .unprocessableContent)
            #expect(badWorkflow["errors"]?[0]?["pointer"] == .string("/finders/1"))

            let one = try await client.call(
                .post, "/v1/runs", token: key,
                json: #"{"workflowId":"\#(workflow)","input":{"fullName":"Ada Lovelace","domain":"example.com"}}"#)
            #expect(one.status == .accepted)
            let runID = try #require(one["runs"]?[0]?["id"]?.stringValue)
            #expect(one.headers[.location] == "/v1/runs/\(runID)")
            let run = try await client.call(.get, "/v1/runs/\(runID)", token: key)
            #expect(run.status == .ok && run.string("status") == "running")
            #expect(run["input"]?["fullName"] == .string("Ada Lovelace"))

            let inputs = (0..<25).map { #"{"linkedinUrl":"https://www.linkedin.com/in/person-\#($0)"}"# }.joined(
                separator: ",")
            let batch = try await client.call(
                .post, "/v1/runs", token: key, json: #"{"workflowId":"\#(workflow)","inputs":[\#(inputs)]}"#)
            #expect(batch.status == .accepted && batch["runs"]?.arrayValue.count == 25)
            let batchID = try #require(batch.string("batchId"))
            var seen = Set<String>()
            var cursor: String?
            repeat {
                let page = try await client.call(
                    .get, "/v1/runs?batchId=\(batchID)&limit=10" + (cursor.map { "&cursor=\($0)" } ?? ""), token: key)
                #expect(page.status == .ok)
                for item in page["items"]?.arrayValue ?? [] { seen.insert(item["id"]?.stringValue ?? "") }
                cursor = page.string("nextCursor")
            } while cursor != nil
            #expect(seen.count == 25)
            #expect(try await client.call(.get, "/v1/runs?status=running", token: key)["items"]?.arrayValue.count == 26)
            #expect(try await client.call(.get, "/v1/runs?status=bogus", token: key).status == .unprocessableContent)

            let cancelled = try await client.call(.post, "/v1/runs/\(runID)/cancel", token: key)
            #expect(cancelled.status == .ok && cancelled.string("status") == "cancelled")
            #expect(try await client.call(.post, "/v1/runs/\(runID)/cancel", token: key).status == .conflict)
            #expect(
                try await client.call(.post, "/v1/runs/\(runID)/retry", token: key).status == .conflict,
                "only a failed run is retried")

            let before = try await harness.store.head()
            for body in [
                #"{"workflowId":"\#(workflow)"}"#, #"{"workflowId":"\#(workflow)","input":{"fullName":"A"}}"#,
                #"{"workflowId":"\#(UUID().lowercased)","input":{"linkedinUrl":"https://www.linkedin.com/in/x"}}"#,
                #"{"workflowId":"nope","input":{}}"#,
                #"{"workflowId":"\#(workflow)","inputs":[]}"#,
            ] {
                let reply = try await client.call(.post, "/v1/runs", token: key, json: body)
                #expect(reply.status == .unprocessableContent, "\(body): \(reply.text)")
            }
            let tooMany = (0..<1001).map { _ in #"{"linkedinUrl":"https://www.linkedin.com/in/x"}"# }.joined(
                separator: ",")
            #expect(
                try await client.call(
                    .post, "/v1/runs", token: key, json: #"{"workflowId":"\#(workflow)","inputs":[\#(tooMany)]}"#
                ).status == .unprocessableContent)
            try await TestDatabase.settle(harness.store)
            let after = try await harness.store.readFeed(
                after: before, filter: FeedFilter(categories: ["run", "workflow"]))
            #expect(after.events.isEmpty, "rejected requests appended nothing")
        }
    }

    @Test("tenant A using tenant B's ids gets 404 on every route, exactly as for ids that do not exist")
    func isolation() async throws {
        try await APIHarness.with { harness, client in
            let (_, keyA, _) = try await client.tenantWithKey("tenant-a")
            let (_, keyB, _) = try await client.tenantWithKey("tenant-b")
            let workflowB = try await client.workflow(keyB)
            let runB =
                try await client.call(
                    .post, "/v1/runs", token: keyB,
                    json: #"{"workflowId":"\#(workflowB)","input":{"linkedinUrl":"https://www.linkedin.com/in/b"}}"#
                )["runs"]?[0]?["id"]?.stringValue ?? ""
            let nothing = UUID().lowercased
            let routes: [(HTTPRequest.Method, String, String)] = [
                (.get, "/v1/workflows/", workflowB), (.get, "/v1/runs/", runB), (.post, "/v1/runs/{}/cancel", runB),
                (.post, "/v1/runs/{}/retry", runB), (.get, "/v1/runs/{}/events", runB),
            ]
            for (method, template, id) in routes {
                func path(_ id: String) -> String {
                    template.contains("{}") ? template.replacingOccurrences(of: "{}", with: id) : template + id
                }
                let theirs = try await client.call(method, path(id), token: keyA)
                let missing = try await client.call(method, path(nothing), token: keyA)
                #expect(theirs.status == .notFound, "\(method) \(template)")
                #expect(theirs.text == missing.text, "nothing tells B's resource from a missing one")
            }
            let start = try await client.call(
                .post, "/v1/runs", token: keyA,
                json: #"{"workflowId":"\#(workflowB)","input":{"linkedinUrl":"https://www.linkedin.com/in/a"}}"#)
            #expect(start.status == .unprocessableContent, "B's workflow is unknown to A")
            #expect(try await client.call(.get, "/v1/runs", token: keyA)["items"]?.arrayValue.isEmpty == true)
            #expect(try await client.call(.get, "/v1/workflows", token: keyA)["items"]?.arrayValue.isEmpty == true)
            #expect(
                try await client.call(.get, "/v1/runs?workflowId=\(workflowB)", token: keyA)["items"]?.arrayValue
                    .isEmpty == true)
            #expect(try await client.call(.get, "/v1/runs/\(runB)", token: keyB).status == .ok)
        }
    }

    @Test("usage per period, vendor secrets metadata, and no flow keys before any vendor key or waiting run")
    func usageAndPending() async throws {
        try await APIHarness.with { harness, client in
            let (_, key, _) = try await client.tenantWithKey("acme")
            for _ in 0..<3 { try await client.call(.get, "/v1/tenant", token: key) }
            try await harness.services.meter.flush()
            let period = BillingPeriod(containing: Date()).description
            try await Eventually.wait("the API calls to be counted") {
                try await client.call(.get, "/v1/usage?period=\(period)", token: key)["meters"]?["api_calls"]?.intValue
                    ?? 0 >= 4
            }
            #expect(try await client.call(.get, "/v1/usage?period=2026-13", token: key).status == .unprocessableContent)
            // The same usage, priced by the tenant's plan (pro: 0.0001 a call, 49.00 a month prorated from its creation).
            try await Eventually.wait("the calls to be priced") {
                let usage = try await client.call(.get, "/v1/usage?period=\(period)", token: key)
                let charges = usage["charges"]?.arrayValue ?? []
                let calls = charges.first { $0["meter"]?.stringValue == "api_calls" }
                let fee = charges.first { $0["meter"]?.stringValue == "base_fee" }
                let quantity = calls?["quantity"]?.intValue ?? 0
                return usage["closed"] == .bool(false) && calls?["plan"]?.stringValue == "pro" && quantity >= 4
                    && calls?["amountMicros"]?.intValue == quantity * 100
                    && fee?["unitPriceMicros"]?.intValue == 49_000_000
                    && usage["totals"]?["usd"]?.intValue == charges.reduce(0) { $0 + ($1["amount"]?.intValue ?? 0) }
            }
            #expect(try await client.call(.get, "/v1/vendor-secrets", token: key)["items"]?.arrayValue == [])
            #expect(
                try await client.call(.put, "/v1/vendor-secrets/prospeo", token: key, json: "{}").status
                    == .serviceUnavailable, "no master key")
            #expect(try await client.call(.put, "/v1/vendor-secrets/acme", token: key, json: "{}").status == .notFound)
            let flowKeys = try await client.call(.get, "/v1/flow-keys", token: key)
            #expect(flowKeys.status == .ok && flowKeys["items"]?.arrayValue == [])
        }
    }
}
