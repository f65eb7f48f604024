public import Events
public import Hummingbird
public import Logging

/// What the HTTP server needs to start.
public struct APIConfiguration: Sendable {
    /// Interface to bind (`127.0.0.1`, `0.0.0.0`).
    public var host: String
    public var port: Int

    public init(host: String = "127.0.0.1", port: Int = 8080) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` (`TALLY_LISTEN`); nil when malformed.
    public init?(listen: String) {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(listen[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.init(host: host.isEmpty ? "0.0.0.0" : host, port: port)
    }
}

/// Builds the HTTP application; tests call it directly with `app.test(.router)`.
public func buildApplication(
    configuration: APIConfiguration, store: EventStore, logger: Logger = Logger(label: "tally.api")
) -> some ApplicationProtocol {
    let router = Router()
    router.get("/healthz") { _, _ in
        JSONResponse.ok(#"{"status":"ok"}"#)
    }
    router.get("/readyz") { _, _ in
        do {
            try await store.ping()
            return JSONResponse.ok(#"{"status":"ready","database":"ok"}"#)
        } catch {
            logger.warning("readiness check failed", metadata: ["error": "\(error)"])
            return Problem(
                status: .serviceUnavailable, title: "Not ready", detail: "The database is not reachable.",
                type: "https://tally.dev/problems/not-ready"
            ).response
        }
    }
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "tally"),
        logger: logger)
}

enum JSONResponse {
    static func ok(_ json: String) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: json)))
    }
}
