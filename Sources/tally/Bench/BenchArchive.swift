import API
import ArgumentParser
import Events
import Foundation
import Projections
import Synthetic

extension Bench {
    struct Archive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export and import a generated history as an archive, against raw COPY of the same rows.",
            discussion: """
                Needs two databases it may write to: --database-url gets the history (generated unless
                --reuse-history), --import-database-url (empty) receives the import. In the same run it copies
                every event out of the table with COPY (binary, feed order) and into an identical table with COPY,
                the physical limits of each side, and compares the archive's size with the table's and with
                pg_dump -Fc of it (--pg-dump names the binary).
                """)

        @OptionGroup var database: DatabaseOptions

        @Option(help: "libpq URL of the empty database the archive is imported into.")
        var importDatabaseURL: String

        @Option(help: "Events to generate.")
        var events = 1_000_000

        @Option(
            help: "The pg_dump binary (the size of its -Fc dump of the events table is printed beside the archive's).")
        var pgDump: String?

        @Option(help: "Where the archive is written.")
        var out = NSTemporaryDirectory() + "/tally-bench.tlog"

        @Flag(help: "Use the history an earlier run left in the database.")
        var reuseHistory = false

        func run() async throws {
            let url = try database.resolvedURL()
            try await database.makeMigrator().migrate()
            try await Migrator(
                databaseURL: importDatabaseURL, schema: try database.resolvedSchema(), migrations: Migration.product
            ).migrate()
            let store = try database.makeStore(applicationName: "tally-bench", maxConnections: 4)
            defer { store.close() }
            let target = EventStore(
                configuration: .init(
                    databaseURL: importDatabaseURL, maxConnections: 4, applicationName: "tally-bench",
                    schema: try database.resolvedSchema()))
            defer { target.close() }
            let count = try await generateHistory(store: store, events: events, reuse: reuseHistory)
            guard try await target.pool.query("SELECT count(*) FROM events").first?.int64(0) == 0 else {
                throw ValidationError("--import-database-url must name a database with an empty log")
            }

            // The freshly appended rows' hint bits and visibility are set once, before either read is timed, so
            // that the first reader does not pay for them alone.
            let schema = try database.resolvedSchema().name
            try await store.pool.withConnection { try await $0.execute("VACUUM (ANALYZE) \"\(schema)\".events") }

            // Raw COPY out, kept in memory for the raw COPY in.
            let chunks = ChunkCollector()
            let rawOutStart = ContinuousClock.now
            try await store.pool.withConnection { connection in
                try await connection.copyOut(
                    "COPY (SELECT * FROM events ORDER BY tx_id, global_position) TO STDOUT (FORMAT binary)"
                ) {
                    chunks.add($0)
                }
            }
            let rawOut = (ContinuousClock.now - rawOutStart) / .seconds(1)
            let copied = chunks.all
            let copiedBytes = copied.reduce(0) { $0 + $1.count }
            print(
                String(
                    format: "raw COPY out (binary, feed order): %.2f s, %.0f ev/s, %.0f MB", rawOut,
                    Double(count) / rawOut,
                    Double(copiedBytes) / 1e6))

            try? FileManager.default.removeItem(atPath: out)
            let exportStart = ContinuousClock.now
            let summary = try await LogExporter(store: store).export(to: out, options: .init())
            let export = (ContinuousClock.now - exportStart) / .seconds(1)
            print(
                String(
                    format: "tally log export: %.2f s, %.0f ev/s, %.3fx raw COPY out", export,
                    Double(summary.trailer.events) / export,
                    rawOut / export))

            let verifyStart = ContinuousClock.now
            _ = try ArchiveReader(path: out).verify()
            let verify = (ContinuousClock.now - verifyStart) / .seconds(1)
            print(
                String(format: "tally log verify: %.2f s, %.0f ev/s", verify, Double(summary.trailer.events) / verify))

            // Raw COPY in, into a table like the log (its indexes and constraints, no triggers).
            let rawIn = try await target.pool.withConnection { connection in
                try await connection.execute(
                    "DROP TABLE IF EXISTS bench_raw_events; CREATE TABLE bench_raw_events (LIKE events INCLUDING ALL)")
                let start = ContinuousClock.now
                try await connection.copyIn("COPY bench_raw_events FROM STDIN (FORMAT binary)", chunks: copied)
                let seconds = (ContinuousClock.now - start) / .seconds(1)
                try await connection.execute("DROP TABLE bench_raw_events")
                return seconds
            }
            print(
                String(
                    format: "raw COPY in (binary, an identical table): %.2f s, %.0f ev/s", rawIn, Double(count) / rawIn)
            )

            let importStart = ContinuousClock.now
            let report = try await LogImporter(store: target, masterKey: nil).importArchive(from: out)
            let importSeconds = (ContinuousClock.now - importStart) / .seconds(1)
            print(
                String(
                    format: "tally log import (verify pass included): %.2f s, %.0f ev/s, %.3fx raw COPY in",
                    importSeconds,
                    Double(report.imported) / importSeconds, rawIn / importSeconds))

            let table = try await store.pool.query("SELECT pg_table_size('events'), pg_total_relation_size('events')")
                .first
            let heap = try table?.int64(0) ?? 0
            let total = try table?.int64(1) ?? 0
            var sizes = String(
                format: "archive: %.0f MB, %.3fx the table (%.0f MB without indexes), %.3fx with its indexes (%.0f MB)",
                Double(summary.fileBytes) / 1e6, Double(summary.fileBytes) / Double(max(1, heap)), Double(heap) / 1e6,
                Double(summary.fileBytes) / Double(max(1, total)), Double(total) / 1e6)
            if let pgDump {
                let dumpPath = out + ".dump"
                defer { try? FileManager.default.removeItem(atPath: dumpPath) }
                let process = Process()
                process.executableURL = URL(fileURLWithPath: pgDump)
                process.arguments = ["-Fc", "-t", "\(schema).events", "-f", dumpPath, "--dbname", url]
                let dumpStart = ContinuousClock.now
                try process.run()
                process.waitUntilExit()
                guard process.terminationStatus == 0 else {
                    throw ValidationError("\(pgDump) exited with status \(process.terminationStatus)")
                }
                let dumpSeconds = (ContinuousClock.now - dumpStart) / .seconds(1)
                let dumpBytes =
                    (try? FileManager.default.attributesOfItem(atPath: dumpPath)[.size] as? NSNumber)??.int64Value ?? 0
                sizes += String(
                    format: "; pg_dump -Fc of the table: %.0f MB in %.2f s (the archive is %.3fx its size)",
                    Double(dumpBytes) / 1e6,
                    dumpSeconds, Double(summary.fileBytes) / Double(max(1, dumpBytes)))
            }
            print(sizes)
            try? FileManager.default.removeItem(atPath: out)
        }
    }
}

/// Generates the benchmarks' synthetic history (tenants, keys, secrets, workflows, runs, usage, plan changes)
/// until the log holds `events`; with `reuse`, takes the history an earlier run left. Returns the count.
func generateHistory(store: EventStore, events: Int, reuse: Bool) async throws -> Int {
    let existing = Int(try await store.pool.query("SELECT count(*) FROM events").first?.int64(0) ?? 0)
    if reuse {
        guard existing > 0 else { throw ValidationError("--reuse-history needs a database that holds a history") }
        print("history: \(existing) events, reused")
        return existing
    }
    guard existing == 0 else {
        throw ValidationError("this benchmark needs an empty database; this one has \(existing) events")
    }
    var history = SyntheticHistory(seed: 1)
    var generated = 0
    var tenants = 0
    let start = ContinuousClock.now
    while generated < events {
        let appends = try history.tenant(runs: 40, erased: tenants % 100 == 99)
        generated += appends.reduce(0) { $0 + $1.events.count }
        tenants += 1
        try await store.append(appends)
    }
    let seconds = (ContinuousClock.now - start) / .seconds(1)
    try await store.pool.query("VACUUM ANALYZE events")
    print(
        String(
            format: "history: %d events, %d tenants, appended in %.1f s (%.0f ev/s)", generated, tenants, seconds,
            Double(generated) / seconds))
    return generated
}

/// Keeps COPY chunks from the connection's thread.
final class ChunkCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var chunks: [[UInt8]] = []
    func add(_ chunk: [UInt8]) { lock.withLock { chunks.append(chunk) } }
    var all: [[UInt8]] { lock.withLock { chunks } }
}
