extension Migrator {
    /// Moves an installation of an earlier Tally from `public` into this migrator's schema, in one
    /// transaction: the tables and views the migrations created, `schema_migrations`, the projections' tables
    /// named in `tables`, and the functions. Indexes, constraints, triggers, policies, grants and owned
    /// sequences move with their tables; functions find the tables through every session's `search_path`.
    /// Returns what was moved, `schema.name` first.
    ///
    /// Throws, changing nothing, when the schema already holds a Tally log or `public` holds none.
    public func moveFromPublic(tables: [String]) async throws -> [String] {
        let connection = try await PostgresConnection.connect(configuration)
        defer { connection.close() }
        return try await connection.withTransaction {
            try await connection.query("SELECT pg_advisory_xact_lock($1)", [.int64(Self.lockKey)])
            let state = try await connection.query(
                "SELECT to_regclass('public.schema_migrations') IS NOT NULL, to_regclass($1) IS NOT NULL",
                [.string("\(schema.name).events")])
            guard try state.first?.bool(0) == true else {
                throw EventsError(.query, "the schema public holds no Tally installation (no public.schema_migrations)")
            }
            guard try state.first?.bool(1) == false else {
                throw EventsError(.query, "the schema \(schema.name) already holds a Tally log; nothing was moved")
            }
            try await connection.execute("CREATE SCHEMA IF NOT EXISTS \(schema.name)")
            let created = Migration.createdObjects(migrations)
            let names = created.relations.union(tables).union(["schema_migrations"])
            let relations = try await connection.query(
                """
                SELECT c.relname, CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                                 WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END
                FROM pg_class c
                WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY($1)
                  AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
                  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))
                ORDER BY c.relname
                """,
                [.stringArray(names.sorted())])
            var moved: [String] = [schema.name]
            for row in relations {
                let name = try row.string(0)
                try await connection.execute("ALTER \(try row.string(1)) public.\(name) SET SCHEMA \(schema.name)")
                moved.append(name)
            }
            let functions = try await connection.query(
                """
                SELECT p.oid::regprocedure::text, p.proname FROM pg_proc p
                WHERE p.pronamespace = 'public'::regnamespace AND p.proname = ANY($1) ORDER BY 2
                """,
                [.stringArray(created.functions.sorted())])
            for row in functions {
                let signature = try row.string(0)
                try await connection.execute("ALTER FUNCTION \(signature) SET SCHEMA \(schema.name)")
                moved.append(try row.string(1) + "()")
            }
            return moved
        }
    }
}
