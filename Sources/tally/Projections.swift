import ArgumentParser
import Events
import Foundation
import Projections

struct ProjectionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "projections",
        abstract: "Inspect the read models derived from the log.",
        subcommands: [List.self, Status.self, Rebuild.self, Retry.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the projections this binary knows.")

        func run() async throws {
            for projection in ProductProjections.all {
                print(
                    projection.name, "v\(projection.version)", projection.tables.map(\.name).joined(separator: ","),
                    projection.eventTypes.sorted().joined(separator: ","))
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Each projection's version, checkpoint, lag and state, the parked streams, and what holds the feed back.",
            discussion: """
                A parked stream is one a reader (a projection, or the workers' dispatcher) could not apply: the reader
                holds its later events and goes on with every other stream. Fix the cause, then run
                `tally projections retry`. Exit status 0 when every projection is running and no stream is parked,
                1 otherwise.
                """)

        @OptionGroup var database: DatabaseOptions

        @Flag(help: "Print JSON instead of a table.")
        var json = false

        func run() async throws {
            let store = try database.makeStore(applicationName: "tally-projections", maxConnections: 2)
            defer { store.close() }
            let statuses: [ProjectionStatus]
            let holders: [HorizonHolder]
            let parked: [ParkedStream]
            let inversions: Int
            do {
                statuses = try await ProjectionStatus.all(ProductProjections.all, store: store)
                holders = try await store.horizonHolders(olderThanSeconds: 5)
                parked = try await store.parkedStreams()
                inversions = try await store.feedOrderInversions()
            } catch {
                reportError(error)
                throw ExitCode(1)
            }
            if json {
                struct Output: Encodable {
                    let projections: [ProjectionStatus]
                    let parkedStreams: [ParkedStream]
                    let horizonHeldBy: [HorizonHolder]
                    let feedOrderInversions: Int
                }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
                encoder.dateEncodingStrategy = .iso8601
                let output = Output(
                    projections: statuses, parkedStreams: parked, horizonHeldBy: holders,
                    feedOrderInversions: inversions)
                print(String(decoding: try encoder.encode(output), as: UTF8.self))
            } else {
                let header = [
                    "projection", "version", "state", "position", "applied", "lag", "lag s", "parked", "leader",
                    "error",
                ]
                let rows = statuses.map { status in
                    [
                        status.name,
                        status.storedVersion.map { "\($0)" + ($0 == status.version ? "" : "→\(status.version)") }
                            ?? "\(status.version)",
                        status.state.rawValue, status.position.description, "\(status.eventsApplied)",
                        status.lagEvents >= Int64(ProjectionStatus.lagCountLimit)
                            ? ">\(status.lagEvents - 1)" : "\(status.lagEvents)",
                        String(format: "%.1f", status.lagSeconds), "\(status.parkedStreams)", status.leader ?? "none",
                        status.error.map { "at \(status.errorPosition ?? 0): \($0)" } ?? "",
                    ]
                }
                printTable([header] + rows)
                if !parked.isEmpty {
                    print("")
                    printTable(
                        [["reader", "stream", "version", "position", "type", "held", "retries", "parked at", "error"]]
                            + parked.map { stream in
                                [
                                    stream.reader, stream.stream, "\(stream.streamVersion)", "\(stream.position)",
                                    stream.eventType,
                                    "\(stream.heldEvents)",
                                    "\(stream.attempts)" + (stream.retryRequestedAt == nil ? "" : " (asked)"),
                                    ISO8601DateFormatter().string(from: stream.parkedAt), stream.error,
                                ]
                            })
                }
                if inversions > 0 {
                    print(
                        "feed order: \(inversions) event(s) written before Tally enforced each stream's order sort before an",
                        "earlier version of their stream; readers apply those streams in version order (see feed_order_inversions)"
                    )
                }
                for holder in holders {
                    print(
                        "horizon held by pid \(holder.pid) (\(holder.applicationName), \(holder.state)) for \(Int(holder.ageSeconds)) s:",
                        "readers wait until its transaction ends")
                }
            }
            if statuses.contains(where: { $0.state != .running }) || !parked.isEmpty { throw ExitCode(1) }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply parked streams again, once the cause is fixed.",
            discussion: """
                Asks the leading reader (a `tally serve` for projections, a `tally work` for the dispatcher) to apply
                each parked stream again, in version order, and waits for the outcome. Exit status 0 when every
                stream asked for was applied, 1 when some are still parked (their error is printed), 2 when no
                reader answered within --timeout-seconds (is the service running?).
                """)

        @OptionGroup var database: DatabaseOptions

        @Argument(
            help: "Readers whose parked streams to retry (projection names, or `dispatcher`); all when none is named.")
        var readers: [String] = []

        @Option(help: "How long to wait for the readers.")
        var timeoutSeconds = 30

        func validate() throws {
            let known = ProductProjections.all.map(\.name) + ["dispatcher"]
            if let unknown = readers.first(where: { !known.contains($0) }) {
                throw ValidationError("no reader is called \(unknown); known: \(known.joined(separator: ", "))")
            }
            if timeoutSeconds < 1 { throw ValidationError("--timeout-seconds must be at least 1") }
        }

        func run() async throws {
            let store = try database.makeStore(applicationName: "tally-projections", maxConnections: 2)
            defer { store.close() }
            let asked: [ParkedStream]
            do {
                asked = try await store.requestRetry(readers: readers.isEmpty ? nil : readers)
            } catch {
                reportError(error)
                throw ExitCode(1)
            }
            guard !asked.isEmpty else {
                print("no stream is parked")
                return
            }
            let deadline = ContinuousClock.now + .seconds(timeoutSeconds)
            var pending = asked
            while true {
                let now = try await store.parkedStreams(readers: readers.isEmpty ? nil : readers)
                let byKey = Dictionary(
                    now.map { ("\($0.reader) \($0.stream)", $0) }, uniquingKeysWith: { first, _ in first })
                // Still waiting: parked and not tried since it was asked for.
                pending = asked.filter { byKey["\($0.reader) \($0.stream)"]?.retryRequestedAt != nil }
                if pending.isEmpty || ContinuousClock.now >= deadline {
                    var failed = false
                    for stream in asked {
                        let key = "\(stream.reader) \(stream.stream)"
                        if let still = byKey[key] {
                            if still.retryRequestedAt == nil {
                                failed = true
                                print("\(stream.reader) \(stream.stream): still parked: \(still.error)")
                            } else {
                                print("\(stream.reader) \(stream.stream): not tried yet")
                            }
                        } else {
                            print("\(stream.reader) \(stream.stream): applied")
                        }
                    }
                    if !pending.isEmpty {
                        FileHandle.standardError.write(
                            Data(
                                "error: no reader took up \(pending.count) stream(s) within \(timeoutSeconds) s: is the service running?\n"
                                    .utf8))
                        throw ExitCode(2)
                    }
                    if failed { throw ExitCode(1) }
                    return
                }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }
}

extension ProjectionsCommand {
    struct Rebuild: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rebuild projections from position zero and swap them in without downtime.",
            discussion: """
                Builds new tables (schema tally_rebuild) while the service keeps serving and appending, catches up
                with the head and swaps them in in one transaction; no event appended meanwhile is missed. It
                creates tables, so it runs as $TALLY_MIGRATE_DATABASE_URL (the schema's owner) when that is set.
                Interrupted (Ctrl-C, crash), it resumes where it was when run again. --verify compares the rebuilt
                rows with the live ones at the same position, lists any difference and swaps nothing then
                (exit status 1).
                """)

        @OptionGroup var database: DatabaseOptions

        @Argument(help: "Projections to rebuild (see `tally projections list`).")
        var names: [String] = []

        @Flag(help: "Rebuild every projection.")
        var all = false

        @Flag(help: "Compare with the live tables before swapping; swap only when equal.")
        var verify = false

        @Option(help: "Events per transaction.")
        var batchSize = 2000

        @Option(help: "At most this many projections apply a page of the log at the same time (default: all).")
        var parallel: Int?

        func validate() throws {
            if all == !names.isEmpty { throw ValidationError("Name the projections to rebuild, or pass --all.") }
            if !all {
                do { _ = try ProductProjections.named(names) } catch { throw ValidationError("\(error)") }
            }
        }

        func run() async throws {
            let projections = all ? ProductProjections.all : try ProductProjections.named(names)
            // New tables are DDL: the owner's, as TALLY_MIGRATE_DATABASE_URL when the service runs as itself.
            let store = try database.makeOwnerStore(applicationName: "tally-rebuild", maxConnections: 4)
            defer { store.close() }
            let reporter = ProgressReporter(interactive: isatty(STDERR_FILENO) == 1)
            let rebuilder = ProjectionRebuilder(store: store, batchSize: batchSize) { reporter.report($0) }
            let outcomes: [ProjectionRebuilder.Outcome]
            do {
                outcomes = try await rebuilder.rebuild(
                    projections, verify: verify, parallel: parallel ?? projections.count)
                reporter.finish()
            } catch {
                reporter.finish()
                reportError(error)
                throw ExitCode(1)
            }
            var clean = true
            for outcome in outcomes {
                if outcome.swapped {
                    print(
                        "\(outcome.projection): rebuilt from \(outcome.eventsApplied) events in",
                        String(format: "%.1f s%@", outcome.seconds, outcome.resumed ? " (resumed)" : ""),
                        "and swapped in")
                } else {
                    clean = false
                    print("\(outcome.projection): the rebuilt tables differ from the live ones; nothing swapped")
                    for difference in outcome.differences {
                        print("  \(difference.table) \(difference.side): \(difference.row)")
                    }
                }
            }
            if !clean { throw ExitCode(1) }
        }
    }
}

/// Progress of a long command: a bar redrawn in place on a terminal, a plain line every second otherwise.
final class ProgressReporter: @unchecked Sendable {
    private let interactive: Bool
    private let lock = NSLock()
    private var lastLine = ContinuousClock.now - .seconds(10)

    init(interactive: Bool) {
        self.interactive = interactive
    }

    func report(_ progress: ProjectionRebuilder.Progress) {
        let fraction = progress.eventsTotal > 0 ? Double(progress.eventsApplied) / Double(progress.eventsTotal) : 1
        show(
            fraction: fraction,
            String(
                format: "%@ %lld/%lld events, %.0f ev/s, ETA %.0f s", progress.projection, progress.eventsApplied,
                progress.eventsTotal, progress.eventsPerSecond, progress.etaSeconds))
    }

    /// Draws the bar at `fraction` (0...1) with `text` beside it.
    func show(fraction: Double, _ text: String) {
        lock.withLock {
            let now = ContinuousClock.now
            guard interactive || now - lastLine >= .seconds(1) else { return }
            lastLine = now
            let filled = Int(min(1, max(0, fraction)) * 30)
            if interactive {
                let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled)
                FileHandle.standardError.write(Data("\r[\(bar)] \(text)\u{1B}[K".utf8))
            } else {
                FileHandle.standardError.write(Data("\(Int(min(1, max(0, fraction)) * 100))% \(text)\n".utf8))
            }
        }
    }

    func finish() {
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// Prints rows as left-aligned columns.
func printTable(_ rows: [[String]]) {
    guard let width = rows.first?.count else { return }
    let widths = (0..<width).map { column in rows.map { $0[column].count }.max() ?? 0 }
    for row in rows {
        print(
            zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces))
    }
}
