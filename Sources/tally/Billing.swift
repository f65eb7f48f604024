import ArgumentParser
import Events
import Foundation
import Projections

struct BillingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "billing",
        abstract: "Export a billing period and reconcile it against Stripe.",
        discussion: """
            Billing is derived only from the log: the billing projection counts usage per plan segment and the
            plans file prices it. Both commands wait (up to 30 s) for the billing and tenants projections to
            apply the whole log first, so a running `tally serve` (or a rebuild) is needed.
            """,
        subcommands: [Export.self, Reconcile.self])

    struct PlanOptions: ParsableArguments {
        @Option(help: "Plans file (default: $TALLY_PLANS_FILE, else the built-in free, pro and enterprise).")
        var plans: String?

        func load() throws -> Plans {
            let path = plans ?? ProcessEnvironment.values["TALLY_PLANS_FILE"]
            guard let path, !path.isEmpty else { return .defaults }
            do {
                return try Plans(contentsOf: path)
            } catch {
                throw ValidationError("plans: \(error)")
            }
        }
    }

    static func period(_ text: String) throws -> BillingPeriod {
        guard let period = BillingPeriod(text) else {
            throw ValidationError("--period must be YYYY-MM, such as 2026-10.")
        }
        return period
    }

    /// Loads a statement, turning the failures an operator can act on into exit status 1 with the reason.
    static func statement(_ period: BillingPeriod, plans: Plans, database: DatabaseOptions) async throws
        -> BillingStatement
    {
        let store = try database.makeStore(applicationName: "tally-billing", maxConnections: 2)
        defer { store.close() }
        do {
            return try await BillingStatement.load(period: period, plans: plans, store: store)
        } catch {
            reportError(error)
            throw ExitCode(1)
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One line per tenant × meter × plan segment of a period, priced, with a stable identifier.",
            discussion: """
                Formats: csv (default), json, stripe-meter-events (JSON lines for Stripe's meter events API;
                base fees and tenants without a Stripe customer are left out, each named on standard error;
                only for a period that has ended).
                Exporting a closed period twice gives the same bytes, also after a projections rebuild.
                Exporting a period that has not ended warns on standard error: its figures still grow.
                Exit status: 0 written, 1 the projections are not caught up (the reason is printed), 64 bad
                arguments or plans file.
                """)

        @OptionGroup var database: DatabaseOptions
        @OptionGroup var planOptions: PlanOptions

        @Option(help: "The billing period, YYYY-MM (UTC).")
        var period: String

        @Option(help: "csv, json or stripe-meter-events.")
        var format: String = "csv"

        @Option(help: "Write to this file instead of standard output (replaced atomically).")
        var out: String?

        func run() async throws {
            let period = try BillingCommand.period(period)
            guard let format = BillingExportFormat(rawValue: format) else {
                throw ValidationError(
                    "--format must be one of \(BillingExportFormat.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            let plans = try planOptions.load()
            let statement = try await BillingCommand.statement(period, plans: plans, database: database)
            if !statement.closed {
                // Meter events of an open period would be dated after now, which Stripe refuses; and sent early,
                // they would carry quantities that still grow.
                guard format != .stripeMeterEvents else {
                    throw ValidationError("\(period) has not ended; meter events are exported for ended periods only.")
                }
                FileHandle.standardError.write(
                    Data("warning: \(period) has not ended; its figures will still change\n".utf8))
            }
            let (text, skipped) = try statement.render(format)
            for line in skipped { FileHandle.standardError.write(Data("skipped: \(line)\n".utf8)) }
            try BillingCommand.write(text, to: out)
        }
    }

    struct Reconcile: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare a period's billing with Stripe's invoice line items.",
            discussion: """
                --stripe takes Stripe's invoices as JSON (GET /v1/invoices with their lines, or an array of them)
                or invoice line items as CSV (columns customer, price, quantity, amount, currency, optional
                period_start; an amount with a decimal point is in major units, a whole number in minor units).
                Per tenant × plan × meter it reports Tally's and Stripe's quantity and amount (minor units) and
                a status: match, under-billed, over-billed, missing in Stripe, unknown to Tally.
                Exit status: 0 everything matches, 1 a mismatch (or the projections are not caught up), 64 bad
                arguments, 65 a Stripe file that cannot be read.
                """)

        @OptionGroup var database: DatabaseOptions
        @OptionGroup var planOptions: PlanOptions

        @Option(help: "The billing period, YYYY-MM (UTC).")
        var period: String

        @Option(help: "Stripe's invoice line items for the period, CSV or JSON.")
        var stripe: String

        @Option(help: "table (default on a terminal), csv or json.")
        var format: String?

        func run() async throws {
            let period = try BillingCommand.period(period)
            let format = format ?? (isatty(STDOUT_FILENO) == 1 ? "table" : "csv")
            guard ["table", "csv", "json"].contains(format) else {
                throw ValidationError("--format must be table, csv or json.")
            }
            let plans = try planOptions.load()
            let lines: [StripeInvoiceLine]
            do {
                lines = try StripeInvoiceLine.read(contentsOf: stripe)
            } catch {
                reportError(error)
                throw ExitCode(65)
            }
            let statement = try await BillingCommand.statement(period, plans: plans, database: database)
            let report = Reconciliation(statement: statement, stripe: lines, plans: plans)
            switch format {
            case "json": print(try report.renderJSON(), terminator: "")
            case "csv": print(report.renderCSV(), terminator: "")
            default:
                printTable([Reconciliation.columns] + report.cells)
                let mismatches = report.rows.filter { $0.status != .match }.count
                print(
                    mismatches == 0
                        ? "\(period): clean, \(report.rows.count) rows match"
                        : "\(period): \(mismatches) of \(report.rows.count) rows differ")
            }
            if report.linesOutsidePeriod > 0 {
                FileHandle.standardError.write(
                    Data(
                        "note: \(report.linesOutsidePeriod) Stripe lines start outside \(period) and were left out\n"
                            .utf8))
            }
            if !report.isClean { throw ExitCode(1) }
        }
    }

    /// Writes to standard output, or to `path` through a temporary file renamed into place.
    static func write(_ text: String, to path: String?) throws {
        guard let path else {
            FileHandle.standardOutput.write(Data(text.utf8))
            return
        }
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            FileHandle.standardError.write(Data("error: cannot write \(path): \(error.localizedDescription)\n".utf8))
            throw ExitCode(1)
        }
    }
}
