/// How to reach PostgreSQL and what every session of ours sets.
package struct PostgresConfiguration: Sendable {
    /// A libpq connection URI or keyword/value string (`postgresql://user@host/db`, `host=/run/pg dbname=x`).
    package var url: String
    /// Shown in `pg_stat_activity`, so an operator can tell which process holds what.
    package var applicationName: String
    /// How long a connection attempt may take before it counts as unavailable. A refused or unreachable
    /// server fails at once; this bounds a server that accepts but is slow to start the session, which a busy
    /// two-core machine was seen to take 3.5 s for (`connect_timeout` in the URL overrides it).
    package var connectTimeoutSeconds: Int
    /// The server ends a session idle inside a transaction for this long. An open transaction holds back the
    /// commit-order feed for every consumer, so this is short by default.
    package var idleInTransactionTimeoutMilliseconds: Int

    package init(
        url: String, applicationName: String = "tally", connectTimeoutSeconds: Int = 15,
        idleInTransactionTimeoutMilliseconds: Int = 30_000
    ) {
        self.url = url
        self.applicationName = applicationName
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.idleInTransactionTimeoutMilliseconds = idleInTransactionTimeoutMilliseconds
    }
}
