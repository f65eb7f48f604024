public import Events
import Foundation

/// `workflow_runs` (one row per run: status, current step, result) and `workflow_progress` (one row per step
/// attempt with its outcome), from the run streams.
public struct RunsProjection: Projection {
    public let name = "workflow_runs"
    public let version = 1
    public let eventTypes: Set<String> = [
        RunStarted.eventType, StepScheduled.eventType, StepStarted.eventType, VendorCallBilled.eventType,
        StepFinished.eventType, StepFailed.eventType, RunFinished.eventType, RunCancelled.eventType,
    ]
    public let tables = [
        ProjectionTable(
            name: "workflow_runs",
            columns: """
                run_id uuid PRIMARY KEY,
                tenant_id uuid NOT NULL,
                workflow_id uuid NOT NULL,
                batch_id uuid,
                status text NOT NULL,
                input jsonb NOT NULL,
                current_step integer,
                current_vendor text,
                email text,
                validation_status text,
                reason text,
                credits integer NOT NULL DEFAULT 0,
                started_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL,
                finished_at timestamptz
                """,
            indexes: [
                "CREATE INDEX IF NOT EXISTS {table}_tenant_idx ON {table} (tenant_id, started_at DESC, run_id)",
                "CREATE INDEX IF NOT EXISTS {table}_status_idx ON {table} (tenant_id, status)",
            ]),
        ProjectionTable(
            name: "workflow_progress",
            columns: """
                run_id uuid NOT NULL,
                step integer NOT NULL,
                attempt integer NOT NULL,
                tenant_id uuid NOT NULL,
                kind text NOT NULL,
                vendor text NOT NULL,
                status text NOT NULL,
                outcome text,
                email text,
                validation_status text,
                failure text,
                reason text,
                worker_id text,
                credits integer NOT NULL DEFAULT 0,
                not_before timestamptz,
                scheduled_at timestamptz NOT NULL,
                started_at timestamptz,
                finished_at timestamptz,
                PRIMARY KEY (run_id, step, attempt)
                """),
    ]

    public init() {}

    public func apply(_ events: [RecordedEvent], in context: ProjectionContext) async throws {
        let encoder = EventCatalog.makeEncoder()
        for recorded in events {
            let at = PostgresValue.timestamp(recorded.recordedAt)
            let event = try context.catalog.decode(recorded)
            if let started = event as? RunStarted {
                try await context.execute(
                    """
                    INSERT INTO workflow_runs (run_id, tenant_id, workflow_id, batch_id, status, input, started_at, updated_at)
                    VALUES ($1, $2, $3, $4, 'running', $5, $6, $6)
                    """,
                    [
                        .uuid(started.runID), .uuid(started.tenantID), .uuid(started.workflowID), .uuid(started.batchID),
                        .jsonb(Array(try encoder.encode(started.input))), at,
                    ])
                continue
            }
            guard let tenant = recorded.tenantID else {
                throw ProjectionsError(.unexpectedEvent, "the \(recorded.type) at position \(recorded.globalPosition) has no tenant")
            }
            switch event {
            case let event as StepScheduled:
                try await context.execute(
                    """
                    INSERT INTO workflow_progress (run_id, step, attempt, tenant_id, kind, vendor, status, not_before, scheduled_at)
                    VALUES ($1, $2, $3, $4, $5, $6, 'scheduled', $7, $8)
                    """,
                    [
                        .uuid(event.runID), .int32(Int32(event.step)), .int32(Int32(event.attempt)), .uuid(tenant),
                        .string(event.kind.rawValue), .string(event.vendor.rawValue),
                        event.notBefore.map(PostgresValue.timestamp) ?? .null, at,
                    ])
                try await updateRun(event.runID, "current_step = $3, current_vendor = $4", [.int32(Int32(event.step)), .string(event.vendor.rawValue)], at, context)
            case let event as StepStarted:
                try await updateAttempt(event.runID, event.step, event.attempt, "status = 'started', started_at = $4, worker_id = $5", [at, .string(event.workerID)], context)
            case let event as VendorCallBilled:
                try await updateAttempt(event.runID, event.step, event.attempt, "credits = credits + $4", [.int32(Int32(event.credits))], context)
                try await updateRun(event.runID, "credits = credits + $3", [.int32(Int32(event.credits))], at, context)
            case let event as StepFinished:
                try await updateAttempt(
                    event.runID, event.step, event.attempt,
                    "status = 'finished', outcome = $4, email = $5, validation_status = $6, finished_at = $7",
                    [.string(event.outcome.rawValue), .string(event.email), .string(event.validationStatus), at], context)
            case let event as StepFailed:
                try await updateAttempt(
                    event.runID, event.step, event.attempt, "status = 'failed', failure = $4, reason = $5, finished_at = $6",
                    [.string(event.failure.rawValue), .string(event.reason), at], context)
            case let event as RunFinished:
                try await updateRun(
                    event.runID, "status = $3, email = $4, validation_status = $5, reason = $6, finished_at = $2",
                    [.string(event.status.rawValue), .string(event.email), .string(event.validationStatus), .string(event.reason)], at, context)
            case let event as RunCancelled:
                try await updateRun(event.runID, "status = 'cancelled', reason = $3, finished_at = $2", [.string(event.reason)], at, context)
            default:
                throw ProjectionsError(.unexpectedEvent, "workflow_runs cannot apply \(recorded.type) at position \(recorded.globalPosition)")
            }
        }
    }

    private func updateRun(
        _ run: UUID, _ assignments: String, _ values: [PostgresValue], _ at: PostgresValue, _ context: ProjectionContext
    ) async throws {
        let rows = try await context.execute(
            "UPDATE workflow_runs SET \(assignments), updated_at = $2 WHERE run_id = $1", [.uuid(run), at] + values)
        guard rows.affectedRows == 1 else {
            throw ProjectionsError(.unexpectedEvent, "run \(run.lowercased) has events before it started")
        }
    }

    private func updateAttempt(
        _ run: UUID, _ step: Int, _ attempt: Int, _ assignments: String, _ values: [PostgresValue], _ context: ProjectionContext
    ) async throws {
        let rows = try await context.execute(
            "UPDATE workflow_progress SET \(assignments) WHERE run_id = $1 AND step = $2 AND attempt = $3",
            [.uuid(run), .int32(Int32(step)), .int32(Int32(attempt))] + values)
        guard rows.affectedRows == 1 else {
            throw ProjectionsError(.unexpectedEvent, "run \(run.lowercased) step \(step) attempt \(attempt) was never scheduled")
        }
    }
}
