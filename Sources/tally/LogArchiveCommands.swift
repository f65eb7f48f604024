import API
import ArgumentParser
import Events
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

extension Log {
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the log, or one tenant's part of it, to an LZ4 archive.",
            discussion: """
                The archive holds every event up to the newest one readers can see when the export begins, in
                feed order, exactly as stored (sealed secrets stay sealed), and the tenants' data keys: wrapped
                under this database's master key, or with --seal-keys-to sealed to another database's transfer
                key (tally secrets transfer-key there). Without --tenant it holds every stream, platform ones
                too. docs/operations.md, "Archives", has the format and the runbooks.
                Exit status: 0 written; 1 the database or the file failed; 64 bad arguments.
                """)

        @OptionGroup var database: DatabaseOptions

        @Option(help: "The archive to write (replaced if it exists).")
        var out: String

        @Option(help: "Only this tenant's events and keys (uuid).")
        var tenant: String?

        @Option(help: "Only events after this feed position (transaction/position, as checkpoints print).")
        var from: String?

        @Option(help: "Only events up to this feed position.")
        var to: String?

        @Option(
            help: "Seal the tenants' data keys to this transfer key (64 hex digits) instead of carrying them wrapped.")
        var sealKeysTo: String?

        func validate() throws {
            if let tenant, UUID(uuidString: tenant) == nil { throw ValidationError("--tenant must be a UUID") }
            if let from, FeedPosition(from) == nil {
                throw ValidationError("--from must be a feed position such as 812/40")
            }
            if let to, FeedPosition(to) == nil { throw ValidationError("--to must be a feed position such as 812/40") }
            if let sealKeysTo, (try? TransferPublicKey(hex: sealKeysTo)) == nil {
                throw ValidationError("--seal-keys-to must be 64 hex digits (tally secrets transfer-key prints them)")
            }
        }

        func run() async throws {
            let environment = ProcessEnvironment.values
            let masterKey = sealKeysTo == nil ? nil : try ServeSettings.checkMasterKey(environment)
            if sealKeysTo != nil, masterKey == nil {
                throw ValidationError(
                    "--seal-keys-to needs this database's master key: set TALLY_MASTER_KEY or TALLY_MASTER_KEY_FILE.")
            }
            let options = LogExporter.Options(
                tenant: tenant.flatMap(UUID.init(uuidString:)), after: from.flatMap(FeedPosition.init),
                upTo: to.flatMap(FeedPosition.init),
                sealKeysTo: try sealKeysTo.map(TransferPublicKey.init(hex:)), masterKey: masterKey)
            let store = try database.makeStore(applicationName: "tally-log-export", maxConnections: 2)
            defer { store.close() }
            let meter = ProgressReporter(interactive: isatty(STDERR_FILENO) == 1)
            let started = ContinuousClock.now
            do {
                let summary = try await LogExporter(store: store).export(to: out, options: options) { progress in
                    let span = Double(max(1, progress.end.globalPosition))
                    meter.show(
                        fraction: Double(progress.position.globalPosition) / span,
                        "exporting: \(progress.events) events, \(ByteCount(progress.compressedBytes)) written")
                }
                meter.finish()
                let seconds = max(0.001, (ContinuousClock.now - started).seconds)
                print(
                    "exported \(summary.trailer.events) events of \(summary.trailer.streams) streams and \(summary.trailer.tenantKeys) tenant keys "
                        + "up to \(summary.header.upTo) into \(out) (\(ByteCount(summary.fileBytes)), "
                        + "\(Int(Double(summary.trailer.events) / seconds)) events/s); sha256 \(summary.trailer.sha256)"
                )
            } catch {
                meter.finish()
                reportError(error)
                throw ExitCode(1)
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check an archive without a database: frames, checksums, counts, order and versions.",
            discussion: "Exit status: 0 the archive is whole; 1 it is not (the error says where).")

        @Argument(help: "The archive.")
        var file: String

        func run() async throws {
            do {
                let reader = try ArchiveReader(path: file)
                let meter = ProgressReporter(interactive: isatty(STDERR_FILENO) == 1)
                var events = 0
                while let record = try reader.next() {
                    if case .event = record {
                        events += 1
                        if events % 10_000 == 0 {
                            meter.show(
                                fraction: Double(reader.bytesRead) / Double(max(1, reader.fileBytes)),
                                "verifying: \(events) events")
                        }
                    }
                }
                meter.finish()
                let summary = try reader.summary()
                let scope = summary.header.tenant.map { "tenant \($0.lowercased)" } ?? "every stream"
                print(
                    "\(file) is whole: \(summary.trailer.events) events of \(summary.trailer.streams) streams (\(scope)), "
                        + "\(summary.trailer.tenantKeys) tenant keys, positions \(summary.trailer.firstPosition ?? "-") to "
                        + "\(summary.trailer.lastPosition ?? "-") of database \(summary.header.source.database) "
                        + "(system \(summary.header.source.systemIdentifier ?? "unknown")); sha256 \(summary.trailer.sha256)"
                )
            } catch {
                reportError(error)
                throw ExitCode(1)
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Append an archive's events to this database's log, with their own ids, streams and versions.",
            discussion: """
                The archive is verified whole first; nothing is written from a damaged one. Events already here
                are skipped (importing the same archive again changes nothing); a stream that holds other content
                here is refused and nothing of it is written (unless the conflict is an event id this database
                holds in another stream: then the stream's earlier events stay), while the other streams go on. Keys sealed to this
                database's transfer key need TALLY_MASTER_KEY. With --erase-source, once every event of a tenant
                archive is here, the tenant is erased at the source database (its data keys destroyed, then
                TenantErased appended), unless it changed there after the export.
                Exit status: 0 every event and key is here; 1 something was refused or failed (see the messages);
                64 bad arguments.
                """)

        @OptionGroup var database: DatabaseOptions

        @Argument(help: "The archive.")
        var file: String

        @Option(
            help: "After a complete import of a tenant archive, erase the tenant at this source database (libpq URL).")
        var eraseSource: String?

        func run() async throws {
            let masterKey = try ServeSettings.checkMasterKey(ProcessEnvironment.values)
            let store = try database.makeStore(applicationName: "tally-log-import", maxConnections: 2)
            defer { store.close() }
            let meter = ProgressReporter(interactive: isatty(STDERR_FILENO) == 1)
            let started = ContinuousClock.now
            let report: LogImporter.Report
            do {
                report = try await LogImporter(store: store, masterKey: masterKey).importArchive(from: file) {
                    progress in
                    meter.show(
                        fraction: Double(progress.events) / Double(max(1, progress.total)),
                        "importing: \(progress.events) of \(progress.total) events")
                }
                meter.finish()
            } catch {
                meter.finish()
                reportError(error)
                throw ExitCode(1)
            }
            let seconds = max(0.001, (ContinuousClock.now - started).seconds)
            print(
                "imported \(report.imported) events (\(Int(Double(report.imported) / seconds)) events/s), \(report.alreadyPresent) were here already; "
                    + "tenant keys: \(report.keysImported) imported, \(report.keysPresent) here already")
            for (stream, why) in report.refused.sorted(by: { $0.key < $1.key }) {
                FileHandle.standardError.write(
                    Data("refused stream \(stream): \(why); nothing of it was written\n".utf8))
            }
            for why in report.keysRefused {
                FileHandle.standardError.write(Data("refused \(why)\n".utf8))
            }
            guard report.isComplete else {
                if report.eventsOfRefusedStreams > 0 {
                    FileHandle.standardError.write(
                        Data("\(report.eventsOfRefusedStreams) events of refused streams were not written\n".utf8))
                }
                if eraseSource != nil {
                    FileHandle.standardError.write(Data("the source was not erased: the import is not complete\n".utf8))
                }
                throw ExitCode(1)
            }
            if let eraseSource, let summary = report.summary {
                do {
                    try await TenantEraser.eraseMoved(
                        summary: summary, file: file, sourceURL: eraseSource, schema: try database.resolvedSchema())
                } catch {
                    reportError(error)
                    throw ExitCode(1)
                }
            }
        }
    }
}

extension Log {
    struct Reanchor: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record this cluster as the log's after a restore from a dump, once the log fits it.",
            discussion: """
                serve and work refuse a database migrated in another cluster (restored from pg_dump) until this
                runs. It first checks that every transaction id in the log is below this cluster's and that no
                checkpoint stands beyond the log, and refuses (changing nothing) with the repair when not.
                Exit status: 0 anchored; 1 refused or the database failed.
                """)

        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let store = try database.makeStore(applicationName: "tally-log-reanchor", maxConnections: 1)
            defer { store.close() }
            do {
                print(try await store.reanchor(readers: try await ProductReaders.positions(store)))
            } catch {
                reportError(error)
                throw ExitCode(1)
            }
        }
    }
}

/// Erases a moved tenant at its source, by the same crypto-shredding as the operator API.
enum TenantEraser {
    static func eraseMoved(summary: ArchiveSummary, file: String, sourceURL: String, schema: DatabaseSchema)
        async throws
    {
        guard let tenant = summary.header.tenant else {
            throw EventsError(.invalidArgument, "--erase-source needs a tenant archive (tally log export --tenant)")
        }
        guard summary.header.after == nil else {
            throw EventsError(
                .invalidArgument, "--erase-source needs an archive of the tenant's whole history (no --from)")
        }
        // The tenant stream's version in the archive: the erasure appends only if nothing happened since.
        let reader = try ArchiveReader(path: file)
        var archived: [String: Int64] = [:]
        while let record = try reader.next() {
            if case .event(let event) = record { archived[event.stream] = event.streamVersion }
        }
        let source = EventStore(
            configuration: .init(
                databaseURL: sourceURL, maxConnections: 2, applicationName: "tally-log-erase", schema: schema))
        defer { source.close() }
        let changed = try await source.pool.query(
            """
            SELECT count(*) FROM streams s
            LEFT JOIN unnest($2::text[], $3::int8[]) AS a(stream_id, version) ON a.stream_id = s.stream_id
            WHERE s.tenant_id = $1 AND s.version IS DISTINCT FROM a.version
            """,
            [.uuid(tenant), .stringArray(Array(archived.keys)), .int64Array(archived.keys.map { archived[$0] ?? 0 })])
        guard try changed.first?.int64(0) == 0 else {
            throw EventsError(
                .conflict,
                "the tenant changed at the source after the export (or the archive is not the source's): export and import again; nothing was erased"
            )
        }
        let stream = StreamName.tenant(tenant)
        if try await source.read(stream: stream, from: 1, limit: 100_000).contains(where: {
            $0.type == TenantErased.eventType
        }) {
            print("tenant \(tenant.lowercased) is erased at the source already")
            return
        }
        let version = archived[stream.rawValue] ?? 0
        guard version > 0 else {
            throw EventsError(.invalidArgument, "the archive holds no tenant stream for \(tenant.lowercased)")
        }
        _ = try await SecretVault.destroyKeys(of: tenant, pool: source.pool)
        try await source.append(
            [
                try source.catalog.encode(
                    TenantErased(tenantID: tenant, reason: "moved to another database"),
                    metadata: .init(actor: "operator"))
            ],
            to: stream, tenantID: tenant, expected: .exactly(version))
        print(
            "erased tenant \(tenant.lowercased) at the source: its data keys are destroyed and TenantErased is appended"
        )
    }
}

/// Bytes for people: 1.2 MB.
struct ByteCount: CustomStringConvertible {
    let bytes: Int64
    init(_ bytes: Int64) { self.bytes = bytes }

    var description: String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1000, unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }
}
