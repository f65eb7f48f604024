import ArgumentParser
import Events
import Foundation
import Projections

struct ProjectionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "projections",
        abstract: "Inspect the read models derived from the log.",
        subcommands: [List.self, Status.self])

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

/// Prints rows as left-aligned columns.
func printTable(_ rows: [[String]]) {
    guard let width = rows.first?.count else { return }
    let widths = (0..<width).map { column in rows.map { $0[column].count }.max() ?? 0 }
    for row in rows {
        print(zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
            .trimmingCharacters(in: .whitespaces))
    }
}
