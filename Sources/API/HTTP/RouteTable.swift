import Synchronization

/// The routes the server answers, as OpenAPI path templates (`/v1/runs/{id}`), read from the router once it is
/// built: used for 405 answers, for the metrics' route label, and by the test that holds the OpenAPI document
/// to the routes.
final class RouteTable: Sendable {
    private let routes = Mutex<[(method: String, template: String)]>([])

    /// Replaces the table with what a router just built has (`Router.routes`, templates as `{id}`).
    func replace(with routes: [(method: String, template: String)]) {
        self.routes.withLock { $0 = routes }
    }

    var all: [(method: String, template: String)] { routes.withLock { $0 } }

    func methods(for path: String) -> [String] {
        routes.withLock { routes in
            Array(Set(routes.filter { Self.matches($0.template, path) }.map(\.method))).sorted()
        }
    }

    static func matches(_ template: String, _ path: String) -> Bool {
        let t = template.split(separator: "/", omittingEmptySubsequences: false)
        let p = path.split(separator: "/", omittingEmptySubsequences: false)
        guard t.count == p.count else { return false }
        return zip(t, p).allSatisfy { template, part in
            template.hasPrefix("{") ? !part.isEmpty : template == part
        }
    }

    /// The OpenAPI form of a Hummingbird path (`/v1/runs/:id` → `/v1/runs/{id}`).
    static func template(fromRouterPath path: String) -> String {
        guard path.contains(":") else { return path }
        return path.split(separator: "/", omittingEmptySubsequences: false).map { part in
            part.hasPrefix(":") ? "{" + part.dropFirst() + "}" : part
        }.joined(separator: "/")
    }
}
