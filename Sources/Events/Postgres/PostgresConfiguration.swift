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
    /// The schema every Tally object lives in: the only entry of every statement's `search_path`.
    package var schema: DatabaseSchema
    /// Whether `url` reaches a session of its own or a pooler in transaction mode.
    package var poolMode: PoolMode

    package init(
        url: String, applicationName: String = "tally", connectTimeoutSeconds: Int = 15,
        idleInTransactionTimeoutMilliseconds: Int = 30_000, schema: DatabaseSchema = .default,
        poolMode: PoolMode = .automatic
    ) {
        self.url = url
        self.applicationName = applicationName
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.idleInTransactionTimeoutMilliseconds = idleInTransactionTimeoutMilliseconds
        self.schema = schema
        self.poolMode = poolMode
    }
}

/// What a database URL reaches, as far as session state goes.
public enum PoolMode: String, Sendable, CaseIterable {
    /// Find out at connect: the server directly (or a session pooler) takes the session options Tally sends
    /// at startup and keeps them; a pooler in transaction mode (PgBouncer, Supavisor) refuses or drops them.
    case automatic = "auto"
    /// A pooler in transaction mode: nothing outlives a transaction, so every transaction and statement sets
    /// its own `search_path`, and statements are not prepared by name.
    case transaction
    /// A session of our own (the server, or a pooler in session mode): settings and prepared statements last.
    case session
}

/// The schema that holds every table, function and policy of one Tally installation (`TALLY_SCHEMA`).
///
/// A plain lower-case identifier, so that it never needs quoting and cannot carry SQL.
public struct DatabaseSchema: Sendable, Hashable, CustomStringConvertible {
    /// The identifier, for example `tally`.
    public let name: String

    /// `tally`.
    public static let `default` = DatabaseSchema(validated: "tally")

    /// Accepts 1 to 48 characters of `a-z`, `0-9` and `_`, not starting with a digit, and not `public`,
    /// `pg_*` or `information_schema`; nil otherwise.
    public init?(_ name: String) {
        let bytes = Array(name.utf8)
        guard (1...48).contains(bytes.count), !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[0]),
            bytes.allSatisfy({
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                    || $0 == UInt8(ascii: "_")
            }),
            name != "public", name != "information_schema", !name.hasPrefix("pg_")
        else { return nil }
        self.name = name
    }

    private init(validated name: String) { self.name = name }

    /// The schema a projection rebuild builds its new tables in: `<name>_rebuild`.
    public var rebuild: String { "\(name)_rebuild" }

    public var description: String { name }
}
