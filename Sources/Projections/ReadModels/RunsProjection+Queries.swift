package import Events
public import Foundation

/// One row of `workflow_runs`: the projection writes it and the queries answer it.
public struct RunRow: Sendable, Hashable {
    /// The run's id.
    public var runID: UUID
    /// The tenant that started it.
    public var tenantID: UUID
    /// The workflow it runs.
    public var workflowID: UUID
    /// The batch it was started in, if it was.
    public var batchID: UUID?
    /// `running`, `parked`, `succeeded`, `not_found`, `failed` or `cancelled`.
    public var status: String
    /// Its input as JSON text.
    public var input: [UInt8]
    /// The step it is at.
    public var currentStep: Int32?
    /// The vendor of that step.
    public var currentVendor: String?
    /// The address found.
    public var email: String?
    /// What the validator said of it.
    public var validationStatus: String?
    /// Why it ended as it did.
    public var reason: String?
    /// Vendor credits it spent.
    public var credits: Int32
    /// When it started.
    public var startedAt: Date
    /// When it last changed.
    public var updatedAt: Date
    /// When it ended.
    public var finishedAt: Date?

    static let columns = """
        run_id, tenant_id, workflow_id, batch_id, status, input, current_step, current_vendor, email,
        validation_status, reason, credits, started_at, updated_at, finished_at
        """

    init(
        runID: UUID, tenantID: UUID, workflowID: UUID, batchID: UUID?, status: String, input: [UInt8],
        currentStep: Int32? = nil, currentVendor: String? = nil, email: String? = nil, validationStatus: String? = nil,
        reason: String? = nil, credits: Int32, startedAt: Date, updatedAt: Date, finishedAt: Date? = nil
    ) {
        self.runID = runID
        self.tenantID = tenantID
        self.workflowID = workflowID
        self.batchID = batchID
        self.status = status
        self.input = input
        self.currentStep = currentStep
        self.currentVendor = currentVendor
        self.email = email
        self.validationStatus = validationStatus
        self.reason = reason
        self.credits = credits
        self.startedAt = startedAt
        self.updatedAt = updatedAt
        self.finishedAt = finishedAt
    }

    init(_ row: PostgresRow) throws {
        self.init(
            runID: try row.uuid(0), tenantID: try row.uuid(1), workflowID: try row.uuid(2),
            batchID: try row.optionalUUID(3), status: try row.string(4), input: try row.jsonBytes(5),
            currentStep: try row.optionalInt64(6).map(Int32.init), currentVendor: try row.optionalString(7),
            email: try row.optionalString(8), validationStatus: try row.optionalString(9),
            reason: try row.optionalString(10), credits: Int32(try row.int64(11)), startedAt: try row.date(12),
            updatedAt: try row.date(13), finishedAt: try row.optionalDate(14))
    }
}

/// One attempt of one step of a run, from `workflow_progress`.
public struct RunStepRow: Sendable, Hashable {
    /// The step's index in the workflow.
    public var step: Int
    /// The attempt's number, from 1.
    public var attempt: Int
    /// `finder` or `validator`.
    public var kind: String
    /// The vendor called.
    public var vendor: String
    /// `scheduled`, `started`, `finished` or `failed`.
    public var status: String
    /// What the vendor answered.
    public var outcome: String?
    /// The address it found.
    public var email: String?
    /// What the validator said.
    public var validationStatus: String?
    /// How the attempt failed.
    public var failure: String?
    /// Why.
    public var reason: String?
    /// Vendor credits it spent.
    public var credits: Int
    /// Not started before this (a retry's back-off).
    public var notBefore: Date?
    /// When it was scheduled.
    public var scheduledAt: Date
    /// When a worker started it.
    public var startedAt: Date?
    /// When it ended.
    public var finishedAt: Date?

    init(_ row: PostgresRow) throws {
        step = try row.int(0)
        attempt = try row.int(1)
        kind = try row.string(2)
        vendor = try row.string(3)
        status = try row.string(4)
        outcome = try row.optionalString(5)
        email = try row.optionalString(6)
        validationStatus = try row.optionalString(7)
        failure = try row.optionalString(8)
        reason = try row.optionalString(9)
        credits = try row.int(10)
        notBefore = try row.optionalDate(11)
        scheduledAt = try row.date(12)
        startedAt = try row.optionalDate(13)
        finishedAt = try row.optionalDate(14)
    }
}

/// Which of a tenant's runs a list answers.
public struct RunFilter: Sendable, Hashable {
    /// Only runs with this status.
    public var status: String?
    /// Only runs of this workflow.
    public var workflowID: UUID?
    /// Only runs of this batch.
    public var batchID: UUID?

    /// A filter; nil fields do not filter.
    public init(status: String? = nil, workflowID: UUID? = nil, batchID: UUID? = nil) {
        self.status = status
        self.workflowID = workflowID
        self.batchID = batchID
    }
}

extension RunsProjection {
    /// The statuses a run can have.
    public static let statuses: Set<String> = ["running", "parked", "succeeded", "not_found", "failed", "cancelled"]

    /// The tenant's run with this id.
    package static func run(_ id: UUID, tenant: UUID, on connection: PostgresConnection) async throws -> RunRow? {
        try await connection.query(
            "SELECT \(RunRow.columns) FROM workflow_runs WHERE tenant_id = $1 AND run_id = $2",
            [.uuid(tenant), .uuid(id)]
        ).first.map(RunRow.init)
    }

    /// Every attempt of every step of the tenant's run, in order.
    package static func steps(ofRun id: UUID, tenant: UUID, on connection: PostgresConnection) async throws
        -> [RunStepRow]
    {
        try await connection.query(
            """
            SELECT step, attempt, kind, vendor, status, outcome, email, validation_status, failure, reason, credits, not_before,
                scheduled_at, started_at, finished_at
            FROM workflow_progress WHERE tenant_id = $1 AND run_id = $2 ORDER BY step, attempt
            """, [.uuid(tenant), .uuid(id)]
        ).map(RunStepRow.init)
    }

    /// Up to `limit` of the tenant's runs matching `filter`, newest first, before the cursor `before` (started at,
    /// id). The statement names only the filters given, so each shape keeps its own plan on the index.
    package static func runs(
        ofTenant tenant: UUID, matching filter: RunFilter = RunFilter(), before: (Date, UUID)? = nil, limit: Int,
        on connection: PostgresConnection
    ) async throws -> [RunRow] {
        var sql = "SELECT \(RunRow.columns) FROM workflow_runs WHERE tenant_id = $1"
        var parameters: [PostgresValue] = [.uuid(tenant)]
        if let status = filter.status {
            parameters.append(.string(status))
            sql += " AND status = $\(parameters.count)"
        }
        for (column, id) in [("workflow_id", filter.workflowID), ("batch_id", filter.batchID)] {
            guard let id else { continue }
            parameters.append(.uuid(id))
            sql += " AND \(column) = $\(parameters.count)"
        }
        if let (date, id) = before {
            parameters += [.timestamp(date), .uuid(id)]
            sql += " AND (started_at, run_id) < ($\(parameters.count - 1), $\(parameters.count))"
        }
        parameters.append(.int64(Int64(limit)))
        sql += " ORDER BY started_at DESC, run_id DESC LIMIT $\(parameters.count)"
        return try await connection.query(sql, parameters).map(RunRow.init)
    }
}
