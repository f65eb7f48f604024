import API
import FakeVendors
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Projections
import TestSupport
import Testing
import Workers

@testable import Events

/// PgBouncer 1.18 in transaction mode (scripts/pg.sh bouncer) in front of the suite's cluster.
struct PgBouncer {
    let directory: String

    /// The URL of `database` through the pooler.
    func url(database: String) -> String { "postgresql://postgres@/\(database)?host=\(directory)&port=6432" }

    /// Runs `body` with a PgBouncer of its own, then stops it and removes its folder, whatever `body` did.
    static func with<T>(_ body: (PgBouncer) async throws -> T) async throws -> T {
        let scratch = ProcessInfo.processInfo.environment["TALLY_TEST_SCRATCH"] ?? NSTemporaryDirectory()
        let bouncer = PgBouncer(directory: scratch + "/pgb-" + UUID().uuidString.prefix(8).lowercased())
        do {
            try await bouncer.run(["bouncer", bouncer.directory, TestDatabase.host])
            let result = try await body(bouncer)
            await bouncer.destroy()
            return result
        } catch {
            await bouncer.destroy()
            throw error
        }
    }

    private func run(_ arguments: [String]) async throws {
        let script =
            ProcessInfo.processInfo.environment["TALLY_PG_SCRIPT"]
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../scripts/pg.sh")
            .path
        let result = try await Subprocess.run(script, arguments, environment: ProcessInfo.processInfo.environment)
        guard result.status == 0 else {
            throw EventsError(
                .unavailable, "pg.sh \(arguments[0]) failed with status \(result.status): \(result.stderr)")
        }
    }

    private func destroy() async {
        try? await run(["bouncer-stop", directory])
        try? FileManager.default.removeItem(atPath: directory)
    }
}

@Suite("Behind a pooler in transaction mode, in a shared database", .serialized, .timeLimit(.minutes(5)))
struct PoolerTests {
    @Test(
        "through PgBouncer in transaction mode: tenant, key, vendor secrets, a batch of runs to completion and an event stream, with and without a direct URL",
        arguments: [false, true])
    func throughPgBouncer(direct: Bool) async throws {
        try await PgBouncer.with { bouncer in
            let (name, directURL) = try await TestDatabase.create()
            defer { Task { await TestDatabase.drop(name) } }
            let store = EventStore(
                configuration: .init(
                    databaseURL: bouncer.url(database: name), maxConnections: 8, acquireTimeout: .seconds(20),
                    pollInterval: .milliseconds(100), applicationName: "tally-pooled",
                    directDatabaseURL: direct ? directURL : nil))
            defer { store.close() }
            // PgBouncer refuses the startup options: the pool finds out and runs without session state.
            #expect(try await store.pool.withConnection { $0.keepsSession } == false)
            // A session of its own listens when there is a direct URL, and nothing does without one.
            let listeners: @Sendable () async throws -> Int = {
                try await TestDatabase.count(
                    directURL,
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN tally_events'"
                )
            }
            try await Self.driveFlow(store: store) {
                if direct {
                    try await Eventually.wait("the listener to start on the direct URL") { try await listeners() == 1 }
                } else {
                    #expect(try await listeners() == 0)
                }
            }
        }
    }

    @Test(
        "behind PgBouncer without a direct URL, leadership is a lease: one runner leads, a holder whose lease was taken cannot commit, a dead holder's lease passes on within its duration, every count exact"
    )
    func leasedLeadership() async throws {
        try await PgBouncer.with { bouncer in
            let (name, _) = try await TestDatabase.create()
            defer { Task { await TestDatabase.drop(name) } }
            func store() -> EventStore {
                EventStore(
                    configuration: .init(
                        databaseURL: bouncer.url(database: name), maxConnections: 4, acquireTimeout: .seconds(20),
                        pollInterval: .milliseconds(50)))
            }
            let (storeA, storeB) = (store(), store())
            defer {
                storeA.close()
                storeB.close()
            }
            // Long enough that a live holder on a loaded two-core machine never misses it: with 3 s, CI once saw
            // runner a's renewals (every second, through PgBouncer) run more than 2 s late and b take a lease.
            let lease: Duration = .seconds(8)
            func runner(_ store: EventStore, _ holder: String) -> Task<Void, Never> {
                Task {
                    await ProjectionRunner(
                        store: store, projections: ProductProjections.all,
                        options: .init(
                            batchSize: 7, pollInterval: .milliseconds(50), leadershipRetry: .milliseconds(50),
                            leaseDuration: lease, holder: holder)
                    ).run()
                }
            }
            let count = ProductProjections.all.count
            @Sendable func holders() async throws -> [String: Int] {
                var held: [String: Int] = [:]
                for row in try await storeA.pool.query(
                    """
                    SELECT split_part(holder, ' ', 1), count(*) FROM leader_leases
                    WHERE name LIKE 'projection:%' AND expires_at > clock_timestamp() GROUP BY 1
                    """)
                {
                    held[try row.string(0)] = try row.int(1)
                }
                return held
            }
            func appendTenants(_ n: Int) async throws {
                for _ in 0..<n {
                    let tenant = UUID()
                    try await storeA.append(
                        [try Fixtures.tenantCreated(tenant, name: "T" + tenant.uuidString.prefix(12))],
                        to: .tenant(tenant),
                        tenantID: tenant, expected: .noStream)
                }
            }
            @Sendable func applied() async throws -> Int {
                try await storeA.pool.query(
                    "SELECT events_applied FROM projection_checkpoints WHERE projection = 'tenants'"
                ).first?.int(0) ?? 0
            }

            let runnerA = runner(storeA, "a")
            defer { runnerA.cancel() }
            try await Eventually.wait("runner a to lease every projection") { try await holders() == ["a": count] }
            let runnerB = runner(storeB, "b")
            try await appendTenants(20)
            try await Eventually.wait("20 tenants applied") { try await applied() == 20 }
            #expect(try await holders() == ["a": count], "b stood by")

            // A holder that froze past its lease: another took it, so its token no longer holds and it cannot
            // renew; the runner checks it inside every batch's transaction.
            let frozen = try #require(
                try await LeaderLease.acquire("test:frozen", holder: "x", duration: .milliseconds(1), pool: storeA.pool)
            )
            try await Eventually.wait("the frozen lease to expire") {
                try await LeaderLease.acquire("test:frozen", holder: "y", duration: .seconds(60), pool: storeA.pool)
                    != nil
            }
            #expect(try await storeA.pool.withTransaction { try await frozen.holds(on: $0) } == false)
            #expect(try await frozen.renew(duration: .seconds(60), pool: storeA.pool) == false)

            // Runner a froze past its leases and another holder took them, and let them go: a's batches are
            // fenced from then on, its renewals fail and it stops leading; b, standing by, takes them.
            try await storeA.pool.query(
                """
                UPDATE leader_leases SET holder = 'x', token = token + 1, expires_at = '-infinity'
                WHERE holder LIKE 'a %'
                """)
            try await Eventually.wait("runner b to take every projection") { try await holders() == ["b": count] }
            try await appendTenants(20)
            try await Eventually.wait("40 tenants applied") { try await applied() == 40 }
            #expect(try await holders() == ["b": count])

            // Runner b dies without giving its leases up (its connections are gone): a leads again once they
            // expire, within the lease's duration and a retry.
            storeB.close()
            runnerB.cancel()
            // When b's leases run out, read once b can no longer renew them; a's takeover is measured against
            // them in the database's clock, so a loaded machine's slow polling here does not count.
            let expiries = try await storeA.pool.query(
                """
                SELECT name, extract(epoch FROM expires_at)::float8 FROM leader_leases
                WHERE name LIKE 'projection:%' AND split_part(holder, ' ', 1) = 'b'
                """
            ).map { (try $0.string(0), try $0.double(1)) }
            #expect(expiries.count == count)
            try await Eventually.wait("runner a to lead again") { try await holders() == ["a": count] }
            for (name, expiry) in expiries {
                let gap = try await storeA.pool.query(
                    """
                    SELECT extract(epoch FROM acquired_at)::float8 - $2::text::float8 FROM leader_leases
                    WHERE name = $1 AND split_part(holder, ' ', 1) = 'a'
                    """, [.string(name), .string(String(expiry))]
                ).first?.double(0)
                let seconds = try #require(gap, "\(name) is a's again")
                #expect(seconds >= 0, "\(name) was taken \(-seconds) s before b's lease ran out")
                #expect(seconds < 10, "\(name) was taken \(seconds) s after b's lease ran out (lease \(lease))")
            }
            try await appendTenants(20)
            try await Eventually.wait("60 tenants applied, each once") { try await applied() == 60 }
            #expect(try await storeA.pool.query("SELECT count(*) FROM tenants").first?.int(0) == 60)
        }
    }

    /// Serves the API, the projections and a worker on `store`, and drives a tenant through them: its key, its
    /// three vendor secrets, a workflow, a batch of runs that all finish, and its event stream.
    static func driveFlow(
        store: EventStore, _ more: @escaping @Sendable () async throws -> Void
    ) async throws {
        let fake = try await FakeVendors.start(
            FakeVendorsConfiguration(),
            logger: Logger(label: "test.fake-vendors", factory: { _ in SwiftLogNoOpLogHandler() }))
        let masterKey = SecretsHarness.newKey()
        var settings = APIHarness.settings()
        settings.port = 0
        settings.masterKey = masterKey
        let services = await APIServices.start(settings: settings, store: store, logger: APIHarness.logger)
        let runner = Task {
            await ProjectionRunner(
                store: store, projections: ProductProjections.all, options: ProjectionRunner.Options.forTests
            )
            .run()
        }
        let caller = VendorCaller(endpoints: .fake(fake.baseURL), timeout: .seconds(5))
        let worker = Worker(
            store: store, masterKey: masterKey, caller: caller,
            configuration: WorkerConfiguration(
                workerID: "pooled-worker", slots: 16, lease: .seconds(60), pollInterval: .milliseconds(20),
                backoff: .init(base: .milliseconds(50), cap: .seconds(2))),
            logger: Logger(label: "test.worker"))
        let working = Task { await worker.run() }
        let background = Task { await services.run() }
        defer {
            runner.cancel()
            background.cancel()
            working.cancel()
        }
        do {
            // The live client gives up on a request after 20 s: the first command's wait for its projection must
            // not include the runner's start on a loaded machine.
            try await Eventually.wait("every projection to start") {
                try await store.pool.query("SELECT count(*) FROM projection_checkpoints").first?.int(0)
                    == ProductProjections.all.count
            }
            try await buildApplication(services: services, logger: APIHarness.logger).test(.live) { client in
                let port = try #require(client.port)
                let (_, key, _) = try await client.tenantWithKey("pooled")
                for vendor in ["prospeo", "findymail", "zerobounce"] {
                    let stored = try await client.call(
                        .put, "/v1/vendor-secrets/\(vendor)", token: key,
                        json: #"{"apiKey":"live-\#(vendor)-key-0001"}"#)
                    #expect(stored.status == .created || stored.status == .ok, "\(stored.text)")
                }
                let workflow = try await client.workflow(key)
                let opened = SSE.Opened()
                let stream = Task {
                    try await SSE.read(port: port, path: "/v1/events", token: key, count: 2, opened: opened)
                }
                try await Eventually.wait("the tenant's event stream to open") { opened.isOpen }
                let inputs = (0..<8).map { #"{"fullName":"Person \#($0)","domain":"acme.com"}"# }.joined(separator: ",")
                let batch = try await client.call(
                    .post, "/v1/runs", token: key, json: #"{"workflowId":"\#(workflow)","inputs":[\#(inputs)]}"#)
                #expect(batch.status == .accepted || batch.status == .created, "\(batch.text)")
                let runs = (batch["runs"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
                #expect(runs.count == 8)
                let live = try await stream.value
                #expect(live.map(\.event) == ["RunStarted", "StepScheduled"], "\(live)")
                for run in runs {
                    try await Eventually.wait("run \(run) to succeed") {
                        try await client.call(.get, "/v1/runs/\(run)", token: key).string("status") == "succeeded"
                    }
                }
                try await more()
            }
        } catch {
            working.cancel()
            await working.value
            try? await caller.shutdown()
            await fake.stop()
            throw error
        }
        working.cancel()
        await working.value
        try await caller.shutdown()
        await fake.stop()
    }
}

extension TestDatabase {
    /// The single count `sql` returns, read on a connection of its own to `url`.
    static func count(_ url: String, _ sql: String) async throws -> Int {
        let connection = try await PostgresConnection.connect(PostgresConfiguration(url: url))
        defer { connection.close() }
        return try await connection.query(sql).first?.int(0) ?? -1
    }
}

@Suite("Its own schema in a shared database", .timeLimit(.minutes(5)))
struct SchemaTests {
    /// Every relation of `schema` with its rows, as text, to compare before and after.
    static func contents(_ connection: PostgresConnection, schema: String) async throws -> [String] {
        let tables = try await connection.query(
            "SELECT relname FROM pg_class WHERE relnamespace = $1::regnamespace AND relkind = 'r' ORDER BY 1",
            [.string(schema)])
        var contents: [String] = []
        for table in tables {
            let name = try table.string(0)
            let rows = try await connection.query("SELECT t::text FROM \(schema).\(name) t ORDER BY 1")
            contents.append(name + ": " + (try rows.map { try $0.string(0) }).joined(separator: "; "))
        }
        return contents
    }

    @Test(
        "beside another application's public.tenants, public.events and public.api_keys: migrate and run, theirs untouched"
    )
    func besideAnotherApplication() async throws {
        let (name, url) = try await TestDatabase.create(migrated: false)
        defer { Task { await TestDatabase.drop(name) } }
        let theirs = try await PostgresConnection.connect(PostgresConfiguration(url: url))
        defer { theirs.close() }
        try await theirs.execute(
            """
            SET search_path = public;
            CREATE TABLE public.tenants (id serial PRIMARY KEY, name text NOT NULL);
            CREATE TABLE public.events (id bigserial PRIMARY KEY, kind text, at timestamptz DEFAULT '2026-01-01');
            CREATE TABLE public.api_keys (key text PRIMARY KEY, tenant int REFERENCES public.tenants);
            INSERT INTO public.tenants (name) VALUES ('theirs'), ('also theirs');
            INSERT INTO public.events (kind) VALUES ('signup'), ('login');
            INSERT INTO public.api_keys VALUES ('their-key', 1);
            """)
        let before = try await Self.contents(theirs, schema: "public")
        let objectsBefore = try await theirs.query(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        ).first?.int(0)

        try await Migrator(databaseURL: url, migrations: Migration.product).migrate()
        let store = EventStore(
            configuration: .init(databaseURL: url, maxConnections: 4, pollInterval: .milliseconds(50)))
        defer { store.close() }
        let tenant = UUID()
        try await store.append(
            [try Fixtures.tenantCreated(tenant, name: "Ours")], to: .tenant(tenant), tenantID: tenant,
            expected: .noStream)
        let runner = Task {
            await ProjectionRunner(
                store: store, projections: ProductProjections.all, options: ProjectionRunner.Options.forTests
            ).run()
        }
        defer { runner.cancel() }
        try await Eventually.wait("our tenant in tally.tenants") {
            try await store.pool.query("SELECT count(*) FROM tally.tenants WHERE tenant_id = $1", [.uuid(tenant)])
                .first?.int(0) == 1
        }
        #expect(try await store.read(stream: .tenant(tenant)).count == 1)
        // Theirs: the same rows, and not one object more in public.
        #expect(try await Self.contents(theirs, schema: "public") == before)
        #expect(
            try await theirs.query("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace").first?
                .int(0)
                == objectsBefore)
        #expect(
            try await theirs.query("SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace").first?
                .int(0)
                == 0)
    }

    @Test(
        "a database an earlier Tally migrated in public is refused with the command that moves it; the move keeps every row"
    )
    func movedFromPublic() async throws {
        try await TestDatabase.withStore { store, url in
            let tenant = UUID()
            try await store.append(
                [try Fixtures.tenantCreated(tenant)], to: .tenant(tenant), tenantID: tenant, expected: .noStream)
            let connection = try await PostgresConnection.connect(PostgresConfiguration(url: url))
            defer { connection.close() }
            // What an earlier Tally left: everything in public, migrations 1 to 9 recorded there.
            try await connection.execute(
                """
                DO $$ DECLARE r record; BEGIN
                    FOR r IN SELECT c.relname, c.relkind FROM pg_class c
                             WHERE c.relnamespace = 'tally'::regnamespace AND c.relkind IN ('r', 'v', 'S')
                               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))
                    LOOP
                        EXECUTE format('ALTER %s tally.%I SET SCHEMA public',
                                       CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, r.relname);
                    END LOOP;
                    FOR r IN SELECT p.oid::regprocedure AS signature FROM pg_proc p WHERE p.pronamespace = 'tally'::regnamespace
                    LOOP
                        EXECUTE format('ALTER FUNCTION %s SET SCHEMA public', r.signature);
                    END LOOP;
                END $$;
                DELETE FROM public.schema_migrations WHERE version >= 10;
                DROP TABLE public.leader_leases;
                DROP TABLE public.rate_budgets;
                DROP FUNCTION public.claim_rate_budgets;
                DROP TABLE public.quota_grants;
                DROP FUNCTION public.claim_quota;
                DROP FUNCTION public.return_quota;
                DROP SCHEMA tally;
                """)
            let legacy = try await SchemaTests.contents(connection, schema: "public")
            await #expect {
                try await Migrator(databaseURL: url, migrations: Migration.product).migrate()
            } throws: { error in
                "\(error)".contains("tally migrate --move-from-public")
            }
            #expect(
                try await connection.query("SELECT to_regnamespace('tally') IS NULL").first?.bool(0) == true,
                "nothing created")

            let moved = try await Migrator(databaseURL: url, migrations: Migration.product).moveFromPublic(
                tables: ProductProjections.all.flatMap { $0.tables.map(\.name) })
            #expect(
                moved.contains("events") && moved.contains("work_queue") && moved.contains("tally_append_conflict()"),
                "\(moved)")
            #expect(
                try await Migrator(databaseURL: url, migrations: Migration.product).migrate().map(\.version)
                    == Array(10...Migration.product.count))
            #expect(
                try await Migrator(databaseURL: url, migrations: Migration.product).status().allSatisfy {
                    $0.state == .applied
                })
            #expect(try await SchemaTests.contents(connection, schema: "public").isEmpty)
            #expect(
                try await connection.query("SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace")
                    .first?.int(0)
                    == 0)
            var movedContents = try await SchemaTests.contents(connection, schema: "tally")
            movedContents.removeAll {
                $0.hasPrefix("schema_migrations") || $0.hasPrefix("leader_leases") || $0.hasPrefix("rate_budgets")
                    || $0.hasPrefix("quota_grants")
            }
            #expect(movedContents == legacy.filter { !$0.hasPrefix("schema_migrations") })
            // The moved log takes appends and reads as before.
            let second = UUID()
            try await store.append(
                [try Fixtures.tenantCreated(second)], to: .tenant(second), tenantID: second, expected: .noStream)
            #expect(try await store.read(stream: .tenant(tenant)).count == 1)
            #expect(try await store.read(stream: .tenant(second)).count == 1)
        }
    }
}
