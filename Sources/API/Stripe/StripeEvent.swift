import Commands
import Events
import Foundation
import HTTPTypes

/// The parts of a Stripe event the webhook reads: its id, type, time and `data.object`.
struct StripeEvent {
    var id: String
    var type: String
    /// The event's `created` (unix seconds): the time last-writer-wins compares.
    var created: Int64
    var object: JSONValue?

    /// Parses a delivery's body: 400 `malformed-json` when it is not JSON, 400 `malformed-stripe-event` when
    /// it is not an event (no string `id` and `type`, no integer `created`).
    init(json body: [UInt8]) throws(Problem) {
        let document: JSONValue
        do {
            document = try JSONDecoder().decode(JSONValue.self, from: Data(body))
        } catch {
            throw Problem(.badRequest, "malformed-json", title: "Malformed JSON", detail: "The body is not valid JSON.")
        }
        guard case .string(let id)? = document["id"], Self.isToken(id) else {
            throw Self.notAnEvent("id must be an event id")
        }
        guard case .string(let type)? = document["type"], Self.isToken(type) else {
            throw Self.notAnEvent("type must be an event type")
        }
        guard case .number(let number)? = document["created"], let created = Int64(exactly: number),
            (0...253_402_300_799).contains(created)
        else {
            throw Self.notAnEvent("created must be unix seconds before the year 10000")
        }
        self.id = id
        self.type = type
        self.created = created
        self.object = document["data"]?["object"]
    }

    var createdDate: Date { Date(timeIntervalSince1970: Double(created)) }

    /// Ids and types are stored and logged: 1 to 255 printable ASCII characters.
    private static func isToken(_ text: String) -> Bool {
        (1...255).contains(text.utf8.count) && text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f }
    }

    static func notAnEvent(_ detail: String) -> Problem {
        Problem(
            .badRequest, "malformed-stripe-event", title: "Not a Stripe event",
            detail: "The body is JSON but not a Stripe event: \(detail).")
    }
}

extension SubscriptionSnapshot {
    /// Reads `data.object` of a subscription event; 400 when it is not an object.
    init(_ event: StripeEvent, kind: Kind) throws(Problem) {
        guard case .object(let object)? = event.object else {
            throw StripeEvent.notAnEvent("data.object must be the subscription")
        }
        let customerID = Self.id(object["customer"])
        let tenant: TenantReference
        if case .string(let text)? = object["metadata"]?["tally_tenant_id"] {
            tenant = UUID(uuidString: text).map { .id($0) } ?? .invalid("metadata tally_tenant_id is not a uuid")
        } else if case .string(let slug)? = object["metadata"]?["tally_tenant"] {
            // A tenant's id is derived from its slug, so no lookup is needed.
            tenant =
                TenantSlug.isValid(slug)
                ? .id(.tenant(slug: slug)) : .invalid("metadata tally_tenant is not a tenant slug")
        } else if let customerID {
            tenant = .customer(customerID)
        } else {
            tenant = .none
        }
        self.init(
            kind: kind, subscriptionID: Self.id(object["id"]), customerID: customerID, tenant: tenant,
            priceIDs: (object["items"]?["data"]?.arrayItems ?? []).compactMap { Self.id($0["price"]) })
    }

    /// A Stripe id, written as the string or as the expanded object carrying it.
    private static func id(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let id)?: id.isEmpty ? nil : id
        case .object(let object)?: id(object["id"])
        default: nil
        }
    }
}

extension JSONValue {
    fileprivate var arrayItems: [JSONValue]? {
        if case .array(let items) = self { items } else { nil }
    }
}
