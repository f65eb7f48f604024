import Events
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Projections

/// The outermost middleware: assigns the request id (from `X-Request-Id`, else the trace id of
/// `traceparent`, else a new one), turns every error into a problem document (405 with `Allow` for a known
/// path and another method), and records the request's metrics.
struct RequestMiddleware: RouterMiddleware {
    typealias Context = TallyContext
    let services: APIServices

    func handle(_ request: Request, context: TallyContext, next: (Request, TallyContext) async throws -> Response)
        async throws -> Response
    {
        let started = ContinuousClock.now
        var context = context
        context.requestID = Self.requestID(request)
        context.logger[metadataKey: "request_id"] = .string(context.requestID)
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPError {
            response = problem(for: error, request: request).response
        } catch {
            if let problem = Problem.mapping(error) {
                response = problem.response
                if problem.status.code >= 500 {
                    context.logger.warning(
                        "request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
                }
            } else {
                // Not in the table: a bug. The request id in the answer finds this line.
                context.logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
                response =
                    Problem(
                        .internalServerError, "internal", title: "Internal server error",
                        detail: "The request failed on the server; its request id identifies it in the logs."
                    ).response
            }
        }
        response.headers[.requestID] = context.requestID
        let route = context.endpointPath.map(RouteTable.template(fromRouterPath:)) ?? "unmatched"
        services.metrics.request(
            route: route, method: request.method.rawValue, status: response.status.code, duration: .now - started)
        if response.status.code >= 500 {
            context.logger.warning("request answered \(response.status.code)", metadata: ["route": "\(route)"])
        }
        return response
    }

    private func problem(for error: HTTPError, request: Request) -> Problem {
        switch error.status {
        case .notFound:
            let allowed = services.routes.methods(for: request.uri.path)
            if !allowed.isEmpty {
                return Problem(
                    .methodNotAllowed, "method-not-allowed", title: "Method not allowed",
                    detail: "\(request.uri.path) accepts \(allowed.joined(separator: ", ")).",
                    headers: [.allow: allowed.joined(separator: ", ")])
            }
            return Problem(.notFound, "not-found", title: "Not found", detail: "No route matches \(request.uri.path).")
        case .contentTooLarge:
            return .tooLarge
        default:
            return Problem(error.status, nil, title: error.status.reasonPhrase, detail: error.body)
        }
    }

    static func requestID(_ request: Request) -> String {
        if let given = request.headers[.requestID], (1...128).contains(given.utf8.count),
            given.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != 0x22 && $0 != 0x5c })
        {
            return given
        }
        // traceparent: version-traceid-parentid-flags; the trace id is 32 hex digits, not all zero.
        if let parent = request.headers[.traceparent] {
            let parts = parent.split(separator: "-")
            if parts.count == 4, parts[1].utf8.count == 32,
                parts[1].utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }),
                parts[1].contains(where: { $0 != "0" })
            {
                return String(parts[1])
            }
        }
        return UUID().lowercased
    }
}

/// `Authorization: Bearer <operator token>` for `/v1/admin`.
struct OperatorAuthMiddleware: RouterMiddleware {
    typealias Context = TallyContext
    let services: APIServices

    func handle(_ request: Request, context: TallyContext, next: (Request, TallyContext) async throws -> Response)
        async throws -> Response
    {
        guard let token = bearer(request) else { throw Problem.unauthorized }
        let given = Sodium.sha256(Array(token.utf8))
        guard Sodium.constantTimeEquals(given, services.operatorTokenDigest) else {
            throw Problem.unauthorized("The operator token is not valid.")
        }
        var context = context
        context.principal = .operator
        return try await next(request, context)
    }
}

/// `Authorization: Bearer tly_...` for the tenant routes, then the limits: requests per second per key and
/// per tenant, and the monthly API-call quota, with the `RateLimit` fields on every answer. A 401 is never
/// counted; an admitted call is metered.
struct TenantAuthMiddleware: RouterMiddleware {
    typealias Context = TallyContext
    let services: APIServices

    func handle(_ request: Request, context: TallyContext, next: (Request, TallyContext) async throws -> Response)
        async throws -> Response
    {
        guard let token = bearer(request) else { throw Problem.unauthorized }
        let verdict = try await services.keys.verify(token)
        guard case .valid(let tenantID, let keyID, let planName) = verdict else {
            if case .rejected(let reason) = verdict { throw Problem.unauthorized(reason) }
            throw Problem(
                .serviceUnavailable, "parked", title: "Key state unknown",
                detail: "This key's history could not be applied (its stream is parked); the operator can see it in "
                    + "GET /v1/admin/projections. Requests with it are refused until then.")
        }
        let plan = services.plan(planName)
        var context = context
        context.principal = .tenant(TenantPrincipal(tenantID: tenantID, keyID: keyID, plan: plan.name))
        context.logger[metadataKey: "tenant"] = .string(tenantID.lowercased)

        let now = Date()
        let rate = try await services.limiter.admit(
            key: keyID, tenant: tenantID, keyLimit: plan.keyRequestsPerSecond,
            tenantLimit: plan.tenantRequestsPerSecond, now: now)
        let current = PeriodClock.at(now)
        let untilPeriodEnd = max(1, Int(current.end.timeIntervalSince(now).rounded(.up)))
        let periodSeconds = Int(current.end.timeIntervalSince(current.start))
        var fields = RateLimitFields()
        fields.policy(.keyRequestsPerSecond, quota: plan.keyRequestsPerSecond, window: 1)
        fields.policy(.tenantRequestsPerSecond, quota: plan.tenantRequestsPerSecond, window: 1)
        fields.limit(.keyRequestsPerSecond, remaining: rate.keyRemaining, reset: rate.reset)
        fields.limit(.tenantRequestsPerSecond, remaining: rate.tenantRemaining, reset: rate.reset)
        if let quota = plan.monthlyAPICalls { fields.policy(.apiCalls, quota: quota, window: periodSeconds) }

        guard rate.allowed else {
            for policy in rate.violated { services.metrics.rateLimited(policy: policy) }
            throw Problem.quotaExceeded(
                rate.violated, retryAfter: rate.reset, fields: fields,
                detail: "More than the plan's requests per second; retry after the window resets.")
        }
        let quota = try await services.quotas.admit(
            tenantID, .apiCalls, amount: 1, quota: plan.monthlyAPICalls, now: now)
        if let remaining = quota.remaining { fields.limit(.apiCalls, remaining: remaining, reset: untilPeriodEnd) }
        guard quota.allowed else {
            services.metrics.rateLimited(policy: "api-calls")
            throw Problem.quotaExceeded(
                ["api-calls"], retryAfter: untilPeriodEnd, fields: fields,
                detail: "The plan's monthly API calls are used up until the billing period ends.")
        }
        services.meter.count(key: keyID, tenant: tenantID, at: now)
        var response: Response
        do {
            response = try await next(request, context)
        } catch let problem as Problem {
            response = problem.response
        }
        // A handler's own limit (the runs quota) comes first; the request limits follow.
        fields.add(to: &response.headers)
        return response
    }
}

private func bearer(_ request: Request) -> Substring? {
    guard let header = request.headers[.authorization] else { return nil }
    let parts = header.split(separator: " ", maxSplits: 1)
    guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
    let token = parts[1].trimmingCharacters(in: .whitespaces)
    return token.isEmpty ? nil : Substring(token)
}

extension Problem {
    /// The one 429 contract: `Retry-After` (never earlier than the reset), the `RateLimit` fields, and a
    /// `quota-exceeded` problem naming the violated policies.
    static func quotaExceeded(
        _ violated: [String], retryAfter: Int, fields: RateLimitFields, detail: String
    ) -> Problem {
        var headers: HTTPFields = [.retryAfter: String(retryAfter)]
        fields.add(to: &headers)
        var problem = Problem(.tooManyRequests, nil, title: "Quota exceeded", detail: detail, headers: headers)
        problem.type = "https://iana.org/assignments/http-problem-types#quota-exceeded"
        problem.violatedPolicies = violated
        return problem
    }
}

extension HTTPField.Name {
    static let requestID = Self("X-Request-Id")!
    static let traceparent = Self("traceparent")!
    static let rateLimit = Self("RateLimit")!
    static let rateLimitPolicy = Self("RateLimit-Policy")!
    static let idempotencyKey = Self("Idempotency-Key")!
    static let idempotentReplayed = Self("Idempotent-Replayed")!
    static let lastEventID = Self("Last-Event-ID")!
}
