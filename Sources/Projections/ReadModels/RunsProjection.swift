public import Events
import Foundation

/// `workflow_runs` (one row per run: status, current step, result) and `workflow_progress` (one row per step
/// attempt with its outcome), from the run streams.
///
/// A run is `running` until it finishes or is cancelled; a key-fatal step failure `parked`s it until a worker
/// starts a step again, and a step scheduled after it `failed` (a retry) makes it `running` again.
///
/// Run streams are most of the log, so a batch is folded in memory: the rows it touches are loaded once, every
/// event is applied to them, and each table gets one upsert for the whole batch. The result does not depend on
/// how the events are split into batches (the determinism test checks exactly that).
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

    typealias Run = RunRow

    struct Attempt: Hashable {
        let runID: UUID
        let step: Int32
        let attempt: Int32
    }

    struct Progress {
        var tenantID: UUID
        var kind: String
        var vendor: String
        var status: String
        var outcome: String?
        var email: String?
        var validationStatus: String?
        var failure: String?
        var reason: String?
        var workerID: String?
        var credits: Int32
        var notBefore: Date?
        var scheduledAt: Date
        var startedAt: Date?
        var finishedAt: Date?
    }

    public func apply(_ events: [RecordedEvent], in context: ProjectionContext) async throws {
        let decoded = try events.map { ($0, try context.decode($0)) }
        var runs = try await loadRuns(decoded, context)
        var progress = try await loadProgress(decoded, context)
        // Rows written back, in first-touched order (a set beside each list keeps membership checks cheap).
        var touchedRuns: [UUID] = []
        var touchedRunSet = Set<UUID>()
        var touchedAttempts: [Attempt] = []
        var touchedAttemptSet = Set<Attempt>()
        let encoder = EventCatalog.makeEncoder()

        func run(_ id: UUID, _ recorded: RecordedEvent) throws -> UUID {
            guard runs[id] != nil else {
                throw ProjectionsError(
                    .unexpectedEvent,
                    "run \(id.lowercased) has events before it started (position \(recorded.globalPosition))")
            }
            if touchedRunSet.insert(id).inserted { touchedRuns.append(id) }
            runs[id]!.updatedAt = recorded.recordedAt
            return id
        }
        func attempt(_ key: Attempt, _ recorded: RecordedEvent) throws -> Attempt {
            guard progress[key] != nil else {
                throw ProjectionsError(
                    .unexpectedEvent,
                    "run \(key.runID.lowercased) step \(key.step) attempt \(key.attempt) was never scheduled (position \(recorded.globalPosition))"
                )
            }
            if touchedAttemptSet.insert(key).inserted { touchedAttempts.append(key) }
            return key
        }

        for (recorded, event) in decoded {
            let at = recorded.recordedAt
            switch event {
            case let event as RunStarted:
                runs[event.runID] = Run(
                    runID: event.runID, tenantID: event.tenantID, workflowID: event.workflowID, batchID: event.batchID,
                    status: "running", input: Array(try encoder.encode(event.input)), credits: 0, startedAt: at,
                    updatedAt: at)
                if touchedRunSet.insert(event.runID).inserted { touchedRuns.append(event.runID) }
            case let event as StepScheduled:
                let id = try run(event.runID, recorded)
                let tenant = runs[id]!.tenantID
                if runs[id]!.status == RunStatus.failed.rawValue {
                    // A retry: the run is running again.
                    runs[id]!.status = "running"
                    runs[id]!.reason = nil
                    runs[id]!.finishedAt = nil
                }
                runs[id]!.currentStep = Int32(event.step)
                runs[id]!.currentVendor = event.vendor.rawValue
                let key = Attempt(runID: event.runID, step: Int32(event.step), attempt: Int32(event.attempt))
                progress[key] = Progress(
                    tenantID: tenant, kind: event.kind.rawValue, vendor: event.vendor.rawValue, status: "scheduled",
                    credits: 0, notBefore: event.notBefore, scheduledAt: at)
                if touchedAttemptSet.insert(key).inserted { touchedAttempts.append(key) }
            case let event as StepStarted:
                let key = try attempt(
                    Attempt(runID: event.runID, step: Int32(event.step), attempt: Int32(event.attempt)), recorded)
                progress[key]!.status = "started"
                progress[key]!.startedAt = at
                progress[key]!.workerID = event.workerID
                if runs[event.runID]?.status == "parked" {
                    // The tenant stored a new key and a worker claimed the step again.
                    let id = try run(event.runID, recorded)
                    runs[id]!.status = "running"
                    runs[id]!.reason = nil
                }
            case let event as VendorCallBilled:
                let key = try attempt(
                    Attempt(runID: event.runID, step: Int32(event.step), attempt: Int32(event.attempt)), recorded)
                progress[key]!.credits += Int32(event.credits)
                runs[try run(event.runID, recorded)]!.credits += Int32(event.credits)
            case let event as StepFinished:
                let key = try attempt(
                    Attempt(runID: event.runID, step: Int32(event.step), attempt: Int32(event.attempt)), recorded)
                progress[key]!.status = "finished"
                progress[key]!.outcome = event.outcome.rawValue
                progress[key]!.email = event.email
                progress[key]!.validationStatus = event.validationStatus
                progress[key]!.finishedAt = at
            case let event as StepFailed:
                let key = try attempt(
                    Attempt(runID: event.runID, step: Int32(event.step), attempt: Int32(event.attempt)), recorded)
                progress[key]!.status = "failed"
                progress[key]!.failure = event.failure.rawValue
                progress[key]!.reason = event.reason
                progress[key]!.finishedAt = at
                if event.failure == .keyFatal, runs[event.runID]?.status == "running" {
                    // The run waits for the tenant to store a new key for the vendor.
                    let id = try run(event.runID, recorded)
                    runs[id]!.status = "parked"
                    runs[id]!.reason = event.reason
                }
            case let event as RunFinished:
                let id = try run(event.runID, recorded)
                runs[id]!.status = event.status.rawValue
                runs[id]!.email = event.email
                runs[id]!.validationStatus = event.validationStatus
                runs[id]!.reason = event.reason
                runs[id]!.finishedAt = at
            case let event as RunCancelled:
                let id = try run(event.runID, recorded)
                runs[id]!.status = "cancelled"
                runs[id]!.reason = event.reason
                runs[id]!.finishedAt = at
            default:
                throw ProjectionsError(
                    .unexpectedEvent,
                    "workflow_runs cannot apply \(recorded.type) at position \(recorded.globalPosition)")
            }
        }
        try await write(touchedRuns.compactMap { runs[$0] }, context)
        try await write(touchedAttempts.map { ($0, progress[$0]!) }, context)
    }

    // MARK: - Loading the rows a batch changes

    private func loadRuns(_ decoded: [(RecordedEvent, any DomainEvent)], _ context: ProjectionContext) async throws
        -> [UUID: Run]
    {
        var created = Set<UUID>()
        var referenced = Set<UUID>()
        for (_, event) in decoded {
            switch event {
            case let event as RunStarted: created.insert(event.runID)
            case let event as StepScheduled: referenced.insert(event.runID)
            // Either may change the run's status (parked and back), depending on the status it has.
            case let event as StepStarted: referenced.insert(event.runID)
            case let event as StepFailed where event.failure == .keyFatal: referenced.insert(event.runID)
            case let event as VendorCallBilled: referenced.insert(event.runID)
            case let event as RunFinished: referenced.insert(event.runID)
            case let event as RunCancelled: referenced.insert(event.runID)
            default: break
            }
        }
        let missing = referenced.subtracting(created)
        guard !missing.isEmpty else { return [:] }
        let rows = try await context.execute(
            "SELECT \(RunRow.columns) FROM workflow_runs WHERE run_id = ANY($1)", [.uuidArray(Array(missing))])
        var runs: [UUID: Run] = [:]
        for row in rows {
            let run = try RunRow(row)
            runs[run.runID] = run
        }
        return runs
    }

    private func loadProgress(_ decoded: [(RecordedEvent, any DomainEvent)], _ context: ProjectionContext) async throws
        -> [Attempt: Progress]
    {
        var scheduled = Set<Attempt>()
        var referenced = Set<Attempt>()
        for (_, event) in decoded {
            switch event {
            case let event as StepScheduled:
                scheduled.insert(Attempt(runID: event.runID, step: Int32(event.step), attempt: Int32(event.attempt)))
            case let event as StepStarted:
                referenced.insert(Attempt(runID: event.runID, step: Int32(event.step), attempt: Int32(event.attempt)))
            case let event as VendorCallBilled:
                referenced.insert(Attempt(runID: event.runID, step: Int32(event.step), attempt: Int32(event.attempt)))
            case let event as StepFinished:
                referenced.insert(Attempt(runID: event.runID, step: Int32(event.step), attempt: Int32(event.attempt)))
            case let event as StepFailed:
                referenced.insert(Attempt(runID: event.runID, step: Int32(event.step), attempt: Int32(event.attempt)))
            default: break
            }
        }
        let missing = Array(referenced.subtracting(scheduled))
        guard !missing.isEmpty else { return [:] }
        let rows = try await context.execute(
            """
            SELECT p.run_id, p.step, p.attempt, tenant_id, kind, vendor, status, outcome, email, validation_status, failure,
                   reason, worker_id, credits, not_before, scheduled_at, started_at, finished_at
            FROM workflow_progress p
            JOIN unnest($1::uuid[], $2::int4[], $3::int4[]) AS k(run_id, step, attempt)
              ON p.run_id = k.run_id AND p.step = k.step AND p.attempt = k.attempt
            """,
            [.uuidArray(missing.map(\.runID)), .int32Array(missing.map(\.step)), .int32Array(missing.map(\.attempt))])
        var progress: [Attempt: Progress] = [:]
        for row in rows {
            let key = Attempt(runID: try row.uuid(0), step: Int32(try row.int64(1)), attempt: Int32(try row.int64(2)))
            progress[key] = Progress(
                tenantID: try row.uuid(3), kind: try row.string(4), vendor: try row.string(5),
                status: try row.string(6),
                outcome: try row.optionalString(7), email: try row.optionalString(8),
                validationStatus: try row.optionalString(9),
                failure: try row.optionalString(10), reason: try row.optionalString(11),
                workerID: try row.optionalString(12),
                credits: Int32(try row.int64(13)), notBefore: try row.optionalDate(14), scheduledAt: try row.date(15),
                startedAt: try row.optionalDate(16), finishedAt: try row.optionalDate(17))
        }
        return progress
    }

    // MARK: - Writing a batch

    private func write(_ runs: [Run], _ context: ProjectionContext) async throws {
        guard !runs.isEmpty else { return }
        try await context.execute(
            """
            INSERT INTO workflow_runs AS r (run_id, tenant_id, workflow_id, batch_id, status, input, current_step, current_vendor,
                                            email, validation_status, reason, credits, started_at, updated_at, finished_at)
            SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::jsonb[], $7::int4[], $8::text[],
                                 $9::text[], $10::text[], $11::text[], $12::int4[], $13::timestamptz[], $14::timestamptz[],
                                 $15::timestamptz[])
            ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, current_step = excluded.current_step,
                current_vendor = excluded.current_vendor, email = excluded.email, validation_status = excluded.validation_status,
                reason = excluded.reason, credits = excluded.credits, updated_at = excluded.updated_at,
                finished_at = excluded.finished_at
            """,
            [
                .uuidArray(runs.map(\.runID)), .uuidArray(runs.map(\.tenantID)), .uuidArray(runs.map(\.workflowID)),
                .uuidArray(runs.map(\.batchID)), .stringArray(runs.map(\.status)), .jsonbArray(runs.map(\.input)),
                .int32Array(runs.map(\.currentStep)), .stringArray(runs.map(\.currentVendor)),
                .stringArray(runs.map(\.email)),
                .stringArray(runs.map(\.validationStatus)), .stringArray(runs.map(\.reason)),
                .int32Array(runs.map { Optional($0.credits) }),
                .timestampArray(runs.map(\.startedAt)), .timestampArray(runs.map(\.updatedAt)),
                .timestampArray(runs.map(\.finishedAt)),
            ])
    }

    private func write(_ attempts: [(Attempt, Progress)], _ context: ProjectionContext) async throws {
        guard !attempts.isEmpty else { return }
        let keys = attempts.map(\.0)
        let rows = attempts.map(\.1)
        try await context.execute(
            """
            INSERT INTO workflow_progress AS p (run_id, step, attempt, tenant_id, kind, vendor, status, outcome, email,
                validation_status, failure, reason, worker_id, credits, not_before, scheduled_at, started_at, finished_at)
            SELECT * FROM unnest($1::uuid[], $2::int4[], $3::int4[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[],
                                 $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::int4[], $15::timestamptz[],
                                 $16::timestamptz[], $17::timestamptz[], $18::timestamptz[])
            ON CONFLICT (run_id, step, attempt) DO UPDATE SET status = excluded.status, outcome = excluded.outcome,
                email = excluded.email, validation_status = excluded.validation_status, failure = excluded.failure,
                reason = excluded.reason, worker_id = excluded.worker_id, credits = excluded.credits,
                started_at = excluded.started_at, finished_at = excluded.finished_at
            """,
            [
                .uuidArray(keys.map(\.runID)), .int32Array(keys.map { Optional($0.step) }),
                .int32Array(keys.map { Optional($0.attempt) }),
                .uuidArray(rows.map(\.tenantID)), .stringArray(rows.map(\.kind)), .stringArray(rows.map(\.vendor)),
                .stringArray(rows.map(\.status)), .stringArray(rows.map(\.outcome)), .stringArray(rows.map(\.email)),
                .stringArray(rows.map(\.validationStatus)), .stringArray(rows.map(\.failure)),
                .stringArray(rows.map(\.reason)),
                .stringArray(rows.map(\.workerID)), .int32Array(rows.map { Optional($0.credits) }),
                .timestampArray(rows.map(\.notBefore)),
                .timestampArray(rows.map(\.scheduledAt)), .timestampArray(rows.map(\.startedAt)),
                .timestampArray(rows.map(\.finishedAt)),
            ])
    }
}
