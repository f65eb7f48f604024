import Foundation

/// One append: validated and encoded before any I/O, then one statement. Failures take a slow path that
/// tells an idempotent repeat (same event ids, same content: return the original result) from a conflict.
struct AppendCall: Sendable {
    /// One event as it will be stored.
    struct Row: Sendable {
        let streamIndex: Int
        let offset: Int64
        let id: UUID
        let type: String
        let schemaVersion: Int32
        let codec: PayloadCodec
        let payload: [UInt8]
        let metadata: [UInt8]
    }

    let appends: [StreamAppend]
    let rows: [Row]

    init(_ appends: [StreamAppend]) throws {
        guard !appends.isEmpty else { throw EventsError(.invalidArgument, "an append needs at least one stream") }
        var streams = Set<StreamName>()
        var ids = Set<UUID>()
        var rows: [Row] = []
        for (index, append) in appends.enumerated() {
            guard streams.insert(append.stream).inserted else {
                throw EventsError(.invalidArgument, "stream \(append.stream) appears twice in one append")
            }
            guard !append.events.isEmpty else {
                throw EventsError(.invalidArgument, "the append to \(append.stream) has no events")
            }
            if case .exactly(let version) = append.expected, version < 0 {
                throw EventsError(.invalidArgument, "an expected version cannot be negative")
            }
            for (offset, event) in append.events.enumerated() {
                guard ids.insert(event.id).inserted else {
                    throw EventsError(.invalidArgument, "event id \(event.id.lowercased) appears twice in one append")
                }
                guard !event.type.isEmpty, event.type.utf8.count <= 100, event.schemaVersion >= 1 else {
                    throw EventsError(
                        .invalidArgument, "an event needs a type (1-100 bytes) and a schema version of at least 1")
                }
                let (codec, payload) = PayloadCodec.encode(json: event.json)
                rows.append(
                    Row(
                        streamIndex: index, offset: Int64(offset + 1), id: event.id, type: event.type,
                        schemaVersion: Int32(event.schemaVersion), codec: codec, payload: payload,
                        metadata: event.metadata.json))
            }
        }
        self.appends = appends
        self.rows = rows
    }

    func run(on connection: PostgresConnection, canInspectAfterFailure: Bool) async throws -> [AppendResult] {
        do {
            guard appends.count == 1 else { return try await runMulti(on: connection) }
            if let results = try await runSingle(on: connection) { return results }
        } catch let error as EventsError
            where canInspectAfterFailure && (error.code == .conflict || error.constraint == "events_event_id_key")
        {
            // The statement failed as a whole; see whether these events were appended before.
            if let replay = try await replay(on: connection) { return replay }
            throw error
        }
        // A single-stream expectation failed: nothing was written.
        if let replay = try await replay(on: connection) { return replay }
        let stream = appends[0].stream
        let actual = try await connection.query(
            "SELECT version FROM streams WHERE stream_id = $1", [.string(stream.rawValue)])
        let version = try actual.first?.int64(0) ?? 0
        throw EventsError(
            .conflict, "stream \(stream) is at version \(version), not \(appends[0].expected)", sqlState: "TL409",
            stream: stream.rawValue, actualVersion: version)
    }

    /// One stream: returns nil when its expectation does not hold.
    private func runSingle(on connection: PostgresConnection) async throws -> [AppendResult]? {
        let append = appends[0]
        var parameters: [PostgresValue] = [
            .string(append.stream.rawValue), .uuid(append.tenantID), .int64(Int64(rows.count)),
            .int64(append.expected.databaseValue),
        ]
        let sql: String
        if rows.count == 1, let row = rows.first {
            sql = AppendStatement.single(append.expected)
            parameters += [
                .uuid(row.id), .string(row.type), .int32(row.schemaVersion), .int16(row.codec.tag), .bytes(row.payload),
                .jsonb(row.metadata),
            ]
        } else {
            sql = AppendStatement.batch(append.expected)
            parameters += eventArrays()
        }
        let result = try await connection.query(sql, parameters)
        guard !result.isEmpty else { return nil }
        var appended = AppendResult(stream: append.stream, streamVersion: 0, globalPositions: [], feedPositions: [])
        let inserted = try result.map {
            (version: try $0.int64(0), position: try $0.int64(1), transaction: try $0.uint64(2))
        }
        for row in inserted.sorted(by: { $0.version < $1.version }) {
            appended.add(version: row.version, position: row.position, transaction: row.transaction)
        }
        return [appended]
    }

    /// Several streams: a failed expectation raises (TL409), which rolls back every stream advanced.
    private func runMulti(on connection: PostgresConnection) async throws -> [AppendResult] {
        var parameters: [PostgresValue] = [
            .stringArray(appends.map(\.stream.rawValue)),
            .uuidArray(appends.map(\.tenantID)),
            .int64Array(appends.map(\.expected.databaseValue)),
            .int64Array(appends.map { Int64($0.events.count) }),
            .int32Array(rows.map { Int32($0.streamIndex + 1) }),
            .int64Array(rows.map(\.offset)),
        ]
        parameters += eventArrays()
        let result = try await connection.query(AppendStatement.multiStream, parameters)
        var index: [String: Int] = [:]
        for (position, append) in appends.enumerated() {
            index[append.stream.rawValue] = position
        }
        var results = appends.map {
            AppendResult(stream: $0.stream, streamVersion: 0, globalPositions: [], feedPositions: [])
        }
        for row in result {
            guard let stream = index[try row.string(0)] else { continue }
            try results[stream].add(version: row.int64(1), position: row.int64(2), transaction: row.uint64(3))
        }
        return results
    }

    private func eventArrays() -> [PostgresValue] {
        [
            .uuidArray(rows.map(\.id)), .stringArray(rows.map(\.type)), .int32Array(rows.map(\.schemaVersion)),
            .int16Array(rows.map(\.codec.tag)), .byteaArray(rows.map(\.payload)), .jsonbArray(rows.map(\.metadata)),
        ]
    }

    /// The original result when every event id is already in the log with the same stream and content; nil
    /// when none is; `.duplicateEventIDs` when some are, or with other content.
    private func replay(on connection: PostgresConnection) async throws -> [AppendResult]? {
        let stored = try await connection.query(
            """
            SELECT event_id, stream_id, event_type, schema_version, codec, payload, stream_version, global_position, tx_id
            FROM events WHERE event_id = ANY($1) ORDER BY global_position
            """, [.uuidArray(rows.map(\.id))])
        guard !stored.isEmpty else { return nil }
        let byID = Dictionary(uniqueKeysWithValues: rows.map { ($0.id, $0) })
        var results = appends.map {
            AppendResult(stream: $0.stream, streamVersion: 0, globalPositions: [], feedPositions: [])
        }
        for row in stored {
            guard let mine = byID[try row.uuid(0)],
                try row.string(1) == appends[mine.streamIndex].stream.rawValue, try row.string(2) == mine.type,
                try row.int64(3) == Int64(mine.schemaVersion), try row.int64(4) == Int64(mine.codec.tag),
                try row.bytes(5) == mine.payload
            else {
                throw EventsError(.duplicateEventIDs, "these event ids were already appended with different content")
            }
            try results[mine.streamIndex].add(version: row.int64(6), position: row.int64(7), transaction: row.uint64(8))
        }
        guard stored.count == rows.count else {
            throw EventsError(.duplicateEventIDs, "some of these event ids were already appended, the others not")
        }
        return results
    }
}

extension AppendResult {
    fileprivate mutating func add(version: Int64, position: Int64, transaction: UInt64) {
        streamVersion = max(streamVersion, version)
        globalPositions.append(position)
        feedPositions.append(FeedPosition(transactionID: transaction, globalPosition: position))
    }
}
