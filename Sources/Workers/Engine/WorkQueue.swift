import Events
import Foundation

/// The run queue and flow state in PostgreSQL (migration 6): claiming steps under flow control, committing their
/// outcomes with the fencing check, and applying the log's events to the queue.
struct WorkQueue: Sendable {
    let store: EventStore
    let backoff: Waterfall.Backoff

    static let begin = "BEGIN"

    // MARK: - Claiming

    /// Claims up to `slots` due steps and appends their StepStarted events in the same transaction, so a
    /// step is never called without its start in the log, and a claim whose start cannot be written never
    /// happened. A run whose queue row is behind its stream (the API cancelled it a moment ago) makes the
    /// whole claim roll back; the row is brought up to date from the log and the next claim goes on.
    func claim(worker: String, slots: Int, lease: Duration) async throws -> [ClaimedStep] {
        guard slots > 0 else { return [] }
        do {
            // work_claim skips runs a newer transaction appended to, so a retry here is rare (docs/architecture.md).
            let steps = try await store.retryingSerializationFailures {
                try await store.pool.withConnection { connection in
                    try await connection.withTransaction(begin: Self.begin) {
                        try await claim(worker: worker, slots: slots, lease: lease, on: connection)
                    }
                }
            }
            if !steps.isEmpty { store.appended() }
            return steps
        } catch let error as EventsError where error.code == .conflict {
            try await catchUp(runs: error.stream.flatMap { Self.runID(of: $0) }.map { [$0] } ?? [])
            return []
        }
    }

    private func claim(worker: String, slots: Int, lease: Duration, on connection: PostgresConnection) async throws
        -> [ClaimedStep]
    {
        let rows = try await connection.query(
            "SELECT * FROM work_claim($1, $2, $3)",
            [.string(worker), .int32(Int32(clamping: slots)), .int32(Int32(clamping: Int64(lease.seconds * 1000)))])
        guard !rows.isEmpty else { return [] }
        let decoder = JSONDecoder()
        var steps: [ClaimedStep] = []
        for row in rows {
            guard let kind = StepKind(rawValue: try row.string(4)), let vendor = Vendor(rawValue: try row.string(5))
            else {
                throw EventsError(
                    .decoding,
                    "work_queue holds a step of an unknown kind or vendor for run \(try row.uuid(0).lowercased)")
            }
            steps.append(
                ClaimedStep(
                    runID: try row.uuid(0), tenantID: try row.uuid(1), step: try row.int(2), attempt: try row.int(3),
                    kind: kind,
                    vendor: vendor, fencingToken: try row.int64(6), streamVersion: try row.int64(7),
                    definition: try decoder.decode(WorkflowDefinition.self, from: Data(try row.jsonBytes(8))),
                    input: try decoder.decode(PersonInput.self, from: Data(try row.jsonBytes(9))),
                    email: try row.optionalString(10),
                    transientFailures: try row.int(11),
                    key: VendorKeyReference(
                        fingerprint: try row.string(12), secretVersion: try row.int(13),
                        tenantKeyVersion: try row.int(14),
                        sealed: try row.bytes(15))))
        }
        let appends = try steps.map { step in
            StreamAppend(
                stream: .run(step.runID), tenantID: step.tenantID, expected: .exactly(step.streamVersion),
                events: [
                    try EventCatalog.tally.encode(
                        StepStarted(
                            runID: step.runID, step: step.step, attempt: step.attempt, workerID: worker,
                            fencingToken: step.fencingToken),
                        metadata: EventMetadata(correlationID: step.runID, actor: "worker:" + worker))
                ])
        }
        let results = try await store.append(appends, on: connection)
        for index in steps.indices { steps[index].streamVersion = results[index].streamVersion }
        try await connection.query(
            """
            UPDATE work_queue q SET stream_version = u.version
            FROM unnest($1::uuid[], $2::int8[]) AS u(run_id, version) WHERE q.run_id = u.run_id
            """, [.uuidArray(steps.map(\.runID)), .int64Array(steps.map(\.streamVersion))])
        return steps
    }

    // MARK: - Committing

    /// A step whose vendor call ended.
    struct Finished: Sendable {
        var step: ClaimedStep
        var result: VendorCallResult
    }

    struct CommitReport: Sendable, Hashable {
        /// Steps whose outcome is in the log now.
        var committed = 0
        /// Steps another claim took over (lease expired): their outcome was dropped, the new claim decides.
        var fenced = 0
        /// Steps that could not be committed (the lease will run out and the step be claimed again).
        var deferred = 0

        static func + (lhs: Self, rhs: Self) -> Self {
            Self(
                committed: lhs.committed + rhs.committed, fenced: lhs.fenced + rhs.fenced,
                deferred: lhs.deferred + rhs.deferred)
        }
    }

    /// Commits finished steps: for each, its outcome, VendorCallBilled and the next StepScheduled or
    /// RunFinished, appended with the run stream's expected version, and the queue row moved on, in one
    /// transaction for the whole batch. A step whose fencing token was raised by another claim is dropped.
    /// When some run changed meanwhile (a cancellation the queue had not seen), the batch is retried one run
    /// at a time after catching that run up with the log.
    func commit(_ batch: [Finished], now: @Sendable () -> Date = Date.init) async throws -> CommitReport {
        guard !batch.isEmpty else { return CommitReport() }
        do {
            return try await commitTogether(batch, now: now)
        } catch let error as EventsError where error.code == .conflict {
            var report = CommitReport()
            for item in batch {
                do {
                    report = report + (try await commitTogether([item], now: now))
                } catch let error as EventsError where error.code == .conflict {
                    try await catchUp(runs: [item.step.runID])
                    do {
                        report = report + (try await commitTogether([item], now: now))
                    } catch let error as EventsError where error.code == .conflict {
                        report.deferred += 1
                    }
                }
            }
            return report
        }
    }

    private func commitTogether(_ batch: [Finished], now: @Sendable () -> Date) async throws -> CommitReport {
        let report = try await store.retryingSerializationFailures {
            try await store.pool.withConnection { connection in
                try await connection.withTransaction(begin: Self.begin) {
                    try await commitTogether(batch, now: now(), on: connection)
                }
            }
        }
        if report.committed > 0 { store.appended() }
        return report
    }

    private struct Row {
        var state: String
        var token: Int64
        var version: Int64
        var cancelled: Bool
    }

    private func commitTogether(_ batch: [Finished], now: Date, on connection: PostgresConnection) async throws
        -> CommitReport
    {
        var report = CommitReport()
        var rows: [UUID: Row] = [:]
        for row in try await connection.query(
            """
            SELECT run_id, state, fencing_token, stream_version, cancelled FROM work_queue
            WHERE run_id = ANY($1) ORDER BY run_id FOR UPDATE
            """, [.uuidArray(batch.map(\.step.runID))])
        {
            rows[try row.uuid(0)] = Row(
                state: try row.string(1), token: try row.int64(2), version: try row.int64(3), cancelled: try row.bool(4)
            )
        }
        var appends: [StreamAppend] = []
        var updates: [(step: ClaimedStep, next: Waterfall.Next, append: Int)] = []
        for item in batch {
            let step = item.step
            guard let row = rows[step.runID], row.token == step.fencingToken, row.state != "done" || row.cancelled
            else {
                report.fenced += 1
                continue
            }
            let decision = Waterfall.decide(
                step, result: item.result, cancelled: row.cancelled, backoff: backoff, now: now,
                unit: Double.random(in: 0..<1))
            let metadata = EventMetadata(correlationID: step.runID, actor: "worker")
            appends.append(
                StreamAppend(
                    stream: .run(step.runID), tenantID: step.tenantID,
                    expected: .exactly(row.cancelled ? row.version : step.streamVersion),
                    events: try decision.events.map { try EventCatalog.tally.encode($0, metadata: metadata) }))
            updates.append((step, decision.next, appends.count - 1))
            if let reason = decision.suspendKey, let append = try await suspend(step, reason: reason, on: connection) {
                appends.append(append)
            }
            if let until = decision.pauseUntil {
                try await connection.query(
                    """
                    INSERT INTO flow_keys AS f (vendor, tenant_id, fingerprint, paused_until, pause_reason) VALUES ($1, $2, $3, $4, $5)
                    ON CONFLICT (vendor, tenant_id, fingerprint) DO UPDATE
                    SET paused_until = greatest(f.paused_until, excluded.paused_until),
                        pause_reason = CASE WHEN f.paused_until > excluded.paused_until THEN f.pause_reason ELSE excluded.pause_reason END
                    """,
                    [
                        .string(step.vendor.rawValue), .uuid(step.tenantID), .string(step.key.fingerprint),
                        .timestamp(until),
                        .string(decision.pauseReason ?? "paused by the vendor"),
                    ])
            }
        }
        guard !appends.isEmpty else { return report }
        let results = try await store.append(appends, on: connection)
        // A finished run keeps its last step's values; only its state and version change.
        var states: [String] = []
        var next: [Waterfall.NextStep] = []
        for update in updates {
            switch update.next {
            case .waiting(let step):
                states.append("waiting")
                next.append(step)
            case .done:
                states.append("done")
                next.append(
                    Waterfall.NextStep(
                        step: update.step.step, attempt: update.step.attempt, kind: update.step.kind,
                        vendor: update.step.vendor,
                        notBefore: nil, transientFailures: update.step.transientFailures, email: update.step.email))
            }
        }
        try await connection.query(
            """
            UPDATE work_queue q
            SET state = u.state, step = u.step, attempt = u.attempt, kind = u.kind, vendor = u.vendor,
                not_before = coalesce(u.not_before, '-infinity'), transient_failures = u.failures, email = u.email,
                stream_version = u.version, lease_owner = NULL, lease_until = NULL, leased_fingerprint = NULL,
                cancelled = false, waiting_since = coalesce(u.not_before, now()), updated_at = now()
            FROM unnest($1::uuid[], $2::text[], $3::int4[], $4::int4[], $5::text[], $6::text[], $7::timestamptz[], $8::int4[],
                        $9::text[], $10::int8[]) AS u(run_id, state, step, attempt, kind, vendor, not_before, failures, email, version)
            WHERE q.run_id = u.run_id
            """,
            [
                .uuidArray(updates.map(\.step.runID)), .stringArray(states), .int32Array(next.map { Int32($0.step) }),
                .int32Array(next.map { Int32($0.attempt) }), .stringArray(next.map(\.kind.rawValue)),
                .stringArray(next.map(\.vendor.rawValue)),
                .timestampArray(next.map(\.notBefore)), .int32Array(next.map { Int32($0.transientFailures) }),
                .stringArray(next.map(\.email)),
                .int64Array(updates.map { results[$0.append].streamVersion }),
            ])
        report.committed += updates.count
        return report
    }

    /// Suspends the tenant's key once per secret version: the first key-fatal answer appends
    /// VendorKeySuspended, later ones (in this batch or another worker's) find it suspended already.
    private func suspend(_ step: ClaimedStep, reason: String, on connection: PostgresConnection) async throws
        -> StreamAppend?
    {
        let rows = try await connection.query(
            """
            UPDATE work_vendor_keys SET suspended_reason = $4, suspended_at = now(), stream_version = stream_version + 1, updated_at = now()
            WHERE tenant_id = $1 AND vendor = $2 AND secret_version = $3 AND suspended_reason IS NULL
            RETURNING stream_version - 1
            """,
            [
                .uuid(step.tenantID), .string(step.vendor.rawValue), .int32(Int32(step.key.secretVersion)),
                .string(reason),
            ])
        guard let version = try rows.first?.int64(0) else { return nil }
        let event = VendorKeySuspended(
            tenantID: step.tenantID, vendor: step.vendor, secretVersion: step.key.secretVersion,
            fingerprint: step.key.fingerprint,
            reason: reason)
        return StreamAppend(
            stream: .vendorSecret(tenant: step.tenantID, vendor: step.vendor), tenantID: step.tenantID,
            expected: .exactly(version),
            events: [
                try EventCatalog.tally.encode(
                    event, metadata: EventMetadata(correlationID: step.runID, actor: "worker"))
            ])
    }

    // MARK: - Applying the log

    /// The event types that change the queue, vendor keys or flow limits.
    static let eventTypes: Set<String> = [
        RunStarted.eventType, StepScheduled.eventType, RunFinished.eventType, RunCancelled.eventType,
        VendorSecretSealed.eventType, VendorSecretRemoved.eventType, VendorKeySuspended.eventType,
        FlowLimitsSet.eventType,
    ]

    /// Applies a page of the log to the queue tables. Every change is guarded by the stream version the row
    /// reflects, so an event the workers already applied themselves (they write their own rows together with
    /// their events), or one applied before, changes nothing: applying is idempotent and order-safe across runs.
    /// Returns whether some step became due.
    @discardableResult
    func apply(_ events: [RecordedEvent], on connection: PostgresConnection) async throws -> Bool {
        let catalog = store.catalog
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        var started: [UUID: (RunStarted, Int64)] = [:]
        var scheduled: [UUID: (StepScheduled, Int64, Date)] = [:]
        var ended: [UUID: (cancel: Bool, version: Int64)] = [:]
        var keyEvents: [(any DomainEvent, Int64)] = []
        var limits: [FlowLimitsSet] = []
        for recorded in events {
            switch try catalog.decode(recorded) {
            case let event as RunStarted: started[event.runID] = (event, recorded.streamVersion)
            case let event as StepScheduled:
                if (scheduled[event.runID]?.1 ?? 0) < recorded.streamVersion {
                    scheduled[event.runID] = (event, recorded.streamVersion, recorded.recordedAt)
                }
            case let event as RunFinished:
                if (ended[event.runID]?.version ?? 0) < recorded.streamVersion {
                    ended[event.runID] = (false, recorded.streamVersion)
                }
            case let event as RunCancelled:
                if (ended[event.runID]?.version ?? 0) < recorded.streamVersion {
                    ended[event.runID] = (true, recorded.streamVersion)
                }
            case let event as FlowLimitsSet: limits.append(event)
            case let event as VendorSecretSealed: keyEvents.append((event, recorded.streamVersion))
            case let event as VendorSecretRemoved: keyEvents.append((event, recorded.streamVersion))
            case let event as VendorKeySuspended: keyEvents.append((event, recorded.streamVersion))
            default: break
            }
        }
        if !started.isEmpty {
            let runs = Array(started.values)
            try await connection.query(
                """
                INSERT INTO work_queue (run_id, tenant_id, state, definition, input, stream_version)
                SELECT run_id, tenant_id, 'new', definition, input, version
                FROM unnest($1::uuid[], $2::uuid[], $3::jsonb[], $4::jsonb[], $5::int8[]) AS u(run_id, tenant_id, definition, input, version)
                ON CONFLICT (run_id) DO NOTHING
                """,
                [
                    .uuidArray(runs.map(\.0.runID)), .uuidArray(runs.map(\.0.tenantID)),
                    .jsonbArray(try runs.map { Array(try encoder.encode($0.0.definition)) }),
                    .jsonbArray(try runs.map { Array(try encoder.encode($0.0.input)) }), .int64Array(runs.map(\.1)),
                ])
        }
        var due = false
        if !scheduled.isEmpty {
            let steps = Array(scheduled.values)
            let changed = try await connection.query(
                """
                UPDATE work_queue q
                SET state = 'waiting', step = u.step, attempt = u.attempt, kind = u.kind, vendor = u.vendor,
                    not_before = coalesce(u.not_before, '-infinity'),
                    transient_failures = CASE WHEN q.step = u.step THEN q.transient_failures ELSE 0 END,
                    waiting_since = greatest(u.at, coalesce(u.not_before, u.at)), stream_version = u.version,
                    lease_owner = NULL, lease_until = NULL, leased_fingerprint = NULL, cancelled = false, updated_at = now()
                FROM unnest($1::uuid[], $2::int4[], $3::int4[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::int8[])
                     AS u(run_id, step, attempt, kind, vendor, not_before, at, version)
                WHERE q.run_id = u.run_id AND q.stream_version < u.version
                RETURNING q.run_id
                """,
                [
                    .uuidArray(steps.map(\.0.runID)), .int32Array(steps.map { Int32($0.0.step) }),
                    .int32Array(steps.map { Int32($0.0.attempt) }),
                    .stringArray(steps.map(\.0.kind.rawValue)), .stringArray(steps.map(\.0.vendor.rawValue)),
                    .timestampArray(steps.map(\.0.notBefore)), .timestampArray(steps.map(\.2)),
                    .int64Array(steps.map(\.1)),
                ])
            due = !changed.isEmpty
        }
        if !ended.isEmpty {
            let runs = Array(ended)
            try await connection.query(
                """
                UPDATE work_queue q
                SET state = CASE WHEN q.state = 'leased' AND u.cancel_flag = 1 THEN 'leased' ELSE 'done' END,
                    cancelled = q.cancelled OR (q.state = 'leased' AND u.cancel_flag = 1), stream_version = u.version, updated_at = now()
                FROM unnest($1::uuid[], $2::int4[], $3::int8[]) AS u(run_id, cancel_flag, version)
                WHERE q.run_id = u.run_id AND q.stream_version < u.version
                """,
                [
                    .uuidArray(runs.map(\.key)),
                    .int32Array(runs.map { $0.value.cancel ? 1 : 0 }),
                    .int64Array(runs.map(\.value.version)),
                ])
        }
        for (event, version) in keyEvents {
            switch event {
            case let event as VendorSecretSealed:
                let changed = try await connection.query(
                    """
                    INSERT INTO work_vendor_keys AS k (tenant_id, vendor, secret_version, tenant_key_version, sealed, fingerprint, stream_version)
                    VALUES ($1, $2, $3, $4, $5, $6, $7)
                    ON CONFLICT (tenant_id, vendor) DO UPDATE
                    SET secret_version = excluded.secret_version, tenant_key_version = excluded.tenant_key_version,
                        sealed = excluded.sealed, fingerprint = excluded.fingerprint, suspended_reason = NULL, suspended_at = NULL,
                        stream_version = excluded.stream_version, updated_at = now()
                    WHERE k.stream_version < excluded.stream_version
                    RETURNING 1
                    """,
                    [
                        .uuid(event.tenantID), .string(event.vendor.rawValue), .int32(Int32(event.secretVersion)),
                        .int32(Int32(event.tenantKeyVersion)), .bytes(Array(event.sealed)), .string(event.fingerprint),
                        .int64(version),
                    ])
                if !changed.isEmpty {
                    // The key's flow row, created here so that claims only ever lock it.
                    try await connection.query(
                        """
                        INSERT INTO flow_keys (vendor, tenant_id, fingerprint)
                        SELECT $1, $2, $3
                        WHERE NOT EXISTS (SELECT 1 FROM flow_keys WHERE vendor = $1 AND tenant_id = $2 AND fingerprint = $3)
                        ON CONFLICT DO NOTHING
                        """,
                        [.string(event.vendor.rawValue), .uuid(event.tenantID), .string(event.fingerprint)])
                    due = true
                }
            case let event as VendorSecretRemoved:
                try await connection.query(
                    """
                    UPDATE work_vendor_keys SET sealed = NULL, fingerprint = NULL, tenant_key_version = NULL, suspended_reason = NULL,
                        suspended_at = NULL, secret_version = $3, stream_version = $4, updated_at = now()
                    WHERE tenant_id = $1 AND vendor = $2 AND stream_version < $4
                    """,
                    [
                        .uuid(event.tenantID), .string(event.vendor.rawValue), .int32(Int32(event.secretVersion)),
                        .int64(version),
                    ])
            case let event as VendorKeySuspended:
                try await connection.query(
                    """
                    UPDATE work_vendor_keys SET suspended_reason = $4, suspended_at = now(), stream_version = $5, updated_at = now()
                    WHERE tenant_id = $1 AND vendor = $2 AND secret_version = $3 AND stream_version < $5
                    """,
                    [
                        .uuid(event.tenantID), .string(event.vendor.rawValue), .int32(Int32(event.secretVersion)),
                        .string(event.reason),
                        .int64(version),
                    ])
            default: break
            }
        }
        for event in limits {
            let windows = event.windows
            try await connection.query(
                """
                INSERT INTO flow_limits (vendor, tenant_id, window_limits, window_seconds, parallelism, updated_at)
                VALUES ($1, $2, $3, $4, $5, now())
                ON CONFLICT (vendor, tenant_id) DO UPDATE
                SET window_limits = excluded.window_limits, window_seconds = excluded.window_seconds,
                    parallelism = excluded.parallelism, updated_at = now()
                """,
                [
                    .string(event.vendor.rawValue), .uuid(event.tenantID ?? Self.vendorDefault),
                    windows.map { .int32Array($0.map { Int32(clamping: $0.limit) }) } ?? .null,
                    windows.map { .int32Array($0.map { Int32(clamping: $0.seconds) }) } ?? .null,
                    event.parallelism.map { .int32(Int32(clamping: $0)) } ?? .null,
                ])
            due = true
        }
        return due
    }

    /// The `flow_limits` row of a vendor's default.
    static let vendorDefault = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))

    /// Brings the queue rows of `runs` up to date with their streams (the dispatcher would, a moment later).
    func catchUp(runs: [UUID]) async throws {
        guard !runs.isEmpty else { return }
        try await store.pool.withConnection { connection in
            try await connection.withTransaction(begin: Self.begin) {
                for run in runs {
                    let version =
                        try await connection.query(
                            "SELECT stream_version FROM work_queue WHERE run_id = $1", [.uuid(run)]
                        )
                        .first?.int64(0) ?? 0
                    let events = try await store.read(stream: .run(run), from: version + 1)
                    try await apply(events, on: connection)
                }
            }
        }
    }

    static func runID(of stream: String) -> UUID? {
        guard stream.hasPrefix("run-") else { return nil }
        return UUID(uuidString: String(stream.dropFirst(4)))
    }

    // MARK: - Housekeeping

    /// Forgets starts older than every rate window (plus a minute), which no limit counts any more.
    @discardableResult
    func pruneStarts() async throws -> Int {
        try await store.pool.withConnection { connection in
            try await connection.withTransaction(begin: Self.begin) {
                let rows = try await connection.query(
                    """
                    WITH horizon AS (
                        SELECT now() - make_interval(secs => coalesce(max(s), 0) + 60) AS before
                        FROM flow_limits, unnest(window_seconds) AS s
                    ), gone AS (
                        DELETE FROM flow_starts WHERE started_at < (SELECT before FROM horizon) RETURNING 1
                    )
                    SELECT count(*) FROM gone
                    """)
                return try rows.first?.int(0) ?? 0
            }
        }
    }
}
