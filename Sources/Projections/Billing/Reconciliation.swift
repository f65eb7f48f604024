import Events
import Foundation

/// One invoice line item as Stripe exported it, reduced to what reconciliation compares.
public struct StripeInvoiceLine: Sendable, Hashable {
    public var customer: String
    public var price: String?
    public var quantity: Int64
    /// In the currency's minor unit.
    public var amount: Int64
    public var currency: String
    /// Seconds since 1970, when the export gives them.
    public var periodStart: Int64?

    public init(customer: String, price: String?, quantity: Int64, amount: Int64, currency: String, periodStart: Int64?)
    {
        self.customer = customer
        self.price = price
        self.quantity = quantity
        self.amount = amount
        self.currency = currency
        self.periodStart = periodStart
    }

    /// Reads Stripe invoice line items from a file: JSON (a list of invoices, as the API's `GET /v1/invoices`
    /// returns them, with their `lines`; or a bare array of them) or CSV (a header row naming `customer`,
    /// `price`, `quantity`, `amount`, `currency` and optionally `period_start`). Errors name the line or the
    /// JSON path at fault.
    public static func read(contentsOf path: String) throws -> [StripeInvoiceLine] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ProjectionsError(.invalidInput, "cannot read the Stripe file \(path)")
        }
        let text = String(decoding: data, as: UTF8.self)
        do {
            if let first = text.unicodeScalars.first(where: { !$0.properties.isWhitespace }),
                first == "{" || first == "["
            {
                return try parseJSON(data)
            }
            return try parseCSV(text)
        } catch let error as ProjectionsError {
            throw ProjectionsError(.invalidInput, "\(path): \(error.message)")
        }
    }

    static func parseJSON(_ data: Data) throws -> [StripeInvoiceLine] {
        let root: JSONValue
        do {
            root = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw ProjectionsError(.invalidInput, "not valid JSON")
        }
        let invoices: [JSONValue]
        if case .array(let data)? = root["data"] {
            invoices = data
        } else if case .array(let array) = root {
            invoices = array
        } else {
            throw ProjectionsError(.invalidInput, "expected a list of invoices ({\"data\": [...]} or [...])")
        }
        var lines: [StripeInvoiceLine] = []
        for (index, invoice) in invoices.enumerated() {
            let at = "data[\(index)]"
            guard case .object = invoice else { throw ProjectionsError(.invalidInput, "\(at): not an object") }
            guard let customer = Self.id(invoice["customer"]) else {
                throw ProjectionsError(.invalidInput, "\(at).customer: missing")
            }
            guard case .array(let lineList)? = invoice["lines"]?["data"] else {
                throw ProjectionsError(
                    .invalidInput, "\(at).lines.data: missing; export the invoices with their line items")
            }
            let invoiceCurrency = Self.string(invoice["currency"])
            for (lineIndex, line) in lineList.enumerated() {
                let lineAt = "\(at).lines.data[\(lineIndex)]"
                guard case .object = line else { throw ProjectionsError(.invalidInput, "\(lineAt): not an object") }
                guard let amount = Self.integer(line["amount"]) else {
                    throw ProjectionsError(.invalidInput, "\(lineAt).amount: must be a whole number of minor units")
                }
                guard let currency = Self.string(line["currency"]) ?? invoiceCurrency else {
                    throw ProjectionsError(.invalidInput, "\(lineAt).currency: missing")
                }
                // Older API versions put the price at `price`, newer ones at `pricing.price_details.price`.
                let price = Self.id(line["price"]) ?? Self.id(line["pricing"]?["price_details"]?["price"])
                lines.append(
                    StripeInvoiceLine(
                        customer: customer, price: price, quantity: Self.integer(line["quantity"]) ?? 0, amount: amount,
                        currency: currency.lowercased(), periodStart: Self.integer(line["period"]?["start"])))
            }
        }
        return lines
    }

    static func parseCSV(_ text: String) throws -> [StripeInvoiceLine] {
        let rows = try CSV.parse(text)
        guard let header = rows.first else { throw ProjectionsError(.invalidInput, "the file is empty") }
        let names = header.map {
            $0.lowercased().trimmingCharacters(in: .whitespaces).replacingOccurrences(of: " ", with: "_")
        }
        func column(_ aliases: [String], required: Bool) throws -> Int? {
            if let index = names.firstIndex(where: { aliases.contains($0) }) { return index }
            if required {
                throw ProjectionsError(
                    .invalidInput,
                    "line 1: no \(aliases[0]) column (accepted names: \(aliases.joined(separator: ", ")))")
            }
            return nil
        }
        let customerColumn = try column(["customer", "customer_id"], required: true)!
        let priceColumn = try column(["price", "price_id", "plan", "plan_id"], required: false)
        let quantityColumn = try column(["quantity"], required: true)!
        let amountColumn = try column(["amount", "line_item_amount"], required: true)!
        let currencyColumn = try column(["currency"], required: true)!
        let periodColumn = try column(["period_start", "line_item_period_start"], required: false)
        var lines: [StripeInvoiceLine] = []
        for (offset, row) in rows.dropFirst().enumerated() {
            let lineNumber = offset + 2
            func field(_ index: Int) -> String {
                index < row.count ? row[index].trimmingCharacters(in: .whitespaces) : ""
            }
            let currency = field(currencyColumn).lowercased()
            guard !currency.isEmpty else {
                throw ProjectionsError(.invalidInput, "line \(lineNumber): currency is empty")
            }
            let customer = field(customerColumn)
            guard !customer.isEmpty else {
                throw ProjectionsError(.invalidInput, "line \(lineNumber): customer is empty")
            }
            let quantityText = field(quantityColumn)
            guard let quantity = quantityText.isEmpty ? 0 : Int64(quantityText) else {
                throw ProjectionsError(
                    .invalidInput, "line \(lineNumber): quantity \"\(quantityText)\" is not a whole number")
            }
            let amountText = field(amountColumn)
            guard let amount = Self.minorUnits(amountText, currency: currency) else {
                throw ProjectionsError(.invalidInput, "line \(lineNumber): amount \"\(amountText)\" is not an amount")
            }
            var periodStart: Int64? = nil
            if let periodColumn, !field(periodColumn).isEmpty {
                guard let seconds = Self.seconds(field(periodColumn)) else {
                    throw ProjectionsError(
                        .invalidInput,
                        "line \(lineNumber): period_start \"\(field(periodColumn))\" is neither Unix seconds nor ISO 8601"
                    )
                }
                periodStart = seconds
            }
            let price = priceColumn.map(field).flatMap { $0.isEmpty ? nil : $0 }
            lines.append(
                StripeInvoiceLine(
                    customer: customer, price: price, quantity: quantity, amount: amount, currency: currency,
                    periodStart: periodStart))
        }
        return lines
    }

    private static func string(_ value: JSONValue?) -> String? {
        guard case .string(let text)? = value, !text.isEmpty else { return nil }
        return text
    }

    /// A string id, or the `id` of an expanded object.
    private static func id(_ value: JSONValue?) -> String? {
        string(value) ?? string(value?["id"])
    }

    private static func integer(_ value: JSONValue?) -> Int64? {
        guard case .number(let number)? = value else { return nil }
        return Int64(exactly: number)
    }

    /// A whole number is minor units (as the API and Sigma write amounts); a number with a decimal point is
    /// major units (as the Dashboard writes them).
    static func minorUnits(_ text: String, currency: String) -> Int64? {
        guard let dot = text.firstIndex(of: ".") else { return Int64(text) }
        let negative = text.hasPrefix("-")
        let whole = text[text.index(text.startIndex, offsetBy: negative ? 1 : 0)..<dot]
        var fraction = String(text[text.index(after: dot)...])
        let exponent = Currency.exponent(currency)
        guard fraction.count <= exponent, fraction.allSatisfy(\.isASCII),
            let wholeValue = Int64(whole.isEmpty ? "0" : whole)
        else {
            return nil
        }
        fraction += String(repeating: "0", count: exponent - fraction.count)
        guard let fractionValue = fraction.isEmpty ? 0 : Int64(fraction) else { return nil }
        var scale: Int64 = 1
        for _ in 0..<exponent { scale *= 10 }
        let value = wholeValue * scale + fractionValue
        return negative ? -value : value
    }

    private static func seconds(_ text: String) -> Int64? {
        if let seconds = Int64(text) { return seconds }
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return Int64(date.timeIntervalSince1970) }
        formatter.formatOptions = [.withFullDate]
        if let date = formatter.date(from: text) { return Int64(date.timeIntervalSince1970) }
        return nil
    }
}

/// Our statement against Stripe's invoice lines for one period, per tenant × plan × meter.
public struct Reconciliation: Sendable {
    public enum Status: String, Sendable, Codable, Hashable {
        case match
        case underBilled = "under-billed"
        case overBilled = "over-billed"
        case missingInStripe = "missing in Stripe"
        case unknownToTally = "unknown to Tally"
    }

    public struct Row: Sendable, Codable, Hashable {
        /// The tenant's slug, or the Stripe customer when no tenant is linked to it.
        public var tenant: String
        public var stripeCustomerID: String?
        public var plan: String
        public var meter: String
        public var currency: String
        public var tallyQuantity: Int64
        /// Minor units.
        public var tallyAmount: Int64
        public var stripeQuantity: Int64
        /// Minor units.
        public var stripeAmount: Int64
        public var status: Status
        /// Why, for anything but a match.
        public var note: String?

        enum CodingKeys: String, CodingKey {
            case tenant, stripeCustomerID = "stripeCustomerId", plan, meter, currency, tallyQuantity, tallyAmount,
                stripeQuantity,
                stripeAmount, status, note
        }
    }

    public var period: BillingPeriod
    public var rows: [Row]
    /// Stripe lines left out because their period starts outside this one.
    public var linesOutsidePeriod: Int

    /// Whether every row matches.
    public var isClean: Bool { rows.allSatisfy { $0.status == .match } }

    /// Compares `statement` with `stripe`. Stripe lines map to a tenant by their customer (the tenant linked
    /// to it in Tally) and to a plan and meter by their price (the plans' `stripePriceIds`).
    public init(statement: BillingStatement, stripe: [StripeInvoiceLine], plans: Plans) {
        let customers = statement.tenantsByStripeCustomer
        struct Key: Hashable {
            var tenant: String
            var plan: String
            var meter: String
        }
        struct Side {
            var customer: String?
            var currency = ""
            var tallyQuantity: Int64 = 0
            var tallyAmount: Int64 = 0
            var stripeQuantity: Int64 = 0
            var stripeAmount: Int64 = 0
            var tallyLines = 0
            var stripeLines = 0
            var note: String?
        }
        var sides: [Key: Side] = [:]
        for line in statement.lines {
            var side = sides[Key(tenant: line.tenantSlug, plan: line.plan, meter: line.meter), default: Side()]
            side.customer = line.stripeCustomerID
            side.currency = line.currency
            side.tallyQuantity += line.quantity
            side.tallyAmount += line.amount
            side.tallyLines += 1
            sides[Key(tenant: line.tenantSlug, plan: line.plan, meter: line.meter)] = side
        }
        let periodStart = statement.period.startMicroseconds / 1_000_000
        let periodEnd = statement.period.endMicroseconds / 1_000_000
        var outside = 0
        for line in stripe {
            if let start = line.periodStart, start < periodStart || start >= periodEnd {
                outside += 1
                continue
            }
            let owner = line.price.flatMap { plans.owner(ofStripePrice: $0) }
            let key = Key(
                tenant: customers[line.customer] ?? line.customer, plan: owner?.plan.name ?? "?",
                meter: owner?.meter.description ?? (line.price.map { "price \($0)" } ?? "no price"))
            var side = sides[key, default: Side()]
            side.customer = line.customer
            if side.currency.isEmpty { side.currency = line.currency }
            side.stripeQuantity += line.quantity
            side.stripeAmount += line.amount
            side.stripeLines += 1
            if customers[line.customer] == nil {
                side.note = "no tenant is linked to Stripe customer \(line.customer)"
            } else if owner == nil {
                side.note = line.price.map { "price \($0) is in no plan of the plans file" } ?? "the line has no price"
            } else if line.currency != side.currency {
                side.note = "Stripe invoiced in \(line.currency), the plan prices in \(side.currency)"
            }
            sides[key] = side
        }
        rows = sides.map { key, side in
            let status: Status
            var note = side.note
            if side.stripeLines == 0 {
                status = side.tallyAmount == 0 ? .match : .missingInStripe
                if status == .missingInStripe { note = "Stripe has no line for this meter" }
            } else if side.tallyLines == 0 {
                status = side.stripeAmount == 0 && side.stripeQuantity == 0 ? .match : .unknownToTally
                if status == .unknownToTally, note == nil { note = "Tally has no usage for this meter in the period" }
            } else if note != nil {
                status = .unknownToTally
            } else if side.stripeAmount < side.tallyAmount
                || (side.stripeAmount == side.tallyAmount && side.stripeQuantity < side.tallyQuantity)
            {
                status = .underBilled
            } else if side.stripeAmount > side.tallyAmount || side.stripeQuantity > side.tallyQuantity {
                status = .overBilled
            } else {
                status = .match
            }
            return Row(
                tenant: key.tenant, stripeCustomerID: side.customer, plan: key.plan, meter: key.meter,
                currency: side.currency,
                tallyQuantity: side.tallyQuantity, tallyAmount: side.tallyAmount, stripeQuantity: side.stripeQuantity,
                stripeAmount: side.stripeAmount, status: status, note: status == .match ? nil : note)
        }.sorted { ($0.tenant, $0.plan, $0.meter) < ($1.tenant, $1.plan, $1.meter) }
        period = statement.period
        linesOutsidePeriod = outside
    }

    /// The report's column names.
    public static let columns = [
        "tenant", "stripe_customer_id", "plan", "meter", "currency", "tally_quantity", "tally_amount",
        "stripe_quantity",
        "stripe_amount", "status", "note",
    ]

    /// The rows as text cells, in the order of `columns`.
    public var cells: [[String]] {
        rows.map {
            [
                $0.tenant, $0.stripeCustomerID ?? "", $0.plan, $0.meter, $0.currency, String($0.tallyQuantity),
                String($0.tallyAmount),
                String($0.stripeQuantity), String($0.stripeAmount), $0.status.rawValue, $0.note ?? "",
            ]
        }
    }

    /// The report as CSV with a header row.
    public func renderCSV() -> String {
        CSV.line(Self.columns) + cells.map(CSV.line).joined()
    }

    /// The report as JSON.
    public func renderJSON() throws -> String {
        struct Document: Encodable {
            let period: String
            let clean: Bool
            let linesOutsidePeriod: Int
            let rows: [Row]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return String(
            decoding: try encoder.encode(
                Document(period: period.description, clean: isClean, linesOutsidePeriod: linesOutsidePeriod, rows: rows)
            ), as: UTF8.self)
            + "\n"
    }
}
