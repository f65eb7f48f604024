import Foundation
import TestSupport
import Testing

@testable import Events
@testable import Projections

/// Plans priced so that every line of the test periods has a distinct, hand-checkable amount.
enum BillingFixtures {
    static let plans = try! Plans([
        Plan(
            name: "free", keyRequestsPerSecond: 5, tenantRequestsPerSecond: 10, monthlyAPICalls: nil, monthlyRuns: nil,
            unitPriceMicros: [.apiCalls: 1_000], stripePriceIDs: [.apiCalls: "price_free_calls"]),
        Plan(
            name: "pro", keyRequestsPerSecond: 50, tenantRequestsPerSecond: 100, monthlyAPICalls: nil, monthlyRuns: nil,
            baseFeeMicros: 49_000_000,
            unitPriceMicros: [.apiCalls: 500, .runs: 20_000, .vendorCredits(.prospeo): 10_000],
            stripePriceIDs: [
                .baseFee: "price_pro_base", .apiCalls: "price_pro_calls", .runs: "price_pro_runs",
                .vendorCredits(.prospeo): "price_pro_prospeo",
            ]),
    ])

    /// A period two months ahead, so that usage dated in it lands after every tenant's creation.
    static var period: BillingPeriod { BillingPeriod(containing: Date()).next.next }

    static func date(_ period: BillingPeriod, days: Double) -> Date {
        Date(timeIntervalSince1970: Double(period.startMicroseconds) / 1_000_000 + days * 86_400)
    }

    /// Tenant `acme` (customer cus_acme): 100 calls on free, then pro from day 10, then 50 calls. Tenant
    /// `globex` (cus_globex): free all period, 7 calls. Tenant `initech`: no Stripe customer, 3 calls.
    static func history(_ store: EventStore, period: BillingPeriod) async throws -> (
        acme: UUID, globex: UUID, initech: UUID
    ) {
        let catalog = store.catalog
        let acme = UUID()
        let globex = UUID()
        let initech = UUID()
        for (tenant, slug) in [(acme, "acme"), (globex, "globex"), (initech, "initech")] {
            var events = [
                try catalog.encode(TenantCreated(tenantID: tenant, name: slug.capitalized, slug: slug, plan: "free"))
            ]
            if slug != "initech" {
                events.append(try catalog.encode(StripeCustomerLinked(tenantID: tenant, customerID: "cus_\(slug)")))
            }
            try await store.append(events, to: .tenant(tenant), tenantID: tenant, expected: .noStream)
        }
        try await usage(store, acme, calls: 100, at: date(period, days: 1))
        try await store.append(
            [
                try catalog.encode(
                    PlanChanged(
                        tenantID: acme, fromPlan: "free", toPlan: "pro", source: .operator,
                        effectiveAt: date(period, days: 10)))
            ],
            to: .tenant(acme), tenantID: acme, expected: .exactly(2))
        try await usage(store, acme, calls: 50, at: date(period, days: 20))
        try await usage(store, globex, calls: 7, at: date(period, days: 3))
        try await usage(store, initech, calls: 3, at: date(period, days: 4))
        // Usage in the period before: must not show.
        try await usage(store, globex, calls: 1_000, at: date(period, days: -2))
        return (acme, globex, initech)
    }

    static func usage(_ store: EventStore, _ tenant: UUID, calls: Int, at: Date) async throws {
        try await store.append(
            [
                try store.catalog.encode(
                    UsageRecorded(
                        tenantID: tenant, keyID: UUID(), windowStart: at, windowEnd: at, apiCalls: calls,
                        instanceID: "test"))
            ],
            to: .usage(tenant: tenant), tenantID: tenant, expected: .any)
    }

    static func runner(_ store: EventStore) -> Task<Void, Never> {
        let runner = ProjectionRunner(
            store: store, projections: [TenantsProjection(), BillingProjection()],
            options: ProjectionRunner.Options.forTests)
        return Task { await runner.run() }
    }

    static func statement(_ store: EventStore, _ period: BillingPeriod) async throws -> BillingStatement {
        try await BillingStatement.load(
            period: period, plans: plans, store: store, now: date(period.next, days: 1), catchUpTimeout: catchUp)
    }

    /// How long a statement waits for the projections: the product's 30 s was passed once in a full suite
    /// run on two cores, while other suites started private clusters.
    static let catchUp = Duration.seconds(120)
}

@Suite("Billing: plans, statements, export and reconciliation", .timeLimit(.minutes(5)))
struct BillingTests {
    @Test("a mid-period plan change splits the period and prices each part by its plan")
    func planSegments() async throws {
        try await TestDatabase.withStore { store, _ in
            let period = BillingFixtures.period
            let (acme, _, _) = try await BillingFixtures.history(store, period: period)
            let runner = BillingFixtures.runner(store)
            defer { runner.cancel() }
            let statement = try await BillingFixtures.statement(store, period)
            #expect(statement.closed)
            let acmeLines = statement.lines.filter { $0.tenantID == acme }
            let boundary = BillingPeriod.iso8601(
                microseconds: BillingPeriod.microseconds(BillingFixtures.date(period, days: 10)))
            let start = BillingPeriod.iso8601(microseconds: period.startMicroseconds)
            let end = BillingPeriod.iso8601(microseconds: period.endMicroseconds)
            #expect(
                acmeLines.map { "\($0.plan) \($0.meter) \($0.lineStart) \($0.lineEnd) \($0.quantity)" } == [
                    "free api_calls \(start) \(boundary) 100",
                    "pro base_fee \(boundary) \(end) 1",
                    "pro api_calls \(boundary) \(end) 50",
                ])
            // 100 calls at 0.1 cent; the pro fee for its share of the month; 50 calls at 0.05 cent = 2.5 → 3 cents.
            #expect(acmeLines[0].amountMicros == 100_000 && acmeLines[0].amount == 10)
            let share =
                Double(period.endMicroseconds - BillingPeriod.microseconds(BillingFixtures.date(period, days: 10)))
                / Double(period.endMicroseconds - period.startMicroseconds)
            #expect(abs(Double(acmeLines[1].amountMicros) - 49_000_000 * share) <= 1)
            #expect(acmeLines[1].unitPriceMicros == 49_000_000)
            #expect(acmeLines[2].amountMicros == 25_000 && acmeLines[2].amount == 3)
            #expect(acmeLines.allSatisfy { $0.stripeCustomerID == "cus_acme" && $0.currency == "usd" })
            #expect(acmeLines[2].stripePriceID == "price_pro_calls")
            #expect(Set(statement.lines.map(\.identifier)).count == statement.lines.count, "identifiers are unique")
            #expect(statement.lines.map(\.tenantSlug) == ["acme", "acme", "acme", "globex", "initech"])
            #expect(
                statement.lines.first { $0.tenantSlug == "globex" }?.quantity == 7, "the period before is not counted")

            // The month before holds only globex's early usage, on free.
            let before = try await BillingStatement.load(
                period: BillingPeriod(containing: BillingFixtures.date(period, days: -2)), plans: BillingFixtures.plans,
                store: store, catchUpTimeout: BillingFixtures.catchUp)
            #expect(before.lines.filter { $0.tenantSlug == "globex" }.map(\.quantity) == [1_000])
        }
    }

    @Test("exporting a closed period twice, and again after a rebuild, gives the same bytes and identifiers")
    func exportDeterminism() async throws {
        try await TestDatabase.withStore { store, _ in
            let period = BillingFixtures.period
            _ = try await BillingFixtures.history(store, period: period)
            let runner = BillingFixtures.runner(store)
            defer { runner.cancel() }
            var first: [BillingExportFormat: String] = [:]
            let statement = try await BillingFixtures.statement(store, period)
            for format in BillingExportFormat.allCases { first[format] = try statement.render(format).text }
            let again = try await BillingFixtures.statement(store, period)
            for format in BillingExportFormat.allCases {
                #expect(try again.render(format).text == first[format], "\(format)")
            }

            let outcomes = try await ProjectionRebuilder(store: store, batchSize: 3).rebuild(BillingProjection())
            #expect(outcomes.swapped)
            let rebuilt = try await BillingFixtures.statement(store, period)
            for format in BillingExportFormat.allCases {
                #expect(try rebuilt.render(format).text == first[format], "\(format) after a rebuild")
            }

            let csv = try #require(first[.csv])
            #expect(
                csv.hasPrefix(
                    "identifier,period,tenant_id,tenant_slug,stripe_customer_id,plan,meter,line_start,line_end,quantity,"
                ))
            #expect(csv.split(separator: "\n").count == 6)
            // Meter events: metered lines of tenants with a customer; initech (no customer) is named as skipped.
            let (events, skipped) = try statement.render(.stripeMeterEvents)
            let lines = events.split(separator: "\n").map {
                try! JSONDecoder().decode(JSONValue.self, from: Data($0.utf8))
            }
            #expect(lines.count == 3)
            #expect(lines.allSatisfy { $0["event_name"] == .string("tally_api_calls") })
            #expect(lines.map { $0["payload"]?["value"] } == [.string("100"), .string("50"), .string("7")])
            #expect(
                lines.map { $0["identifier"] }
                    == statement.lines.filter { $0.meter == "api_calls" && $0.tenantSlug != "initech" }.map {
                        .string($0.identifier)
                    })
            // Each event is dated in the last second of its line: inside its plan segment and its period.
            let boundary = BillingPeriod.microseconds(BillingFixtures.date(period, days: 10)) / 1_000_000
            let end = period.endMicroseconds / 1_000_000
            #expect(lines.map { $0["timestamp"] } == [boundary - 1, end - 1, end - 1].map { .number(Double($0)) })
            #expect(skipped.count == 1 && skipped[0].hasPrefix("initech api_calls"))
        }
    }

    @Test(
        "a period still open is marked as such; usage only counts from the log, never twice across a restarted runner")
    func openPeriodAndRestart() async throws {
        try await TestDatabase.withStore { store, _ in
            let tenant = UUID()
            try await store.append(
                [try Fixtures.tenantCreated(tenant, name: "Hooli")], to: .tenant(tenant), tenantID: tenant,
                expected: .noStream)
            let now = Date()
            for round in 0..<3 {
                let runner = BillingFixtures.runner(store)
                for _ in 0..<10 { try await BillingFixtures.usage(store, tenant, calls: 2, at: now) }
                try await store.append(
                    [try Fixtures.runStarted(tenant: tenant)], to: .run(UUID()), tenantID: tenant, expected: .noStream)
                try await Eventually.wait("round \(round)") {
                    try await store.pool.query(
                        "SELECT coalesce(sum(quantity), 0)::int8 FROM billing_usage WHERE meter = 'api_calls'"
                    ).first?.int64(0)
                        == Int64(20 * (round + 1))
                }
                runner.cancel()
                _ = await runner.value
            }
            let runner = BillingFixtures.runner(store)
            defer { runner.cancel() }
            let statement = try await BillingStatement.load(
                period: BillingPeriod(containing: now), plans: BillingFixtures.plans, store: store,
                catchUpTimeout: BillingFixtures.catchUp)
            #expect(!statement.closed)
            #expect(statement.lines.map { "\($0.meter) \($0.quantity)" } == ["api_calls 60", "runs 3"])
        }
    }

    @Test("a statement refuses to read while the billing projection has a parked stream, and says why")
    func notCaughtUp() async throws {
        try await TestDatabase.withStore { store, _ in
            let tenant = UUID()
            try await store.append(
                [try Fixtures.tenantCreated(tenant, name: "Vandelay")], to: .tenant(tenant), tenantID: tenant,
                expected: .noStream)
            // Usage for a tenant that was never created parks that usage stream.
            try await BillingFixtures.usage(store, UUID(), calls: 1, at: Date())
            let runner = BillingFixtures.runner(store)
            defer { runner.cancel() }
            try await Eventually.wait("the stream to be parked") {
                try await !store.parkedStreams(readers: ["billing"]).isEmpty
            }
            await #expect {
                try await BillingStatement.load(
                    period: BillingPeriod(containing: Date()), plans: BillingFixtures.plans, store: store)
            } throws: { error in
                let error = error as? ProjectionsError
                return error?.code == .notCaughtUp && error?.message.contains("never created") == true
            }
        }
    }

    @Test("reconcile reports each kind of mismatch, and a clean period as clean")
    func reconcile() async throws {
        try await TestDatabase.withStore { store, _ in
            let period = BillingFixtures.period
            _ = try await BillingFixtures.history(store, period: period)
            let runner = BillingFixtures.runner(store)
            defer { runner.cancel() }
            let statement = try await BillingFixtures.statement(store, period)
            let start = period.startMicroseconds / 1_000_000
            func line(_ customer: String, _ price: String, _ quantity: Int64, _ amount: Int64) -> StripeInvoiceLine {
                StripeInvoiceLine(
                    customer: customer, price: price, quantity: quantity, amount: amount, currency: "usd",
                    periodStart: start)
            }
            let baseFee = try #require(statement.lines.first { $0.meter == "base_fee" }).amount
            let clean = [
                line("cus_acme", "price_free_calls", 100, 10), line("cus_acme", "price_pro_base", 1, baseFee),
                line("cus_acme", "price_pro_calls", 50, 3), line("cus_globex", "price_free_calls", 7, 1),
                // A line of another period is left out, whatever it says.
                StripeInvoiceLine(
                    customer: "cus_globex", price: "price_free_calls", quantity: 9, amount: 9, currency: "usd",
                    periodStart: start - 86_400),
            ]
            // initech has no customer: its 3 calls (0.3 cent, 0 after rounding) are nothing to invoice.
            let report = Reconciliation(statement: statement, stripe: clean, plans: BillingFixtures.plans)
            #expect(report.isClean, "\(report.rows.filter { $0.status != .match })")
            #expect(report.linesOutsidePeriod == 1)

            var crafted = clean
            crafted[0] = line("cus_acme", "price_free_calls", 90, 9)  // under-billed
            crafted[2] = line("cus_acme", "price_pro_calls", 60, 4)  // over-billed
            crafted.remove(at: 3)  // globex missing in Stripe
            crafted.append(line("cus_unknown", "price_pro_calls", 5, 1))  // unknown customer
            crafted.append(line("cus_acme", "price_retired", 1, 100))  // unknown price
            let mismatched = Reconciliation(statement: statement, stripe: crafted, plans: BillingFixtures.plans)
            #expect(!mismatched.isClean)
            let statuses = Dictionary(
                mismatched.rows.map { ("\($0.tenant) \($0.plan) \($0.meter)", $0.status) },
                uniquingKeysWith: { a, _ in a })
            #expect(statuses["acme free api_calls"] == .underBilled)
            #expect(statuses["acme pro api_calls"] == .overBilled)
            #expect(statuses["acme pro base_fee"] == .match)
            #expect(statuses["globex free api_calls"] == .missingInStripe)
            #expect(statuses["cus_unknown pro api_calls"] == .unknownToTally)
            #expect(statuses["acme ? price price_retired"] == .unknownToTally)
        }
    }

    @Test("the CLI exports and reconciles end to end, with exit codes for clean, mismatched and unreadable input")
    func cli() async throws {
        try await TestDatabase.withStore { store, url in
            let period = BillingFixtures.period
            _ = try await BillingFixtures.history(store, period: period)
            let runner = BillingFixtures.runner(store)
            defer { runner.cancel() }
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("billing-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: scratch) }
            let plansFile = scratch.appendingPathComponent("plans.json").path
            try Data(
                """
                {"plans": [
                  {"name": "free", "keyRequestsPerSecond": 5, "tenantRequestsPerSecond": 10, "unitPriceMicros": {"api_calls": 1000},
                   "stripePriceIds": {"api_calls": "price_free_calls"}},
                  {"name": "pro", "keyRequestsPerSecond": 50, "tenantRequestsPerSecond": 100, "baseFeeMicros": 49000000,
                   "unitPriceMicros": {"api_calls": 500, "runs": 20000, "vendor_credits:prospeo": 10000},
                   "stripePriceIds": {"base_fee": "price_pro_base", "api_calls": "price_pro_calls", "runs": "price_pro_runs",
                                      "vendor_credits:prospeo": "price_pro_prospeo"}}
                ]}
                """.utf8
            ).write(to: URL(fileURLWithPath: plansFile))
            let common = ["--period", period.description, "--plans", plansFile, "--database-url", url]
            // The CLI waits 30 s for the projections, which a loaded two-core machine was seen to need more
            // than: the history is applied first, with the suite's longer deadline.
            _ = try await BillingFixtures.statement(store, period)

            let out = scratch.appendingPathComponent("export.json").path
            let export = try await CLI.run(["billing", "export", "--format", "json", "--out", out] + common)
            #expect(export.status == 0, "\(export.stderr)")
            let document = try JSONDecoder().decode(
                JSONValue.self, from: try Data(contentsOf: URL(fileURLWithPath: out)))
            #expect(document["period"] == .string(period.description))
            #expect(document["closed"] == .bool(false), "the period lies ahead")
            #expect(export.stderr.contains("has not ended"))
            guard case .array(let lines)? = document["lines"] else {
                Issue.record("no lines")
                return
            }
            #expect(lines.count == 5)
            let csv = try await CLI.run(["billing", "export"] + common)
            #expect(csv.status == 0)
            let expected = try await BillingFixtures.statement(store, period).render(.csv).text
            #expect(csv.stdout == expected)

            // A Stripe invoice as the API returns it, matching Tally exactly.
            let baseFee =
                lines.compactMap { line -> Double? in
                    guard line["meter"] == .string("base_fee"), case .number(let amount)? = line["amount"] else {
                        return nil
                    }
                    return amount
                }.first ?? -1
            let start = period.startMicroseconds / 1_000_000
            func invoice(_ customer: String, _ items: [(String, Int, Int)]) -> String {
                let lines = items.map { price, quantity, amount in
                    #"{"amount": \#(amount), "currency": "usd", "quantity": \#(quantity), "period": {"start": \#(start), "end": \#(start + 86_400 * 28)}, "pricing": {"price_details": {"price": "\#(price)"}}}"#
                }
                return
                    #"{"object": "invoice", "customer": "\#(customer)", "currency": "usd", "lines": {"object": "list", "data": [\#(lines.joined(separator: ","))]}}"#
            }
            let cleanJSON = scratch.appendingPathComponent("stripe.json").path
            try Data(
                #"{"object": "list", "data": [\#(invoice("cus_acme", [("price_free_calls", 100, 10), ("price_pro_base", 1, Int(baseFee)), ("price_pro_calls", 50, 3)])), \#(invoice("cus_globex", [("price_free_calls", 7, 1)]))]}"#
                    .utf8
            ).write(to: URL(fileURLWithPath: cleanJSON))
            let clean = try await CLI.run(["billing", "reconcile", "--stripe", cleanJSON, "--format", "json"] + common)
            #expect(clean.status == 0, "\(clean.stdout) \(clean.stderr)")
            let cleanReport = try JSONDecoder().decode(JSONValue.self, from: Data(clean.stdout.utf8))
            #expect(cleanReport["clean"] == .bool(true))

            // The same as a Dashboard-style CSV with one amount off: exit 1 and the row says under-billed.
            let csvFile = scratch.appendingPathComponent("stripe.csv").path
            try Data(
                """
                Customer,Price ID,Quantity,Amount,Currency,Period Start
                cus_acme,price_free_calls,100,0.10,usd,\(start)
                cus_acme,price_pro_base,1,\(String(format: "%.2f", baseFee / 100)),usd,\(start)
                cus_acme,price_pro_calls,50,0.02,usd,\(start)
                cus_globex,price_free_calls,7,0.01,usd,\(start)

                """.utf8
            ).write(to: URL(fileURLWithPath: csvFile))
            let mismatch = try await CLI.run(["billing", "reconcile", "--stripe", csvFile, "--format", "csv"] + common)
            #expect(mismatch.status == 1)
            let rows = mismatch.stdout.split(separator: "\n")
            #expect(
                rows.first
                    == "tenant,stripe_customer_id,plan,meter,currency,tally_quantity,tally_amount,stripe_quantity,stripe_amount,status,note"
            )
            #expect(rows.contains { $0.hasPrefix("acme,cus_acme,pro,api_calls,usd,50,3,50,2,under-billed") })
            // acme's free calls and base fee, globex, and initech (nothing to invoice, no line expected).
            #expect(rows.filter { $0.contains(",match,") }.count == 4)

            let broken = scratch.appendingPathComponent("broken.csv").path
            try Data("Customer,Quantity,Amount,Currency\ncus_acme,ten,1,usd\n".utf8).write(
                to: URL(fileURLWithPath: broken))
            let unreadable = try await CLI.run(["billing", "reconcile", "--stripe", broken] + common)
            #expect(unreadable.status == 65)
            #expect(unreadable.stderr.contains("line 2: quantity \"ten\" is not a whole number"))

            let badPeriod = try await CLI.run(["billing", "export", "--period", "2026-13", "--database-url", url])
            #expect(badPeriod.status == 64)
            let badFormat = try await CLI.run(["billing", "export", "--format", "xml"] + common)
            #expect(badFormat.status == 64)
            let earlyMeterEvents = try await CLI.run(["billing", "export", "--format", "stripe-meter-events"] + common)
            #expect(earlyMeterEvents.status == 64 && earlyMeterEvents.stderr.contains("has not ended"))
        }
    }
}
