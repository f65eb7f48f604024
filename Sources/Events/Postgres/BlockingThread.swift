import Foundation

/// A dedicated OS thread that runs blocking work (libpq calls) one job at a time.
///
/// libpq blocks its caller for a whole network round trip. Doing that on Swift's cooperative pool or on a
/// NIO event loop would stall unrelated tasks, so every connection owns one of these threads and its calls
/// hop here and back through a continuation.
final class BlockingThread: @unchecked Sendable {
    // Guards `jobs` and `stopping`; `wait()` releases it while the thread sleeps.
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var stopping = false

    init(name: String) {
        let thread = Thread { [self] in self.loop() }
        thread.name = name
        thread.start()
    }

    /// Runs `body` on this thread and returns its result to the awaiting task.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            submit { continuation.resume(with: Result { try body() }) }
        }
    }

    /// Queues `job`; after `stop()` the job still runs so that no awaiting continuation is leaked.
    func submit(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Lets the thread finish the queued jobs and exit.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping {
                condition.wait()
            }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            condition.unlock()
            for job in batch {
                job()
            }
        }
    }
}
