public import Foundation

/// Writes the log, or one tenant's part of it, to an archive (`tally log export`).
public struct LogExporter: Sendable {
    public struct Options: Sendable {
        /// Only this tenant's events and data keys; nil for every stream, platform ones too.
        public var tenant: UUID?
        /// Only events after this position.
        public var after: FeedPosition?
        /// Only events up to this position (never beyond what readers can see when the export begins).
        public var upTo: FeedPosition?
        /// Seal the tenants' data keys to this transfer key (another database's, `tally secrets transfer-key`)
        /// instead of carrying them wrapped under this database's master key; needs `masterKey`.
        public var sealKeysTo: TransferPublicKey?
        public var masterKey: MasterKey?

        public init(
            tenant: UUID? = nil, after: FeedPosition? = nil, upTo: FeedPosition? = nil,
            sealKeysTo: TransferPublicKey? = nil,
            masterKey: MasterKey? = nil
        ) {
            self.tenant = tenant
            self.after = after
            self.upTo = upTo
            self.sealKeysTo = sealKeysTo
            self.masterKey = masterKey
        }
    }

    /// How far an export is.
    public struct Progress: Sendable {
        public var events: Int64
        public var position: FeedPosition
        /// The position the export ends at.
        public var end: FeedPosition
        public var compressedBytes: Int64
    }

    let store: EventStore

    public init(store: EventStore) { self.store = store }

    /// Exports into `path` (replaced); calls `progress` after every megabyte of records (on the thread that
    /// reads the COPY). The events are those up to the newest one readers can see when the export begins, in
    /// feed order: a consistent cut of the log.
    public func export(
        to path: String, options: Options, progress: @escaping @Sendable (Progress) -> Void = { _ in }
    ) async throws
        -> ArchiveSummary
    {
        if options.sealKeysTo != nil, options.masterKey == nil {
            throw EventsError(
                .invalidArgument,
                "sealing the tenants' keys to a transfer key needs this database's master key (TALLY_MASTER_KEY)")
        }
        let head = try await endOfLog()
        let end = min(options.upTo ?? head, head)
        let writer = try ArchiveWriter(path: path)
        let header = ArchiveHeader(
            formatVersion: LogArchive.formatVersion, createdAt: Date(), source: try await source(),
            tenant: options.tenant,
            after: options.after?.description, upTo: end.description, catalog: store.catalog.schemaVersions)
        try writer.header(header)
        var keys: Int64 = 0
        for key in try await tenantKeys(options) {
            try writer.tenantKey(key)
            keys += 1
        }
        // One COPY of the rows in feed order, transcoded into records on the connection's thread as they
        // arrive (PostgreSQL produces the next rows meanwhile), hashed, compressed and written a megabyte at
        // a time.
        let sink = ExportSink(writer: writer, end: end, progress: progress)
        try await store.pool.withConnection { connection in
            try await connection.copyOutBuffers(
                copySQL(after: options.after ?? .start, upTo: end, tenant: options.tenant)
            ) {
                try sink.consume($0)
            }
        }
        let (events, streams, first, last) = try sink.finish()
        let trailer = try writer.finish { digest in
            ArchiveTrailer(
                events: events, streams: Int64(streams), tenantKeys: keys, firstPosition: first?.description,
                lastPosition: last?.description, sha256: digest)
        }
        return ArchiveSummary(header: header, trailer: trailer, fileBytes: writer.compressedBytes)
    }

    /// The newest event readers can see. In a database restored under a cluster whose transaction counter is
    /// behind the log's ids (what `restoreProblems(readers:)` reports, and what this export is the repair of), no
    /// horizon describes the log: there every committed event is taken.
    private func endOfLog() async throws -> FeedPosition {
        let newest = try await store.pool.query(
            """
            SELECT tx_id::text, global_position, tx_id >= pg_snapshot_xmax(pg_current_snapshot())
            FROM events ORDER BY tx_id DESC, global_position DESC LIMIT 1
            """
        ).first
        if let newest, try newest.bool(2), let transaction = UInt64(try newest.string(0)) {
            return FeedPosition(transactionID: transaction, globalPosition: try newest.int64(1))
        }
        return try await store.head()
    }

    /// The COPY of the events after `position` up to `end`, in feed order. Every one of them is below the
    /// horizon `head()` saw (committed, or never to exist), so a plain keyset read of one snapshot is the feed
    /// here. COPY takes no parameters: the positions are numbers and the tenant a UUID, and the schema is named
    /// (a pooled connection's `search_path` is not this session's to rely on).
    private func copySQL(after position: FeedPosition, upTo end: FeedPosition, tenant: UUID?) -> String {
        var sql = """
            COPY (SELECT \(ArchiveCopyTranscoder.columns) FROM "\(store.configuration.schema.name)".events
            WHERE (tx_id, global_position) > ('\(position.transactionID)'::xid8, \(position.globalPosition))
              AND (tx_id, global_position) <= ('\(end.transactionID)'::xid8, \(end.globalPosition))
            """
        if let tenant { sql += " AND tenant_id = '\(tenant.lowercased)'" }
        return sql + " ORDER BY tx_id, global_position) TO STDOUT (FORMAT binary)"
    }

    private func source() async throws -> ArchiveSource {
        let row = try await store.pool.query("SELECT current_database(), current_setting('server_version')").first
        // pg_control_system() is open to every role by default; a platform may have revoked it.
        let system = try? await store.pool.query("SELECT system_identifier::text FROM pg_control_system()").first?
            .string(0)
        return ArchiveSource(
            database: try row?.string(0) ?? "", systemIdentifier: system ?? nil, serverVersion: try row?.string(1) ?? ""
        )
    }

    private func tenantKeys(_ options: Options) async throws -> [ArchivedTenantKey] {
        var sql =
            "SELECT tenant_id, key_version, wrapped, master_key_id, created_at, destroyed_at IS NOT NULL FROM tenant_keys"
        var parameters: [PostgresValue] = []
        if let tenant = options.tenant {
            sql += " WHERE tenant_id = $1"
            parameters.append(.uuid(tenant))
        }
        sql += " ORDER BY tenant_id, key_version"
        return try await store.pool.query(sql, parameters).map { row in
            let tenant = try row.uuid(0)
            let version = try row.int(1)
            let wrapped = try row.bytes(2)
            let masterKeyID = try row.string(3)
            let createdAt = try row.date(4)
            if try row.bool(5) {
                return ArchivedTenantKey(
                    tenantID: tenant, keyVersion: version, form: .destroyed, masterKeyID: nil, material: "",
                    createdAt: createdAt)
            }
            guard let transfer = options.sealKeysTo, let masterKey = options.masterKey else {
                return ArchivedTenantKey(
                    tenantID: tenant, keyVersion: version, form: .wrapped, masterKeyID: masterKeyID,
                    material: Data(wrapped).base64EncodedString(), createdAt: createdAt)
            }
            guard masterKeyID == masterKey.id else {
                throw EventsError(
                    .secretUnopenable,
                    "tenant \(tenant.lowercased) key version \(version) is wrapped under master key \(masterKeyID), not this one (\(masterKey.id))"
                )
            }
            var plain = try SecretVault.unwrap(wrapped, tenant: tenant, version: version, masterKey: masterKey)
            defer { Sodium.memzero(&plain) }
            return ArchivedTenantKey(
                tenantID: tenant, keyVersion: version, form: .sealed, masterKeyID: transfer.id,
                material: Data(transfer.seal(plain, tenant: tenant, version: version)).base64EncodedString(),
                createdAt: createdAt)
        }
    }
}

/// The COPY's consumer: transcodes on the connection's thread, and writes what builds up. Used by that one
/// thread while the COPY runs, and by the exporter once it returned.
private final class ExportSink: @unchecked Sendable {
    private let writer: ArchiveWriter
    private let end: FeedPosition
    private let progress: @Sendable (LogExporter.Progress) -> Void
    private var transcoder = ArchiveCopyTranscoder()

    init(writer: ArchiveWriter, end: FeedPosition, progress: @escaping @Sendable (LogExporter.Progress) -> Void) {
        self.writer = writer
        self.end = end
        self.progress = progress
    }

    func consume(_ chunk: UnsafeBufferPointer<UInt8>) throws {
        try transcoder.consume(chunk)
        if transcoder.records.count >= ArchiveCopyTranscoder.flushBytes { try write() }
    }

    private func write() throws {
        guard !transcoder.records.isEmpty else { return }
        try writer.eventRecords(transcoder.records)
        transcoder.records.removeAll(keepingCapacity: true)
        progress(
            LogExporter.Progress(
                events: transcoder.events, position: transcoder.last ?? .start, end: end,
                compressedBytes: writer.compressedBytes))
    }

    /// Writes the rest; the counts, streams and positions of what was written.
    func finish() throws -> (events: Int64, streams: Int, first: FeedPosition?, last: FeedPosition?) {
        try transcoder.finish()
        try write()
        return (transcoder.events, transcoder.streams.count, transcoder.first, transcoder.last)
    }
}
