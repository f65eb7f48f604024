import Synchronization

/// A bounded pool of PostgreSQL connections.
///
/// - At most `maxConnections` are open; a caller waits up to `acquireTimeout` for one, then gets `.timeout`.
/// - A connection that broke (server restart, network) is discarded on release, and so are the idle ones
///   opened before it, since they most likely broke the same way; new ones are opened on demand. So the pool
///   recovers by itself once the server is back, and while it is down calls fail fast with `.unavailable`.
package final class PostgresPool: Sendable {
    package struct Options: Sendable {
        package var maxConnections: Int
        package var acquireTimeout: Duration

        package init(maxConnections: Int = 16, acquireTimeout: Duration = .seconds(10)) {
            self.maxConnections = max(1, maxConnections)
            self.acquireTimeout = acquireTimeout
        }
    }

    private enum Grant {
        case connection(PostgresConnection)
        case openNew
    }

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Grant, any Error>
    }

    private struct State {
        var idle: [PostgresConnection] = []
        var open = 0
        var waiters: [Waiter] = []
        var nextWaiterID: UInt64 = 0
        var closed = false
        /// Connections handed out since the pool was made: one per query or transaction.
        var acquisitions: UInt64 = 0
    }

    package let configuration: PostgresConfiguration
    package let options: Options
    private let state = Mutex(State())

    package init(configuration: PostgresConfiguration, options: Options = Options()) {
        self.configuration = configuration
        self.options = options
    }

    /// Lends a connection to `body` and takes it back afterwards, whatever happens.
    package func withConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await acquire()
        do {
            let result = try await body(connection)
            release(connection)
            return result
        } catch {
            release(connection)
            throw error
        }
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    package func withTransaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await withConnection { connection in
            try await connection.withTransaction { try await body(connection) }
        }
    }

    /// Runs one statement on any free connection.
    @discardableResult
    package func query(_ sql: String, _ parameters: [PostgresValue] = []) async throws -> PostgresRows {
        try await withConnection { try await $0.query(sql, parameters) }
    }

    /// Closes every idle connection and fails waiters; connections in use close when they come back.
    package func close() {
        let (idle, waiters) = state.withLock { state in
            state.closed = true
            defer {
                state.open -= state.idle.count
                state.idle = []
                state.waiters = []
            }
            return (state.idle, state.waiters)
        }
        idle.forEach { $0.close() }
        waiters.forEach { $0.continuation.resume(throwing: EventsError(.poolClosed, "the connection pool is closed")) }
    }

    /// Open connections, idle ones and waiting callers, for metrics and status.
    /// How many times a connection was handed out (each query or transaction takes one): the benchmarks
    /// count database round trips per request with it.
    package var acquisitions: UInt64 { state.withLock { $0.acquisitions } }

    package var statistics: (open: Int, idle: Int, waiting: Int) {
        state.withLock { ($0.open, $0.idle.count, $0.waiters.count) }
    }

    private func acquire() async throws -> PostgresConnection {
        enum Step {
            case use(PostgresConnection)
            case open
            case wait(UInt64)
            case closed
        }
        let step: Step = state.withLock { state in
            if state.closed { return .closed }
            state.acquisitions &+= 1
            if let connection = state.idle.popLast() { return .use(connection) }
            if state.open < options.maxConnections {
                state.open += 1
                return .open
            }
            state.nextWaiterID += 1
            return .wait(state.nextWaiterID)
        }
        switch step {
        case .use(let connection):
            return connection
        case .open:
            return try await openCounted()
        case .closed:
            throw EventsError(.poolClosed, "the connection pool is closed")
        case .wait(let id):
            switch try await wait(id) {
            case .connection(let connection): return connection
            case .openNew: return try await openCounted()
            }
        }
    }

    /// Opens a connection for a slot already counted in `open`, giving the slot back on failure.
    private func openCounted() async throws -> PostgresConnection {
        do {
            return try await PostgresConnection.connect(configuration)
        } catch {
            freeSlot()
            throw error
        }
    }

    private func wait(_ id: UInt64) async throws -> Grant {
        let timeout = options.acquireTimeout
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Grant, any Error>) in
                state.withLock { $0.waiters.append(Waiter(id: id, continuation: continuation)) }
                Task {
                    try? await Task.sleep(for: timeout)
                    self.abandon(id, EventsError(.timeout, "no database connection became free within \(timeout)"))
                }
            }
        } onCancel: {
            abandon(id, CancellationError())
        }
    }

    private func abandon(_ id: UInt64, _ error: any Error) {
        let waiter = state.withLock { state -> Waiter? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index)
        }
        waiter?.continuation.resume(throwing: error)
    }

    /// A slot became free without a connection to hand over: let the oldest waiter open one.
    private func freeSlot() {
        let waiter = state.withLock { state -> Waiter? in
            if !state.closed, !state.waiters.isEmpty {
                return state.waiters.removeFirst()
            }
            state.open -= 1
            return nil
        }
        waiter?.continuation.resume(returning: .openNew)
    }

    private func release(_ connection: PostgresConnection) {
        // A connection left inside a transaction (a caller threw mid-way) is not safe to reuse.
        if connection.isInTransaction {
            connection.markBroken()
        }
        if connection.isBroken {
            let stale = state.withLock { state in
                defer { state.open -= state.idle.count; state.idle = [] }
                return state.idle
            }
            connection.close()
            stale.forEach { $0.close() }
            freeSlot()
            return
        }
        enum Outcome {
            case handOff(Waiter)
            case keep
            case close
        }
        let outcome = state.withLock { state -> Outcome in
            if state.closed {
                state.open -= 1
                return .close
            }
            if !state.waiters.isEmpty {
                return .handOff(state.waiters.removeFirst())
            }
            state.idle.append(connection)
            return .keep
        }
        switch outcome {
        case .handOff(let waiter): waiter.continuation.resume(returning: .connection(connection))
        case .close: connection.close()
        case .keep: break
        }
    }
}
