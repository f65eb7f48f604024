import ArgumentParser
import Events
import Foundation
import Projections

struct ProjectionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "projections",
        abstract: "Inspect the read models derived from the log.",
        subcommands: [List.self, Status.self, Rebuild.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the projections this binary knows.")

        func run() async throws {
            for projection in ProductProjections.all {
                print(projection.name, "v\(projection.version)", projection.tables.map(\.name).joined(separator: ","),
                      projection.eventTypes.sorted().joined(separator: ","))
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Each projection's version, checkpoint, lag and state, and what holds the feed back.",
            discussion: "Exit status 0 when every projection is running, 1 otherwise.")

        @OptionGroup var database: DatabaseOptions

        @Flag(help: "Print JSON instead of a table.")
        var json = false

        func run() async throws {
            let store = try database.makeStore(applicationName: "tally-projections", maxConnections: 2)
            defer { store.close() }
            let statuses: [ProjectionStatus]
            let holders: [HorizonHolder]
            do {
                statuses = try await ProjectionStatus.all(ProductProjections.all, store: store)
                holders = try await store.horizonHolders(olderThanSeconds: 5)
            } catch {
                reportError(error)
                throw ExitCode(1)
            }
            if json {
                struct Output: Encodable {
                    let projections: [ProjectionStatus]
                    let horizonHeldBy: [HorizonHolder]
                }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
                encoder.dateEncodingStrategy = .iso8601
                print(String(decoding: try encoder.encode(Output(projections: statuses, horizonHeldBy: holders)), as: UTF8.self))
            } else {
                let header = ["projection", "version", "state", "position", "applied", "lag", "lag s", "error"]
                let rows = statuses.map { status in
                    [
                        status.name, status.storedVersion.map { "\($0)" + ($0 == status.version ? "" : "→\(status.version)") } ?? "\(status.version)",
                        status.state.rawValue, status.position.description, "\(status.eventsApplied)", "\(status.lagEvents)",
                        String(format: "%.1f", status.lagSeconds),
                        status.error.map { "at \(status.errorPosition ?? 0): \($0)" } ?? "",
                    ]
                }
                printTable([header] + rows)
                for holder in holders {
                    print(
                        "horizon held by pid \(holder.pid) (\(holder.applicationName), \(holder.state)) for \(Int(holder.ageSeconds)) s:",
                        "readers wait until its transaction ends")
                }
            }
            if statuses.contains(where: { $0.state != .running }) { throw ExitCode(1) }
        }
    }
}

extension ProjectionsCommand {
    struct Rebuild: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rebuild projections from position zero and swap them in without downtime.",
            discussion: """
                Builds new tables (schema tally_rebuild) while the service keeps serving and appending, catches up
                with the head and swaps them in in one transaction; no event appended meanwhile is missed.
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
            let store = try database.makeStore(applicationName: "tally-rebuild", maxConnections: 4)
            defer { store.close() }
            let reporter = ProgressReporter(interactive: isatty(STDERR_FILENO) == 1)
            let rebuilder = ProjectionRebuilder(store: store, batchSize: batchSize) { reporter.report($0) }
            let outcomes: [ProjectionRebuilder.Outcome]
            do {
                outcomes = try await rebuilder.rebuild(projections, verify: verify, parallel: parallel ?? projections.count)
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
                        String(format: "%.1f s%@", outcome.seconds, outcome.resumed ? " (resumed)" : ""), "and swapped in")
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

/// Rebuild progress: a bar redrawn in place on a terminal, a plain line every second otherwise.
final class ProgressReporter: @unchecked Sendable {
    private let interactive: Bool
    private let lock = NSLock()
    private var lastLine = ContinuousClock.now - .seconds(10)

    init(interactive: Bool) {
        self.interactive = interactive
    }

    func report(_ progress: ProjectionRebuilder.Progress) {
        lock.withLock {
            let now = ContinuousClock.now
            guard interactive || now - lastLine >= .seconds(1) else { return }
            lastLine = now
            let fraction = progress.eventsTotal > 0 ? min(1, Double(progress.eventsApplied) / Double(progress.eventsTotal)) : 1
            let text = String(
                format: "%@ %lld/%lld events, %.0f ev/s, ETA %.0f s", progress.projection, progress.eventsApplied,
                progress.eventsTotal, progress.eventsPerSecond, progress.etaSeconds)
            if interactive {
                let bar = String(repeating: "#", count: Int(fraction * 30)) + String(repeating: ".", count: 30 - Int(fraction * 30))
                FileHandle.standardError.write(Data("\r[\(bar)] \(text)\u{1B}[K".utf8))
            } else {
                FileHandle.standardError.write(Data("\(text)\n".utf8))
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
        print(zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
            .trimmingCharacters(in: .whitespaces))
    }
}
