public import Events
import Foundation

/// A read model derived only from the log. The runner applies batches of events in commit order inside one
/// transaction together with the projection's checkpoint, so a projection is exactly-once in effect.
///
/// Changing what `apply` writes bumps `version`; a new version is built by a rebuild into new tables, never by
/// changing the old ones in place.
public protocol Projection: Sendable {
    /// Stable name, used for its checkpoint (`tenants`, `workflow_runs`...).
    var name: String { get }
    /// Bumped whenever `tables` or `apply` change what is stored.
    var version: Int { get }
    /// The event types `apply` needs; the runner reads only these.
    var eventTypes: Set<String> { get }
    /// The tables the projection owns.
    var tables: [ProjectionTable] { get }
    /// Applies `events` (in commit order) inside the runner's transaction.
    func apply(_ events: [RecordedEvent], in context: ProjectionContext) async throws
}

extension Projection {
    /// The feed filter that selects this projection's events.
    public var feedFilter: FeedFilter { FeedFilter(types: eventTypes) }
}

/// A table of a read model. Every read model table has a `tenant_id uuid` column and row-level security by
/// tenant: a `tally_app` session sees a tenant's rows only after `SET tally.tenant_id`; a session whose role has
/// `tally_operator` (the runner's and the operator's) sees all rows (migration 8).
public struct ProjectionTable: Sendable, Hashable {
    /// The live name (`tenants`).
    public let name: String
    /// The column and constraint list, as between the parentheses of CREATE TABLE.
    public let columns: String
    /// Extra `CREATE INDEX` statements; `{table}` stands for the table's name.
    public let indexes: [String]
    /// Whether `tally_reporting` reads it (every tenant's rows). False for tables that hold key hashes or
    /// anything about secrets.
    public let reportable: Bool

    public init(name: String, columns: String, indexes: [String] = [], reportable: Bool = true) {
        self.name = name
        self.columns = columns
        self.indexes = indexes
        self.reportable = reportable
    }

    /// The DDL that creates the table, its indexes and row-level security in the first schema of the
    /// session's `search_path` (`public`, or `tally_rebuild` during a rebuild).
    var createStatements: [String] {
        tableStatements + indexStatements
    }

    /// The indexes, each `CREATE INDEX IF NOT EXISTS`. A rebuild creates those that are not unique after its
    /// bulk phase (one sorted build instead of maintaining them row by row); unique ones may back an upsert.
    var indexStatements: [String] {
        indexes.map { $0.replacingOccurrences(of: "{table}", with: name) }
    }

    /// The table and its row-level security, without `indexes`.
    var tableStatements: [String] {
        let tableName = name
        let policy = "(SELECT tally_is_operator()) OR tenant_id = (SELECT tally_session_tenant())"
        return ["CREATE TABLE IF NOT EXISTS \(tableName) (\(columns))"]
            + [
                "ALTER TABLE \(tableName) ENABLE ROW LEVEL SECURITY",
                "ALTER TABLE \(tableName) FORCE ROW LEVEL SECURITY",
                """
                DO $$ BEGIN
                    IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = current_schema()
                                   AND tablename = '\(tableName)' AND policyname = 'tenant_isolation') THEN
                        CREATE POLICY tenant_isolation ON \(tableName) USING (\(policy)) WITH CHECK (\(policy));
                    END IF;
                    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tally_app') THEN
                        GRANT SELECT ON \(tableName) TO tally_app;
                    END IF;
                END $$
                """,
            ] + (reportable ? [Self.reportingStatement(tableName)] : [])
    }

    /// `tally_reporting` reads every tenant's rows of a reportable table: SELECT and a policy of its own.
    static func reportingStatement(_ tableName: String) -> String {
        """
        DO $$ BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tally_reporting') THEN
                GRANT SELECT ON \(tableName) TO tally_reporting;
                IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = current_schema()
                               AND tablename = '\(tableName)' AND policyname = 'reporting_read') THEN
                    CREATE POLICY reporting_read ON \(tableName) FOR SELECT TO tally_reporting USING (true);
                END IF;
            END IF;
        END $$
        """
    }
}

/// What `apply` works with: the runner's connection, inside its transaction, and the catalog.
public struct ProjectionContext: Sendable {
    package let connection: PostgresConnection
    public let catalog: EventCatalog
    /// Events already decoded, by global position: a rebuild decodes each event once for every projection.
    let decoded: [Int64: any DomainEvent]

    package init(connection: PostgresConnection, catalog: EventCatalog, decoded: [Int64: any DomainEvent] = [:]) {
        self.connection = connection
        self.catalog = catalog
        self.decoded = decoded
    }

    /// The event in its current typed shape (`catalog.decode`, or the copy the caller decoded already).
    public func decode(_ recorded: RecordedEvent) throws -> any DomainEvent {
        if let event = decoded[recorded.globalPosition] { return event }
        return try catalog.decode(recorded)
    }

    /// Runs one parameterized statement in the transaction.
    @discardableResult
    package func execute(_ sql: String, _ parameters: [PostgresValue] = []) async throws -> PostgresRows {
        try await connection.query(sql, parameters)
    }
}
