public import Events
import Foundation

/// One finding of `tally doctor`.
public struct DoctorCheck: Sendable, Codable, Hashable {
    public enum Status: String, Sendable, Codable, Hashable {
        case pass, warn, fail
    }

    /// What was checked: `migrations`, `tables`, `row-level security`...
    public var check: String
    public var status: Status
    /// What was found, naming the object at fault when there is one.
    public var detail: String

    public init(_ check: String, _ status: Status, _ detail: String) {
        self.check = check
        self.status = status
        self.detail = detail
    }
}

/// Checks a database against what this binary expects, as the service's own login sees it: the schema, its
/// security, the connection setup, and the log's health. Reads only.
public struct Doctor: Sendable {
    let store: EventStore
    let migrations: [Migration]
    let projections: [any Projection]
    /// How many `tally serve` and `tally work` processes will share the database (connection headroom).
    let instances: Int
    /// Every reader's global position by name, each read by the module that owns its checkpoint table.
    let readerPositions: @Sendable (EventStore) async throws -> [String: Int64]

    /// `readerPositions` reads the log's readers' positions for the restore check (`ProductReaders.positions`
    /// in the API module covers every reader of the product).
    public init(
        store: EventStore, migrations: [Migration], projections: [any Projection], instances: Int = 1,
        readerPositions: @escaping @Sendable (EventStore) async throws -> [String: Int64]
    ) {
        self.store = store
        self.migrations = migrations
        self.projections = projections
        self.instances = max(1, instances)
        self.readerPositions = readerPositions
    }

    /// Connections one `tally serve` and one `tally work` open at most (their pools, the projections' and the
    /// dispatcher's connections, a listener each).
    static let connectionsPerInstance = 32 + 8 + 1 + 8 + 1 + 2

    /// Every check, in order. A check that cannot run fails with the reason.
    public func run() async -> [DoctorCheck] {
        var checks: [DoctorCheck] = []
        let steps: [(String, () async throws -> [DoctorCheck])] = [
            ("migrations", migrationsApplied),
            ("tables", tablesAndColumns),
            ("indexes", indexesPresent),
            ("functions", functionsPresent),
            ("row-level security", rowLevelSecurity),
            ("grants", grants),
            ("login role", loginRole),
            ("pooler", pooler),
            ("connections", connections),
            ("leaders", leaders),
            ("horizon", horizon),
            ("projections", projectionHealth),
            ("feed order", feedOrder),
            ("restore", restore),
        ]
        for (name, step) in steps {
            do {
                checks += try await step()
            } catch {
                checks.append(DoctorCheck(name, .fail, "could not check: \(error)"))
            }
        }
        return checks
    }

    private var schema: String { store.configuration.schema.name }

    private func query(_ sql: String, _ parameters: [PostgresValue] = []) async throws -> PostgresRows {
        try await store.pool.query(sql, parameters)
    }

    // MARK: - Schema

    private func migrationsApplied() async throws -> [DoctorCheck] {
        guard
            try await query("SELECT to_regclass($1) IS NOT NULL", [.string("\(schema).schema_migrations")])
                .first?.bool(0) == true
        else {
            return [DoctorCheck("migrations", .fail, "schema \(schema) holds no schema_migrations: run tally migrate")]
        }
        var applied: [Int: (name: String, checksum: String)] = [:]
        for row in try await query("SELECT version, name, checksum FROM schema_migrations") {
            applied[try row.int(0)] = (try row.string(1), try row.string(2))
        }
        var problems: [String] = []
        for migration in migrations {
            guard let record = applied.removeValue(forKey: migration.version) else {
                problems.append("\(migration.version) (\(migration.name)) is not applied: run tally migrate")
                continue
            }
            if record.checksum != migration.checksum {
                problems.append(
                    "\(migration.version) (\(migration.name)) was applied with other SQL than this binary's")
            }
        }
        for (version, record) in applied.sorted(by: { $0.key < $1.key }) {
            problems.append("\(version) (\(record.name)) is unknown to this binary: run a newer tally")
        }
        if problems.isEmpty {
            return [DoctorCheck("migrations", .pass, "\(migrations.count) applied, unmodified")]
        }
        return problems.map { DoctorCheck("migrations", .fail, "migration \($0)") }
    }

    /// The tables of the schema with their columns.
    private func actualColumns() async throws -> [String: Set<String>] {
        var actual: [String: Set<String>] = [:]
        for row in try await query(
            """
            SELECT c.relname, a.attname FROM pg_class c
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'p', 'v')
            """, [.string(schema)])
        {
            actual[try row.string(0), default: []].insert(try row.string(1))
        }
        return actual
    }

    /// Projections that a runner has started in this database (their tables exist from then on).
    private func startedProjections() async throws -> Set<String> {
        Set(try await query("SELECT projection FROM projection_checkpoints").map { try $0.string(0) })
    }

    private func tablesAndColumns() async throws -> [DoctorCheck] {
        let expected = ExpectedSchema(migrations)
        let actual = try await actualColumns()
        let started = try await startedProjections()
        var checks: [DoctorCheck] = []
        var expectedTables = expected.tables
        var notStarted: [String] = []
        for projection in projections {
            guard started.contains(projection.name) else {
                notStarted.append(projection.name)
                continue
            }
            for table in projection.tables {
                expectedTables[table.name] = ExpectedSchema.columns(ofTableBody: table.columns[...])
            }
        }
        for (table, columns) in expectedTables.sorted(by: { $0.key < $1.key }) {
            guard let present = actual[table] else {
                checks.append(DoctorCheck("tables", .fail, "table \(schema).\(table) is missing"))
                continue
            }
            for column in columns.subtracting(present).sorted() {
                checks.append(DoctorCheck("tables", .fail, "column \(schema).\(table).\(column) is missing"))
            }
        }
        for view in expected.views.sorted() where actual[view] == nil {
            checks.append(DoctorCheck("tables", .fail, "view \(schema).\(view) is missing"))
        }
        if checks.isEmpty {
            checks.append(DoctorCheck("tables", .pass, "\(expectedTables.count) tables with every column"))
        }
        if !notStarted.isEmpty {
            checks.append(
                DoctorCheck(
                    "tables", .warn,
                    "not started yet, so without tables (the first tally serve creates them): "
                        + notStarted.joined(separator: ", ")))
        }
        return checks
    }

    private func indexesPresent() async throws -> [DoctorCheck] {
        var expected = ExpectedSchema(migrations).indexes
        let started = try await startedProjections()
        for projection in projections where started.contains(projection.name) {
            for table in projection.tables {
                for statement in table.indexStatements {
                    if let match = statement.firstMatch(of: /INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?([a-z_][a-z0-9_]*)/) {
                        expected.insert(String(match.1))
                    }
                }
            }
        }
        let present = Set(
            try await query(
                "SELECT c.relname FROM pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('i', 'I')",
                [.string(schema)]
            ).map { try $0.string(0) })
        let missing = expected.subtracting(present).sorted()
        if missing.isEmpty { return [DoctorCheck("indexes", .pass, "\(expected.count) indexes present")] }
        return missing.map { DoctorCheck("indexes", .fail, "index \(schema).\($0) is missing") }
    }

    private func functionsPresent() async throws -> [DoctorCheck] {
        let expected = ExpectedSchema(migrations).functions
        let present = Set(
            try await query("SELECT proname FROM pg_proc WHERE pronamespace = $1::regnamespace", [.string(schema)])
                .map { try $0.string(0) })
        let missing = expected.subtracting(present).sorted()
        if missing.isEmpty { return [DoctorCheck("functions", .pass, "\(expected.count) functions present")] }
        return missing.map { DoctorCheck("functions", .fail, "function \(schema).\($0)() is missing") }
    }

    // MARK: - Security

    /// The policy each table must carry: `operator_only` on the operator's tables, `tenant_isolation` on every
    /// other table with a tenant (the log included). `tenant_keys` has none: only `tally_keys` may touch it.
    static let operatorOnlyTables: Set<String> = ["stripe_events", "worker_checkpoints"]

    private func rowLevelSecurity() async throws -> [DoctorCheck] {
        var checks: [DoctorCheck] = []
        var count = 0
        for row in try await query(
            """
            SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   coalesce((SELECT string_agg(p.policyname::text, ',') FROM pg_policies p
                             WHERE p.schemaname = $1 AND p.tablename = c.relname), ''),
                   EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id'
                           AND NOT a.attisdropped)
            FROM pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'p') ORDER BY 1
            """, [.string(schema)])
        {
            let table = try row.string(0)
            let policy: String
            if Self.operatorOnlyTables.contains(table) {
                policy = "operator_only"
            } else if try row.bool(4), table != "tenant_keys", table != "feed_order_inversions" {
                policy = "tenant_isolation"
            } else {
                continue
            }
            count += 1
            if try !row.bool(1) {
                checks.append(DoctorCheck("row-level security", .fail, "\(schema).\(table): row-level security is off"))
            }
            if try !row.bool(2) {
                checks.append(
                    DoctorCheck(
                        "row-level security", .fail,
                        "\(schema).\(table): row-level security is not forced (its owner bypasses it)"))
            }
            if try !row.string(3).split(separator: ",").contains(Substring(policy)) {
                checks.append(
                    DoctorCheck("row-level security", .fail, "\(schema).\(table): policy \(policy) is missing"))
            }
        }
        if checks.isEmpty {
            return [DoctorCheck("row-level security", .pass, "enabled, forced and with its policy on \(count) tables")]
        }
        return checks
    }

    /// What each group role must be granted (table → privileges), beyond `USAGE` on the schema.
    static let requiredGrants: [String: [String: [String]]] = [
        "tally_app": [
            "events": ["SELECT"], "streams": ["SELECT"], "idempotency_keys": ["SELECT", "INSERT", "UPDATE", "DELETE"],
            "parked_streams": ["SELECT"], "projection_checkpoints": ["SELECT"], "stripe_events": ["SELECT"],
            "work_queue": ["SELECT"], "work_vendor_keys": ["SELECT"], "flow_keys": ["SELECT"],
            "flow_starts": ["SELECT"], "flow_limits": ["SELECT"], "quota_grants": ["SELECT"],
        ],
        "tally_keys": ["tenant_keys": ["SELECT", "INSERT", "UPDATE"]],
        "tally_operator": ["log_identity": ["SELECT", "UPDATE"]],
        "tally_service": [
            "events": ["SELECT", "INSERT"], "streams": ["SELECT", "INSERT", "UPDATE"],
            "schema_migrations": ["SELECT"], "log_identity": ["SELECT"],
            "projection_checkpoints": ["SELECT", "INSERT", "UPDATE"], "projection_rebuilds": ["SELECT"],
            "parked_streams": ["SELECT", "INSERT", "UPDATE", "DELETE"],
            "leader_leases": ["SELECT", "INSERT", "UPDATE"],
            "idempotency_keys": ["SELECT", "INSERT", "UPDATE", "DELETE"], "stripe_events": ["SELECT", "INSERT"],
            "work_queue": ["SELECT", "INSERT", "UPDATE", "DELETE"], "work_vendor_keys": ["SELECT", "INSERT", "UPDATE"],
            "flow_keys": ["SELECT", "INSERT", "UPDATE"], "flow_starts": ["SELECT", "INSERT", "DELETE"],
            "flow_limits": ["SELECT", "INSERT", "UPDATE"], "worker_checkpoints": ["SELECT", "INSERT", "UPDATE"],
            "feed_order_inversions": ["SELECT"], "rate_budgets": ["SELECT", "INSERT", "UPDATE", "DELETE"],
            "quota_grants": ["SELECT", "INSERT", "UPDATE", "DELETE"],
        ],
        "tally_reporting": [:],
    ]

    private func grants() async throws -> [DoctorCheck] {
        var checks: [DoctorCheck] = []
        var required = Self.requiredGrants
        let started = try await startedProjections()
        for projection in projections where started.contains(projection.name) {
            for table in projection.tables {
                required["tally_app", default: [:]][table.name] = ["SELECT"]
                required["tally_service", default: [:]][table.name] = ["SELECT", "INSERT", "UPDATE", "DELETE"]
                if table.reportable { required["tally_reporting", default: [:]][table.name] = ["SELECT"] }
            }
        }
        for role in required.keys.sorted() {
            guard try await query("SELECT 1 FROM pg_roles WHERE rolname = $1", [.string(role)]).count == 1 else {
                checks.append(
                    DoctorCheck("grants", .fail, "the role \(role) does not exist (docs/operations.md, roles)"))
                continue
            }
            if try await query("SELECT has_schema_privilege($1, $2, 'USAGE')", [.string(role), .string(schema)])
                .first?.bool(0) != true
            {
                checks.append(DoctorCheck("grants", .fail, "\(role) lacks USAGE on the schema \(schema)"))
            }
            for (table, privileges) in (required[role] ?? [:]).sorted(by: { $0.key < $1.key }) {
                for privilege in privileges {
                    let rows = try await query(
                        "SELECT to_regclass($2) IS NULL OR has_table_privilege($1, $2, $3)",
                        [.string(role), .string("\(schema).\(table)"), .string(privilege)])
                    if try rows.first?.bool(0) != true {
                        checks.append(DoctorCheck("grants", .fail, "\(role) lacks \(privilege) on \(schema).\(table)"))
                    }
                }
            }
        }
        // What a tenant session must not have: writes beyond its idempotency records, any access to the
        // wrapped tenant keys, the claim function.
        for row in try await query(
            """
            SELECT c.relname, p.privilege FROM pg_class c
            CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS p(privilege)
            WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'p') AND c.relname <> 'idempotency_keys'
              AND pg_has_role('tally_app', 'tally_app', 'USAGE')
              AND has_table_privilege('tally_app', c.oid, p.privilege)
            UNION ALL
            SELECT 'tenant_keys', 'SELECT' WHERE to_regclass($2) IS NOT NULL AND has_table_privilege('tally_app', $2, 'SELECT')
            UNION ALL
            SELECT 'work_claim()', 'EXECUTE' FROM pg_proc WHERE pronamespace = $1::regnamespace AND proname = 'work_claim'
              AND has_function_privilege('tally_app', oid, 'EXECUTE')
            ORDER BY 1, 2
            """, [.string(schema), .string("\(schema).tenant_keys")])
        {
            checks.append(
                DoctorCheck(
                    "grants", .fail, "tally_app may \(try row.string(1)) \(schema).\(try row.string(0)): revoke it"))
        }
        // The service appends to the log and never changes it; reporting reads no log, no keys, no secrets.
        var forbidden: [(String, String, String)] = [
            ("tally_service", "events", "UPDATE"), ("tally_service", "events", "DELETE"),
            ("tally_service", "events", "TRUNCATE"), ("tally_service", "schema_migrations", "INSERT"),
            ("tally_reporting", "events", "SELECT"), ("tally_reporting", "tenant_keys", "SELECT"),
        ]
        for projection in projections where started.contains(projection.name) {
            for table in projection.tables where !table.reportable {
                forbidden.append(("tally_reporting", table.name, "SELECT"))
            }
        }
        for (role, table, privilege) in forbidden {
            let rows = try await query(
                """
                SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AND to_regclass($2) IS NOT NULL
                       AND has_table_privilege($1, $2, $3)
                """, [.string(role), .string("\(schema).\(table)"), .string(privilege)])
            if try rows.first?.bool(0) == true {
                checks.append(DoctorCheck("grants", .fail, "\(role) may \(privilege) \(schema).\(table): revoke it"))
            }
        }
        if checks.isEmpty {
            return [
                DoctorCheck(
                    "grants", .pass,
                    "tally_app, tally_keys, tally_operator, tally_service and tally_reporting as expected")
            ]
        }
        return checks
    }

    private func loginRole() async throws -> [DoctorCheck] {
        let rows = try await query(
            """
            SELECT session_user::text, r.rolsuper, r.rolbypassrls,
                   EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = $1::regnamespace
                           AND pg_has_role(session_user, c.relowner, 'USAGE')),
                   pg_has_role(session_user, 'tally_app', 'MEMBER'), pg_has_role(session_user, 'tally_operator', 'MEMBER'),
                   EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tally_service')
                   AND pg_has_role(session_user, 'tally_service', 'MEMBER')
            FROM pg_roles r WHERE r.rolname = session_user
            """, [.string(schema)])
        guard let row = rows.first else { return [DoctorCheck("login role", .fail, "the login role is not visible")] }
        let name = try row.string(0)
        var checks: [DoctorCheck] = []
        if try row.bool(1) {
            checks.append(
                DoctorCheck("login role", .fail, "\(name) is a superuser: row-level security does not bind it"))
        }
        if try row.bool(2) {
            checks.append(
                DoctorCheck("login role", .fail, "\(name) has BYPASSRLS: row-level security does not bind it"))
        }
        if try row.bool(3) {
            checks.append(
                DoctorCheck(
                    "login role", .fail,
                    "\(name) owns tables of \(schema) (or is a member of their owner): it may change the schema; "
                        + "run the service as a login role that is a member of tally_app, and migrate as the owner"))
        }
        if try !row.bool(4) {
            checks.append(DoctorCheck("login role", .fail, "\(name) is not a member of tally_app"))
        }
        if try !row.bool(5) {
            checks.append(DoctorCheck("login role", .fail, "\(name) is not a member of tally_operator"))
        }
        if try !row.bool(6) {
            checks.append(
                DoctorCheck("login role", .fail, "\(name) is not a member of tally_service, which holds what it writes")
            )
        }
        if checks.isEmpty {
            return [
                DoctorCheck("login role", .pass, "\(name): no superuser, no BYPASSRLS, not the owner, in tally_service")
            ]
        }
        return checks
    }

    // MARK: - Connections

    private func pooler() async throws -> [DoctorCheck] {
        let configuration = store.configuration
        // Two transactions on one client connection: a transaction pooler may hand them different backends.
        let (keeps, first, second) = try await store.pool.withConnection { connection in
            let first = try await connection.withTransaction {
                try await connection.query("SELECT pg_backend_pid()").first?.int(0) ?? 0
            }
            let second = try await connection.withTransaction {
                try await connection.query("SELECT pg_backend_pid()").first?.int(0) ?? 0
            }
            return (connection.keepsSession, first, second)
        }
        var checks: [DoctorCheck] = []
        let seen =
            keeps
            ? "the database URL reaches a session of its own"
            : "the database URL reaches a pooler in transaction mode (it did not keep the session options"
                + (first != second ? "; two transactions ran on two backends)" : ")")
        if !keeps, configuration.poolMode == .session {
            checks.append(DoctorCheck("pooler", .fail, "\(seen), but TALLY_POOL_MODE is session"))
        } else if keeps, first != second {
            checks.append(DoctorCheck("pooler", .fail, "two transactions of one session ran on two backends"))
        } else {
            checks.append(DoctorCheck("pooler", .pass, seen))
        }
        if configuration.directDatabaseURL != nil {
            let connection = try await PostgresConnection.connect(configuration.session)
            defer { connection.close() }
            checks.append(
                connection.keepsSession
                    ? DoctorCheck("pooler", .pass, "the direct URL reaches a session of its own")
                    : DoctorCheck("pooler", .fail, "TALLY_DIRECT_DATABASE_URL reaches a transaction pooler"))
        } else if !keeps {
            checks.append(
                DoctorCheck(
                    "pooler", .warn,
                    "no TALLY_DIRECT_DATABASE_URL: readers poll instead of listening, and rebuilds cannot run"))
        }
        return checks
    }

    private func connections() async throws -> [DoctorCheck] {
        let row = try await query(
            """
            SELECT current_setting('max_connections')::int, current_setting('superuser_reserved_connections')::int,
                   (SELECT count(*) FROM pg_stat_activity)::int,
                   current_setting('idle_in_transaction_session_timeout')
            """
        ).first
        guard let row else { return [] }
        let available = try row.int(0) - row.int(1) - row.int(2)
        let needed = instances * Self.connectionsPerInstance
        var checks = [
            available >= needed
                ? DoctorCheck(
                    "connections", .pass,
                    "\(available) connections free of \(try row.int(0)), \(needed) needed for \(instances) instance(s)")
                : DoctorCheck(
                    "connections", .fail,
                    "\(available) connections free of \(try row.int(0)), but \(instances) instance(s) of serve and work "
                        + "need up to \(needed): raise max_connections or put a pooler in front")
        ]
        let timeout = try row.string(3)
        checks.append(
            timeout == "0"
                ? DoctorCheck(
                    "connections", .fail,
                    "idle_in_transaction_session_timeout is 0 in Tally's sessions: an idle transaction holds the feed back"
                )
                : DoctorCheck(
                    "connections", .pass, "idle_in_transaction_session_timeout is \(timeout) in Tally's sessions"))
        return checks
    }

    // MARK: - The log

    private func leaders() async throws -> [DoctorCheck] {
        var held: [String: String] = [:]
        for row in try await query(
            "SELECT name, holder FROM leader_leases WHERE expires_at > clock_timestamp()")
        {
            held[try row.string(0)] = try row.string(1)
        }
        let names = projections.map { "projection:" + $0.name } + ["dispatcher"]
        let without = names.filter { held[$0] == nil }
        var checks: [DoctorCheck] = []
        if !without.isEmpty {
            checks.append(
                DoctorCheck(
                    "leaders", .warn,
                    "no leader now (is tally serve, or tally work for the dispatcher, running?): "
                        + without.joined(separator: ", ")))
        }
        let led = names.compactMap { name in held[name].map { "\(name) by \($0)" } }
        if !led.isEmpty { checks.append(DoctorCheck("leaders", .pass, led.joined(separator: ", "))) }
        return checks
    }

    private func horizon() async throws -> [DoctorCheck] {
        let holders = try await store.horizonHolders(olderThanSeconds: 60)
        if holders.isEmpty {
            return [DoctorCheck("horizon", .pass, "no transaction that may append is older than 60 s")]
        }
        return holders.map {
            DoctorCheck(
                "horizon", .fail,
                "pid \($0.pid) (\($0.applicationName), \($0.state)) has held the feed back for \(Int($0.ageSeconds)) s: "
                    + "SELECT pg_terminate_backend(\($0.pid)) ends it")
        }
    }

    private func projectionHealth() async throws -> [DoctorCheck] {
        var checks: [DoctorCheck] = []
        for status in try await ProjectionStatus.all(projections, store: store) {
            switch status.state {
            case .failed:
                checks.append(
                    DoctorCheck(
                        "projections", .fail,
                        "\(status.name) stopped at \(status.errorPosition ?? 0): \(status.error ?? "")"))
            case .needsRebuild:
                checks.append(
                    DoctorCheck(
                        "projections", .fail, "\(status.name) needs a rebuild: tally projections rebuild \(status.name)"
                    ))
            case .running, .notStarted:
                break
            }
            if status.parkedStreams > 0 {
                checks.append(
                    DoctorCheck(
                        "projections", .fail,
                        "\(status.name) holds \(status.parkedStreams) parked stream(s): tally projections status lists them"
                    ))
            }
        }
        let dispatcherParked =
            try await query("SELECT count(*) FROM parked_streams WHERE reader = 'dispatcher'").first?.int(0) ?? 0
        if dispatcherParked > 0 {
            checks.append(
                DoctorCheck("projections", .fail, "the dispatcher holds \(dispatcherParked) parked stream(s)"))
        }
        if checks.isEmpty { return [DoctorCheck("projections", .pass, "none stopped, none parked")] }
        return checks
    }

    private func feedOrder() async throws -> [DoctorCheck] {
        // Over the whole log: no event sorts, in feed order, before an earlier version of its own stream.
        let inverted =
            try await store.asOperator(readOnly: true) { connection in
                try await connection.query(
                    """
                    SELECT count(*) FROM (
                        SELECT stream_version < max(stream_version) OVER (
                                   PARTITION BY stream_id ORDER BY tx_id, global_position
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS inverted
                        FROM events) e
                    WHERE inverted
                    """
                ).first?.int(0) ?? 0
            }
        if inverted == 0 {
            return [DoctorCheck("feed order", .pass, "no event sorts before an earlier one of its stream")]
        }
        return [
            DoctorCheck(
                "feed order", .fail,
                "\(inverted) event(s) sort before an earlier version of their own stream (feed_order_inversions)")
        ]
    }

    private func restore() async throws -> [DoctorCheck] {
        let problems = try await store.restoreProblems(readers: try await readerPositions(store))
        if problems.isEmpty {
            return [DoctorCheck("restore", .pass, "the log, its checkpoints and this cluster belong together")]
        }
        return problems.map { DoctorCheck("restore", .fail, $0) }
    }
}
