import ArgumentParser
import Events
import Foundation
import Synchronization

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure this machine: Tally against the physical limit of the same database.",
        subcommands: [Append.self])

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
            let url = try database.resolvedURL()
            try await Migrator(databaseURL: url).migrate()
            let store = try database.makeStore(applicationName: "tally-bench", maxConnections: 64)
            defer { store.close() }
            try await store.pool.query("DROP TABLE IF EXISTS bench_raw_events")
            try await store.pool.query("CREATE TABLE bench_raw_events (LIKE events INCLUDING ALL)")

            let payload = try benchPayload(catalog: store.catalog)
            print("payload: \(payload.json.count) bytes of JSON; synchronous_commit on; \(rounds) x \(seconds) s per side")
            print("shape".padding(toLength: 30, withPad: " ", startingAt: 0), "tally ev/s", "  raw ev/s", " ratio")
            let shapes: [(writers: Int, batch: Int)] = [(1, 1), (4, 1), (16, 1), (64, 1), (1, 100), (4, 100)]
            for shape in shapes {
                var tally = 0
                var raw = 0
                for _ in 0..<rounds {
                    tally += try await measure(writers: shape.writers) { writer, sequence in
                        try await appendTally(store: store, payload: payload, writer: writer, sequence: sequence, batch: shape.batch)
                    }
                    raw += try await measure(writers: shape.writers) { _, _ in
                        try await insertRaw(store: store, payload: payload, batch: shape.batch)
                    }
                }
                let duration = seconds * Double(rounds)
                let tallyRate = Double(tally * shape.batch) / duration
                let rawRate = Double(raw * shape.batch) / duration
                let name = "\(shape.batch)-event appends, \(shape.writers) writer\(shape.writers == 1 ? "" : "s")"
                print(
                    name.padding(toLength: 30, withPad: " ", startingAt: 0),
                    String(format: "%10.0f %10.0f %5.2fx", tallyRate, rawRate, rawRate > 0 ? tallyRate / rawRate : 0))
            }
        }

        /// Runs `writers` loops of `operation` for `seconds`; returns how many operations completed.
        private func measure(
            writers: Int, _ operation: @escaping @Sendable (Int, Int) async throws -> Void
        ) async throws -> Int {
            let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
            return try await withThrowingTaskGroup(of: Int.self) { group in
                for writer in 0..<writers {
                    group.addTask {
                        var count = 0
                        while ContinuousClock.now < deadline {
                            try await operation(writer, count)
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

private let benchRun = UUID().lowercased.prefix(8)
private let streamVersions = Mutex<[Int: Int64]>([:])

private func benchPayload(catalog: EventCatalog) throws -> EventData {
    let event = StepFinished(
        runID: UUID(), step: 2, attempt: 1, vendor: .findymail, outcome: .found,
        email: "margaret.hamilton.\(String(repeating: "x", count: 80))@example-company-domain.com", validationStatus: "valid")
    return try catalog.encode(event, metadata: EventMetadata(correlationID: UUID(), actor: "worker:bench", requestID: "req-bench-0001"))
}

private func appendTally(store: EventStore, payload: EventData, writer: Int, sequence: Int, batch: Int) async throws {
    let stream = try StreamName("bench-\(benchRun)-w\(writer)")
    let expected = streamVersions.withLock { $0[writer] }.map { ExpectedVersion.exactly($0) } ?? .noStream
    let events = (0..<batch).map { _ in
        var event = payload
        event.id = UUID()
        return event
    }
    let result = try await store.append(events, to: stream, tenantID: nil, expected: expected)
    streamVersions.withLock { $0[writer] = result.streamVersion }
}

private func insertRaw(store: EventStore, payload: EventData, batch: Int) async throws {
    var values: [String] = []
    var parameters: [PostgresValue] = []
    let metadata = try JSONEncoder().encode(payload.metadata)
    let stream = "bench-raw-\(UUID().lowercased)"
    for index in 0..<batch {
        let base = parameters.count
        values.append("(" + (1...9).map { "$\(base + $0)" }.joined(separator: ",") + ")")
        parameters += [
            .uuid(nil), .string(stream), .int64(Int64(index + 1)), .uuid(UUID()), .string(payload.type),
            .int32(Int32(payload.schemaVersion)), .int16(PayloadCodec.json.tag), .bytes(payload.json),
            .text(String(decoding: metadata, as: UTF8.self)),
        ]
    }
    try await store.pool.query(
        """
        INSERT INTO bench_raw_events (tenant_id, stream_id, stream_version, event_id, event_type, schema_version, codec,
                                      payload, metadata) VALUES \(values.joined(separator: ","))
        """, parameters)
}
