import Commands
import Events
import Foundation
import HTTPTypes
import Projections

/// The one table from the errors below the routes to the problems clients get. Handlers throw what they
/// meet; `RequestMiddleware` answers with this. What is not in the table is a bug: a 500, logged with the
/// request id.
extension Problem {
    /// The problem for `error`, or nil when it is a bug.
    static func mapping(_ error: any Error) -> Problem? {
        switch error {
        case let problem as Problem: return problem
        case let error as EventsError: return mapping(error)
        case let error as ProjectionsError: return mapping(error)
        case let error as CommandError: return mapping(error)
        case is CancellationError: return unavailable(retryAfter: 1, "The request was cancelled before it finished.")
        default: return nil
        }
    }

    private static func mapping(_ error: EventsError) -> Problem? {
        switch error.code {
        case .unavailable, .poolClosed:
            return unavailable(retryAfter: 2, "The database cannot be reached; retry shortly.")
        case .timeout:
            return unavailable(retryAfter: 1, "Every database connection is busy; retry shortly.")
        case .serializationFailure:
            // Already retried inside the store: concurrent writers kept winning.
            return unavailable(retryAfter: 1, "Concurrent changes kept this request from committing; retry it.")
        case .conflict:
            return .raced(resource(of: error.stream))
        case .tenantKeyDestroyed:
            return .conflict("The tenant is erased; it cannot store secrets.")
        case .masterKeyMismatch:
            return Problem(
                .serviceUnavailable, "secrets-unavailable", title: "Vendor secrets unavailable",
                detail:
                    "This server's master key does not open the tenant's key; the operator is rotating or misconfigured it.",
                headers: [.retryAfter: "30"])
        case .migrationChecksumMismatch, .migrationUnknown:
            return Problem(
                .serviceUnavailable, "not-ready", title: "Not ready",
                detail: "The database schema is not the one this server was built for.", headers: [.retryAfter: "30"])
        case .query:
            return transientQueryFailure(error.sqlState)
        default:
            return nil
        }
    }

    /// SQLSTATEs that say the server is busy, restarting or shedding load, not that the statement is wrong:
    /// 57014 a statement timeout or cancel, 53 insufficient resources (too many connections), 55P03 a lock
    /// timeout, 57P0x a shutdown, 08 a connection failure.
    private static func transientQueryFailure(_ state: String?) -> Problem? {
        guard let state else { return nil }
        switch state {
        case "57014": return unavailable(retryAfter: 1, "The database took too long to answer; retry shortly.")
        case "55P03": return unavailable(retryAfter: 1, "A lock was not granted in time; retry shortly.")
        case _ where state.hasPrefix("53") || state.hasPrefix("57P") || state.hasPrefix("08"):
            return unavailable(retryAfter: 2, "The database is busy or restarting; retry shortly.")
        default: return nil
        }
    }

    /// A command refused: nothing was appended.
    private static func mapping(_ error: CommandError) -> Problem {
        switch error.kind {
        case .notFound: return .notFound(error.resource)
        case .conflict:
            guard let code = error.code else { return .conflict(error.detail) }
            return Problem(.conflict, code, title: error.title ?? "Conflict", detail: error.detail)
        case .invalid: return .validation(error.detail, pointer: error.pointer ?? "")
        }
    }

    private static func mapping(_ error: ProjectionsError) -> Problem? {
        guard error.code == .notCaughtUp else { return nil }
        return unavailable(retryAfter: 1, "The read models are behind the log; retry shortly.")
    }

    /// 503 with `Retry-After`: nothing was done, and the same request may succeed later.
    static func unavailable(retryAfter seconds: Int, _ detail: String) -> Problem {
        Problem(
            .serviceUnavailable, "unavailable", title: "Service unavailable", detail: detail,
            headers: [.retryAfter: String(seconds)])
    }

    /// What a stream is, in the words of the API: `run-…` is a run, `apikey-…` a key.
    private static func resource(of stream: String?) -> String {
        switch stream.map({ String($0.prefix { $0 != "-" }) }) {
        case "run": "run"
        case "workflow": "workflow"
        case "tenant": "tenant"
        case "apikey": "key"
        case "vendorsecret": "vendor secret"
        case "flowlimits": "flow limit"
        default: "resource"
        }
    }
}
