import Foundation

/// Appends an archive's events to this database's log (`tally log import`): each with its own id, stream,
/// version, type, schema version, codec, payload bytes, metadata and time, in the archive's order, with new
/// positions and transaction ids of this cluster.
///
/// The archive is verified whole first (nothing is written from a damaged one). Then, batch by batch, in one
/// transaction each: an event already here (same id, stream and version) is skipped, so importing the same
/// archive again changes nothing; a stream that holds other content here (another event at a version, the
/// event id elsewhere, another tenant, or a version gap) is refused, and since a stream's archived versions
/// only grow, every event of it that is compared comes before any that would be written: nothing of a refused
/// stream is written. (The one exception: an event id this database holds in another stream refuses its
/// stream from that event on; earlier batches may have written the stream's earlier events.) The other
/// streams go on.
public struct LogImporter: Sendable {
    /// How an import went.
    public struct Report: Sendable, Hashable {
        public var summary: ArchiveSummary?
        public var imported: Int64 = 0
        /// Events that were here already.
        public var alreadyPresent: Int64 = 0
        /// Streams refused, with why (the first reason); none of their events was written.
        public var refused: [String: String] = [:]
        public var eventsOfRefusedStreams: Int64 = 0
        public var keysImported = 0
        public var keysPresent = 0
        /// Keys refused, with why.
        public var keysRefused: [String] = []

        public var isComplete: Bool { refused.isEmpty && keysRefused.isEmpty }
    }

    /// How far an import is.
    public struct Progress: Sendable {
        public var events: Int64
        public var total: Int64
    }

    let store: EventStore
    let masterKey: MasterKey?
    public var batchSize = 5000

    /// `masterKey` opens keys sealed to this database's transfer key, and wraps them; not needed otherwise.
    public init(store: EventStore, masterKey: MasterKey?) {
        self.store = store
        self.masterKey = masterKey
    }

    public func importArchive(from path: String, progress: (Progress) -> Void = { _ in }) async throws -> Report {
        let summary = try ArchiveReader(path: path).verify()
        var report = Report(summary: summary)
        let reader = try ArchiveReader(path: path)
        var batch: [ArchivedEvent] = []
        var batchBytes = 0
        while let record = try reader.next() {
            switch record {
            case .header, .trailer: continue
            case .tenantKey(let key): try await importKey(key, into: &report)
            case .event(let event):
                batch.append(event)
                batchBytes += event.payload.count + event.metadataJSON.count
                if batch.count >= batchSize || batchBytes >= 16 << 20 {
                    try await importBatch(batch, into: &report)
                    progress(
                        Progress(
                            events: report.imported + report.alreadyPresent + report.eventsOfRefusedStreams,
                            total: summary.trailer.events))
                    batch.removeAll(keepingCapacity: true)
                    batchBytes = 0
                }
            }
        }
        if !batch.isEmpty {
            try await importBatch(batch, into: &report)
            progress(
                Progress(
                    events: report.imported + report.alreadyPresent + report.eventsOfRefusedStreams,
                    total: summary.trailer.events))
        }
        if report.imported > 0 { store.appended() }
        return report
    }

    // MARK: - Events

    private func importBatch(_ batch: [ArchivedEvent], into report: inout Report) async throws {
        let refusedBefore = report.refused
        func attempt(everyID: Bool) async throws -> Report {
            try await store.retryingSerializationFailures {
                try await store.asOperator { connection in
                    var decided = Report()
                    decided.refused = refusedBefore
                    let write = try await decide(batch, everyID: everyID, into: &decided, on: connection)
                    try await insert(write, on: connection)
                    return decided
                }
            }
        }
        let outcome: Report
        do {
            // Ids are looked up only for events of streams that exist here; an id elsewhere in this log trips
            // the unique constraint, and the batch is decided again looking up every id.
            outcome = try await attempt(everyID: false)
        } catch let error as EventsError where error.sqlState == "23505" {
            outcome = try await attempt(everyID: true)
        }
        report.imported += outcome.imported
        report.alreadyPresent += outcome.alreadyPresent
        report.eventsOfRefusedStreams += outcome.eventsOfRefusedStreams
        report.refused = outcome.refused
    }

    private struct Write {
        var events: [ArchivedEvent] = []
        /// Streams to advance: name, tenant, version here before the batch (0: new), version after.
        var streams: [(name: String, tenant: UUID?, from: Int64, to: Int64)] = []
    }

    private func decide(
        _ batch: [ArchivedEvent], everyID: Bool, into report: inout Report, on connection: PostgresConnection
    ) async throws -> Write {
        let names = Array(Set(batch.map(\.stream)))
        var here: [String: (version: Int64, tenant: UUID?)] = [:]
        for row in try await connection.query(
            "SELECT stream_id, version, tenant_id FROM streams WHERE stream_id = ANY($1) FOR UPDATE",
            [.stringArray(names)])
        {
            here[try row.string(0)] = (try row.int64(1), try row.optionalUUID(2))
        }
        var known: [UUID: (stream: String, version: Int64)] = [:]
        let lookedUp = everyID ? batch.map(\.id) : batch.filter { here[$0.stream] != nil }.map(\.id)
        if !lookedUp.isEmpty {
            for row in try await connection.query(
                "SELECT event_id, stream_id, stream_version FROM events WHERE event_id = ANY($1)",
                [.uuidArray(lookedUp)])
            {
                known[try row.uuid(0)] = (try row.string(1), try row.int64(2))
            }
        }
        var write = Write()
        var current: [String: Int64] = [:]
        func refuse(_ stream: String, _ why: String) {
            if report.refused[stream] == nil { report.refused[stream] = why }
        }
        for event in batch {
            if report.refused[event.stream] != nil {
                report.eventsOfRefusedStreams += 1
                continue
            }
            let existing = here[event.stream]
            let at = current[event.stream] ?? existing?.version ?? 0
            if let existing, existing.tenant != event.tenantID {
                refuse(event.stream, "the stream belongs to another tenant here")
            } else if let found = known[event.id] {
                if found.stream == event.stream, found.version == event.streamVersion {
                    report.alreadyPresent += 1
                    continue
                }
                refuse(
                    event.stream,
                    "event \(event.id.lowercased) is already here as version \(found.version) of \(found.stream)")
            } else if event.streamVersion <= at {
                refuse(event.stream, "version \(event.streamVersion) is another event here")
            } else if event.streamVersion != at + 1 {
                refuse(
                    event.stream, "the archive has version \(event.streamVersion); the stream is at version \(at) here")
            } else {
                current[event.stream] = event.streamVersion
                write.events.append(event)
                report.imported += 1
                continue
            }
            report.eventsOfRefusedStreams += 1
        }
        // A stream refused in this batch after some of its events were taken (an id held by another stream
        // here): none of its events of this batch are written.
        let taken = write.events.count
        write.events.removeAll { report.refused[$0.stream] != nil }
        report.imported -= Int64(taken - write.events.count)
        report.eventsOfRefusedStreams += Int64(taken - write.events.count)
        var seen = Set<String>()
        for event in write.events where seen.insert(event.stream).inserted {
            write.streams.append(
                (event.stream, event.tenantID, here[event.stream]?.version ?? 0, current[event.stream] ?? 0))
        }
        return write
    }

    private func insert(_ write: Write, on connection: PostgresConnection) async throws {
        guard !write.events.isEmpty else { return }
        let existing = write.streams.filter { $0.from > 0 }
        let fresh = write.streams.filter { $0.from == 0 }
        if !existing.isEmpty {
            let moved = try await connection.query(
                """
                UPDATE streams AS s SET version = i.to_version
                FROM unnest($1::text[], $2::int8[], $3::int8[]) AS i(stream_id, from_version, to_version)
                WHERE s.stream_id = i.stream_id AND s.version = i.from_version
                """,
                [
                    .stringArray(existing.map(\.name)), .int64Array(existing.map(\.from)),
                    .int64Array(existing.map(\.to)),
                ])
            guard moved.affectedRows == existing.count else {
                throw EventsError(.serializationFailure, "a stream moved during the import")
            }
        }
        if !fresh.isEmpty {
            let created = try await connection.query(
                """
                INSERT INTO streams (stream_id, tenant_id, version)
                SELECT * FROM unnest($1::text[], $2::uuid[], $3::int8[]) ON CONFLICT (stream_id) DO NOTHING
                """, [.stringArray(fresh.map(\.name)), .uuidArray(fresh.map(\.tenant)), .int64Array(fresh.map(\.to))])
            // Another writer created one of them meanwhile: decide again in a new transaction.
            guard created.affectedRows == fresh.count else {
                throw EventsError(.serializationFailure, "a stream was created during the import")
            }
        }
        let events = write.events
        _ = try await connection.query(
            """
            INSERT INTO events (tenant_id, stream_id, stream_version, event_id, event_type, schema_version, codec, payload,
                                metadata, recorded_at)
            SELECT t, s, v, id, ty, sv, c, p, m, r
            FROM unnest($1::uuid[], $2::text[], $3::int8[], $4::uuid[], $5::text[], $6::int4[], $7::int2[], $8::bytea[],
                        $9::jsonb[], $10::timestamptz[]) WITH ORDINALITY AS e(t, s, v, id, ty, sv, c, p, m, r, ord)
            ORDER BY ord
            """,
            [
                .uuidArray(events.map(\.tenantID)), .stringArray(events.map(\.stream)),
                .int64Array(events.map(\.streamVersion)),
                .uuidArray(events.map(\.id)), .stringArray(events.map(\.type)),
                .int32Array(events.map(\.schemaVersion)),
                .int16Array(events.map(\.codec)), .byteaArray(events.map(\.payload)),
                .jsonbArray(events.map(\.metadataJSON)),
                PostgresValue.array(
                    of: PostgresType.timestamptz,
                    events.map {
                        BigEndian.bytes($0.recordedAtMicroseconds - PostgresType.epochOffsetSeconds * 1_000_000)
                    }),
            ])
    }

    // MARK: - Tenant keys

    private func importKey(_ key: ArchivedTenantKey, into report: inout Report) async throws {
        let name = "tenant \(key.tenantID.lowercased) key version \(key.keyVersion)"
        guard let material = Data(base64Encoded: key.material) else {
            report.keysRefused.append("\(name): its material is not base64")
            return
        }
        var wrapped = Array(material)
        var masterKeyID = key.masterKeyID ?? ""
        var plain: [UInt8]?
        defer { if plain != nil { Sodium.memzero(&plain!) } }
        switch key.form {
        case .destroyed:
            wrapped = [UInt8](repeating: 0, count: Sodium.aeadKeyBytes + Sodium.aeadOverheadBytes)
        case .wrapped:
            break
        case .sealed:
            guard let masterKey else {
                throw EventsError(
                    .invalidArgument,
                    "the archive's tenant keys are sealed to a transfer key: set this database's TALLY_MASTER_KEY to import them"
                )
            }
            guard key.masterKeyID == masterKey.transferKey.id,
                let opened = masterKey.openTransferred(wrapped, tenant: key.tenantID, version: key.keyVersion)
            else {
                report.keysRefused.append(
                    "\(name): sealed to \(key.masterKeyID ?? "another key"), not this database's \(masterKey.transferKey.id)"
                )
                return
            }
            // Only `plain` holds the key from here (wiped on return); `opened` is not used again.
            plain = opened
            wrapped = SecretVault.wrap(plain!, tenant: key.tenantID, version: key.keyVersion, masterKey: masterKey)
            masterKeyID = masterKey.id
        }
        let destroyed = key.form == .destroyed
        let row = try await store.asOperator { connection in
            try await connection.query(
                """
                WITH added AS (
                    INSERT INTO tenant_keys (tenant_id, key_version, wrapped, master_key_id, created_at, destroyed_at)
                    VALUES ($1, $2, $3, $4, $5, CASE WHEN $6 THEN now() END)
                    ON CONFLICT (tenant_id, key_version) DO NOTHING RETURNING 1
                )
                SELECT (SELECT count(*) FROM added), k.wrapped, k.master_key_id, k.destroyed_at IS NOT NULL
                FROM (SELECT 1) AS one LEFT JOIN tenant_keys k ON k.tenant_id = $1 AND k.key_version = $2
                """,
                [
                    .uuid(key.tenantID), .int32(Int32(clamping: key.keyVersion)), .bytes(wrapped), .string(masterKeyID),
                    .timestamp(key.createdAt), .bool(destroyed),
                ]
            ).first
        }
        guard let row else { return }
        if try row.int64(0) == 1 {
            report.keysImported += 1
            return
        }
        // A key is here already: the same one, or a conflict.
        let hereDestroyed = try row.bool(3)
        let same: Bool
        if destroyed || hereDestroyed {
            same = destroyed == hereDestroyed
        } else if let plain, let masterKey, try row.string(2) == masterKey.id {
            var hereKey = try SecretVault.unwrap(
                try row.bytes(1), tenant: key.tenantID, version: key.keyVersion, masterKey: masterKey)
            defer { Sodium.memzero(&hereKey) }
            same = Sodium.constantTimeEquals(hereKey, plain)
        } else {
            same = try row.bytes(1) == Array(material) && row.string(2) == masterKeyID
        }
        if same {
            report.keysPresent += 1
        } else {
            report.keysRefused.append("\(name): another key is here")
        }
    }
}
