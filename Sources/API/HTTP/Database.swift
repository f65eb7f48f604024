import Events
import Foundation
import Logging
import Synchronization

/// Transactions for the API's reads and small writes, always scoped: a tenant's transaction runs as the
/// `tally_app` role (when the login role may take it) with `tally.tenant_id` set, so PostgreSQL's row-level
/// security hides every other tenant's rows even if a query forgot its `WHERE tenant_id`; the operator's
/// runs as the login role, which has `tally_operator` (no setting grants that scope).
final class Database: Sendable {
    let pool: PostgresPool
    /// Whether the login role can `SET ROLE tally_app` (a superuser would bypass row-level security);
    /// asked once, when the database first answers.
    private let member = Mutex<Bool?>(nil)
    private let logger: Logger

    init(pool: PostgresPool, logger: Logger) {
        self.pool = pool
        self.logger = logger
    }

    var appRole: Bool {
        get async throws {
            if let known = member.withLock({ $0 }) { return known }
            let answer =
                try await pool.query(
                    "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tally_app') AND pg_has_role(current_user, 'tally_app', 'MEMBER')"
                ).first?.bool(0) ?? false
            if !answer {
                logger.warning(
                    "the login role cannot SET ROLE tally_app: row-level security relies on it not bypassing RLS")
            }
            member.withLock { $0 = answer }
            return answer
        }
    }

    @discardableResult
    func tenant<T: Sendable>(_ tenant: UUID, readOnly: Bool = false, _ body: (PostgresConnection) async throws -> T)
        async throws -> T
    {
        // The id is a formatted UUID, never client text.
        let begin =
            (readOnly ? "BEGIN READ ONLY; " : "BEGIN; ") + (try await appRole ? "SET LOCAL ROLE tally_app; " : "")
            + "SET LOCAL tally.tenant_id = '\(tenant.lowercased)'"
        return try await pool.withConnection { connection in
            try await connection.withTransaction(begin: begin) { try await body(connection) }
        }
    }

    @discardableResult
    func asOperator<T: Sendable>(readOnly: Bool = false, _ body: (PostgresConnection) async throws -> T) async throws
        -> T
    {
        try await pool.withConnection { connection in
            try await connection.withTransaction(begin: readOnly ? "BEGIN READ ONLY" : "BEGIN") {
                try await body(connection)
            }
        }
    }

    @discardableResult
    func scoped<T: Sendable>(_ scope: UUID, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        scope == IdempotencyMiddleware.operatorScope ? try await asOperator(body) : try await tenant(scope, body)
    }
}
