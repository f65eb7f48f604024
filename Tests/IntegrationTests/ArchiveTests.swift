import API
import Foundation
import Projections
import Synthetic
import TestSupport
import Testing

@testable import Events

/// `tally log export`, `verify` and `import`: a restore drill into another cluster, re-import, conflicts,
/// damaged archives and a tenant moving between databases with its sealed secrets.
@Suite("Archives: the log leaves and comes back", .timeLimit(.minutes(5)))
struct ArchiveTests {
    /// A history of four tenants (one erased) covering every event type, appended to `store`.
    static func history(_ store: EventStore, seed: UInt64) async throws {
        var history = SyntheticHistory(seed: seed)
        var appends: [StreamAppend] = []
        for index in 0..<4 { appends += try history.tenant(runs: 12, erased: index == 3) }
        #expect(Set(appends.flatMap { $0.events.map(\.type) }) == Set(store.catalog.eventTypes))
        for chunk in stride(from: 0, to: appends.count, by: 40) {
            try await store.append(Array(appends[chunk..<min(chunk + 40, appends.count)]))
        }
    }

    /// A digest of every row of `table`, independent of physical order.
    static func digest(_ table: String, _ store: EventStore) async throws -> String {
        try await store.pool.query(
            "SELECT coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM \(table) t"
        )
        .first?.string(0) ?? ""
    }

    /// Every event's content (not its position), in stream order.
    static func logDigest(_ store: EventStore) async throws -> (count: Int64, digest: String) {
        let row = try await store.pool.query(
            """
            SELECT count(*), coalesce(md5(string_agg(
                concat_ws('|', event_id, tenant_id, stream_id, stream_version, event_type, schema_version, codec,
                          encode(payload, 'hex'), metadata::text, recorded_at), E'\\n' ORDER BY stream_id, stream_version)), '')
            FROM events
            """
        ).first
        return (try row?.int64(0) ?? 0, try row?.string(1) ?? "")
    }

    static func scratchFile(_ name: String) -> String {
        let scratch = ProcessInfo.processInfo.environment["TALLY_TEST_SCRATCH"] ?? NSTemporaryDirectory()
        return scratch + "/archive-\(UUID().uuidString.prefix(8).lowercased())-\(name)"
    }

    @Test(
        "restore drill: export, verify, import into another cluster, rebuild: every read model and the billing export are the same"
    )
    func drill() async throws {
        try await PrivateServer.with { server in
            try await server.run("start")
            let targetURL = server.url(database: "drill")
            try await TestDatabase.admin("CREATE DATABASE drill", url: server.url)
            try await Migrator(databaseURL: targetURL, migrations: Migration.product).migrate()
            let target = EventStore(configuration: .init(databaseURL: targetURL, maxConnections: 4))
            defer { target.close() }

            try await TestDatabase.withStore { source, sourceURL in
                try await Self.history(source, seed: 77)
                try await TestDatabase.settle(source)
                let file = Self.scratchFile("drill.tlog")
                defer { try? FileManager.default.removeItem(atPath: file) }

                let exported = try await CLI.run(["log", "export", "--out", file, "--database-url", sourceURL])
                #expect(exported.status == 0, "\(exported.stdout) \(exported.stderr)")
                let (count, digest) = try await Self.logDigest(source)
                #expect(exported.stdout.contains("exported \(count) events"), "\(exported.stdout)")
                let verified = try await CLI.run(["log", "verify", file])
                #expect(verified.status == 0, "\(verified.stderr)")
                #expect(verified.stdout.contains("is whole: \(count) events"), "\(verified.stdout)")

                let imported = try await CLI.run(["log", "import", file, "--database-url", targetURL])
                #expect(imported.status == 0, "\(imported.stdout) \(imported.stderr)")
                #expect(imported.stdout.contains("imported \(count) events"), "\(imported.stdout)")
                let copied = try await Self.logDigest(target)
                #expect(copied.count == count)
                #expect(
                    copied.digest == digest, "every event's id, stream, version, type, payload bytes, metadata and time"
                )
                // Each stream's versions keep their order in the target's feed.
                let inversions = try await target.pool.query(
                    """
                    SELECT count(*) FROM (SELECT tx_id, global_position, lag(tx_id) OVER w AS btx, lag(global_position) OVER w AS bgp
                                          FROM events WINDOW w AS (PARTITION BY stream_id ORDER BY stream_version)) o
                    WHERE (btx, bgp) > (tx_id, global_position)
                    """
                ).first?.int64(0)
                #expect(inversions == 0)

                // Importing the same archive again changes nothing.
                let again = try await CLI.run(["log", "import", file, "--database-url", targetURL])
                #expect(again.status == 0, "\(again.stderr)")
                #expect(again.stdout.contains("imported 0 events"), "\(again.stdout)")
                #expect(again.stdout.contains("\(count) were here already"), "\(again.stdout)")
                #expect(try await Self.logDigest(target).count == count)

                // The source's read models (as a running serve would hold them), the target's rebuilt from the
                // imported log, then rebuilt again with --verify: equal, so swapped.
                for arguments in [
                    ["--database-url", sourceURL], ["--database-url", targetURL],
                    ["--verify", "--database-url", targetURL],
                ] {
                    let rebuilt = try await CLI.run(["projections", "rebuild", "--all"] + arguments)
                    #expect(rebuilt.status == 0, "\(rebuilt.stdout) \(rebuilt.stderr)")
                    #expect(!rebuilt.stdout.contains("differ"), "\(rebuilt.stdout)")
                }
                for table in ProductProjections.all.flatMap({ $0.tables.map(\.name) }) {
                    let left = try await Self.digest(table, source)
                    #expect(left == (try await Self.digest(table, target)), "\(table) differs")
                }
                #expect(try await source.pool.query("SELECT count(*) FROM tenants").first?.int64(0) == 4)
                for period in ["2026-09", "2026-10"] {
                    let arguments = ["billing", "export", "--period", period, "--format", "csv"]
                    let left = try await CLI.run(arguments + ["--database-url", sourceURL])
                    let right = try await CLI.run(arguments + ["--database-url", targetURL])
                    #expect(left.status == 0, "\(left.stderr)")
                    #expect(left.stdout == right.stdout, "billing \(period) is byte-identical")
                    if period == "2026-09" {
                        #expect(left.stdout.split(separator: "\n").count > 1, "the period has lines")
                    }
                }
            }
        }
    }

    @Test(
        "the export's COPY transcoder writes the records ArchivedEvent writes, wherever the COPY's bytes are cut, and refuses a COPY cut short"
    )
    func transcoder() async throws {
        try await TestDatabase.withStore { store, _ in
            try await Self.history(store, seed: 11)
            final class Collected: @unchecked Sendable { var bytes: [UInt8] = [] }
            let collected = Collected()
            try await store.pool.withConnection { connection in
                try await connection.copyOut(
                    "COPY (SELECT \(ArchiveCopyTranscoder.columns) FROM tally.events ORDER BY tx_id, global_position) "
                        + "TO STDOUT (FORMAT binary)"
                ) { collected.bytes += $0 }
            }
            let copy = collected.bytes
            // What the event values themselves encode to, in the same order.
            var expected: [UInt8] = []
            var events = 0
            for row in try await store.pool.query(
                "SELECT \(ArchiveCopyTranscoder.columns) FROM events ORDER BY tx_id, global_position")
            {
                ArchivedEvent(
                    id: try row.uuid(0), tenantID: try row.optionalUUID(1), stream: try row.string(2),
                    streamVersion: try row.int64(3), type: try row.string(4),
                    schemaVersion: Int32(clamping: try row.int64(5)), codec: Int16(clamping: try row.int64(6)),
                    recordedAtMicroseconds: try row.unixMicroseconds(7),
                    sourcePosition: FeedPosition(transactionID: try row.uint64(8), globalPosition: try row.int64(9)),
                    metadataJSON: try row.jsonBytes(10), payload: try row.bytes(11)
                ).appendRecord(to: &expected)
                events += 1
            }
            var random = SeededRandom(seed: 3)
            for cut in [Int.max, 1, 7, 0] {
                var transcoder = ArchiveCopyTranscoder()
                var offset = 0
                while offset < copy.count {
                    let size = cut == 0 ? Int(random.next() % 300) + 1 : min(cut, copy.count - offset)
                    let end = min(copy.count, offset + size)
                    try copy[offset..<end].withUnsafeBufferPointer { try transcoder.consume($0) }
                    offset = end
                }
                try transcoder.finish()
                #expect(transcoder.records == expected, "cut every \(cut) bytes")
                #expect(transcoder.events == Int64(events))
            }
            var short = ArchiveCopyTranscoder()
            try copy.dropLast(40).withUnsafeBufferPointer { try short.consume($0) }
            #expect(throws: EventsError.self) { try short.finish() }
        }
    }

    @Test("a stream that holds other content in the target is refused whole; the other streams are imported")
    func conflict() async throws {
        try await TestDatabase.withStore { source, _ in
            let kept = UUID()
            let clashing = UUID()
            try await source.append(
                [try Fixtures.tenantCreated(kept, name: "Kept"), try Fixtures.runStarted(tenant: kept)].enumerated().map
                { index, event in
                    StreamAppend(
                        stream: index == 0 ? .tenant(kept) : .run(UUID()), tenantID: kept, expected: .noStream,
                        events: [event])
                })
            try await source.append(
                [try Fixtures.tenantCreated(clashing, name: "Source")], to: .tenant(clashing), tenantID: clashing,
                expected: .noStream)
            try await source.append(
                [try Fixtures.catalog.encode(TenantSuspended(tenantID: clashing, reason: "r", source: .operator))],
                to: .tenant(clashing),
                tenantID: clashing, expected: .exactly(1))
            try await TestDatabase.settle(source)
            let file = Self.scratchFile("conflict.tlog")
            defer { try? FileManager.default.removeItem(atPath: file) }
            _ = try await LogExporter(store: source).export(to: file, options: .init())

            try await TestDatabase.withStore { target, targetURL in
                // The target has the clashing tenant's stream with another first event.
                try await target.append(
                    [try Fixtures.tenantCreated(clashing, name: "Target")], to: .tenant(clashing), tenantID: clashing,
                    expected: .noStream)
                // And holds the id of the source's run event in a stream of its own.
                let run = try #require(
                    try await source.pool.query("SELECT stream_id, event_id FROM events WHERE stream_id LIKE 'run-%'")
                        .first)
                let runStream = try run.string(0)
                let elsewhere = UUID()
                try await target.append(
                    [try Fixtures.tenantCreated(elsewhere).withID(try run.uuid(1))], to: .tenant(elsewhere),
                    tenantID: elsewhere,
                    expected: .noStream)
                let before = try await target.read(stream: .tenant(clashing))
                let result = try await CLI.run(["log", "import", file, "--database-url", targetURL])
                #expect(result.status == 1)
                #expect(result.stderr.contains("refused stream tenant-\(clashing.lowercased)"), "\(result.stderr)")
                #expect(result.stderr.contains("refused stream \(runStream): event"), "\(result.stderr)")
                #expect(result.stderr.contains("nothing of it was written"))
                #expect(result.stdout.contains("imported 1 events"), "\(result.stdout)")
                #expect(try await target.version(of: StreamName(runStream)) == 0)
                let after = try await target.read(stream: .tenant(clashing))
                #expect(after.map(\.id) == before.map(\.id), "nothing of the refused stream was written")
                #expect(try await target.read(stream: .tenant(kept)).count == 1)
            }
        }
    }

    @Test("a truncated or damaged archive fails verify and import with where, and nothing is written")
    func damaged() async throws {
        try await TestDatabase.withStore { source, _ in
            try await Self.history(source, seed: 5)
            try await TestDatabase.settle(source)
            let file = Self.scratchFile("whole.tlog")
            defer { try? FileManager.default.removeItem(atPath: file) }
            let summary = try await LogExporter(store: source).export(to: file, options: .init())
            #expect(summary.trailer.events > 100)
            let bytes = try Data(contentsOf: URL(fileURLWithPath: file))

            let truncated = Self.scratchFile("truncated.tlog")
            let flipped = Self.scratchFile("flipped.tlog")
            let trailing = Self.scratchFile("trailing.tlog")
            defer { for path in [truncated, flipped, trailing] { try? FileManager.default.removeItem(atPath: path) } }
            try bytes.prefix(bytes.count * 2 / 3).write(to: URL(fileURLWithPath: truncated))
            var damaged = bytes
            damaged[bytes.count / 2] ^= 0x5a
            try damaged.write(to: URL(fileURLWithPath: flipped))
            try (bytes + Data([0x01])).write(to: URL(fileURLWithPath: trailing))

            try await TestDatabase.withStore { target, targetURL in
                for (path, says) in [(truncated, "truncated"), (flipped, "damaged"), (trailing, "after its LZ4 frame")]
                {
                    let verify = try await CLI.run(["log", "verify", path])
                    #expect(verify.status == 1, "\(path)")
                    #expect(verify.stderr.contains(says), "\(verify.stderr)")
                    #expect(verify.stderr.contains("events read"), "it says how far it got: \(verify.stderr)")
                    let imported = try await CLI.run(["log", "import", path, "--database-url", targetURL])
                    #expect(imported.status == 1)
                    #expect(imported.stderr.contains(says), "\(imported.stderr)")
                    #expect(try await Self.logDigest(target).count == 0, "nothing half-written")
                }
                #expect(try await CLI.run(["log", "verify", file]).status == 0)

                // Whole and hashed, but holding an event the log's constraints refuse (schema version 0).
                let refusedByLog = Self.scratchFile("version0.tlog")
                defer { try? FileManager.default.removeItem(atPath: refusedByLog) }
                let writer = try ArchiveWriter(path: refusedByLog)
                try writer.header(summary.header)
                let event = ArchivedEvent(
                    id: UUID(), tenantID: nil, stream: "flow-limits", streamVersion: 1, type: "FlowLimitsSet",
                    schemaVersion: 0,
                    codec: 1, recordedAtMicroseconds: 0,
                    sourcePosition: FeedPosition(transactionID: 1, globalPosition: 1),
                    metadataJSON: Array("{}".utf8), payload: Array("{}".utf8))
                try writer.events([event])
                _ = try writer.finish { digest in
                    ArchiveTrailer(
                        events: 1, streams: 1, tenantKeys: 0, firstPosition: "1/1", lastPosition: "1/1", sha256: digest)
                }
                let verify = try await CLI.run(["log", "verify", refusedByLog])
                #expect(verify.status == 1)
                #expect(verify.stderr.contains("no type, stream or schema version"), "\(verify.stderr)")
                let imported = try await CLI.run(["log", "import", refusedByLog, "--database-url", targetURL])
                #expect(imported.status == 1)
                #expect(try await Self.logDigest(target).count == 0, "nothing half-written")
            }
        }
    }

    @Test(
        "a tenant moves to a database with another master key: its sealed secrets open there, the source erases it, the others are untouched"
    )
    func tenantMove() async throws {
        let sourceKey = try MasterKey(hex: MasterKey.generateHex())
        let targetKey = try MasterKey(hex: MasterKey.generateHex())
        try await TestDatabase.withStore { source, sourceURL in
            let moving = UUID()
            let staying = UUID()
            for tenant in [moving, staying] {
                try await source.append(
                    [try Fixtures.tenantCreated(tenant)], to: .tenant(tenant), tenantID: tenant, expected: .noStream)
            }
            let vault = SecretVault(pool: source.pool, masterKey: sourceKey)
            let secret = try await vault.seal(
                Array("live-prospeo-secret".utf8), tenant: moving, vendor: .prospeo, secretVersion: 1)
            _ = try await vault.seal(Array("other".utf8), tenant: staying, vendor: .prospeo, secretVersion: 1)
            try await TestDatabase.settle(source)

            try await TestDatabase.withStore { target, targetURL in
                let resident = UUID()
                try await target.append(
                    [try Fixtures.tenantCreated(resident)], to: .tenant(resident), tenantID: resident,
                    expected: .noStream)
                let transfer = try await CLI.run(
                    ["secrets", "transfer-key"], environment: ["TALLY_MASTER_KEY": Sodium.hex(targetKey.bytes)])
                #expect(transfer.status == 0, "\(transfer.stderr)")
                let transferKey = transfer.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(transferKey == targetKey.transferKey.hex)

                let file = Self.scratchFile("move.tlog")
                defer { try? FileManager.default.removeItem(atPath: file) }
                let exported = try await CLI.run(
                    [
                        "log", "export", "--tenant", moving.lowercased, "--seal-keys-to", transferKey, "--out", file,
                        "--database-url", sourceURL,
                    ],
                    environment: ["TALLY_MASTER_KEY": Sodium.hex(sourceKey.bytes)])
                #expect(exported.status == 0, "\(exported.stderr)")
                #expect(
                    exported.stdout.contains("exported 1 events of 1 streams and 1 tenant keys"), "\(exported.stdout)")
                let archive = try String(decoding: Data(contentsOf: URL(fileURLWithPath: file)), as: UTF8.self)
                #expect(!archive.contains("live-prospeo-secret"))

                // Without the target's master key the sealed keys cannot be imported.
                let keyless = try await CLI.run(["log", "import", file, "--database-url", targetURL])
                #expect(keyless.status == 1)
                #expect(keyless.stderr.contains("TALLY_MASTER_KEY"), "\(keyless.stderr)")

                let imported = try await CLI.run(
                    ["log", "import", file, "--erase-source", sourceURL, "--database-url", targetURL],
                    environment: ["TALLY_MASTER_KEY": Sodium.hex(targetKey.bytes)])
                #expect(imported.status == 0, "\(imported.stdout) \(imported.stderr)")
                #expect(imported.stdout.contains("tenant keys: 1 imported"), "\(imported.stdout)")
                #expect(
                    imported.stdout.contains("erased tenant \(moving.lowercased) at the source"), "\(imported.stdout)")

                // The secret sealed at the source opens at the target, under the target's master key only.
                let opened = try await SecretVault(pool: target.pool, masterKey: targetKey).withPlaintext(
                    secret.sealed, tenant: moving, vendor: .prospeo, secretVersion: 1,
                    tenantKeyVersion: secret.tenantKeyVersion
                ) { Array($0) }
                #expect(opened == Array("live-prospeo-secret".utf8))
                await #expect(throws: EventsError.self) {
                    try await SecretVault(pool: target.pool, masterKey: sourceKey).withPlaintext(
                        secret.sealed, tenant: moving, vendor: .prospeo, secretVersion: 1,
                        tenantKeyVersion: secret.tenantKeyVersion
                    ) { _ in () }
                }
                #expect(
                    try await target.read(stream: .tenant(resident)).count == 1, "the target's own tenant is untouched")

                // At the source: the moved tenant is erased (its secrets no longer open), the other is untouched.
                #expect(
                    try await source.read(stream: .tenant(moving)).map(\.type) == ["TenantCreated", "TenantErased"])
                await #expect(throws: EventsError.self) {
                    try await vault.withPlaintext(
                        secret.sealed, tenant: moving, vendor: .prospeo, secretVersion: 1,
                        tenantKeyVersion: secret.tenantKeyVersion
                    ) { _ in () }
                }
                #expect(try await source.read(stream: .tenant(staying)).map(\.type) == ["TenantCreated"])
                let keys = try await source.pool.query(
                    "SELECT count(*) FROM tenant_keys WHERE tenant_id = $1 AND destroyed_at IS NULL", [.uuid(staying)])
                #expect(try keys.first?.int64(0) == 1)

                // The same archive again: nothing new, and the key already here is the same one.
                let again = try await CLI.run(
                    ["log", "import", file, "--database-url", targetURL],
                    environment: ["TALLY_MASTER_KEY": Sodium.hex(targetKey.bytes)])
                #expect(again.status == 0, "\(again.stderr)")
                #expect(again.stdout.contains("imported 0 events"))
                #expect(again.stdout.contains("1 here already"), "\(again.stdout)")
            }
        }
    }
}

/// A database restored or rewound under its log knows it: serve and work refuse it with the repair.
@Suite("Restores: a restored database knows it", .timeLimit(.minutes(5)))
struct RestoreTests {
    static func pgBinary(_ name: String) -> String {
        for directory in [
            "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin", "/usr/bin",
        ]
        where FileManager.default.isExecutableFile(atPath: directory + "/" + name) {
            return directory + "/" + name
        }
        return name
    }

    @Test(
        "restored from pg_dump into another cluster: serve refuses with the repair; after it, the read models equal the source's"
    )
    func dumpRestored() async throws {
        try await PrivateServer.with { server in
            try await server.run("start")
            // The roles a Tally database grants to exist cluster-wide: a first migration here creates them.
            for database in ["roles", "restored", "repaired"] {
                try await TestDatabase.admin("CREATE DATABASE \(database)", url: server.url)
            }
            try await Migrator(databaseURL: server.url(database: "roles"), migrations: Migration.product).migrate()

            try await TestDatabase.withStore { source, sourceURL in
                try await ArchiveTests.history(source, seed: 31)
                try await TestDatabase.settle(source)
                let rebuilt = try await CLI.run(["projections", "rebuild", "--all", "--database-url", sourceURL])
                #expect(rebuilt.status == 0, "\(rebuilt.stderr)")
                let dump = ArchiveTests.scratchFile("source.dump")
                let file = ArchiveTests.scratchFile("repair.tlog")
                defer { for path in [dump, file] { try? FileManager.default.removeItem(atPath: path) } }
                let dumped = try await Subprocess.run(
                    Self.pgBinary("pg_dump"), ["-Fc", "-f", dump, "--dbname", sourceURL],
                    environment: ProcessInfo.processInfo.environment)
                #expect(dumped.status == 0, "\(dumped.stderr)")
                let restored = try await Subprocess.run(
                    Self.pgBinary("pg_restore"),
                    ["--exit-on-error", "--dbname", server.url(database: "restored"), dump],
                    environment: ProcessInfo.processInfo.environment)
                #expect(restored.status == 0, "\(restored.stderr)")

                // This fresh cluster's transaction counter is behind the log's ids, and the anchor is the source's.
                let refused = try await CLI.run([
                    "serve", "--no-api", "--development", "--database-url", server.url(database: "restored"),
                ])
                #expect(refused.status == 1, "\(refused.stdout)")
                #expect(refused.stderr.contains("restored into another cluster"), "\(refused.stderr)")
                #expect(refused.stderr.contains("tally log import"), "the repair is named: \(refused.stderr)")
                let reanchor = try await CLI.run([
                    "log", "reanchor", "--database-url", server.url(database: "restored"),
                ])
                #expect(reanchor.status == 1, "re-anchoring alone would not fix it: \(reanchor.stdout)")

                // The repair: the log into a database of this cluster, with this cluster's transaction ids.
                let exported = try await CLI.run([
                    "log", "export", "--out", file, "--database-url", server.url(database: "restored"),
                ])
                #expect(exported.status == 0, "\(exported.stderr)")
                #expect(try await CLI.run(["migrate", "--database-url", server.url(database: "repaired")]).status == 0)
                let imported = try await CLI.run([
                    "log", "import", file, "--database-url", server.url(database: "repaired"),
                ])
                #expect(imported.status == 0, "\(imported.stderr)")
                let rebuiltHere = try await CLI.run([
                    "projections", "rebuild", "--all", "--database-url", server.url(database: "repaired"),
                ])
                #expect(rebuiltHere.status == 0, "\(rebuiltHere.stderr)")
                let repaired = EventStore(
                    configuration: .init(databaseURL: server.url(database: "repaired"), maxConnections: 2))
                defer { repaired.close() }
                #expect(try await repaired.restoreProblems(readers: try await ProductReaders.positions(repaired)) == [])
                for table in ProductProjections.all.flatMap({ $0.tables.map(\.name) }) {
                    let left = try await ArchiveTests.digest(table, source)
                    #expect(left == (try await ArchiveTests.digest(table, repaired)), "\(table) differs")
                }
            }
        }
    }

    @Test(
        "an anchor of another cluster is re-anchored; checkpoints beyond the log ask for a rebuild; each repair clears it"
    )
    func anchorAndCheckpoints() async throws {
        try await TestDatabase.withStore { store, url in
            try await ArchiveTests.history(store, seed: 3)
            try await TestDatabase.settle(store)
            #expect(try await store.restoreProblems(readers: try await ProductReaders.positions(store)) == [])
            _ = try await store.pool.query("UPDATE log_identity SET system_identifier = '1'")
            let problems = try await store.restoreProblems(readers: try await ProductReaders.positions(store))
            #expect(problems.count == 1)
            #expect(problems.first?.contains("tally log reanchor") == true, "\(problems)")
            let refused = try await CLI.run(["serve", "--no-api", "--development", "--database-url", url])
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("tally log reanchor"), "\(refused.stderr)")
            let reanchored = try await CLI.run(["log", "reanchor", "--database-url", url])
            #expect(reanchored.status == 0, "\(reanchored.stderr)")
            #expect(reanchored.stdout.contains("anchored in cluster"))
            #expect(try await store.restoreProblems(readers: try await ProductReaders.positions(store)) == [])

            let rebuilt = try await CLI.run(["projections", "rebuild", "tenants", "--database-url", url])
            #expect(rebuilt.status == 0, "\(rebuilt.stderr)")
            _ = try await store.pool.query(
                "UPDATE projection_checkpoints SET global_position = 1000000000 WHERE projection = 'tenants'")
            let ahead = try await store.restoreProblems(readers: try await ProductReaders.positions(store))
            #expect(ahead.count == 1)
            #expect(ahead.first?.contains("tally projections rebuild --all") == true, "\(ahead)")
            #expect(try await CLI.run(["log", "reanchor", "--database-url", url]).status == 1)
            #expect(try await CLI.run(["projections", "rebuild", "tenants", "--database-url", url]).status == 0)
            #expect(try await store.restoreProblems(readers: try await ProductReaders.positions(store)) == [])

            // The workers' checkpoint is theirs to read, and counts the same.
            _ = try await store.pool.query(
                """
                INSERT INTO worker_checkpoints (name, global_position) VALUES ('dispatcher', 1000000000)
                ON CONFLICT (name) DO UPDATE SET global_position = excluded.global_position
                """)
            #expect(try await ProductReaders.positions(store)["dispatcher"] == 1_000_000_000)
            let dispatcherAhead = try await store.restoreProblems(readers: try await ProductReaders.positions(store))
            #expect(dispatcherAhead.count == 1 && dispatcherAhead.first?.contains("dispatcher") == true)
        }
    }
}

extension EventData {
    fileprivate func withID(_ id: UUID) -> EventData {
        var copy = self
        copy.id = id
        return copy
    }
}
