package import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Runs a program with posix_spawn and waits with waitpid, on threads of its own. Foundation's `Process`
/// sometimes misses a child's exit when several run at once, which hangs a test for good.
package final class Subprocess: @unchecked Sendable {
    package struct Result: Sendable {
        package var status: Int32
        package var stdout: String
        package var stderr: String
    }

    private static let spawnLock = NSLock()
    package let pid: pid_t
    private let stdoutFD: Int32
    private let stderrFD: Int32

    package init(_ path: String, _ arguments: [String], environment: [String: String]) throws {
        var outPipe: [Int32] = [0, 0]
        var errPipe: [Int32] = [0, 0]
        // Pipes are created close-on-exec under one lock with the spawn, so that children spawned concurrently
        // never inherit each other's pipe ends (a reader would then wait for the wrong child to exit).
        Self.spawnLock.lock()
        defer { Self.spawnLock.unlock() }
        guard pipe(&outPipe) == 0, pipe(&errPipe) == 0 else { throw POSIXError(.EMFILE) }
        for fd in outPipe + errPipe {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let result = posix_spawn(&child, path, &actions, nil, argv, envp)
        close(outPipe[1])
        close(errPipe[1])
        guard result == 0 else {
            close(outPipe[0])
            close(errPipe[0])
            throw POSIXError(POSIXErrorCode(rawValue: result) ?? .ENOENT)
        }
        pid = child
        stdoutFD = outPipe[0]
        stderrFD = errPipe[0]
    }

    /// Runs to completion and returns the exit status and output.
    package static func run(_ path: String, _ arguments: [String], environment: [String: String]) async throws -> Result
    {
        let process = try Subprocess(path, arguments, environment: environment)
        return try await process.finish()
    }

    /// Reads both pipes to the end and reaps the child. A child still running after `timeout` is killed
    /// (SIGKILL), so that a process that hangs fails its test instead of hanging it.
    package func finish(timeout: Duration = .seconds(180)) async throws -> Result {
        let watchdog = Task { [pid] in
            try await Task.sleep(for: timeout)
            // Still unreaped, so the pid is this child's.
            kill(pid, SIGKILL)
        }
        async let out = offPool { Self.readAll(self.stdoutFD) }
        async let err = offPool { Self.readAll(self.stderrFD) }
        let (stdout, stderr) = try await (out, err)
        let status = try await offPool { self.waitForExit(deadline: ContinuousClock.now + timeout) }
        watchdog.cancel()
        return Result(status: status, stdout: stdout, stderr: stderr)
    }

    /// Reads standard output until `predicate` holds, the pipe closes or `timeout` passes; returns what it read.
    /// It waits with `poll`, so it never blocks past the deadline.
    package func readStdout(timeout: Duration = .seconds(60), until predicate: @escaping @Sendable (String) -> Bool)
        async throws -> String
    {
        try await offPool {
            let deadline = ContinuousClock.now + timeout
            var text = ""
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !predicate(text) {
                let left = deadline - ContinuousClock.now
                guard left > .zero else { break }
                var descriptor = pollfd(fd: self.stdoutFD, events: Int16(POLLIN), revents: 0)
                let milliseconds = Int32(
                    clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)
                guard poll(&descriptor, 1, max(1, milliseconds)) > 0 else { continue }
                let count = read(self.stdoutFD, &buffer, buffer.count)
                if count <= 0 { break }
                text += String(decoding: buffer[0..<count], as: UTF8.self)
            }
            return text
        }
    }

    package func terminate() {
        send(signal: SIGTERM)
    }

    package func send(signal: Int32) {
        kill(pid, signal)
    }

    private func waitForExit(deadline: ContinuousClock.Instant) -> Int32 {
        var status: Int32 = 0
        // Without blocking: a child that closed its pipes but lives on is killed at the deadline.
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid || (reaped < 0 && errno != EINTR) { break }
            if ContinuousClock.now >= deadline { kill(pid, SIGKILL) }
            usleep(10_000)
        }
        close(stdoutFD)
        close(stderrFD)
        // WIFEXITED / WEXITSTATUS, and 128 + signal otherwise, as shells report it.
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    private static func readAll(_ fd: Int32) -> String {
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count > 0 {
                data += buffer[0..<count]
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                break
            }
        }
        return String(decoding: data, as: UTF8.self)
    }
}
