import ArgumentParser
import Events
import Foundation
import Projections

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure this machine: Tally against the physical limit of the same database.",
        subcommands: [Append.self, Rebuild.self, WorkersBench.self, Archive.self])

    struct Append: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Durable appends of ~300-byte events against raw INSERTs into an identical table.",
            discussion: """
                Needs a database it may write to (it migrates it and creates bench_raw_events). For each shape
                it alternates Tally and raw rounds and compares the totals, so that disk noise hits both alike.
                """)

        @OptionGroup var database: DatabaseOptions

        @Option(help: "Seconds per round.")
        var seconds: Double = 3

        @Option(help: "Rounds of each side per shape.")
        var rounds: Int = 3

        func run() async throws {
            try await database.makeMigrator().migrate()
            let store = try database.makeStore(applicationName: "tally-bench", maxConnections: 64)
            defer { store.close() }
            try await store.pool.query("DROP TABLE IF EXISTS bench_raw_events")
            try await store.pool.query("CREATE TABLE bench_raw_events (LIKE events INCLUDING ALL)")

            let payload = try benchPayload(catalog: store.catalog)
            print(
                "payload: \(payload.json.count) bytes of JSON; synchronous_commit on; \(rounds) x \(seconds) s per side"
            )
            print("shape".padding(toLength: 30, withPad: " ", startingAt: 0), "tally ev/s", "  raw ev/s", " ratio")
            let shapes: [(writers: Int, batch: Int)] = [(1, 1), (4, 1), (16, 1), (64, 1), (1, 100), (4, 100)]
            let raw = RawInsert(payload: payload)
            for shape in shapes {
                var tally = 0
                var rawCount = 0
                for round in 0..<rounds {
                    tally += try await measure(writers: shape.writers) { writer in
                        // Each writer appends to its own stream, expecting the version it last saw.
                        let stream = StreamName.run(UUID())
                        var version: ExpectedVersion = .noStream
                        return {
                            let events = (0..<shape.batch).map { _ in
                                var event = payload
                                event.id = UUID()
                                return event
                            }
                            let result = try await store.append(events, to: stream, tenantID: nil, expected: version)
                            version = .exactly(result.streamVersion)
                        }
                    }
                    rawCount += try await measure(writers: shape.writers) { _ in
                        // The same shape: one stream per writer, versions counting up.
                        let stream = "run-" + UUID().lowercased
                        var version: Int64 = 0
                        return {
                            try await raw.insert(store: store, stream: stream, from: version + 1, batch: shape.batch)
                            version += Int64(shape.batch)
                        }
                    }
                    _ = round
                }
                let duration = seconds * Double(rounds)
                let tallyRate = Double(tally * shape.batch) / duration
                let rawRate = Double(rawCount * shape.batch) / duration
                let name = "\(shape.batch)-event appends, \(shape.writers) writer\(shape.writers == 1 ? "" : "s")"
                print(
                    name.padding(toLength: 30, withPad: " ", startingAt: 0),
                    String(format: "%10.0f %10.0f %5.2fx", tallyRate, rawRate, rawRate > 0 ? tallyRate / rawRate : 0))
            }
        }

        /// Runs `writers` loops for `seconds`, each calling the operation its factory made; returns how many
        /// operations completed.
        private func measure(
            writers: Int, _ makeOperation: @escaping @Sendable (Int) -> () async throws -> Void
        ) async throws -> Int {
            let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
            return try await withThrowingTaskGroup(of: Int.self) { group in
                for writer in 0..<writers {
                    group.addTask {
                        let operation = makeOperation(writer)
                        var count = 0
                        while ContinuousClock.now < deadline {
                            try await operation()
                            count += 1
                        }
                        return count
                    }
                }
                return try await group.reduce(0, +)
            }
        }
    }
}

func benchPayload(catalog: EventCatalog) throws -> EventData {
    let event = StepFinished(
        runID: UUID(), step: 2, attempt: 1, vendor: .findymail, outcome: .found,
        email: "margaret.hamilton.\(String(repeating: "x", count: 80))@example-company-domain.com",
        validationStatus: "valid")
    return try catalog.encode(
        event, metadata: EventMetadata(correlationID: UUID(), actor: "worker:bench", requestID: "req-bench-0001"))
}

/// The physical limit: the same rows, INSERTed as they are into a table identical to `events`, with the SQL
/// and metadata prepared once, so that the client does no more per row than it must.
struct RawInsert: Sendable {
    let payload: EventData
    let metadata: String
    let sql: [Int: String]

    init(payload: EventData) {
        self.payload = payload
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        self.metadata = (try? String(decoding: encoder.encode(payload.metadata), as: UTF8.self)) ?? "{}"
        var sql: [Int: String] = [:]
        for batch in [1, 100] {
            let values = (0..<batch).map { index in
                "(" + (1...9).map { "$\(index * 9 + $0)" }.joined(separator: ",") + ")"
            }
            sql[batch] = """
                INSERT INTO bench_raw_events (tenant_id, stream_id, stream_version, event_id, event_type, schema_version,
                                              codec, payload, metadata) VALUES \(values.joined(separator: ","))
                """
        }
        self.sql = sql
    }

    func insert(store: EventStore, stream: String, from version: Int64, batch: Int) async throws {
        var parameters: [PostgresValue] = []
        parameters.reserveCapacity(batch * 9)
        for index in 0..<batch {
            parameters += [
                .uuid(nil), .string(stream), .int64(version + Int64(index)), .uuid(UUID()), .string(payload.type),
                .int32(Int32(payload.schemaVersion)), .int16(PayloadCodec.json.tag), .bytes(payload.json),
                .text(metadata),
            ]
        }
        try await store.pool.query(sql[batch]!, parameters)
    }
}

extension Bench {
    struct Rebuild: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rebuild every projection from a generated history, against the raw read speed of the log.",
            discussion: """
                Needs an empty database it may write to. Generates a realistic history (tenants, keys, vendor
                secrets, workflows, runs with their steps and billed calls, usage batches, plan changes), measures
                reading every event out of the table with COPY (the physical limit of the read side), then
                rebuilds all projections and reports log events per second of rebuild time.
                """)

        @OptionGroup var database: DatabaseOptions

        @Option(help: "Events to generate.")
        var events = 1_000_000

        @Option(help: "Events per rebuild transaction.")
        var batchSize = 5000

        @Option(help: "At most this many projections apply a page of the log at the same time (default: all).")
        var parallel: Int?

        @Flag(
            help:
                "Rebuild the history an earlier run left in the database instead of generating one (to compare changes on one history)."
        )
        var reuseHistory = false

        func run() async throws {
            try await database.makeMigrator().migrate()
            let store = try database.makeStore(applicationName: "tally-bench", maxConnections: 8)
            defer { store.close() }
            let generated = try await generateHistory(store: store, events: events, reuse: reuseHistory)

            let bytes = ByteCounter()
            let readStart = ContinuousClock.now
            try await store.pool.withConnection { connection in
                try await connection.copyOut(
                    "COPY (SELECT * FROM events ORDER BY tx_id, global_position) TO STDOUT (FORMAT binary)"
                ) { bytes.add($0.count) }
            }
            let readSeconds = (ContinuousClock.now - readStart) / .seconds(1)
            let rawRate = Double(generated) / readSeconds
            print(
                String(
                    format: "raw read (COPY of every event in feed order): %.1f s, %.0f ev/s, %.0f MB", readSeconds,
                    rawRate, Double(bytes.total) / 1e6))

            let rebuildStart = ContinuousClock.now
            var applied: Int64 = 0
            let rebuilder = ProjectionRebuilder(store: store, batchSize: batchSize)
            let projections = ProductProjections.all
            // One pass over the log for all of them: each projection's figure is when it was swapped in.
            for outcome in try await rebuilder.rebuild(projections, parallel: parallel ?? projections.count) {
                applied += outcome.eventsApplied
                print(
                    String(
                        format: "  %@: %lld events, swapped in after %.1f s", outcome.projection, outcome.eventsApplied,
                        outcome.seconds))
            }
            let rebuildSeconds = (ContinuousClock.now - rebuildStart) / .seconds(1)
            let rate = Double(generated) / rebuildSeconds
            print(
                "rebuild of all projections in one pass (\(parallel.map(String.init) ?? "all") applying at a time):",
                String(
                    format: "%.1f s, %.0f log events/s (%lld applications), %.3fx the raw read", rebuildSeconds, rate,
                    applied, rate / rawRate))
        }
    }
}

/// Counts COPY bytes from the connection's thread.
final class ByteCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add(_ bytes: Int) { lock.withLock { count += bytes } }
    var total: Int { lock.withLock { count } }
}
