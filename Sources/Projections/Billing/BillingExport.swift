import Events
import Foundation

/// The shapes `tally billing export` writes.
public enum BillingExportFormat: String, CaseIterable, Sendable {
    case csv
    case json
    /// JSON lines for Stripe's meter events API, one per metered line.
    case stripeMeterEvents = "stripe-meter-events"
}

extension BillingStatement {
    /// The statement in `format`, and a sentence for each line that `stripe-meter-events` had to leave out
    /// (a tenant without a Stripe customer). The same statement always renders to the same bytes.
    public func render(_ format: BillingExportFormat) throws -> (text: String, skipped: [String]) {
        switch format {
        case .csv:
            return (renderCSV(), [])
        case .json:
            return (try renderJSON(), [])
        case .stripeMeterEvents:
            return try renderMeterEvents()
        }
    }

    static let csvColumns = [
        "identifier", "period", "tenant_id", "tenant_slug", "stripe_customer_id", "plan", "meter", "line_start",
        "line_end",
        "quantity", "unit_price_micros", "amount_micros", "amount", "currency", "stripe_price_id",
    ]

    private func renderCSV() -> String {
        var text = CSV.line(Self.csvColumns)
        for line in lines {
            text += CSV.line([
                line.identifier, line.period, line.tenantID.lowercased, line.tenantSlug, line.stripeCustomerID ?? "",
                line.plan, line.meter,
                line.lineStart, line.lineEnd, String(line.quantity), String(line.unitPriceMicros),
                String(line.amountMicros),
                String(line.amount), line.currency, line.stripePriceID ?? "",
            ])
        }
        return text
    }

    private func renderJSON() throws -> String {
        struct Document: Encodable {
            let period: String
            let periodStart: String
            let periodEnd: String
            let closed: Bool
            let lines: [BillingLine]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let document = Document(
            period: period.description, periodStart: BillingPeriod.iso8601(microseconds: period.startMicroseconds),
            periodEnd: BillingPeriod.iso8601(microseconds: period.endMicroseconds), closed: closed, lines: lines)
        return String(decoding: try encoder.encode(document), as: UTF8.self) + "\n"
    }

    private func renderMeterEvents() throws -> (text: String, skipped: [String]) {
        struct Payload: Encodable {
            let stripe_customer_id: String
            let value: String
        }
        struct MeterEvent: Encodable {
            let event_name: String
            let identifier: String
            let payload: Payload
            let timestamp: Int64
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var text = ""
        var skipped: [String] = []
        for line in lines where line.meter != Meter.baseFee.description && line.quantity > 0 {
            guard let customer = line.stripeCustomerID, let meter = Meter(line.meter) else {
                skipped.append("\(line.tenantSlug) \(line.meter) \(line.lineStart): the tenant has no Stripe customer")
                continue
            }
            // The last whole second the line covers: inside its plan segment and its period.
            let timestamp = (line.endMicroseconds - 1) / 1_000_000
            let event = MeterEvent(
                event_name: meter.stripeEventName, identifier: line.identifier,
                payload: Payload(stripe_customer_id: customer, value: String(line.quantity)), timestamp: timestamp)
            text += String(decoding: try encoder.encode(event), as: UTF8.self) + "\n"
        }
        return (text, skipped)
    }
}

/// RFC 4180 lines: a field is quoted when it holds a comma, a quote or a line break.
package enum CSV {
    package static func line(_ fields: [String]) -> String {
        fields.map { field in
            field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" })
                ? "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : field
        }.joined(separator: ",") + "\n"
    }

    /// Parses a whole CSV document into rows of fields; throws naming the line of an unterminated quote.
    package static func parse(_ text: String) throws -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var field = ""
        var quoted = false
        var lineNumber = 1
        var iterator = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        func next() -> Unicode.Scalar? {
            if let scalar = pending {
                pending = nil
                return scalar
            }
            return iterator.next()
        }
        while let scalar = next() {
            if quoted {
                if scalar == "\"" {
                    if let following = next() {
                        if following == "\"" {
                            field.unicodeScalars.append("\"")
                        } else {
                            quoted = false
                            pending = following
                        }
                    } else {
                        quoted = false
                    }
                } else {
                    if scalar == "\n" { lineNumber += 1 }
                    field.unicodeScalars.append(scalar)
                }
                continue
            }
            switch scalar {
            case "\"" where field.isEmpty:
                quoted = true
            case ",":
                row.append(field)
                field = ""
            case "\r":
                continue
            case "\n":
                row.append(field)
                field = ""
                if row != [""] { rows.append(row) }
                row = []
                lineNumber += 1
            default:
                field.unicodeScalars.append(scalar)
            }
        }
        if quoted { throw ProjectionsError(.invalidInput, "line \(lineNumber): a quoted field is never closed") }
        row.append(field)
        if row != [""] { rows.append(row) }
        return rows
    }
}
