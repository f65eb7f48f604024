import ArgumentParser
import Events
import Foundation

struct Log: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read the event log, as JSON lines with decoded payloads; export, verify and import archives of it.",
        subcommands: [Tail.self, Show.self, Export.self, Verify.self, Import.self, Reanchor.self])

    struct Tail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the newest events in commit order; with --follow, keep printing new ones.")

        @OptionGroup var database: DatabaseOptions

        @Flag(name: [.short, .long], help: "Keep printing events as they commit.")
        var follow = false

        @Option(help: "Only events of this tenant (uuid).")
        var tenant: String?

        @Option(help: "Only events of this type (repeatable).")
        var type: [String] = []

        @Option(name: [.short, .long], help: "How many of the newest events to print first.")
        var lines: Int = 20

        func validate() throws {
            if let tenant, UUID(uuidString: tenant) == nil { throw ValidationError("--tenant must be a UUID") }
            if lines < 0 { throw ValidationError("--lines cannot be negative") }
        }

        func run() async throws {
            let store = try database.makeStore(applicationName: "tally-log", maxConnections: 2)
            defer { store.close() }
            let filter = FeedFilter(
                tenantID: tenant.flatMap(UUID.init(uuidString:)), types: type.isEmpty ? nil : Set(type))
            let printer = LogPrinter(catalog: store.catalog)
            do {
                let recent = try await store.readFeedTail(count: lines, filter: filter)
                recent.events.forEach(printer.print)
                guard follow else { return }
                for try await event in store.subscribe(from: recent.next, filter: filter) {
                    printer.print(event)
                }
            } catch {
                reportError(error)
                throw ExitCode(1)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print every event of one stream, in stream order.")

        @OptionGroup var database: DatabaseOptions

        @Argument(help: "The stream, e.g. run-5b0c3f7e-....")
        var stream: String

        func run() async throws {
            let name: StreamName
            do { name = try StreamName(stream) } catch { throw ValidationError("\(error)") }
            let store = try database.makeStore(applicationName: "tally-log", maxConnections: 1)
            defer { store.close() }
            let printer = LogPrinter(catalog: store.catalog)
            do {
                var version: Int64 = 1
                while true {
                    let page = try await store.read(stream: name, from: version, limit: 1000)
                    page.forEach(printer.print)
                    guard let last = page.last, page.count == 1000 else { break }
                    version = last.streamVersion + 1
                }
                if version == 1, try await store.version(of: name) == 0 {
                    FileHandle.standardError.write(Data("stream \(name) has no events\n".utf8))
                    throw ExitCode(1)
                }
            } catch let exit as ExitCode {
                throw exit
            } catch {
                reportError(error)
                throw ExitCode(1)
            }
        }
    }
}

/// Prints one event per line as JSON. An event that does not decode is still printed, with `error` saying why,
/// so one bad event never hides the rest from the person debugging.
struct LogPrinter: Sendable {
    let catalog: EventCatalog

    private struct Line: Encodable {
        var position: String
        var globalPosition: Int64
        var stream: String
        var streamVersion: Int64
        var type: String
        var schemaVersion: Int
        var eventId: String
        var tenantId: String?
        var recordedAt: String
        var metadata: JSONValue?
        var payload: JSONValue?
        var error: String?
    }

    func line(_ event: RecordedEvent) -> String {
        var line = Line(
            position: event.feedPosition.description, globalPosition: event.globalPosition,
            stream: event.stream.rawValue,
            streamVersion: event.streamVersion, type: event.type, schemaVersion: event.schemaVersion,
            eventId: event.id.lowercased, tenantId: event.tenantID?.lowercased,
            recordedAt: event.recordedAt.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true))
        )
        line.metadata = try? JSONDecoder().decode(JSONValue.self, from: Data(event.metadataJSON))
        do {
            line.payload = try JSONDecoder().decode(JSONValue.self, from: Data(catalog.currentJSON(event)))
            if !catalog.contains(event.type) { line.error = "unknown event type" }
        } catch {
            line.error = "\(error)"
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(line), as: UTF8.self)) ?? "{}"
    }

    /// Flushes each line: `--follow` output is often piped into another tool, which must see it at once.
    func print(_ event: RecordedEvent) {
        Swift.print(line(event))
        fflush(nil)
    }
}
