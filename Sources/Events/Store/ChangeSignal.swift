import Synchronization

/// Wakes feed readers in this process when the log may have grown: after a local append, or when another
/// process's NOTIFY arrives. A reader that misses a signal still polls, so a lost wake-up costs latency only.
package final class ChangeSignal: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var nextID: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    /// Increases on every signal; read it before querying, then wait on it.
    package var generation: UInt64 { state.withLock { $0.generation } }

    package init() {}

    package func signal() {
        let waiters = state.withLock { state in
            state.generation &+= 1
            defer { state.waiters = [:] }
            return state.waiters
        }
        waiters.values.forEach { $0.resume() }
    }

    /// Returns when a signal newer than `generation` arrives, after `timeout`, or on cancellation.
    package func wait(after generation: UInt64, timeout: Duration) async {
        let id = state.withLock { state in
            state.nextID &+= 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let waitNow = state.withLock { state in
                    guard state.generation == generation else { return false }
                    state.waiters[id] = continuation
                    return true
                }
                guard waitNow else {
                    continuation.resume()
                    return
                }
                Task {
                    try? await Task.sleep(for: timeout)
                    self.resume(id)
                }
            }
        } onCancel: {
            resume(id)
        }
    }

    private func resume(_ id: UInt64) {
        state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
    }
}
