import Events
import Foundation
public import Hummingbird
public import Logging
import Projections

/// Builds the HTTP application; tests call it directly with `app.test(.router)` or `.live`.
public func buildApplication(services: APIServices, logger: Logger = Logger(label: "tally.api"))
    -> some ApplicationProtocol
{
    Application(
        router: buildRouter(services: services),
        configuration: .init(
            address: .hostname(services.settings.host, port: services.settings.port), serverName: "tally"),
        logger: logger)
}

func buildRouter(services: APIServices) -> Router<TallyContext> {
    // Read now: a binary installed without its resource bundle stops at start, not on a request.
    _ = OpenAPIDocument.bytes
    let router = Router(context: TallyContext.self)
    router.add(middleware: RequestMiddleware(services: services))
    // The table describes the router built last (building twice must not list every route twice).
    let routes = services.routes
    routes.removeAll()

    func on(
        _ group: RouterGroup<TallyContext>, _ prefix: String, _ method: HTTPRequest.Method, _ path: String,
        _ handler: @escaping @Sendable (Request, TallyContext) async throws -> Response
    ) {
        routes.add(method, prefix + path)
        group.on(RouterPath(RouteTable.routerPath(path)), method: method, use: handler)
    }

    let operations = router.group()
    let ops = OperationsRoutes(services: services)
    on(operations, "", .get, "/healthz", ops.healthz)
    on(operations, "", .get, "/readyz", ops.readyz)
    on(operations, "", .get, "/metrics", ops.metrics)
    on(operations, "", .get, "/openapi.json", ops.openAPI)
    on(operations, "", .post, "/webhooks/stripe", StripeWebhookRoutes(services: services).receive)

    let admin = router.group("/v1/admin").add(middleware: OperatorAuthMiddleware(services: services))
        .add(middleware: IdempotencyMiddleware(services: services))
    let tenants = OperatorRoutes(services: services)
    on(admin, "/v1/admin", .post, "/tenants", tenants.createTenant)
    on(admin, "/v1/admin", .get, "/tenants", tenants.listTenants)
    on(admin, "/v1/admin", .get, "/tenants/{id}", tenants.getTenant)
    on(admin, "/v1/admin", .post, "/tenants/{id}/suspend", tenants.suspend)
    on(admin, "/v1/admin", .post, "/tenants/{id}/reinstate", tenants.reinstate)
    on(admin, "/v1/admin", .post, "/tenants/{id}/erase", tenants.erase)
    on(admin, "/v1/admin", .put, "/tenants/{id}/plan", tenants.changePlan)
    on(admin, "/v1/admin", .post, "/tenants/{id}/keys", tenants.issueKey)
    on(admin, "/v1/admin", .get, "/tenants/{id}/keys", tenants.listKeys)
    on(admin, "/v1/admin", .delete, "/tenants/{id}/keys/{keyId}", tenants.revokeKey)
    on(admin, "/v1/admin", .post, "/tenants/{id}/keys/{keyId}/rotate", tenants.rotateKey)
    on(admin, "/v1/admin", .get, "/projections", tenants.projections)
    on(admin, "/v1/admin", .get, "/parked-streams", tenants.parkedStreams)
    on(admin, "/v1/admin", .post, "/parked-streams/retry", tenants.retryParkedStreams)
    let flows = FlowRoutes(services: services)
    on(admin, "/v1/admin", .get, "/flow-keys", flows.operatorFlowKeys)
    on(admin, "/v1/admin", .get, "/flow-limits", flows.listLimits)
    on(admin, "/v1/admin", .put, "/flow-limits/{vendor}", flows.setDefaultLimits)
    on(admin, "/v1/admin", .put, "/tenants/{id}/flow-limits/{vendor}", flows.setTenantLimits)
    on(admin, "/v1/admin", .delete, "/tenants/{id}/flow-limits/{vendor}", flows.clearTenantLimits)

    let tenant = router.group("/v1").add(middleware: TenantAuthMiddleware(services: services))
        .add(middleware: IdempotencyMiddleware(services: services))
    let own = TenantRoutes(services: services)
    let runs = RunRoutes(services: services)
    let live = EventStreamRoutes(services: services)
    on(tenant, "/v1", .get, "/tenant", own.tenant)
    on(tenant, "/v1", .post, "/tenant/keys/rotate", own.rotateOwnKey)
    on(tenant, "/v1", .get, "/usage", own.usage)
    on(tenant, "/v1", .get, "/vendor-secrets", own.listVendorSecrets)
    on(tenant, "/v1", .put, "/vendor-secrets/{vendor}", own.storeVendorSecret)
    on(tenant, "/v1", .delete, "/vendor-secrets/{vendor}", own.removeVendorSecret)
    on(tenant, "/v1", .get, "/flow-keys", flows.flowKeys)
    on(tenant, "/v1", .post, "/workflows", own.defineWorkflow)
    on(tenant, "/v1", .get, "/workflows", own.listWorkflows)
    on(tenant, "/v1", .get, "/workflows/{id}", own.getWorkflow)
    on(tenant, "/v1", .post, "/runs", runs.start)
    on(tenant, "/v1", .get, "/runs", runs.list)
    on(tenant, "/v1", .get, "/runs/{id}", runs.get)
    on(tenant, "/v1", .post, "/runs/{id}/cancel", runs.cancel)
    on(tenant, "/v1", .post, "/runs/{id}/retry", runs.retry)
    on(tenant, "/v1", .get, "/runs/{id}/events", live.run)
    on(tenant, "/v1", .get, "/events", live.tenant)
    return router
}

extension APIServices {
    /// Every route as (method, OpenAPI path template), in registration order.
    public var routeList: [(method: String, path: String)] {
        _ = buildRouter(services: self)
        return routes.all.map { ($0.method, $0.template) }
    }
}

/// `/healthz`, `/readyz`, `/metrics` and `/openapi.json`.
struct OperationsRoutes {
    let services: APIServices

    func healthz(_ request: Request, _ context: TallyContext) async throws -> Response {
        try JSON.response(["status": "ok"])
    }

    /// Ready when the database answers and every projection runs within the lag threshold (parked streams do
    /// not make an instance unready: they are counted in the answer).
    func readyz(_ request: Request, _ context: TallyContext) async throws -> Response {
        do {
            try await services.store.ping()
        } catch {
            context.logger.warning("readiness: the database is not reachable", metadata: ["error": "\(error)"])
            throw Problem(
                .serviceUnavailable, "not-ready", title: "Not ready", detail: "The database is not reachable.",
                headers: [.retryAfter: "2"])
        }
        let statuses: [ProjectionStatus]
        do {
            statuses = try await ProjectionStatus.all(ProductProjections.all, store: services.store)
        } catch {
            context.logger.warning("readiness: projection status unavailable", metadata: ["error": "\(error)"])
            throw Problem(
                .serviceUnavailable, "not-ready", title: "Not ready",
                detail: "The projections' state cannot be read from the database.", headers: [.retryAfter: "1"])
        }
        let behind = statuses.filter { $0.state != .running || $0.lagSeconds > services.settings.readyLagSeconds }
        guard behind.isEmpty else {
            throw Problem(
                .serviceUnavailable, "not-ready", title: "Not ready",
                detail: "Projections behind or stopped: "
                    + behind.map {
                        "\($0.name) (\($0.state.rawValue), \(String(format: "%.0f", $0.lagSeconds)) s behind)"
                    }.joined(
                        separator: ", "))
        }
        // A parked stream is one tenant's problem, not the instance's: it stays ready and says how many.
        struct Ready: Encodable {
            var status = "ready"
            var database = "ok"
            var projections = "ok"
            var parkedStreams: Int
        }
        return try JSON.response(Ready(parkedStreams: statuses.reduce(0) { $0 + $1.parkedStreams }))
    }

    func metrics(_ request: Request, _ context: TallyContext) async throws -> Response {
        let text = await services.metrics.render(
            store: services.store, keyDirectoryParked: services.keys.parkedStreams.count)
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: text)))
    }

    func openAPI(_ request: Request, _ context: TallyContext) async throws -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: OpenAPIDocument.bytes))
    }
}
