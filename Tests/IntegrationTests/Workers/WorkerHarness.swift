import Commands
import Events
import FakeVendors
import Foundation
import Logging
import TestSupport
import Testing
import Workers

/// A migrated database, the fake vendor server over HTTP, and helpers to set up tenants, keys and runs the way
/// the API writes them, for the workers' tests.
struct WorkerHarness: Sendable {
    let store: EventStore
    let url: String
    let masterKey: MasterKey
    let masterKeyHex: String
    let fake: FakeVendors

    static func with(
        fake configuration: FakeVendorsConfiguration = .init(), _ body: @Sendable (WorkerHarness) async throws -> Void
    ) async throws {
        let fake = try await FakeVendors.start(
            configuration, logger: Logger(label: "test.fake-vendors", factory: { _ in SwiftLogNoOpLogHandler() }))
        do {
            try await TestDatabase.withStore(maxConnections: 24, pollInterval: .milliseconds(50)) { store, url in
                let hex = MasterKey.generateHex()
                let harness = WorkerHarness(
                    store: store, url: url, masterKey: try MasterKey(hex: hex), masterKeyHex: hex, fake: fake)
                try await body(harness)
            }
        } catch {
            await fake.stop()
            throw error
        }
        await fake.stop()
    }

    var vault: SecretVault { SecretVault(pool: store.pool, masterKey: masterKey) }

    /// A worker in this process, calling the fake vendors. The lease is long by default: a loaded 2-core
    /// machine held one step's call and commit past 10 s, and only the tests about leases want one to run out.
    /// It logs warnings and worse, so a failed test shows what the worker met.
    func worker(
        slots: Int = 32, lease: Duration = .seconds(60), callTimeout: Duration = .seconds(5),
        retryBase: Duration = .milliseconds(50),
        dispatch: Bool = true, id: String = "test-worker"
    ) -> (Worker, VendorCaller) {
        let caller = VendorCaller(endpoints: .fake(fake.baseURL), timeout: callTimeout)
        let worker = Worker(
            store: store, masterKey: masterKey, caller: caller,
            configuration: WorkerConfiguration(
                workerID: id, slots: slots, lease: lease, pollInterval: .milliseconds(20),
                backoff: .init(base: retryBase, cap: .seconds(2)),
                dispatch: dispatch),
            logger: {
                var logger = Logger(label: "test.worker.\(id)", factory: { StreamLogHandler.standardError(label: $0) })
                logger.logLevel = .warning
                return logger
            }())
        return (worker, caller)
    }

    /// Runs `body` while a worker works; stops it (gracefully) afterwards.
    func working<T: Sendable>(
        _ worker: (Worker, VendorCaller), _ body: @Sendable () async throws -> T
    ) async throws -> T {
        let task = Task { await worker.0.run() }
        do {
            let result = try await body()
            task.cancel()
            await task.value
            try await worker.1.shutdown()
            return result
        } catch {
            task.cancel()
            await task.value
            try? await worker.1.shutdown()
            throw error
        }
    }

    func tenant(name: String = "Acme") async throws -> UUID {
        let id = UUID()
        try await store.append(
            [
                try Fixtures.catalog.encode(
                    TenantCreated(tenantID: id, name: name, slug: "t-" + id.lowercased.prefix(8), plan: "pro"))
            ],
            to: .tenant(id), tenantID: id, expected: .noStream)
        return id
    }

    /// Stores a vendor key as the API does: sealed, then appended.
    @discardableResult
    func storeKey(_ key: String, tenant: UUID, vendor: Vendor) async throws -> String {
        let stream = StreamName.vendorSecret(tenant: tenant, vendor: vendor)
        let existing = try await store.read(stream: stream)
        let version =
            existing.compactMap { try? Fixtures.catalog.decode($0) as? VendorSecretSealed }.map(\.secretVersion).max()
            ?? 0
        let sealed = try await vault.seal(Array(key.utf8), tenant: tenant, vendor: vendor, secretVersion: version + 1)
        let event = VendorSecretSealed(
            tenantID: tenant, vendor: vendor, secretVersion: version + 1, tenantKeyVersion: sealed.tenantKeyVersion,
            sealed: Data(sealed.sealed),
            fingerprint: sealed.fingerprint)
        try await store.append(
            [try Fixtures.catalog.encode(event)], to: stream, tenantID: tenant,
            expected: existing.isEmpty ? .noStream : .exactly(Int64(existing.count)))
        return sealed.fingerprint
    }

    /// Keys for all three vendors.
    func storeKeys(tenant: UUID, prefix: String = "live") async throws {
        for vendor in Vendor.allCases {
            try await storeKey(
                "\(prefix)-\(vendor.rawValue)-\(tenant.lowercased.prefix(8))", tenant: tenant, vendor: vendor)
        }
    }

    static let waterfall = WorkflowDefinition(finders: [.prospeo, .findymail], validator: .zerobounce, maxAttempts: 3)

    /// Starts runs with the API's command (`Commands.runStarts`), appended 500 runs at a time.
    func startRuns(
        tenant: UUID, inputs: [PersonInput], definition: WorkflowDefinition = WorkerHarness.waterfall
    ) async throws -> [UUID] {
        let (ids, appends) = try Commands.runStarts(
            tenant: tenant, workflowID: UUID(), definition: definition, inputs: inputs, batchID: nil)
        for chunk in stride(from: 0, to: appends.count, by: 500) {
            try await store.append(Array(appends[chunk..<min(chunk + 500, appends.count)]))
        }
        return ids
    }

    func startRun(
        tenant: UUID, name: String = "Ada Lovelace", domain: String,
        definition: WorkflowDefinition = WorkerHarness.waterfall
    )
        async throws -> UUID
    {
        try await startRuns(
            tenant: tenant, inputs: [PersonInput(fullName: name, domain: domain)], definition: definition)[0]
    }

    /// The run's events, decoded, in order.
    func events(_ run: UUID) async throws -> [any DomainEvent] {
        try await store.read(stream: .run(run)).map { try Fixtures.catalog.decode($0) }
    }

    func finished(_ run: UUID) async throws -> RunFinished? {
        try await events(run).compactMap { $0 as? RunFinished }.first
    }

    /// Waits until every run has a RunFinished.
    func waitFinished(_ runs: [UUID], timeout: Duration = .seconds(120)) async throws {
        try await Eventually.wait("\(runs.count) runs to finish", timeout: timeout) {
            let rows = try await store.pool.query(
                "SELECT count(DISTINCT stream_id) FROM events WHERE stream_id = ANY($1) AND event_type = 'RunFinished'",
                [.stringArray(runs.map { "run-" + $0.lowercased })])
            return try rows.first?.int(0) == runs.count
        }
    }

    /// The event types of a run, in order.
    func types(_ run: UUID) async throws -> [String] {
        try await store.read(stream: .run(run)).map(\.type)
    }

    /// The run's events one per line, with their times and what tells claims and outcomes apart: the message of
    /// a failed expectation about a run's history.
    func history(_ run: UUID) async throws -> String {
        let start = try await store.read(stream: .run(run)).first?.recordedAt ?? Date()
        return try await store.read(stream: .run(run)).map { recorded in
            let offset = String(format: "+%.3fs", recorded.recordedAt.timeIntervalSince(start))
            let detail =
                switch try Fixtures.catalog.decode(recorded) {
                case let e as StepStarted:
                    " step \(e.step) attempt \(e.attempt) by \(e.workerID) token \(e.fencingToken)"
                case let e as StepFailed: " step \(e.step) attempt \(e.attempt) \(e.failure): \(e.reason)"
                case let e as StepScheduled: " step \(e.step) attempt \(e.attempt)"
                default: ""
                }
            return "\(recorded.streamVersion) \(recorded.type)\(detail) \(offset) at \(recorded.feedPosition)"
        }.joined(separator: "\n")
    }
}
