internal import CTallyPQ
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One libpq connection. Every libpq call runs on the connection's own thread, never on Swift's
/// cooperative pool; callers `await` the result.
///
/// A connection is used by one task at a time (the pool hands it out exclusively).
///
/// Every statement runs with `search_path` set to the configured schema alone. On a session of its own the
/// startup options set it (with the idle-in-transaction timeout) and parameterized statements are prepared
/// once and reused. Through a pooler in transaction mode nothing outlives a transaction: each transaction
/// sets both with `SET LOCAL` after its BEGIN, a statement outside one is sent in a pipeline behind a
/// `set_config(..., true)` that lasts until its Sync, and statements are unnamed (`PQsendQueryParams`).
package final class PostgresConnection: @unchecked Sendable {
    private let thread: BlockingThread
    // Only touched on `thread`.
    private let handle: OpaquePointer
    private var preparedStatements: [String: String] = [:]
    private let searchPath: String
    private let idleInTransactionTimeoutMilliseconds: Int

    private let brokenFlag = Atomic<Bool>(false)
    private let inTransactionFlag = Atomic<Bool>(false)
    private let closedFlag = Atomic<Bool>(false)

    /// The server's process id for this session (as in `pg_stat_activity.pid`). Through a pooler in
    /// transaction mode it is only the backend of the first transaction.
    package let backendPID: Int32

    /// False through a pooler in transaction mode: session state (settings, `LISTEN`, session locks,
    /// prepared statements) does not outlive a transaction.
    package let keepsSession: Bool

    private init(
        thread: BlockingThread, handle: OpaquePointer, keepsSession: Bool, configuration: PostgresConfiguration
    ) {
        self.thread = thread
        self.handle = handle
        self.backendPID = PQbackendPID(handle)
        self.keepsSession = keepsSession
        self.searchPath = configuration.schema.name
        self.idleInTransactionTimeoutMilliseconds = configuration.idleInTransactionTimeoutMilliseconds
    }

    deinit {
        if !closedFlag.load(ordering: .relaxed) {
            let handle = UncheckedPointer(handle)
            thread.submit { PQfinish(handle.pointer) }
            thread.stop()
        }
    }

    /// True once the connection failed in a way that makes it unusable; the pool then discards it.
    package var isBroken: Bool { brokenFlag.load(ordering: .acquiring) }

    /// True while a transaction is open (or failed and not yet rolled back).
    package var isInTransaction: Bool { inTransactionFlag.load(ordering: .acquiring) }

    /// Opens a connection; fails fast with `.unavailable` when the server cannot be reached.
    package static func connect(_ configuration: PostgresConfiguration) async throws -> PostgresConnection {
        let thread = BlockingThread(name: "tally-pq")
        do {
            let (handle, keepsSession) = try await thread.run { try Self.openSession(configuration) }
            return PostgresConnection(
                thread: thread, handle: handle.pointer, keepsSession: keepsSession, configuration: configuration)
        } catch {
            thread.stop()
            throw error
        }
    }

    /// Connects with the session options, unless the configuration says a transaction pooler is in between;
    /// a pooler that refuses the options (PgBouncer: "unsupported startup parameter") or drops them (its
    /// `ignore_startup_parameters`) is then connected to without them.
    private static func openSession(_ configuration: PostgresConfiguration) throws -> (UncheckedPointer, Bool) {
        if configuration.poolMode == .transaction {
            return (try open(configuration, options: nil), false)
        }
        let options =
            "-c search_path=\(configuration.schema.name)"
            + " -c idle_in_transaction_session_timeout=\(configuration.idleInTransactionTimeoutMilliseconds)"
        let handle: UncheckedPointer
        do {
            handle = try open(configuration, options: options)
        } catch let error as EventsError
            where configuration.poolMode == .automatic && error.message.contains("unsupported startup parameter")
        {
            return (try open(configuration, options: nil), false)
        }
        // The options reached a server session only if the server reports our search_path back.
        let result = PQexec(handle.pointer, "SELECT current_setting('search_path')")
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_TUPLES_OK, PQntuples(result) == 1 else {
            let message = String(cString: PQerrorMessage(handle.pointer))
            PQfinish(handle.pointer)
            throw EventsError(.unavailable, "cannot start a session: \(message)")
        }
        let reported = String(cString: PQgetvalue(result, 0, 0))
        if reported == configuration.schema.name { return (handle, true) }
        if configuration.poolMode == .session {
            PQfinish(handle.pointer)
            throw EventsError(
                .unavailable,
                "TALLY_POOL_MODE is session, but the server did not keep the session options (search_path is "
                    + "\(reported)); a pooler in transaction mode is in between: set TALLY_POOL_MODE=transaction")
        }
        return (handle, false)
    }

    private static func open(_ configuration: PostgresConfiguration, options: String?) throws -> UncheckedPointer {
        // Our defaults come first so that anything the URL says overrides them (libpq applies in order).
        var pairs: [(String, String)] = [
            ("application_name", configuration.applicationName),
            ("connect_timeout", String(configuration.connectTimeoutSeconds)),
        ]
        if let options { pairs.append(("options", options)) }
        pairs.append(("dbname", configuration.url))
        let keywords = pairs.map { strdup($0.0) }
        let values = pairs.map { strdup($0.1) }
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        var keywordPointers = keywords.map { UnsafePointer($0) } + [nil]
        var valuePointers = values.map { UnsafePointer($0) } + [nil]
        guard let handle = PQconnectdbParams(&keywordPointers, &valuePointers, 1) else {
            throw EventsError(.unavailable, "libpq could not allocate a connection")
        }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(handle)).trimmingCharacters(in: .whitespacesAndNewlines)
            PQfinish(handle)
            throw EventsError(.unavailable, "cannot connect to PostgreSQL: \(message)")
        }
        // Server NOTICEs ("relation already exists, skipping") would go to stderr; nothing here needs them.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
        return UncheckedPointer(handle)
    }

    /// A connection of its own for a leader (of a projection, of the dispatcher), named `applicationName` so
    /// that `pg_stat_activity` tells the leader from the standbys.
    ///
    /// On a session of its own the server is told to notice a dead client soon: every second during a
    /// statement (PostgreSQL 14 and later), and through keepalives and a user timeout within about 15 s when the
    /// host or network vanished (the OS default is over two hours; they do nothing on a Unix socket). So a killed
    /// leader's open transaction, and the checkpoint row lock it holds, ends about when its lease does. Through a
    /// transaction pooler these settings would stay on whichever server connection ran them, so none is sent.
    package static func connectLeaderSession(_ configuration: PostgresConfiguration, applicationName: String)
        async throws
        -> PostgresConnection
    {
        var configuration = configuration
        configuration.applicationName = applicationName
        let connection = try await connect(configuration)
        guard connection.keepsSession else { return connection }
        do {
            try await connection.execute(
                """
                SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3;
                SET tcp_user_timeout = 10000;
                SELECT set_config('client_connection_check_interval', '1000', false)
                WHERE current_setting('server_version_num')::int >= 140000
                """)
            return connection
        } catch {
            connection.close()
            throw error
        }
    }

    /// Closes the connection; pending calls finish first.
    package func close() {
        guard !closedFlag.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let handle = UncheckedPointer(handle)
        thread.submit { PQfinish(handle.pointer) }
        thread.stop()
    }

    /// Marks the connection unusable so the pool replaces it.
    package func markBroken() {
        brokenFlag.store(true, ordering: .releasing)
    }

    // MARK: - Statements

    /// Runs one parameterized statement and returns its rows: prepared once per connection on a session of
    /// its own, unnamed through a transaction pooler.
    @discardableResult
    package func query(_ sql: String, _ parameters: [PostgresValue] = []) async throws -> PostgresRows {
        try await onThread { connection in
            if connection.keepsSession { return try connection.executePrepared(sql, parameters) }
            if PQtransactionStatus(connection.handle) != PQTRANS_IDLE {
                return try connection.executeUnnamed(sql, parameters)
            }
            return try connection.executePipelined(sql, parameters)
        }
    }

    /// Runs SQL text without parameters; it may hold several statements (`BEGIN; SET ...; COMMIT`). Outside a
    /// transaction, through a transaction pooler, `SET LOCAL search_path` goes first in the same text (one
    /// implicit transaction), so the SQL must be a statement that may run in a transaction block.
    package func execute(_ sql: String) async throws {
        try await onThread { connection in
            let text =
                connection.keepsSession || PQtransactionStatus(connection.handle) != PQTRANS_IDLE
                ? sql : "\(connection.localSettings); \(sql)"
            try connection.executeText(text)
        }
    }

    private func executeText(_ sql: String) throws {
        let result = PQexec(handle, sql)
        defer { PQclear(result) }
        _ = try rows(from: result, parameters: [])
    }

    /// What a transaction sets for itself where the session cannot hold it.
    private var localSettings: String {
        "SET LOCAL search_path TO \(searchPath); "
            + "SET LOCAL idle_in_transaction_session_timeout = \(idleInTransactionTimeoutMilliseconds)"
    }

    private func executeUnnamed(_ sql: String, _ parameters: [PostgresValue]) throws -> PostgresRows {
        let types = parameters.map { Oid($0.oid) }
        return try withParameterArrays(parameters) { count, values, lengths, formats in
            let result = types.withUnsafeBufferPointer {
                PQexecParams(handle, sql, count, $0.baseAddress, values, lengths, formats, 1)
            }
            defer { PQclear(result) }
            return try rows(from: result, parameters: parameters)
        }
    }

    /// One round trip outside a transaction through a transaction pooler: `set_config('search_path', ...,
    /// true)` and the statement in one pipeline, which runs as one implicit transaction up to its Sync (so
    /// the pooler keeps one server connection for both, and the setting ends with it).
    private func executePipelined(_ sql: String, _ parameters: [PostgresValue]) throws -> PostgresRows {
        guard PQenterPipelineMode(handle) == 1 else { throw failure(nil, parameters: parameters) }
        defer { PQexitPipelineMode(handle) }
        let sent = try withParameterArrays([.string(searchPath)]) { count, values, lengths, formats in
            PQsendQueryParams(
                handle, "SELECT pg_catalog.set_config('search_path', $1, true)", count, nil, values, lengths, formats, 1
            )
        }
        guard sent == 1 else { throw failure(nil, parameters: parameters) }
        let types = parameters.map { Oid($0.oid) }
        let sentQuery = try withParameterArrays(parameters) { count, values, lengths, formats in
            types.withUnsafeBufferPointer {
                PQsendQueryParams(handle, sql, count, $0.baseAddress, values, lengths, formats, 1)
            }
        }
        guard sentQuery == 1, PQpipelineSync(handle) == 1 else { throw failure(nil, parameters: parameters) }
        // Results: the setting, NULL, the statement, NULL, then the Sync. Every one is read, whatever failed,
        // so that the connection leaves pipeline mode clean.
        var outcome: Result<PostgresRows, any Error>?
        var index = 0
        while true {
            guard let result = PQgetResult(handle) else {
                index += 1
                // Two NULLs end the two statements; a third, or a lost connection, means no Sync will come.
                if index > 2 || PQstatus(handle) != CONNECTION_OK {
                    markBroken()
                    break
                }
                continue
            }
            defer { PQclear(result) }
            let status = PQresultStatus(result)
            if status == PGRES_PIPELINE_SYNC { break }
            if status == PGRES_PIPELINE_ABORTED { continue }
            if index == 0 {
                if status != PGRES_TUPLES_OK { outcome = .failure(failure(result, parameters: [])) }
            } else if outcome == nil {
                outcome = Result { try rows(from: result, parameters: parameters) }
            }
            if PQstatus(handle) != CONNECTION_OK {
                markBroken()
                break
            }
        }
        guard let outcome else { throw failure(nil, parameters: parameters) }
        return try outcome.get()
    }

    private func onThread<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        guard !closedFlag.load(ordering: .acquiring) else {
            throw EventsError(.unavailable, "the connection is closed")
        }
        return try await thread.run { [self] in
            defer {
                self.inTransactionFlag.store(PQtransactionStatus(self.handle) != PQTRANS_IDLE, ordering: .releasing)
            }
            return try body(self)
        }
    }

    private func executePrepared(_ sql: String, _ parameters: [PostgresValue]) throws -> PostgresRows {
        var key = sql
        for parameter in parameters {
            key += ":\(parameter.oid)"
        }
        let name: String
        if let existing = preparedStatements[key] {
            name = existing
        } else {
            name = "tally_\(preparedStatements.count)"
            let types = parameters.map { Oid($0.oid) }
            let prepared = types.withUnsafeBufferPointer {
                PQprepare(handle, name, sql, Int32(types.count), $0.baseAddress)
            }
            defer { PQclear(prepared) }
            _ = try rows(from: prepared, parameters: parameters)
            preparedStatements[key] = name
        }
        return try withParameterArrays(parameters) { count, values, lengths, formats in
            let result = PQexecPrepared(handle, name, count, values, lengths, formats, 1)
            defer { PQclear(result) }
            return try rows(from: result, parameters: parameters)
        }
    }

    private func withParameterArrays<T>(
        _ parameters: [PostgresValue],
        _ body: (Int32, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) throws -> T
    ) throws -> T {
        // One buffer for every value, each followed by a NUL (text values must be C strings) so that an empty
        // value still has a non-NULL pointer (a NULL pointer means SQL NULL to libpq).
        var blob: [UInt8] = []
        blob.reserveCapacity(parameters.reduce(1) { $0 + ($1.bytes?.count ?? 0) + 1 })
        var offsets: [Int?] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        for parameter in parameters {
            if let bytes = parameter.bytes {
                offsets.append(blob.count)
                blob += bytes
                blob.append(0)
                lengths.append(Int32(bytes.count))
            } else {
                offsets.append(nil)
                lengths.append(0)
            }
            formats.append(parameter.format)
        }
        blob.append(0)
        return try blob.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!)
            let values: [UnsafePointer<CChar>?] = offsets.map { offset in
                offset.map { (base + $0).assumingMemoryBound(to: CChar.self) }
            }
            return try values.withUnsafeBufferPointer { values in
                try lengths.withUnsafeBufferPointer { lengths in
                    try formats.withUnsafeBufferPointer { formats in
                        try body(Int32(parameters.count), values.baseAddress, lengths.baseAddress, formats.baseAddress)
                    }
                }
            }
        }
    }

    private func rows(from result: OpaquePointer?, parameters: [PostgresValue]) throws -> PostgresRows {
        guard let result else {
            throw failure(nil, parameters: parameters)
        }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY, PGRES_COPY_IN, PGRES_COPY_OUT:
            return PostgresRows(columns: [], storage: [], cells: [], affectedRows: affectedRows(result))
        case PGRES_TUPLES_OK, PGRES_SINGLE_TUPLE:
            break
        default:
            throw failure(result, parameters: parameters)
        }
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        var columns: [PostgresRows.Column] = []
        columns.reserveCapacity(columnCount)
        for column in 0..<columnCount {
            columns.append(
                .init(
                    name: String(cString: PQfname(result, Int32(column))), oid: UInt32(PQftype(result, Int32(column)))))
        }
        var storage: [UInt8] = []
        var cells: [Range<Int>?] = []
        cells.reserveCapacity(rowCount * columnCount)
        for row in 0..<Int32(rowCount) {
            for column in 0..<Int32(columnCount) {
                if PQgetisnull(result, row, column) != 0 {
                    cells.append(nil)
                    continue
                }
                let length = Int(PQgetlength(result, row, column))
                let start = storage.count
                if length > 0, let value = PQgetvalue(result, row, column) {
                    value.withMemoryRebound(to: UInt8.self, capacity: length) {
                        storage.append(contentsOf: UnsafeBufferPointer(start: $0, count: length))
                    }
                }
                cells.append(start..<storage.count)
            }
        }
        return PostgresRows(columns: columns, storage: storage, cells: cells, affectedRows: affectedRows(result))
    }

    private func affectedRows(_ result: OpaquePointer) -> Int {
        guard let text = PQcmdTuples(result) else { return 0 }
        return Int(String(cString: text)) ?? 0
    }

    /// Turns libpq's failure into an `EventsError`, redacting any parameter value the server quoted back.
    private func failure(_ result: OpaquePointer?, parameters: [PostgresValue]) -> EventsError {
        func field(_ code: UInt8) -> String? {
            guard let result, let value = PQresultErrorField(result, Int32(code)) else { return nil }
            return String(cString: value)
        }
        let redactor = Redactor(parameters)
        let sqlState = field(UInt8(ascii: "C"))
        let primary = redactor.redact(field(UInt8(ascii: "M")) ?? String(cString: PQerrorMessage(handle)))
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let detail = [field(UInt8(ascii: "D")), field(UInt8(ascii: "H"))].compactMap { $0 }.map(redactor.redact)
        let detailText = detail.isEmpty ? nil : detail.joined(separator: " | ")

        if PQstatus(handle) != CONNECTION_OK {
            markBroken()
            return EventsError(
                .unavailable, "the connection to PostgreSQL was lost: \(primary)", sqlState: sqlState,
                detail: detailText)
        }
        switch sqlState {
        case "TL409":
            let info = field(UInt8(ascii: "D")).flatMap(ConflictDetail.parse)
            return EventsError(
                .conflict,
                "stream \(info?.stream ?? "?") is at version \(info?.actual ?? -1), not the expected version",
                sqlState: sqlState, stream: info?.stream, actualVersion: info?.actual)
        case "TL405":
            return EventsError(.appendOnly, primary, sqlState: sqlState)
        case "40001", "40P01":
            let order = field(UInt8(ascii: "D")).flatMap { detail -> String? in
                detail.hasPrefix("tally.stream_order|") ? String(detail.dropFirst("tally.stream_order|".count)) : nil
            }
            return EventsError(.serializationFailure, primary, sqlState: sqlState, stream: order, detail: detailText)
        case let state? where state.hasPrefix("08") || state == "57P01" || state == "57P02" || state == "57P03":
            markBroken()
            return EventsError(.unavailable, primary, sqlState: sqlState, detail: detailText)
        default:
            return EventsError(
                .query, primary, sqlState: sqlState, constraint: field(UInt8(ascii: "n")), detail: detailText)
        }
    }

    /// Runs `body` in a transaction on this connection: `begin` (BEGIN, with any `SET LOCAL` after it), then
    /// COMMIT when `body` returns, ROLLBACK when it throws.
    package func withTransaction<T: Sendable>(
        begin: String = "BEGIN", _ body: () async throws -> T
    ) async throws -> T {
        try await onThread { connection in
            try connection.executeText(connection.keepsSession ? begin : "\(begin); \(connection.localSettings)")
        }
        do {
            let result = try await body()
            try await execute("COMMIT")
            return result
        } catch {
            if !isBroken { try? await execute("ROLLBACK") }
            throw error
        }
    }

    // MARK: - COPY

    /// Streams `data` into `COPY ... FROM STDIN` and returns the number of rows copied.
    @discardableResult
    package func copyIn(_ sql: String, chunks: [[UInt8]]) async throws -> Int {
        try await onThread { connection in
            let handle = connection.handle
            let start = PQexec(handle, sql)
            defer { PQclear(start) }
            guard PQresultStatus(start) == PGRES_COPY_IN else {
                _ = try connection.rows(from: start, parameters: [])
                throw EventsError(.invalidArgument, "statement is not a COPY FROM STDIN")
            }
            var sendFailed = false
            for chunk in chunks where !chunk.isEmpty {
                let sent = chunk.withUnsafeBufferPointer { buffer in
                    buffer.withMemoryRebound(to: CChar.self) { PQputCopyData(handle, $0.baseAddress, Int32($0.count)) }
                }
                if sent != 1 {
                    sendFailed = true
                    break
                }
            }
            _ = PQputCopyEnd(handle, sendFailed ? "client failed to send data" : nil)
            var copied = 0
            var firstError: EventsError?
            while let result = PQgetResult(handle) {
                defer { PQclear(result) }
                do {
                    copied += try connection.rows(from: result, parameters: []).affectedRows
                } catch let error as EventsError {
                    firstError = firstError ?? error
                }
            }
            if let firstError { throw firstError }
            return copied
        }
    }

    /// Runs `COPY ... TO STDOUT`, handing each chunk (one row in text and CSV formats) to `consume`.
    package func copyOut(_ sql: String, _ consume: @escaping @Sendable ([UInt8]) throws -> Void) async throws {
        try await copyOutBuffers(sql) { try consume(Array($0)) }
    }

    /// Runs `COPY ... TO STDOUT`, handing each chunk as libpq received it to `consume`, on the connection's
    /// thread; the buffer is valid only during the call. A throwing `consume` is not called again, and the
    /// COPY is read to its end before its error is rethrown (the connection stays usable).
    package func copyOutBuffers(
        _ sql: String, _ consume: @escaping @Sendable (UnsafeBufferPointer<UInt8>) throws -> Void
    ) async throws {
        try await onThread { connection in
            let handle = connection.handle
            let start = PQexec(handle, sql)
            defer { PQclear(start) }
            guard PQresultStatus(start) == PGRES_COPY_OUT else {
                _ = try connection.rows(from: start, parameters: [])
                throw EventsError(.invalidArgument, "statement is not a COPY TO STDOUT")
            }
            var consumeError: (any Error)?
            while true {
                var buffer: UnsafeMutablePointer<CChar>?
                let length = PQgetCopyData(handle, &buffer, 0)
                if length > 0, let buffer {
                    if consumeError == nil {
                        do {
                            try buffer.withMemoryRebound(to: UInt8.self, capacity: Int(length)) {
                                try consume(UnsafeBufferPointer(start: $0, count: Int(length)))
                            }
                        } catch {
                            consumeError = error
                        }
                    }
                    PQfreemem(buffer)
                } else {
                    break
                }
            }
            var firstError: (any Error)?
            while let result = PQgetResult(handle) {
                defer { PQclear(result) }
                do { _ = try connection.rows(from: result, parameters: []) } catch { firstError = firstError ?? error }
            }
            if let error = consumeError ?? firstError { throw error }
        }
    }

    // MARK: - LISTEN / NOTIFY

    /// A notification received on a channel this session listens to.
    package struct Notification: Sendable {
        package let channel: String
        package let payload: String
        package let senderPID: Int32
    }

    /// Waits up to `timeoutMilliseconds` for notifications and returns those that arrived (maybe none).
    /// Throws `.unavailable` when the connection broke while waiting.
    package func waitForNotifications(timeoutMilliseconds: Int32) async throws -> [Notification] {
        try await onThread { connection in
            let handle = connection.handle
            var notifications = connection.drainNotifications()
            guard notifications.isEmpty else { return notifications }
            var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
            guard descriptor.fd >= 0 else {
                connection.markBroken()
                throw EventsError(.unavailable, "the listening connection has no socket")
            }
            let ready = poll(&descriptor, 1, timeoutMilliseconds)
            if ready > 0 {
                if PQconsumeInput(handle) == 0 || PQstatus(handle) != CONNECTION_OK {
                    connection.markBroken()
                    throw EventsError(.unavailable, "the listening connection was lost")
                }
                notifications = connection.drainNotifications()
            }
            return notifications
        }
    }

    private func drainNotifications() -> [Notification] {
        var notifications: [Notification] = []
        while let notify = PQnotifies(handle) {
            notifications.append(
                Notification(
                    channel: String(cString: notify.pointee.relname),
                    payload: String(cString: notify.pointee.extra),
                    senderPID: notify.pointee.be_pid))
            PQfreemem(notify)
        }
        return notifications
    }
}

/// Lets an `OpaquePointer` cross into the connection's thread; only that thread dereferences it.
private struct UncheckedPointer: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

/// The stream and actual version that `tally_append_conflict` reports in a conflict's DETAIL (`stream|actual`).
private enum ConflictDetail {
    static func parse(_ detail: String) -> (stream: String, actual: Int64)? {
        guard let bar = detail.lastIndex(of: "|"), let actual = Int64(detail[detail.index(after: bar)...]) else {
            return nil
        }
        return (String(detail[..<bar]), actual)
    }
}

/// Removes the text of a statement's parameter values from what the server says about it.
private struct Redactor {
    private var secrets: [String] = []

    init(_ parameters: [PostgresValue]) {
        for parameter in parameters {
            guard let bytes = parameter.bytes else { continue }
            switch parameter.oid {
            case 0, PostgresType.text, PostgresType.varchar, PostgresType.json:
                secrets.append(String(decoding: bytes, as: UTF8.self))
            case PostgresType.bytea:
                if let text = String(validating: bytes, as: UTF8.self) { secrets.append(text) }
            default:
                break
            }
        }
        secrets = secrets.filter { $0.count >= 4 }.sorted { $0.count > $1.count }
    }

    func redact(_ text: String) -> String {
        secrets.reduce(text) { $0.replacingOccurrences(of: $1, with: "[redacted]") }
    }
}
