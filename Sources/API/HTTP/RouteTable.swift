import HTTPTypes
import Synchronization

/// The routes the server answers, as OpenAPI path templates (`/v1/runs/{id}`): used for 405 answers, for
/// the metrics' route label, and by the test that holds the OpenAPI document to the routes.
final class RouteTable: Sendable {
    private let routes = Mutex<[(method: String, template: String)]>([])

    func removeAll() {
        routes.withLock { $0 = [] }
    }

    func add(_ method: HTTPRequest.Method, _ template: String) {
        routes.withLock { $0.append((method.rawValue, template)) }
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

    /// The Hummingbird form of a template: `{id}` becomes `:id`.
    static func routerPath(_ template: String) -> String {
        template.split(separator: "/", omittingEmptySubsequences: false).map { part in
            part.hasPrefix("{") && part.hasSuffix("}") ? ":" + part.dropFirst().dropLast() : part
        }.joined(separator: "/")
    }
}
