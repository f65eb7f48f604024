public import Events
public import Foundation

/// What billing counts: `api_calls`, `runs`, `vendor_calls:<vendor>`, `vendor_credits:<vendor>`, and the
/// plan's `base_fee` (one per period, prorated across plan segments). Usage counters and billing use the
/// same names.
public enum Meter: Hashable, Sendable, Comparable, CustomStringConvertible {
    case apiCalls
    case runs
    case vendorCalls(Vendor)
    case vendorCredits(Vendor)
    case baseFee

    /// Every meter, in the order billing lists them.
    public static let all: [Meter] =
        [.baseFee, .apiCalls, .runs] + Vendor.allCases.map { .vendorCalls($0) }
        + Vendor.allCases.map { .vendorCredits($0) }

    public init?(_ name: String) {
        switch name {
        case "api_calls": self = .apiCalls
        case "runs": self = .runs
        case "base_fee": self = .baseFee
        default:
            if name.hasPrefix("vendor_calls:"), let vendor = Vendor(rawValue: String(name.dropFirst(13))) {
                self = .vendorCalls(vendor)
            } else if name.hasPrefix("vendor_credits:"), let vendor = Vendor(rawValue: String(name.dropFirst(15))) {
                self = .vendorCredits(vendor)
            } else {
                return nil
            }
        }
    }

    public var description: String {
        switch self {
        case .apiCalls: "api_calls"
        case .runs: "runs"
        case .baseFee: "base_fee"
        case .vendorCalls(let vendor): "vendor_calls:\(vendor.rawValue)"
        case .vendorCredits(let vendor): "vendor_credits:\(vendor.rawValue)"
        }
    }

    /// The name a Stripe meter would carry: `tally_` plus the meter with `:` written `_`.
    public var stripeEventName: String { "tally_" + description.replacingOccurrences(of: ":", with: "_") }

    public static func < (lhs: Meter, rhs: Meter) -> Bool {
        all.firstIndex(of: lhs)! < all.firstIndex(of: rhs)!
    }
}

/// A plan: the limits the API enforces and the prices billing applies. Plans are configuration
/// (`TALLY_PLANS_FILE`), not events; a tenant's plan is a name, changed by `PlanChanged`.
public struct Plan: Sendable, Hashable {
    public var name: String
    /// Requests per second one API key may make.
    public var keyRequestsPerSecond: Int
    /// Requests per second all of a tenant's keys may make together.
    public var tenantRequestsPerSecond: Int
    /// API calls per billing period; nil is unlimited.
    public var monthlyAPICalls: Int64?
    /// Runs started per billing period; nil is unlimited.
    public var monthlyRuns: Int64?
    /// Server-Sent Event streams one API key may hold open at once (per API instance).
    public var keyStreams: Int
    /// Server-Sent Event streams all of a tenant's keys may hold open at once (per API instance).
    public var tenantStreams: Int
    /// ISO 4217 currency of the prices, lower case as Stripe writes it.
    public var currency: String
    /// The fixed fee per billing period in millionths of the currency's major unit; a plan segment shorter
    /// than the period pays its share by the second.
    public var baseFeeMicros: Int64
    /// Price per unit in millionths of the currency's major unit, by meter. A meter without a price is
    /// counted but billed at zero.
    public var unitPriceMicros: [Meter: Int64]
    /// Stripe price id by meter (`base_fee` included): the export names them, the reconciliation maps
    /// invoice lines back to meters with them, and Stripe webhooks map a subscription to its plan.
    public var stripePriceIDs: [Meter: String]

    public init(
        name: String, keyRequestsPerSecond: Int, tenantRequestsPerSecond: Int, monthlyAPICalls: Int64?,
        monthlyRuns: Int64?,
        keyStreams: Int = 5, tenantStreams: Int = 20, currency: String = "usd", baseFeeMicros: Int64 = 0,
        unitPriceMicros: [Meter: Int64] = [:], stripePriceIDs: [Meter: String] = [:]
    ) {
        self.name = name
        self.keyStreams = keyStreams
        self.tenantStreams = tenantStreams
        self.keyRequestsPerSecond = keyRequestsPerSecond
        self.tenantRequestsPerSecond = tenantRequestsPerSecond
        self.monthlyAPICalls = monthlyAPICalls
        self.monthlyRuns = monthlyRuns
        self.currency = currency
        self.baseFeeMicros = baseFeeMicros
        self.unitPriceMicros = unitPriceMicros
        self.stripePriceIDs = stripePriceIDs
    }

    /// The price of one unit of `meter`, zero when the plan does not price it.
    public func unitPrice(_ meter: Meter) -> Int64 {
        meter == .baseFee ? baseFeeMicros : unitPriceMicros[meter] ?? 0
    }
}

/// The plans a deployment offers, by name.
public struct Plans: Sendable {
    public private(set) var all: [String: Plan]
    private var byStripePrice: [String: (plan: String, meter: Meter)]

    /// `free`, `pro` and `enterprise`, used when no plans file is given.
    public static let defaults = try! Plans([
        Plan(
            name: "free", keyRequestsPerSecond: 5, tenantRequestsPerSecond: 10, monthlyAPICalls: 10_000,
            monthlyRuns: 500),
        Plan(
            name: "pro", keyRequestsPerSecond: 50, tenantRequestsPerSecond: 100, monthlyAPICalls: 1_000_000,
            monthlyRuns: 50_000,
            keyStreams: 10, tenantStreams: 50, baseFeeMicros: 49_000_000,
            unitPriceMicros: [
                .apiCalls: 100, .runs: 20_000, .vendorCredits(.prospeo): 10_000, .vendorCredits(.findymail): 10_000,
                .vendorCredits(.zerobounce): 8_000,
            ]),
        Plan(
            name: "enterprise", keyRequestsPerSecond: 500, tenantRequestsPerSecond: 2_000, monthlyAPICalls: nil,
            monthlyRuns: nil,
            keyStreams: 20, tenantStreams: 200, baseFeeMicros: 499_000_000,
            unitPriceMicros: [
                .apiCalls: 50, .runs: 10_000, .vendorCredits(.prospeo): 5_000, .vendorCredits(.findymail): 5_000,
                .vendorCredits(.zerobounce): 4_000,
            ]),
    ])

    /// Validates `plans`; the error names the plan and the field at fault.
    public init(_ plans: [Plan]) throws {
        var all: [String: Plan] = [:]
        var byStripePrice: [String: (plan: String, meter: Meter)] = [:]
        for (index, plan) in plans.enumerated() {
            let at = "plans[\(index)]"
            guard Self.isValidName(plan.name) else {
                throw PlansError("\(at).name: \"\(plan.name)\" must be 1 to 40 of a-z, 0-9, - and _")
            }
            guard all[plan.name] == nil else { throw PlansError("\(at).name: plan \(plan.name) is defined twice") }
            guard plan.keyRequestsPerSecond > 0 else {
                throw PlansError("\(at).keyRequestsPerSecond: must be positive")
            }
            guard plan.tenantRequestsPerSecond > 0 else {
                throw PlansError("\(at).tenantRequestsPerSecond: must be positive")
            }
            guard (plan.monthlyAPICalls ?? 0) >= 0 else {
                throw PlansError("\(at).monthlyApiCalls: cannot be negative")
            }
            guard (plan.monthlyRuns ?? 0) >= 0 else { throw PlansError("\(at).monthlyRuns: cannot be negative") }
            guard plan.currency.utf8.count == 3, plan.currency.utf8.allSatisfy({ (0x61...0x7a).contains($0) }) else {
                throw PlansError("\(at).currency: must be a lower-case ISO 4217 code such as usd")
            }
            guard plan.baseFeeMicros >= 0 else { throw PlansError("\(at).baseFeeMicros: cannot be negative") }
            guard plan.baseFeeMicros <= 1_000_000_000_000 else { throw PlansError("\(at).baseFeeMicros: is too large") }
            for (meter, price) in plan.unitPriceMicros.sorted(by: { $0.key < $1.key }) {
                guard meter != .baseFee else {
                    throw PlansError("\(at).unitPriceMicros.base_fee: the base fee is baseFeeMicros, not a unit price")
                }
                guard price >= 0 else { throw PlansError("\(at).unitPriceMicros.\(meter): cannot be negative") }
                // A quantity beyond this would overflow the amount in micros.
                guard price <= 1_000_000_000_000 else {
                    throw PlansError("\(at).unitPriceMicros.\(meter): is too large")
                }
            }
            for (meter, price) in plan.stripePriceIDs.sorted(by: { $0.key < $1.key }) {
                guard !price.isEmpty, price.utf8.count <= 255, price.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
                    throw PlansError("\(at).stripePriceIds.\(meter): must be a Stripe price id such as price_123")
                }
                if let owner = byStripePrice[price] {
                    throw PlansError(
                        "\(at).stripePriceIds.\(meter): \(price) is already the price of \(owner.plan) \(owner.meter)")
                }
                byStripePrice[price] = (plan.name, meter)
            }
            all[plan.name] = plan
        }
        guard !all.isEmpty else { throw PlansError("plans: at least one plan is needed") }
        self.all = all
        self.byStripePrice = byStripePrice
    }

    /// Reads `{"plans": [...]}` from a JSON file; an error names the file and the field at fault.
    public init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PlansError("cannot read the plans file \(path)")
        }
        do {
            try self.init(json: data)
        } catch let error as PlansError {
            throw PlansError("\(path): \(error.description)")
        }
    }

    /// Parses and validates a plans document.
    public init(json data: Data) throws {
        let document: JSONValue
        do {
            document = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw PlansError("not valid JSON")
        }
        guard case .object(let root) = document else {
            throw PlansError("the document must be an object {\"plans\": [...]}")
        }
        if let unknown = root.keys.sorted().first(where: { $0 != "plans" }) {
            throw PlansError("\(unknown): unknown field")
        }
        guard case .array(let items)? = root["plans"] else { throw PlansError("plans: must be an array") }
        try self.init(try items.enumerated().map { try Self.plan(from: $0.element, at: "plans[\($0.offset)]") })
    }

    public subscript(name: String) -> Plan? { all[name] }

    /// The plan and meter a Stripe price id belongs to.
    public func owner(ofStripePrice price: String) -> (plan: Plan, meter: Meter)? {
        guard let owner = byStripePrice[price], let plan = all[owner.plan] else { return nil }
        return (plan, owner.meter)
    }

    public static func isValidName(_ name: String) -> Bool {
        (1...40).contains(name.utf8.count)
            && name.utf8.allSatisfy {
                (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2d || $0 == 0x5f
            }
    }

    private static let fields: Set<String> = [
        "name", "keyRequestsPerSecond", "tenantRequestsPerSecond", "monthlyApiCalls", "monthlyRuns", "keyStreams",
        "tenantStreams", "currency",
        "baseFeeMicros", "unitPriceMicros", "stripePriceIds",
    ]

    private static func plan(from value: JSONValue, at path: String) throws -> Plan {
        guard case .object(let object) = value else { throw PlansError("\(path): must be an object") }
        if let unknown = object.keys.sorted().first(where: { !fields.contains($0) }) {
            throw PlansError("\(path).\(unknown): unknown field")
        }
        func integer(_ field: String, required: Bool) throws -> Int64? {
            switch object[field] {
            case nil, .null?:
                if required { throw PlansError("\(path).\(field): is required") }
                return nil
            case .number(let number)?:
                guard let exact = Int64(exactly: number) else {
                    throw PlansError("\(path).\(field): must be a whole number")
                }
                return exact
            default:
                throw PlansError("\(path).\(field): must be a number")
            }
        }
        guard case .string(let name)? = object["name"] else { throw PlansError("\(path).name: must be a string") }
        let currency: String
        switch object["currency"] {
        case nil: currency = "usd"
        case .string(let text)?: currency = text
        default: throw PlansError("\(path).currency: must be a string")
        }
        func meters<T>(_ field: String, _ convert: (JSONValue, String) throws -> T) throws -> [Meter: T] {
            guard let value = object[field] else { return [:] }
            guard case .object(let entries) = value else { throw PlansError("\(path).\(field): must be an object") }
            var result: [Meter: T] = [:]
            for (key, entry) in entries.sorted(by: { $0.key < $1.key }) {
                guard let meter = Meter(key) else {
                    throw PlansError(
                        "\(path).\(field).\(key): unknown meter (api_calls, runs, base_fee, vendor_calls:<vendor>, vendor_credits:<vendor>)"
                    )
                }
                result[meter] = try convert(entry, "\(path).\(field).\(key)")
            }
            return result
        }
        let prices = try meters("unitPriceMicros") { entry, at -> Int64 in
            guard case .number(let number) = entry, let exact = Int64(exactly: number) else {
                throw PlansError("\(at): must be a whole number of micros")
            }
            return exact
        }
        let stripe = try meters("stripePriceIds") { entry, at -> String in
            guard case .string(let text) = entry else { throw PlansError("\(at): must be a string") }
            return text
        }
        guard let keyRPS = try integer("keyRequestsPerSecond", required: true), let keyRate = Int(exactly: keyRPS),
            let tenantRPS = try integer("tenantRequestsPerSecond", required: true),
            let tenantRate = Int(exactly: tenantRPS)
        else { throw PlansError("\(path): requests per second are required") }
        func streams(_ field: String, default value: Int) throws -> Int {
            guard let given = try integer(field, required: false) else { return value }
            guard (0...10_000).contains(given) else { throw PlansError("\(path).\(field): must be from 0 to 10000") }
            return Int(given)
        }
        return Plan(
            name: name, keyRequestsPerSecond: keyRate, tenantRequestsPerSecond: tenantRate,
            monthlyAPICalls: try integer("monthlyApiCalls", required: false),
            monthlyRuns: try integer("monthlyRuns", required: false),
            keyStreams: try streams("keyStreams", default: 5), tenantStreams: try streams("tenantStreams", default: 20),
            currency: currency, baseFeeMicros: try integer("baseFeeMicros", required: false) ?? 0,
            unitPriceMicros: prices,
            stripePriceIDs: stripe)
    }
}

/// A plans document that cannot be used; the description names the field at fault.
public struct PlansError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
