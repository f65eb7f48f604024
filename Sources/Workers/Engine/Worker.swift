public import Events
import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// Calls a vendor with a tenant's key (the production adapters, or anything that answers like them).
public protocol VendorCalling: Sendable {
    /// `key` is the plaintext vendor key, valid only during the call.
    func call(_ request: VendorRequest, key: UnsafeRawBufferPointer) async -> VendorCallResult
}

/// How one worker process works.
public struct WorkerConfiguration: Sendable {
    /// Names this process in StepStarted and in the leases (`host pid=…` by default).
    public var workerID: String
    /// Vendor calls this process has in flight at most.
    public var slots: Int
    /// How long a claim holds a step. A step whose worker died is claimed again once it runs out, so it must
    /// be longer than the vendor call's timeout.
    public var lease: Duration
    /// The longest a claimer waits between looks when nothing woke it.
    public var pollInterval: Duration
    public var backoff: Waterfall.Backoff
    /// Finished steps committed in one transaction at most.
    public var commitBatch: Int
    /// Take part in leading the dispatcher (follow the log into the queue).
    public var dispatch: Bool
    /// How long the dispatcher's lease in `leader_leases` lasts unrenewed (renewed every third of it).
    public var leaderLease: Duration

    public init(
        workerID: String = WorkerConfiguration.defaultWorkerID, slots: Int = 64, lease: Duration = .seconds(30),
        pollInterval: Duration = .milliseconds(50), backoff: Waterfall.Backoff = .init(), commitBatch: Int = 128,
        dispatch: Bool = true, leaderLease: Duration = .seconds(10)
    ) {
        self.leaderLease = leaderLease
        self.workerID = workerID
        self.slots = slots
        self.lease = lease
        self.pollInterval = pollInterval
        self.backoff = backoff
        self.commitBatch = commitBatch
        self.dispatch = dispatch
    }

    public static var defaultWorkerID: String {
        "\(ProcessInfo.processInfo.hostName) pid=\(ProcessInfo.processInfo.processIdentifier)"
    }
}

/// What a worker did so far.
public struct WorkerStats: Sendable, Hashable {
    public var claimed = 0
    public var committed = 0
    /// Outcomes dropped because another claim took the step over.
    public var fenced = 0
    /// Outcomes that could not be committed; their steps are claimed again when the lease runs out.
    public var deferred = 0
}

/// Claims due steps under flow control, calls the vendors with the tenants' keys, and commits each outcome
/// with its billing and the run's next step (docs/architecture.md, "Workers").
public final class Worker: Sendable {
    let queue: WorkQueue
    let vault: SecretVault
    let caller: any VendorCalling
    public let configuration: WorkerConfiguration
    let logger: Logger

    private struct State {
        var inFlight = 0
        /// Finished steps waiting to be committed, each with the instant its lease runs out.
        var finished: [(WorkQueue.Finished, leaseEnds: ContinuousClock.Instant)] = []
        var stopping = false
        var stats = WorkerStats()
    }

    private let state = Mutex(State())
    private let claimWake = ChangeSignal()
    private let commitWake = ChangeSignal()

    public init(
        store: EventStore, masterKey: MasterKey, caller: any VendorCalling, configuration: WorkerConfiguration,
        logger: Logger
    ) {
        self.queue = WorkQueue(store: store, backoff: configuration.backoff)
        self.vault = SecretVault(pool: store.pool, masterKey: masterKey)
        self.caller = caller
        self.configuration = configuration
        self.logger = logger
    }

    public var stats: WorkerStats { state.withLock { $0.stats } }

    /// Works until the calling task is cancelled or, in a `ServiceGroup`, until graceful shutdown; then stops
    /// claiming, lets the calls in flight finish and commits their outcomes before it returns.
    public func run() async {
        await cancelWhenGracefulShutdown {
            let engine = Task { await self.work() }
            await withTaskCancellationHandler {
                await engine.value
            } onCancel: {
                self.stop()
            }
        }
    }

    /// Asks `run()` to wind down.
    public func stop() {
        state.withLock { $0.stopping = true }
        claimWake.signal()
        commitWake.signal()
    }

    private var stopping: Bool { state.withLock { $0.stopping } }

    private func work() async {
        logger.info(
            "worker started", metadata: ["worker": "\(configuration.workerID)", "slots": "\(configuration.slots)"])
        await withTaskGroup(of: Void.self) { group in
            if configuration.dispatch {
                let dispatcher = Dispatcher(
                    queue: queue, logger: logger, pollInterval: .milliseconds(500),
                    leaseDuration: configuration.leaderLease, holder: configuration.workerID
                ) {
                    [claimWake] in claimWake.signal()
                }
                group.addTask { await dispatcher.run(stopping: { self.stopping }) }
            }
            group.addTask { await self.housekeeping() }
            group.addTask { await self.commitLoop() }
            group.addTask { await self.commitLoop() }
            group.addTask { await self.claimLoop() }
        }
        logger.info("worker stopped", metadata: ["worker": "\(configuration.workerID)"])
    }

    // MARK: - Claiming and calling

    private func claimLoop() async {
        var failures = 0
        while !stopping {
            let generation = claimWake.generation
            let free = configuration.slots - state.withLock { $0.inFlight }
            if free > 0 {
                do {
                    // Taken before the claim: the lease the database grants ends no earlier than this.
                    let leaseEnds = ContinuousClock.now + configuration.lease
                    let steps = try await queue.claim(
                        worker: configuration.workerID, slots: free, lease: configuration.lease)
                    failures = 0
                    if !steps.isEmpty {
                        state.withLock {
                            $0.inFlight += steps.count
                            $0.stats.claimed += steps.count
                        }
                        for step in steps {
                            Task { await self.execute(step, leaseEnds: leaseEnds) }
                        }
                        continue
                    }
                } catch {
                    failures += 1
                    logger.error("claim failed", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: .milliseconds(min(5000, 100 << min(failures, 6))))
                }
            }
            await claimWake.wait(after: generation, timeout: configuration.pollInterval)
        }
    }

    /// Opens the tenant's key for the length of the call, calls, and hands the outcome to the committers.
    private func execute(_ step: ClaimedStep, leaseEnds: ContinuousClock.Instant) async {
        let request = VendorRequest(vendor: step.vendor, kind: step.kind, person: step.input, email: step.email)
        let result: VendorCallResult
        do {
            result = try await vault.withPlaintext(
                step.key.sealed, tenant: step.tenantID, vendor: step.vendor, secretVersion: step.key.secretVersion,
                tenantKeyVersion: step.key.tenantKeyVersion
            ) { key in
                await caller.call(request, key: key)
            }
        } catch let error as EventsError where error.code == .tenantKeyDestroyed {
            result = VendorCallResult(
                outcome: .keyFatal(reason: "the tenant was erased: its keys are destroyed"), credits: 0,
                answered: false, httpStatus: nil)
        } catch let error as EventsError where error.code == .secretUnopenable {
            result = VendorCallResult(
                outcome: .keyFatal(reason: "the stored key does not open: store the key again"), credits: 0,
                answered: false, httpStatus: nil)
        } catch {
            // The master key is not the one that wrapped the tenant's key, or the database is unreachable:
            // nothing the tenant's key or the vendor did.
            let code = (error as? EventsError)?.code.description ?? "error"
            result = VendorCallResult(
                outcome: .transient(reason: "the stored key could not be opened (\(code))", retryAfterSeconds: nil),
                credits: 0, answered: false,
                httpStatus: nil)
        }
        state.withLock { $0.finished.append((WorkQueue.Finished(step: step, result: result), leaseEnds)) }
        commitWake.signal()
    }

    // MARK: - Committing

    private func commitLoop() async {
        while true {
            let generation = commitWake.generation
            let (taken, done) = state.withLock {
                state -> ([(WorkQueue.Finished, leaseEnds: ContinuousClock.Instant)], Bool) in
                let count = min(configuration.commitBatch, state.finished.count)
                let batch = Array(state.finished.prefix(count))
                state.finished.removeFirst(count)
                return (batch, state.stopping && state.inFlight == 0)
            }
            if taken.isEmpty {
                if done { return }
                await commitWake.wait(after: generation, timeout: .milliseconds(100))
                continue
            }
            let batch = taken.map(\.0)
            let report = await commitWhileLeased(batch, until: taken.map(\.leaseEnds).min() ?? .now)
            if report.fenced > 0 {
                logger.notice(
                    "outcomes dropped: another claim took their steps over", metadata: ["steps": "\(report.fenced)"])
            }
            state.withLock {
                $0.inFlight -= batch.count
                $0.stats.committed += report.committed
                $0.stats.fenced += report.fenced
                $0.stats.deferred += report.deferred
            }
            claimWake.signal()
            commitWake.signal()
        }
    }

    /// Commits a batch, retrying a failure (the database away, a serialization or order refusal that
    /// outlived the store's own retries) with growing pauses for as long as the batch's leases hold: the
    /// outcome in hand is a vendor call already paid for, and until a lease runs out no one else may decide
    /// that step. Past that the outcome is deferred: the step is claimed again, and a commit of this outcome
    /// would be fenced off by the new claim anyway.
    private func commitWhileLeased(_ batch: [WorkQueue.Finished], until leaseEnds: ContinuousClock.Instant) async
        -> WorkQueue.CommitReport
    {
        var pause = Duration.milliseconds(100)
        while true {
            do {
                return try await queue.commit(batch)
            } catch {
                let left = leaseEnds - ContinuousClock.now
                guard left > pause else {
                    logger.error(
                        "commit failed until the leases ran out; the steps will be claimed again",
                        metadata: ["error": "\(error)", "steps": "\(batch.count)"])
                    var report = WorkQueue.CommitReport()
                    report.deferred = batch.count
                    return report
                }
                logger.warning(
                    "commit failed; retrying while the leases hold",
                    metadata: ["error": "\(error)", "retryIn": "\(pause)"])
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(2))
            }
        }
    }

    // MARK: - Housekeeping

    private func housekeeping() async {
        var last = ContinuousClock.now
        while !stopping {
            try? await Task.sleep(for: .milliseconds(250))
            guard ContinuousClock.now - last > .seconds(10) else { continue }
            last = ContinuousClock.now
            do {
                try await queue.pruneStarts()
            } catch {
                logger.warning("pruning flow starts failed", metadata: ["error": "\(error)"])
            }
        }
    }
}

extension VendorCaller: VendorCalling {}

extension Worker: Service {}
