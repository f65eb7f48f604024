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

    let root = router.group()
    OperationsRoutes(services: services).addRoutes(to: root)
    StripeWebhookRoutes(services: services).addRoutes(to: root)

    let admin = router.group("/v1/admin").add(middleware: OperatorAuthMiddleware(services: services))
        .add(middleware: IdempotencyMiddleware(services: services))
    OperatorRoutes(services: services).addRoutes(to: admin)
    let flows = FlowRoutes(services: services)
    flows.addOperatorRoutes(to: admin)

    let tenant = router.group("/v1").add(middleware: TenantAuthMiddleware(services: services))
        .add(middleware: IdempotencyMiddleware(services: services))
    TenantRoutes(services: services).addRoutes(to: tenant)
    flows.addRoutes(to: tenant)
    RunRoutes(services: services).addRoutes(to: tenant)
    EventStreamRoutes(services: services).addRoutes(to: tenant)

    // The table (405 answers, the OpenAPI test) is what the router itself has, for the router built last.
    services.routes.replace(with: router.routes.map { ($0.method.rawValue, $0.path.description) })
    return router
}

extension APIServices {
    /// Every route as (method, OpenAPI path template), as the router has them.
    public var routeList: [(method: String, path: String)] {
        _ = buildRouter(services: self)
        return routes.all.map { ($0.method, $0.template) }
    }
}

/// `/healthz`, `/readyz`, `/metrics` and `/openapi.json`.
struct OperationsRoutes {
    let services: APIServices

    func addRoutes(to root: RouterGroup<TallyContext>) {
        root.get("/healthz", use: healthz)
        root.get("/readyz", use: readyz)
        root.get("/metrics", use: metrics)
        root.get("/openapi.json", use: openAPI)
    }

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
