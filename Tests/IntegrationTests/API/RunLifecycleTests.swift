import Commands
import Foundation
import Hummingbird
import HummingbirdTesting
import TestSupport
import Testing

@testable import API
@testable import Events
@testable import Projections

@Suite("API: run lifecycle (first step, retry, parked)", .timeLimit(.minutes(5)))
struct RunLifecycleTests {
    /// Starts one run of `workflow` and returns its id.
    static func start(_ client: any TestClientProtocol, key: String, workflow: String) async throws -> UUID {
        let reply = try await client.call(
            .post, "/v1/runs", token: key,
            json: #"{"workflowId":"\#(workflow)","input":{"fullName":"Ada Lovelace","domain":"example.com"}}"#)
        #expect(reply.status == .accepted, "\(reply.text)")
        return try #require(reply["runs"]?[0]?["id"]?.stringValue.flatMap(UUID.init(uuidString:)))
    }

    /// Appends what a worker would, at the run's current version.
    static func work(_ store: EventStore, _ run: UUID, tenant: String, _ events: [any DomainEvent]) async throws {
        let version = try await store.version(of: .run(run))
        try await store.append(
            try events.map { try EventCatalog.tally.encode($0) }, to: .run(run), tenantID: UUID(uuidString: tenant),
            expected: .exactly(version))
    }

    /// Waits until the run's answer satisfies `condition` (the projection applies appended events a moment later).
    static func waitFor(
        _ client: any TestClientProtocol, _ run: UUID, key: String, _ what: String,
        _ condition: @escaping (Reply) -> Bool
    ) async throws {
        try await Eventually.wait(what) {
            condition(try await client.call(.get, "/v1/runs/\(run.lowercased)", token: key))
        }
    }

    @Test("starting a run appends RunStarted and the first step, scheduled on the first finder, in one append")
    func startSchedulesFirstStep() async throws {
        try await APIHarness.with { harness, client in
            let (_, key, _) = try await client.tenantWithKey("acme")
            let workflow = try await client.workflow(key)
            let run = try await Self.start(client, key: key, workflow: workflow)
            let events = try await harness.store.read(stream: .run(run))
            #expect(events.map(\.type) == [RunStarted.eventType, StepScheduled.eventType])
            #expect(events[0].feedPosition.transactionID == events[1].feedPosition.transactionID, "one transaction")
            let step = try harness.store.catalog.decode(StepScheduled.self, events[1])
            #expect(
                step.runID == run && step.step == 1 && step.kind == .find && step.vendor == .prospeo
                    && step.attempt == 1)
            #expect(step.notBefore == nil)

            let body = try await client.call(.get, "/v1/runs/\(run.lowercased)", token: key)
            #expect(
                body.string("status") == "running" && body["currentStep"]?.intValue == 1
                    && body.string("currentVendor") == "prospeo")
            #expect(body["steps"]?.arrayValue.count == 1)
            #expect(
                body["steps"]?[0]?["status"] == .string("scheduled") && body["steps"]?[0]?["attempt"]?.intValue == 1)

            // The first finder of the workflow, whichever it is; every run of a batch gets its own first step.
            let findymailFirst = try await client.call(
                .post, "/v1/workflows", token: key, json: #"{"name":"fm","finders":["findymail"]}"#)
            let batch = try await client.call(
                .post, "/v1/runs", token: key,
                json:
                    #"{"workflowId":"\#(findymailFirst.string("id") ?? "")","inputs":[{"linkedinUrl":"https://www.linkedin.com/in/a"},{"linkedinUrl":"https://www.linkedin.com/in/b"}]}"#
            )
            #expect(batch.status == .accepted)
            for item in batch["runs"]?.arrayValue ?? [] {
                let id = try #require(item["id"]?.stringValue.flatMap(UUID.init(uuidString:)))
                let stream = try await harness.store.read(stream: .run(id))
                #expect(stream.map(\.type) == [RunStarted.eventType, StepScheduled.eventType])
                #expect(try harness.store.catalog.decode(StepScheduled.self, stream[1]).vendor == .findymail)
            }
        }
    }

    @Test(
        "retry: 409 for a running or succeeded run with nothing appended, 202 for a failed one with the failed step scheduled next"
    )
    func retry() async throws {
        try await APIHarness.with { harness, client in
            let (tenant, key, _) = try await client.tenantWithKey("acme")
            let workflow = try await client.workflow(key)
            let run = try await Self.start(client, key: key, workflow: workflow)
            let path = "/v1/runs/\(run.lowercased)/retry"

            let running = try await client.call(.post, path, token: key)
            #expect(
                running.status == .conflict && running.string("type") == "https://tally.dev/problems/run-not-failed")
            #expect(try await harness.store.version(of: .run(run)) == 2, "a refused retry appends nothing")

            // Step 1 found an address, the validation (step 2) failed for good, and the run failed.
            try await Self.work(
                harness.store, run, tenant: tenant,
                [
                    StepStarted(runID: run, step: 1, attempt: 1, workerID: "w1", fencingToken: 1),
                    StepFinished(
                        runID: run, step: 1, attempt: 1, vendor: .prospeo, outcome: .found, email: "ada@example.com",
                        validationStatus: nil),
                    StepScheduled(
                        runID: run, step: 2, kind: .validate, vendor: .zerobounce, attempt: 1, notBefore: nil),
                    StepStarted(runID: run, step: 2, attempt: 1, workerID: "w1", fencingToken: 2),
                    StepFailed(
                        runID: run, step: 2, attempt: 1, vendor: .zerobounce, failure: .transient, reason: "HTTP 503"),
                    RunFinished(
                        runID: run, status: .failed, email: nil, validationStatus: nil, reason: "retries ran out"),
                ])
            try await Self.waitFor(client, run, key: key, "the run to fail") { $0.string("status") == "failed" }
            let failed = try await client.call(.get, "/v1/runs?status=failed", token: key)
            #expect(
                failed.status == .ok && failed["items"]?.arrayValue.map { $0["id"]?.stringValue } == [run.lowercased])

            let withBody = try await client.call(.post, path, token: key, json: #"{"force":true}"#)
            #expect(withBody.status == .unprocessableContent && withBody["errors"]?[0]?["pointer"] == .string("/force"))
            #expect(try await harness.store.version(of: .run(run)) == 8)

            let retried = try await client.call(.post, path, token: key, headers: [.idempotencyKey: #""retry-1""#])
            #expect(retried.status == .accepted, "\(retried.text)")
            #expect(retried.string("status") == "running" && retried["finishedAt"] == nil && retried["reason"] == nil)
            #expect(retried["currentStep"]?.intValue == 3 && retried.string("currentVendor") == "zerobounce")
            let events = try await harness.store.read(stream: .run(run))
            #expect(events.count == 9)
            let scheduled = try harness.store.catalog.decode(StepScheduled.self, events[8])
            #expect(
                scheduled.step == 3 && scheduled.kind == .validate && scheduled.vendor == .zerobounce
                    && scheduled.attempt == 1)
            #expect(try await client.call(.get, "/v1/runs?status=running", token: key)["items"]?.arrayValue.count == 1)

            let replayed = try await client.call(.post, path, token: key, headers: [.idempotencyKey: #""retry-1""#])
            #expect(
                replayed.status == .accepted && replayed.headers[.idempotentReplayed] == "true"
                    && replayed.text == retried.text)
            #expect(try await harness.store.version(of: .run(run)) == 9, "the repeat appended nothing")
            #expect(
                try await client.call(.post, path, token: key).status == .conflict, "running again: no second retry")

            let succeeded = try await Self.start(client, key: key, workflow: workflow)
            try await Self.work(
                harness.store, succeeded, tenant: tenant,
                [
                    StepStarted(runID: succeeded, step: 1, attempt: 1, workerID: "w1", fencingToken: 1),
                    StepFinished(
                        runID: succeeded, step: 1, attempt: 1, vendor: .prospeo, outcome: .found,
                        email: "a@example.com", validationStatus: nil),
                    RunFinished(
                        runID: succeeded, status: .succeeded, email: "a@example.com", validationStatus: nil, reason: nil
                    ),
                ])
            let done = try await client.call(.post, "/v1/runs/\(succeeded.lowercased)/retry", token: key)
            #expect(done.status == .conflict && done.string("detail")?.contains("succeeded") == true)
            #expect(try await harness.store.version(of: .run(succeeded)) == 5)

            // Another tenant's failed run is not found, and stays as it was.
            let (_, otherKey, _) = try await client.tenantWithKey("other")
            let other = try await Self.start(client, key: key, workflow: workflow)
            try await Self.work(
                harness.store, other, tenant: tenant,
                [
                    RunFinished(
                        runID: other, status: .failed, email: nil, validationStatus: nil, reason: "retries ran out")
                ])
            let foreign = try await client.call(.post, "/v1/runs/\(other.lowercased)/retry", token: otherKey)
            #expect(foreign.status == .notFound)
            #expect(try await harness.store.version(of: .run(other)) == 3)
        }
    }

    @Test(
        "a key-fatal failure parks the run with its reason; the next started step runs it again; a parked run can be cancelled"
    )
    func parked() async throws {
        try await APIHarness.with { harness, client in
            let (tenant, key, _) = try await client.tenantWithKey("acme")
            let workflow = try await client.workflow(key)
            let run = try await Self.start(client, key: key, workflow: workflow)
            try await Self.work(
                harness.store, run, tenant: tenant,
                [
                    StepStarted(runID: run, step: 1, attempt: 1, workerID: "w1", fencingToken: 1),
                    StepFailed(
                        runID: run, step: 1, attempt: 1, vendor: .prospeo, failure: .keyFatal,
                        reason: "HTTP 401: invalid API key"),
                    StepScheduled(runID: run, step: 1, kind: .find, vendor: .prospeo, attempt: 2, notBefore: nil),
                ])
            try await Self.waitFor(client, run, key: key, "the run to park") { $0.string("status") == "parked" }
            let parked = try await client.call(.get, "/v1/runs/\(run.lowercased)", token: key)
            #expect(parked.string("reason") == "HTTP 401: invalid API key" && parked["finishedAt"] == nil)
            #expect(parked["steps"]?.arrayValue.map { $0["status"]?.stringValue } == ["failed", "scheduled"])
            #expect(try await client.call(.get, "/v1/runs?status=parked", token: key)["items"]?.arrayValue.count == 1)
            #expect(
                try await client.call(.get, "/v1/runs?status=running", token: key)["items"]?.arrayValue.isEmpty == true)
            #expect(
                try await client.call(.post, "/v1/runs/\(run.lowercased)/retry", token: key).status == .conflict,
                "parked is not failed")

            try await Self.work(
                harness.store, run, tenant: tenant,
                [StepStarted(runID: run, step: 1, attempt: 2, workerID: "w2", fencingToken: 2)])
            try await Self.waitFor(client, run, key: key, "the run to run again") {
                $0.string("status") == "running" && $0["reason"] == nil
            }

            // Parked again, then cancelled: a parked run has not ended.
            try await Self.work(
                harness.store, run, tenant: tenant,
                [
                    StepFailed(
                        runID: run, step: 1, attempt: 2, vendor: .prospeo, failure: .keyFatal,
                        reason: "HTTP 402: out of credits"),
                    StepScheduled(runID: run, step: 1, kind: .find, vendor: .prospeo, attempt: 3, notBefore: nil),
                ])
            try await Self.waitFor(client, run, key: key, "the run to park again") { $0.string("status") == "parked" }
            let cancelled = try await client.call(.post, "/v1/runs/\(run.lowercased)/cancel", token: key)
            #expect(cancelled.status == .ok && cancelled.string("status") == "cancelled")

            // A transient failure does not park.
            let other = try await Self.start(client, key: key, workflow: workflow)
            try await Self.work(
                harness.store, other, tenant: tenant,
                [
                    StepStarted(runID: other, step: 1, attempt: 1, workerID: "w1", fencingToken: 1),
                    StepFailed(
                        runID: other, step: 1, attempt: 1, vendor: .prospeo, failure: .transient, reason: "HTTP 503"),
                ])
            try await Self.waitFor(client, other, key: key, "the failed attempt") {
                $0["steps"]?[0]?["status"] == .string("failed")
            }
            #expect(
                try await client.call(.get, "/v1/runs/\(other.lowercased)", token: key).string("status") == "running")
        }
    }

    @Test("the run state a command decides on follows failed, retried, parked and resumed runs like the projection")
    func foldedState() throws {
        let run = UUID()
        let tenant = UUID()
        var version: Int64 = 0
        func recorded(_ event: any DomainEvent) throws -> RecordedEvent {
            version += 1
            let data = try EventCatalog.tally.encode(event)
            return RecordedEvent(
                feedPosition: FeedPosition(transactionID: 1, globalPosition: version), tenantID: tenant,
                stream: .run(run),
                streamVersion: version, id: data.id, type: data.type, schemaVersion: data.schemaVersion, codec: .json,
                storedPayload: data.json, metadataJSON: Array("{}".utf8), recordedAt: Date())
        }
        let definition = WorkflowDefinition(finders: [.findymail, .prospeo], validator: nil, maxAttempts: 3)
        var events = [
            try recorded(
                RunStarted(
                    runID: run, tenantID: tenant, workflowID: UUID(), definition: definition, input: PersonInput(),
                    batchID: nil)),
            try recorded(RunFinished(runID: run, status: .failed, email: nil, validationStatus: nil, reason: "x")),
        ]
        var state = try RunState.fold(events, catalog: .tally)
        #expect(state.status == "failed" && state.lastStep == 0 && state.version == 2)
        #expect(
            state.retryStep?.kind == .find && state.retryStep?.vendor == .findymail, "no step yet: the first finder")

        events.append(
            try recorded(
                StepScheduled(runID: run, step: 1, kind: .find, vendor: .findymail, attempt: 1, notBefore: nil)))
        events.append(
            try recorded(
                StepFailed(runID: run, step: 1, attempt: 1, vendor: .findymail, failure: .keyFatal, reason: "401")))
        state = try RunState.fold(events, catalog: .tally)
        #expect(state.status == "parked" && state.lastStep == 1)
        events.append(try recorded(StepStarted(runID: run, step: 1, attempt: 2, workerID: "w", fencingToken: 1)))
        events.append(
            try recorded(StepScheduled(runID: run, step: 2, kind: .find, vendor: .prospeo, attempt: 1, notBefore: nil)))
        events.append(
            try recorded(RunFinished(runID: run, status: .failed, email: nil, validationStatus: nil, reason: "y")))
        state = try RunState.fold(events, catalog: .tally)
        #expect(state.status == "failed" && state.lastStep == 2 && state.version == 7)
        #expect(state.retryStep?.vendor == .findymail, "the step that failed last, not the last one scheduled")
    }
}
