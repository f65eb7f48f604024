import Commands
import Events
import Foundation
import Hummingbird
import Projections

/// Runs: start one or a batch, read, list, cancel.
struct RunRoutes {
    let services: APIServices
    static let maxBatch = 1000

    struct Input: Decodable {
        var fullName: String?
        var domain: String?
        var linkedinUrl: String?
    }

    struct StartRuns: RequestBody {
        static let fields: Set<String> = ["workflowId", "input", "inputs"]
        var workflowId: UUID
        var input: Input?
        var inputs: [Input]?

        func validate() -> [Problem.FieldError] {
            var errors: [Problem.FieldError] = []
            switch (input, inputs) {
            case (nil, nil), (.some, .some):
                errors.append(.init(detail: "give either input (one run) or inputs (a batch)", pointer: ""))
            case (let one?, nil):
                errors += Self.check(one, at: "/input")
            case (nil, let many?):
                if many.isEmpty || many.count > RunRoutes.maxBatch {
                    errors.append(.init(detail: "must hold 1 to \(RunRoutes.maxBatch) inputs", pointer: "/inputs"))
                }
                for (index, one) in many.enumerated() { errors += Self.check(one, at: "/inputs/\(index)") }
            }
            return Array(errors.prefix(50))
        }

        static func check(_ input: Input, at pointer: String) -> [Problem.FieldError] {
            var errors: [Problem.FieldError] = []
            if let url = input.linkedinUrl {
                let lower = url.lowercased()
                guard url.count <= 300,
                    lower.hasPrefix("https://www.linkedin.com/in/") || lower.hasPrefix("https://linkedin.com/in/")
                else {
                    return [
                        .init(
                            detail: "must be a https://www.linkedin.com/in/... profile URL",
                            pointer: pointer + "/linkedinUrl")
                    ]
                }
                return []
            }
            let name = input.fullName?.trimmingCharacters(in: .whitespaces) ?? ""
            if name.isEmpty || name.count > 200 {
                errors.append(
                    .init(
                        detail: "is required (1 to 200 characters) unless linkedinUrl is given",
                        pointer: pointer + "/fullName"))
            }
            if !isDomain(input.domain ?? "") {
                errors.append(
                    .init(
                        detail: "must be a company domain such as example.com unless linkedinUrl is given",
                        pointer: pointer + "/domain"))
            }
            return errors
        }

        static func isDomain(_ text: String) -> Bool {
            let labels = text.split(separator: ".", omittingEmptySubsequences: false)
            guard text.utf8.count <= 253, labels.count >= 2 else { return false }
            return labels.allSatisfy { label in
                (1...63).contains(label.utf8.count) && !label.hasPrefix("-") && !label.hasSuffix("-")
                    && label.utf8.allSatisfy {
                        (0x61...0x7a).contains($0) || (0x41...0x5a).contains($0) || (0x30...0x39).contains($0)
                            || $0 == 0x2d
                    }
            }
        }
    }

    func start(_ request: Request, _ context: TallyContext) async throws -> Response {
        var request = request
        let principal = try context.tenant
        let body = try await request.decodeJSON(StartRuns.self)
        let workflow = try await services.commands.startableWorkflow(body.workflowId, tenant: principal.tenantID)
        let inputs = body.inputs ?? [body.input!]
        let plan = services.plan(principal.plan)
        let quota = try await services.quotas.admit(
            principal.tenantID, .runs, amount: Int64(inputs.count), quota: plan.monthlyRuns)
        guard quota.allowed else {
            services.metrics.rateLimited(policy: "runs")
            let now = Date()
            let period = BillingPeriod(containing: now)
            let reset = max(1, Int(period.end.timeIntervalSince(now).rounded(.up)))
            var fields = RateLimitFields()
            fields.policy(
                .runs, quota: plan.monthlyRuns ?? 0, window: Int(period.end.timeIntervalSince(period.start)))
            fields.limit(.runs, remaining: quota.remaining ?? 0, reset: reset)
            throw Problem.quotaExceeded(
                ["runs"], retryAfter: reset, fields: fields,
                detail:
                    "Starting \(inputs.count) run(s) would exceed the plan's monthly runs; \(quota.remaining ?? 0) remain this period."
            )
        }
        // The runs are reserved above; if they are not appended after all, the reservation is given back.
        let runIDs: [UUID]
        let applied: Applied
        let batchID = body.inputs == nil ? nil : UUID()
        do {
            (runIDs, applied) = try await services.commands.startRuns(
                tenant: principal.tenantID, workflowID: body.workflowId, definition: workflow,
                inputs: inputs.map {
                    PersonInput(
                        fullName: $0.fullName?.trimmingCharacters(in: .whitespaces), domain: $0.domain?.lowercased(),
                        linkedinURL: $0.linkedinUrl)
                }, batchID: batchID, metadata: context.eventMetadata)
        } catch {
            services.quotas.release(principal.tenantID, .runs, amount: Int64(inputs.count))
            throw error
        }
        await services.applied(applied, projection: "workflow_runs")
        struct Started: Encodable {
            var id: UUID
            var status: String
            var location: String
        }
        struct Body: Encodable {
            var batchId: UUID?
            var runs: [Started]
        }
        let location = batchID.map { "/v1/runs?batchId=\($0.lowercased)" } ?? "/v1/runs/\(runIDs[0].lowercased)"
        return try JSON.response(
            Body(
                batchId: batchID,
                runs: runIDs.map { Started(id: $0, status: "running", location: "/v1/runs/\($0.lowercased)") }),
            status: .accepted, headers: [.location: location])
    }

    struct RunBody: Encodable {
        var id: UUID
        var workflowId: UUID
        var batchId: UUID?
        var status: String
        var input: JSONObject
        var currentStep: Int32?
        var currentVendor: String?
        var email: String?
        var validationStatus: String?
        var reason: String?
        var credits: Int
        var startedAt: Date
        var updatedAt: Date
        var finishedAt: Date?
        var steps: [StepBody]?
    }

    struct StepBody: Encodable {
        var step: Int
        var attempt: Int
        var kind: String
        var vendor: String
        var status: String
        var outcome: String?
        var email: String?
        var validationStatus: String?
        var failure: String?
        var reason: String?
        var credits: Int
        var notBefore: Date?
        var scheduledAt: Date
        var startedAt: Date?
        var finishedAt: Date?
    }

    static func run(_ row: RunRow) throws -> RunBody {
        RunBody(
            id: row.runID, workflowId: row.workflowID, batchId: row.batchID, status: row.status,
            input: try JSONObject(bytes: row.input), currentStep: row.currentStep, currentVendor: row.currentVendor,
            email: row.email, validationStatus: row.validationStatus, reason: row.reason, credits: Int(row.credits),
            startedAt: row.startedAt, updatedAt: row.updatedAt, finishedAt: row.finishedAt)
    }

    static func step(_ row: RunStepRow) -> StepBody {
        StepBody(
            step: row.step, attempt: row.attempt, kind: row.kind, vendor: row.vendor, status: row.status,
            outcome: row.outcome, email: row.email, validationStatus: row.validationStatus, failure: row.failure,
            reason: row.reason, credits: row.credits, notBefore: row.notBefore, scheduledAt: row.scheduledAt,
            startedAt: row.startedAt, finishedAt: row.finishedAt)
    }

    func get(_ request: Request, _ context: TallyContext) async throws -> Response {
        let principal = try context.tenant
        let id = try context.uuidParameter("id", "run")
        if let cached = services.runs.lookup(id, tenant: principal.tenantID) {
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: cached)))
        }
        let read = try await readOrEmpty {
            try await services.database.tenant(principal.tenantID, readOnly: true) {
                connection -> (RunBody, FeedPosition)? in
                // The checkpoint first: the rows read after it are at least as new.
                let checkpoint =
                    try await ProjectionCheckpoints.positions(of: ["workflow_runs"], on: connection)["workflow_runs"]
                    ?? .start
                try await ParkedRead.check(["workflow_runs"], stream: .run(id), what: "run", on: connection)
                guard
                    var run = try await RunsProjection.run(id, tenant: principal.tenantID, on: connection)
                        .map(Self.run)
                else { return nil }
                run.steps = try await RunsProjection.steps(ofRun: id, tenant: principal.tenantID, on: connection)
                    .map(Self.step)
                return (run, checkpoint)
            }
        }
        guard let (run, checkpoint) = read else { throw Problem.notFound("run") }
        let body = try JSON.encode(run)
        services.runs.store(id, tenant: principal.tenantID, body: body, readAt: checkpoint)
        return Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    func list(_ request: Request, _ context: TallyContext) async throws -> Response {
        let principal = try context.tenant
        let page = try Page(request)
        let query = request.uri.queryParameters
        var filter = RunFilter()
        var errors: [Problem.FieldError] = []
        if let status = query["status"] {
            if RunsProjection.statuses.contains(String(status)) {
                filter.status = String(status)
            } else {
                errors.append(
                    .init(
                        detail: "must be one of \(RunsProjection.statuses.sorted().joined(separator: ", "))",
                        parameter: "status"))
            }
        }
        for (name, field) in [("workflowId", \RunFilter.workflowID), ("batchId", \RunFilter.batchID)] {
            guard let text = query[Substring(name)] else { continue }
            if let id = UUID(uuidString: String(text)) {
                filter[keyPath: field] = id
            } else {
                errors.append(.init(detail: "must be a UUID", parameter: name))
            }
        }
        if !errors.isEmpty { throw Problem.validation(errors) }
        let selected = filter
        let rows = try await readOrEmpty {
            try await services.database.tenant(principal.tenantID, readOnly: true) { connection in
                try await RunsProjection.runs(
                    ofTenant: principal.tenantID, matching: selected, before: page.after, limit: page.limit + 1,
                    on: connection
                ).map(Self.run)
            }
        }
        let items = Array(rows.prefix(page.limit))
        let next = rows.count > page.limit ? items.last.map { Cursor.encode($0.startedAt, $0.id) } : nil
        return try JSON.response(ListBody(items: items, nextCursor: next))
    }

    struct Cancel: RequestBody {
        static let fields: Set<String> = ["reason"]
        var reason: String?
        func validate() -> [Problem.FieldError] {
            (reason?.count ?? 0) > 500 ? [.init(detail: "must be at most 500 characters", pointer: "/reason")] : []
        }
    }

    func cancel(_ request: Request, _ context: TallyContext) async throws -> Response {
        var request = request
        let principal = try context.tenant
        let id = try context.uuidParameter("id", "run")
        let body: Cancel =
            request.headers[.contentType] == nil ? Cancel(reason: nil) : try await request.decodeJSON(Cancel.self)
        let applied = try await services.commands.cancelRun(
            id, tenant: principal.tenantID, reason: body.reason ?? "cancelled by the tenant",
            metadata: context.eventMetadata)
        await ranCommand(applied, on: id)
        return try await get(request, context)
    }

    /// A retry takes no fields; a body, when sent, must be an empty object.
    struct Retry: RequestBody {
        static let fields: Set<String> = []
        func validate() -> [Problem.FieldError] { [] }
    }

    /// Schedules a failed run's last failed step again, as the next step of the run: the run is running again
    /// and the workers claim the step like any other.
    func retry(_ request: Request, _ context: TallyContext) async throws -> Response {
        var request = request
        let principal = try context.tenant
        let id = try context.uuidParameter("id", "run")
        if request.headers[.contentType] != nil { _ = try await request.decodeJSON(Retry.self) }
        let applied = try await services.commands.retryRun(
            id, tenant: principal.tenantID, metadata: context.eventMetadata)
        await ranCommand(applied, on: id)
        var response = try await get(request, context)
        response.status = .accepted
        return response
    }

    /// Tells the run cache that the run changed, and waits until `workflow_runs` shows it.
    private func ranCommand(_ applied: Applied, on run: UUID) async {
        guard let last = applied.last else { return }
        services.runs.noteEvent(run, at: last)
        await services.awaitProjection("workflow_runs", last)
    }
}

/// A JSON object stored as jsonb, passed through as it is.
struct JSONObject: Encodable {
    var value: JSONValue

    init(bytes: [UInt8]) throws {
        value = try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }

    func encode(to encoder: any Encoder) throws {
        try value.encode(to: encoder)
    }
}

extension RunRoutes {
    /// Runs, under `/v1`.
    func addRoutes(to tenant: RouterGroup<TallyContext>) {
        tenant.post("/runs", use: start)
        tenant.get("/runs", use: list)
        tenant.get("/runs/{id}", use: get)
        tenant.post("/runs/{id}/cancel", use: cancel)
        tenant.post("/runs/{id}/retry", use: retry)
    }
}
