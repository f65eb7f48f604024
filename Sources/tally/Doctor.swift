import API
import ArgumentParser
import Events
import Foundation
import Projections

struct Doctor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a database against what this binary expects; exit 0 only when nothing fails.",
        discussion: """
            Run it with the service's own DATABASE_URL (and TALLY_DIRECT_DATABASE_URL, TALLY_SCHEMA), so that it
            sees what the service sees. One line per finding, PASS, WARN or FAIL, naming the object at fault:
              migrations          applied, unmodified, none unknown
              tables, indexes, functions
                                  every one the migrations and the started projections create, every column
              row-level security  enabled, forced and with its policy on every tenant table and the log
              grants              tally_app, tally_keys, tally_operator: what each needs, and nothing a tenant
                                  session must not have (writes, tenant_keys, work_claim)
              login role          not a superuser, no BYPASSRLS, not the owner, a member of tally_app and
                                  tally_operator
              pooler              what the URLs reach, and whether that fits TALLY_POOL_MODE
              connections         headroom for --instances, the idle-in-transaction timeout
              leaders             who holds each lease (WARN when nobody leads)
              horizon             transactions that hold the feed back for over 60 s
              projections         stopped, needing a rebuild, or holding parked streams
              feed order          no event sorts before an earlier version of its stream (reads the whole log)
              restore             the database was not restored or rewound under its log
            Exit status: 0 when no check fails (warnings allowed), 1 otherwise.
            """)

    @OptionGroup var database: DatabaseOptions

    @Option(help: "text or json.")
    var format: String = "text"

    @Option(help: "How many instances of serve and work will share the database (connection headroom).")
    var instances: Int = 1

    func run() async throws {
        guard format == "text" || format == "json" else { throw ValidationError("--format must be text or json") }
        guard (1...1000).contains(instances) else { throw ValidationError("--instances must be from 1 to 1000") }
        let store = try database.makeStore(applicationName: "tally-doctor", maxConnections: 2)
        defer { store.close() }
        let checks = await Projections.Doctor(
            store: store, migrations: Migration.product, projections: ProductProjections.all, instances: instances,
            readerPositions: ProductReaders.positions
        )
        .run()
        if format == "json" {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            print(String(decoding: try encoder.encode(checks), as: UTF8.self))
        } else {
            let width = checks.map(\.check.count).max() ?? 0
            for check in checks {
                let name = check.check.padding(toLength: width, withPad: " ", startingAt: 0)
                print(
                    "\(check.status.rawValue.uppercased().padding(toLength: 4, withPad: " ", startingAt: 0))  \(name)  \(check.detail)"
                )
            }
        }
        if checks.contains(where: { $0.status == .fail }) { throw ExitCode(1) }
    }
}
