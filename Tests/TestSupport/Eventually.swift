package import Projections
import Testing

package enum Eventually {
    /// Polls `condition` until it holds, failing the test after `timeout`. An error counts as "not yet"
    /// (a table the runner has not created yet), and is reported if it is still there at the end. The default
    /// deadline is generous: `make stress-test` runs the suite beside two busy loops on two cores, where a
    /// projection catching up while forty suites run was seen to take over 60 s.
    /// `state`, when given, describes what was seen instead, for the failure message.
    package static func wait(
        _ what: String, timeout: Duration = .seconds(120), state: (() async -> String)? = nil,
        _ condition: () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        // Quick at first, then gentler: two cores are shared by the whole suite, and many tests poll at once.
        var pause = Duration.milliseconds(10)
        while true {
            var lastError: (any Error)?
            do {
                if try await condition() { return }
            } catch {
                lastError = error
            }
            guard ContinuousClock.now < deadline else {
                let seen = await state?()
                Issue.record(
                    "timed out waiting for \(what)\(lastError.map { ": \($0)" } ?? "")\(seen.map { "\n\($0)" } ?? "")")
                return
            }
            try await Task.sleep(for: min(pause, deadline - ContinuousClock.now))
            pause = min(pause * 2, .milliseconds(200))
        }
    }
}

extension ProjectionRunner.Options {
    /// Small batches and short polls: a test's runner catches up and hands over leadership quickly.
    package static let forTests = ProjectionRunner.Options(
        batchSize: 7, pollInterval: .milliseconds(50), leadershipRetry: .milliseconds(50))
}
