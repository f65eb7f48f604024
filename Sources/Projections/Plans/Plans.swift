import Foundation

/// A plan: the limits the API enforces and the prices billing applies. Plans are configuration
/// (`TALLY_PLANS_FILE`), not events; a tenant's plan is a name, changed by `PlanChanged`.
public struct Plan: Codable, Sendable, Hashable {
    public var name: String
    /// Requests per second one API key may make.
    public var keyRequestsPerSecond: Int
    /// Requests per second all of a tenant's keys may make together.
    public var tenantRequestsPerSecond: Int
    /// API calls per billing period; nil is unlimited.
    public var monthlyAPICalls: Int64?
    /// Runs started per billing period; nil is unlimited.
    public var monthlyRuns: Int64?
    /// ISO 4217 currency of the prices, lower case as Stripe writes it.
    public var currency: String
    /// Price per unit in millionths of the currency's major unit, by meter (`api_calls`, `runs`,
    /// `vendor_credits:prospeo`, ...). A meter without a price is not billed.
    public var unitPriceMicros: [String: Int64]
    /// Stripe price id by meter, for the export.
    public var stripePriceIDs: [String: String]

    public init(
        name: String, keyRequestsPerSecond: Int, tenantRequestsPerSecond: Int, monthlyAPICalls: Int64?, monthlyRuns: Int64?,
        currency: String = "usd", unitPriceMicros: [String: Int64] = [:], stripePriceIDs: [String: String] = [:]
    ) {
        self.name = name
        self.keyRequestsPerSecond = keyRequestsPerSecond
        self.tenantRequestsPerSecond = tenantRequestsPerSecond
        self.monthlyAPICalls = monthlyAPICalls
        self.monthlyRuns = monthlyRuns
        self.currency = currency
        self.unitPriceMicros = unitPriceMicros
        self.stripePriceIDs = stripePriceIDs
    }

    enum CodingKeys: String, CodingKey {
        case name, keyRequestsPerSecond, tenantRequestsPerSecond, monthlyAPICalls = "monthlyApiCalls", monthlyRuns, currency,
            unitPriceMicros, stripePriceIDs = "stripePriceIds"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        keyRequestsPerSecond = try container.decode(Int.self, forKey: .keyRequestsPerSecond)
        tenantRequestsPerSecond = try container.decode(Int.self, forKey: .tenantRequestsPerSecond)
        monthlyAPICalls = try container.decodeIfPresent(Int64.self, forKey: .monthlyAPICalls)
        monthlyRuns = try container.decodeIfPresent(Int64.self, forKey: .monthlyRuns)
        currency = try container.decodeIfPresent(String.self, forKey: .currency) ?? "usd"
        unitPriceMicros = try container.decodeIfPresent([String: Int64].self, forKey: .unitPriceMicros) ?? [:]
        stripePriceIDs = try container.decodeIfPresent([String: String].self, forKey: .stripePriceIDs) ?? [:]
    }
}

/// The plans a deployment offers, by name.
public struct Plans: Sendable {
    public private(set) var all: [String: Plan]

    /// `free`, `pro` and `enterprise`, used when no plans file is given.
    public static let defaults = try! Plans([
        Plan(
            name: "free", keyRequestsPerSecond: 5, tenantRequestsPerSecond: 10, monthlyAPICalls: 10_000, monthlyRuns: 500,
            unitPriceMicros: [:]),
        Plan(
            name: "pro", keyRequestsPerSecond: 50, tenantRequestsPerSecond: 100, monthlyAPICalls: 1_000_000, monthlyRuns: 50_000,
            unitPriceMicros: ["api_calls": 100, "runs": 20_000]),
        Plan(
            name: "enterprise", keyRequestsPerSecond: 500, tenantRequestsPerSecond: 2_000, monthlyAPICalls: nil, monthlyRuns: nil,
            unitPriceMicros: ["api_calls": 50, "runs": 10_000]),
    ])

    public init(_ plans: [Plan]) throws {
        var all: [String: Plan] = [:]
        for plan in plans {
            guard Self.isValidName(plan.name) else {
                throw PlansError("plan name \"\(plan.name)\" must be 1 to 40 of a-z, 0-9, - and _")
            }
            guard all[plan.name] == nil else { throw PlansError("plan \(plan.name) is defined twice") }
            guard plan.keyRequestsPerSecond > 0, plan.tenantRequestsPerSecond > 0 else {
                throw PlansError("plan \(plan.name): requests per second must be positive")
            }
            guard (plan.monthlyAPICalls ?? 1) >= 0, (plan.monthlyRuns ?? 1) >= 0 else {
                throw PlansError("plan \(plan.name): quotas cannot be negative")
            }
            guard plan.currency.count == 3, plan.currency.allSatisfy({ $0.isASCII && $0.isLowercase }) else {
                throw PlansError("plan \(plan.name): currency must be a lower-case ISO 4217 code such as usd")
            }
            guard plan.unitPriceMicros.values.allSatisfy({ $0 >= 0 }) else {
                throw PlansError("plan \(plan.name): prices cannot be negative")
            }
            all[plan.name] = plan
        }
        guard !all.isEmpty else { throw PlansError("at least one plan is needed") }
        self.all = all
    }

    /// Reads `{"plans": [...]}` from a JSON file.
    public init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PlansError("cannot read the plans file \(path)")
        }
        struct File: Decodable { var plans: [Plan] }
        do {
            try self.init(try JSONDecoder().decode(File.self, from: data).plans)
        } catch let error as PlansError {
            throw error
        } catch {
            throw PlansError("the plans file \(path) is not valid: \(error)")
        }
    }

    public subscript(name: String) -> Plan? { all[name] }

    public static func isValidName(_ name: String) -> Bool {
        (1...40).contains(name.utf8.count) && name.utf8.allSatisfy { (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2d || $0 == 0x5f }
    }
}

public struct PlansError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
