public import Events
public import Foundation

/// A run as its stream says now, for deciding commands; the statuses are those of `workflow_runs`.
public struct RunState: Sendable {
    /// `running`, `parked`, `succeeded`, `not_found`, `failed` or `cancelled`.
    public var status = "running"
    /// The stream's version the decision was made at.
    public var version: Int64 = 0
    /// The highest step number scheduled so far (0: none).
    public var lastStep = 0
    /// What a retry schedules: the kind and vendor of the step that failed last, else of the last step
    /// scheduled, else the workflow's first finder (a run started before the API scheduled first steps).
    public var retryStep: (kind: StepKind, vendor: Vendor)?

    /// The run's state; a `.notFound` error when it does not exist or belongs to another tenant.
    public static func load(_ id: UUID, tenant: UUID, store: EventStore) async throws -> RunState {
        guard let events = try await store.readAll(.run(id), ownedBy: tenant) else {
            throw CommandError.notFound("run")
        }
        return try fold(events, catalog: store.catalog)
    }

    /// The state after `events` (a whole run stream, in version order).
    public static func fold(_ events: [RecordedEvent], catalog: EventCatalog) throws -> RunState {
        var state = RunState()
        var kinds: [Int: StepKind] = [:]
        var lastScheduled: (kind: StepKind, vendor: Vendor)?
        var lastFailed: (kind: StepKind, vendor: Vendor)?
        var firstFinder: Vendor?
        for recorded in events {
            state.version = recorded.streamVersion
            switch try catalog.decode(recorded) {
            case let event as RunStarted: firstFinder = event.definition.finders.first
            case let event as StepScheduled:
                state.lastStep = max(state.lastStep, event.step)
                kinds[event.step] = event.kind
                lastScheduled = (event.kind, event.vendor)
                if state.status == "failed" { state.status = "running" }
            case is StepStarted:
                if state.status == "parked" { state.status = "running" }
            case let event as StepFailed:
                lastFailed = (kinds[event.step] ?? .find, event.vendor)
                if event.failure == .keyFatal, state.status == "running" { state.status = "parked" }
            case let event as RunFinished: state.status = event.status.rawValue
            case is RunCancelled: state.status = "cancelled"
            default: break
            }
        }
        state.retryStep = lastFailed ?? lastScheduled ?? firstFinder.map { (kind: .find, vendor: $0) }
        return state
    }
}

extension Commands {
    /// The appends that start one run per input: each run's `RunStarted` and its first `StepScheduled` in one
    /// stream append, so a worker never sees a started run without a step to claim. Pure: appending them
    /// (all at once, or in chunks) is the caller's.
    public static func runStarts(
        tenant: UUID, workflowID: UUID, definition: WorkflowDefinition, inputs: [PersonInput], batchID: UUID?,
        metadata: EventMetadata = EventMetadata()
    ) throws -> (runIDs: [UUID], appends: [StreamAppend]) {
        guard let finder = definition.finders.first else {
            throw CommandError(
                .invalid, "workflow", detail: "this workflow has no finder to start with", pointer: "/workflowId")
        }
        var runIDs: [UUID] = []
        var appends: [StreamAppend] = []
        for input in inputs {
            let id = UUID()
            runIDs.append(id)
            let started = RunStarted(
                runID: id, tenantID: tenant, workflowID: workflowID, definition: definition, input: input,
                batchID: batchID)
            let first = StepScheduled(
                runID: id, step: 1, kind: .find, vendor: finder, attempt: 1, notBefore: nil)
            appends.append(
                StreamAppend(
                    stream: .run(id), tenantID: tenant, expected: .noStream,
                    events: [
                        try EventCatalog.tally.encode(started, metadata: metadata),
                        try EventCatalog.tally.encode(first, metadata: metadata),
                    ]))
        }
        return (runIDs, appends)
    }

    /// Starts one run per input, atomically (see `runStarts`), with the definition `startableWorkflow`
    /// returned.
    public func startRuns(
        tenant: UUID, workflowID: UUID, definition: WorkflowDefinition, inputs: [PersonInput], batchID: UUID?,
        metadata: EventMetadata
    ) async throws -> (runIDs: [UUID], applied: Applied) {
        let (runIDs, appends) = try Self.runStarts(
            tenant: tenant, workflowID: workflowID, definition: definition, inputs: inputs, batchID: batchID,
            metadata: metadata)
        let results = try await append(appends, events: [])
        return (runIDs, results)
    }

    /// Cancels a running or parked run; a `run-finished` conflict for one that ended.
    public func cancelRun(_ id: UUID, tenant: UUID, reason: String, metadata: EventMetadata) async throws -> Applied {
        let run = try await RunState.load(id, tenant: tenant, store: store)
        guard run.status == "running" || run.status == "parked" else {
            throw CommandError(
                .conflict, "run", code: "run-finished", title: "Run already ended",
                detail: "The run is \(run.status); only a running or parked run can be cancelled.")
        }
        return try await append(
            RunCancelled(runID: id, reason: reason), to: .run(id), tenant: tenant, expected: .exactly(run.version),
            metadata: metadata)
    }

    /// Schedules a failed run's last failed step again, as the next step of the run: the run is running again
    /// and the workers claim the step like any other. A `run-not-failed` conflict for any other run.
    public func retryRun(_ id: UUID, tenant: UUID, metadata: EventMetadata) async throws -> Applied {
        let run = try await RunState.load(id, tenant: tenant, store: store)
        guard run.status == "failed", let retried = run.retryStep else {
            throw CommandError(
                .conflict, "run", code: "run-not-failed", title: "Run not failed",
                detail: "The run is \(run.status); only a failed run can be retried.")
        }
        let scheduled = StepScheduled(
            runID: id, step: run.lastStep + 1, kind: retried.kind, vendor: retried.vendor, attempt: 1, notBefore: nil)
        return try await append(
            scheduled, to: .run(id), tenant: tenant, expected: .exactly(run.version), metadata: metadata)
    }
}
