import Foundation
import HTTPTypes
import HummingbirdTesting
import TestSupport
import Testing
import Workers

@testable import API
@testable import Events
@testable import Projections

/// One event no reader can apply, written into the log by hand (as an earlier Tally let through): only its
/// stream stops, everywhere, visibly; every other run and tenant goes on.
@Suite("Poison events park one stream", .serialized, .timeLimit(.minutes(5)))
struct ParkingTests {
    /// A RunStarted whose input holds U+0000: the log stores it (payloads are bytes), jsonb refuses it.
    static func poisonedRun(tenant: UUID, catalog: EventCatalog) throws -> (UUID, EventData) {
        let run = UUID()
        let definition = WorkflowDefinition(finders: [.prospeo, .findymail], validator: .zerobounce, maxAttempts: 3)
        return (
            run,
            try catalog.encode(
                RunStarted(
                    runID: run, tenantID: tenant, workflowID: UUID(), definition: definition,
                    input: PersonInput(fullName: "Ann\u{0}Lee", domain: "acme.com"), batchID: nil))
        )
    }

    @Test(
        "the API: that run's reads say it is parked, other runs and tenants answer, readiness holds, the operator sees it"
    )
    func apiSeesParkedRun() async throws {
        try await APIHarness.with { harness, client in
            let (tenantText, key, _) = try await client.tenantWithKey("parked-a")
            let (_, otherKey, _) = try await client.tenantWithKey("parked-b")
            let tenant = try #require(UUID(uuidString: tenantText))
            let workflow = try await client.workflow(key)
            let (poisoned, event) = try Self.poisonedRun(tenant: tenant, catalog: harness.store.catalog)
            try await harness.store.append([event], to: .run(poisoned), tenantID: tenant, expected: .noStream)
            let healthy = try await client.call(
                .post, "/v1/runs", token: key,
                json: #"{"workflowId":"\#(workflow)","input":{"fullName":"Ada","domain":"acme.com"}}"#)
            #expect(healthy.status == .accepted)
            let otherWorkflow = try await client.workflow(otherKey)
            let other = try await client.call(
                .post, "/v1/runs", token: otherKey,
                json: #"{"workflowId":"\#(otherWorkflow)","input":{"fullName":"Bo","domain":"acme.com"}}"#)
            #expect(other.status == .accepted)

            try await Eventually.wait("the poisoned run to be parked") {
                try await harness.store.parkedStreams(readers: ["workflow_runs"]).map(\.stream) == [
                    StreamName.run(poisoned).rawValue
                ]
            }
            let parked = try await client.call(.get, "/v1/runs/\(poisoned.lowercased)", token: key)
            #expect(parked.status == .serviceUnavailable)
            #expect(parked.string("type") == Problem.typeBase + "stream-parked")
            #expect(
                try await client.call(.get, "/v1/runs/\(healthy["runs"]?[0]?["id"]?.stringValue ?? "")", token: key)
                    .status == .ok)
            #expect(
                try await client.call(.get, "/v1/runs/\(other["runs"]?[0]?["id"]?.stringValue ?? "")", token: otherKey)
                    .status == .ok)
            // Usage counts the poisoned run's start or parks too; either way the other tenant's usage answers.
            #expect(try await client.call(.get, "/v1/usage", token: otherKey).status == .ok)

            let ready = try await client.call(.get, "/readyz")
            #expect(ready.status == .ok, "\(ready.text)")
            #expect((ready["parkedStreams"]?.intValue ?? 0) >= 1)
            let list = try await client.call(.get, "/v1/admin/parked-streams", token: APIHarness.operatorToken)
            let items = list["items"]?.arrayValue ?? []
            let runs = items.first { $0["reader"]?.stringValue == "workflow_runs" }
            #expect(runs?["stream"]?.stringValue == StreamName.run(poisoned).rawValue)
            #expect(runs?["tenantId"]?.stringValue == tenantText)
            #expect(runs?["eventType"]?.stringValue == "RunStarted")
            #expect(runs?["error"]?.stringValue?.isEmpty == false)
            let projections = try await client.call(.get, "/v1/admin/projections", token: APIHarness.operatorToken)
            let row = projections["items"]?.arrayValue.first { $0["name"]?.stringValue == "workflow_runs" }
            #expect(row?["state"]?.stringValue == "running")
            #expect(row?["parkedStreams"]?.intValue == 1)
            let metrics = try await client.call(.get, "/metrics")
            #expect(
                metrics.text.contains(#"tally_parked_streams_count{reader="workflow_runs"} 1"#),
                "\(metrics.text.prefix(400))")

            let retry = try await client.call(
                .post, "/v1/admin/parked-streams/retry?reader=workflow_runs", token: APIHarness.operatorToken)
            #expect(retry.status == .accepted)
            #expect(retry["items"]?.arrayValue.count == 1)
            let unknown = try await client.call(
                .post, "/v1/admin/parked-streams/retry?reader=nope", token: APIHarness.operatorToken)
            #expect(unknown.status == .unprocessableContent)
            // The cause is still there: the retry fails and the stream stays parked, with the attempt counted.
            try await Eventually.wait("the retry to be tried") {
                try await harness.store.parkedStreams(readers: ["workflow_runs"]).first?.attempts == 1
            }
        }
    }

    @Test(
        "the workers: the dispatcher parks that run, every other run of every tenant finishes; after a fix, retry runs it"
    )
    func dispatcherParks() async throws {
        try await WorkerHarness.with { h in
            let a = try await h.tenant(name: "A")
            let b = try await h.tenant(name: "B")
            try await h.storeKeys(tenant: a)
            try await h.storeKeys(tenant: b)
            let (poisoned, event) = try Self.poisonedRun(tenant: a, catalog: h.store.catalog)
            try await h.store.append([event], to: .run(poisoned), tenantID: a, expected: .noStream)
            // A run the dispatcher cannot apply for a reason that can be fixed: a faulty trigger stands in for a bug.
            let blocked = try await h.startRun(tenant: b, domain: "acme.com")
            try await h.store.pool.query(
                """
                CREATE FUNCTION test_fault() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN IF NEW.run_id = '\(blocked.lowercased)' THEN RAISE EXCEPTION 'a bug'; END IF; RETURN NEW; END $$
                """)
            try await h.store.pool.query(
                "CREATE TRIGGER test_fault BEFORE INSERT OR UPDATE ON work_queue FOR EACH ROW EXECUTE FUNCTION test_fault()"
            )
            let runs =
                try await h.startRuns(
                    tenant: a,
                    inputs: (0..<10).map { PersonInput(fullName: "Ada \($0)", domain: "prospeo-miss.acme.com") })
                + h.startRuns(tenant: b, inputs: (0..<10).map { PersonInput(fullName: "Bo \($0)", domain: "acme.com") })
            try await h.working(h.worker()) {
                try await h.waitFinished(runs)
                try await Eventually.wait("both runs parked by the dispatcher") {
                    Set(try await h.store.parkedStreams(readers: ["dispatcher"]).map(\.stream))
                        == [StreamName.run(poisoned).rawValue, StreamName.run(blocked).rawValue]
                }
                #expect(try await h.finished(blocked) == nil)
                // The fix, then the retry: the blocked run is dispatched and finishes; the poisoned one stays parked.
                try await h.store.pool.query("DROP TRIGGER test_fault ON work_queue")
                try await h.store.requestRetry(readers: ["dispatcher"])
                try await h.waitFinished([blocked])
                try await Eventually.wait("the poisoned run's retry to fail again") {
                    try await h.store.parkedStreams(readers: ["dispatcher"]).map(\.attempts) == [1]
                }
            }
            #expect(
                try await h.store.parkedStreams(readers: ["dispatcher"]).map(\.stream) == [
                    StreamName.run(poisoned).rawValue
                ])
            #expect(try await FeedInvariant.inversions(h.store) == 0)
        }
    }
}
