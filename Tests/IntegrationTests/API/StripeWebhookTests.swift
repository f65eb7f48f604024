import Foundation
import Hummingbird
import HummingbirdTesting
import TestSupport
import Testing

@testable import API
@testable import Events
@testable import Projections

@Suite("API: Stripe webhooks", .timeLimit(.minutes(5)))
struct StripeWebhookTests {
    static let secret = "whsec_test_current_0123456789abcdef"
    static let rolled = "whsec_test_next_fedcba9876543210"
    /// The clock the signatures are checked against.
    static let now: Int64 = 1_790_000_000

    static let plans: Plans = {
        var free = Plans.defaults["free"]!
        free.stripePriceIDs = [.baseFee: "price_free"]
        var pro = Plans.defaults["pro"]!
        pro.stripePriceIDs = [.baseFee: "price_pro", .apiCalls: "price_pro_calls"]
        var enterprise = Plans.defaults["enterprise"]!
        enterprise.stripePriceIDs = [.baseFee: "price_enterprise"]
        return try! Plans([free, pro, enterprise])
    }()

    static func settings(secrets: [String] = [secret, rolled]) -> APISettings {
        var settings = APIHarness.settings(plans: plans)
        settings.stripeWebhookSecrets = secrets
        settings.now = { Date(timeIntervalSince1970: Double(now)) }
        return settings
    }

    static func signature(_ body: String, secret: String = secret, at timestamp: Int64 = now) -> String {
        Sodium.hex(Sodium.hmacSHA256(key: Array(secret.utf8), message: Array("\(timestamp).\(body)".utf8)))
    }

    static func header(_ body: String, secret: String = secret, at timestamp: Int64 = now) -> String {
        "t=\(timestamp),v1=\(signature(body, secret: secret, at: timestamp))"
    }

    /// A `customer.subscription.*` event naming its tenant by slug (or by nothing but its customer).
    static func subscription(
        _ id: String, _ type: String, created: Int64, slug: String? = "acme", customer: String = "cus_acme",
        subscription: String = "sub_acme", prices: [String] = ["price_pro", "price_pro_calls"]
    ) -> String {
        let metadata = slug.map { #"{"tally_tenant":"\#($0)"}"# } ?? "{}"
        let items = prices.map {
            #"{"id":"si_\#($0)","object":"subscription_item","price":{"id":"\#($0)","object":"price"}}"#
        }
        return #"""
            {"id":"\#(id)","object":"event","type":"customer.subscription.\#(type)","created":\#(created),"livemode":false,
             "data":{"object":{"id":"\#(subscription)","object":"subscription","customer":"\#(customer)","metadata":\#(metadata),
             "items":{"object":"list","data":[\#(items.joined(separator: ","))]}}}}
            """#
    }

    static func deliver(_ client: any TestClientProtocol, _ body: String, header: String?) async throws -> Reply {
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        if let header { headers[.stripeSignature] = header }
        let response = try await client.execute(
            uri: "/webhooks/stripe", method: .post, headers: headers, body: ByteBuffer(string: body))
        let text = String(buffer: response.body)
        return Reply(
            status: response.status, headers: response.headers, text: text,
            json: (try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))) ?? .null)
    }

    static func deliver(_ client: any TestClientProtocol, _ body: String) async throws -> Reply {
        try await deliver(client, body, header: header(body))
    }

    static func counts(_ harness: APIHarness) async throws -> (events: Int64, stripeEvents: Int64) {
        let row = try #require(
            try await harness.store.pool.query(
                "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM stripe_events)"
            ).first)
        return (try row.int64(0), try row.int64(1))
    }

    static func tenant(_ client: any TestClientProtocol, _ id: String) async throws -> Reply {
        try await client.call(.get, "/v1/admin/tenants/\(id)", token: APIHarness.operatorToken)
    }

    @Test(
        "a delivery is accepted only with a v1 signature of the raw body under a configured secret, within 300 s of now"
    )
    func signatures() async throws {
        try await APIHarness.with(settings: Self.settings()) { harness, client in
            let (tenant, _, _) = try await client.tenantWithKey("acme")
            let body = Self.subscription("evt_sig", "updated", created: 100, prices: ["price_enterprise"])
            let good = Self.signature(body)
            let rejected: [(name: String, body: String, header: String?, type: String)] = [
                (
                    "tampered body", body.replacingOccurrences(of: "price_enterprise", with: "price_free"),
                    Self.header(body), "invalid-stripe-signature"
                ),
                (
                    "wrong secret", body, Self.header(body, secret: "whsec_someone_else_0123456789"),
                    "invalid-stripe-signature"
                ),
                ("v0 only", body, "t=\(Self.now),v0=\(good)", "invalid-stripe-signature"),
                ("signed 301 s ago", body, Self.header(body, at: Self.now - 301), "invalid-stripe-signature"),
                ("signed 301 s ahead", body, Self.header(body, at: Self.now + 301), "invalid-stripe-signature"),
                ("signed with another timestamp", body, "t=\(Self.now + 1),v1=\(good)", "invalid-stripe-signature"),
                ("missing header", body, nil, "malformed-stripe-signature"),
                ("empty header", body, "", "malformed-stripe-signature"),
                ("no timestamp", body, "v1=\(good)", "malformed-stripe-signature"),
                ("timestamp not a number", body, "t=soon,v1=\(good)", "malformed-stripe-signature"),
                ("two timestamps", body, "t=\(Self.now),t=\(Self.now),v1=\(good)", "malformed-stripe-signature"),
                ("not key=value", body, "t=\(Self.now),\(good)", "malformed-stripe-signature"),
            ]
            let before = try await Self.counts(harness)
            for item in rejected {
                let reply = try await Self.deliver(client, item.body, header: item.header)
                #expect(reply.status == .badRequest, "\(item.name): \(reply.text)")
                #expect(reply.headers[.contentType] == "application/problem+json", "\(item.name)")
                #expect(reply.string("type") == Problem.typeBase + item.type, "\(item.name): \(reply.text)")
                #expect(try await Self.counts(harness) == before, "\(item.name) appended or recorded something")
            }
            #expect(try await Self.tenant(client, tenant).string("plan") == "pro")

            let accepted: [(name: String, id: String, header: (String) -> String)] = [
                ("the current secret", "evt_a1", { Self.header($0) }),
                ("the rolled-in secret", "evt_a2", { Self.header($0, secret: Self.rolled) }),
                (
                    "several v1, the last matching", "evt_a3",
                    { "t=\(Self.now),v1=\(String(repeating: "0", count: 64)),v1=\(Self.signature($0))" }
                ),
                (
                    "v0 beside a matching v1", "evt_a4",
                    { "t=\(Self.now), v0=abc, v1=\(Self.signature($0).uppercased())" }
                ),
                ("signed 300 s ago", "evt_a5", { Self.header($0, at: Self.now - 300) }),
                ("signed 300 s ahead", "evt_a6", { Self.header($0, at: Self.now + 300) }),
            ]
            for (index, item) in accepted.enumerated() {
                let body = Self.subscription(
                    item.id, "updated", created: 200 + Int64(index), prices: ["price_enterprise"])
                let reply = try await Self.deliver(client, body, header: item.header(body))
                #expect(reply.status == .ok, "\(item.name): \(reply.text)")
                #expect(reply["received"] == .bool(true), "\(item.name)")
            }
            #expect(try await Self.tenant(client, tenant).string("plan") == "enterprise")
            #expect(try await Self.counts(harness).stripeEvents == Int64(accepted.count))
            #expect(!LogCapture.shared.contains(Self.secret) && !LogCapture.shared.contains(Self.rolled))
        }
    }

    @Test("without a configured secret every delivery is refused with a problem naming the variable")
    func notConfigured() async throws {
        try await APIHarness.with(settings: Self.settings(secrets: [])) { harness, client in
            let body = Self.subscription("evt_1", "created", created: 100)
            let reply = try await Self.deliver(client, body)
            #expect(reply.status == .serviceUnavailable)
            #expect(reply.string("type") == Problem.typeBase + "stripe-webhooks-not-configured")
            #expect(reply.string("detail")?.contains("TALLY_STRIPE_WEBHOOK_SECRETS") == true)
            #expect(try await Self.counts(harness) == (0, 0))
        }
    }

    @Test("a body that is not JSON, or not an event, is 400 even when signed, and nothing is recorded")
    func malformedBodies() async throws {
        try await APIHarness.with(settings: Self.settings()) { harness, client in
            for (body, type) in [
                ("{not json", "malformed-json"), (#"{"type":"invoice.paid","created":1}"#, "malformed-stripe-event"),
                (
                    #"{"id":"evt_1","type":"customer.subscription.updated","created":1,"data":{}}"#,
                    "malformed-stripe-event"
                ),
                (#"{"id":"evt_1","type":"invoice.paid","created":"yesterday"}"#, "malformed-stripe-event"),
            ] {
                let reply = try await Self.deliver(client, body)
                #expect(reply.status == .badRequest, "\(body): \(reply.text)")
                #expect(reply.string("type") == Problem.typeBase + type, "\(body)")
            }
            #expect(try await Self.counts(harness) == (0, 0))
        }
    }

    @Test("a repeated delivery is acknowledged as a duplicate and changes nothing")
    func duplicate() async throws {
        try await APIHarness.with(settings: Self.settings()) { harness, client in
            let (tenant, _, _) = try await client.tenantWithKey("acme", plan: "free")
            let body = Self.subscription("evt_dup", "created", created: 100)
            let first = try await Self.deliver(client, body)
            #expect(first.status == .ok && first.string("outcome") == "applied", "\(first.text)")
            #expect(try await Self.tenant(client, tenant).string("plan") == "pro")
            #expect(try await Self.tenant(client, tenant).string("stripeCustomerId") == "cus_acme")
            let before = try await Self.counts(harness)
            let version = try await harness.store.version(of: .tenant(UUID(uuidString: tenant)!))
            #expect(version == 3, "TenantCreated, PlanChanged, StripeCustomerLinked")

            let again = try await Self.deliver(client, body)
            #expect(again.status == .ok)
            #expect(again["duplicate"] == .bool(true), "\(again.text)")
            #expect(try await Self.counts(harness) == before)
            #expect(try await harness.store.version(of: .tenant(UUID(uuidString: tenant)!)) == version)

            // Deliveries racing each other: one applies, the others are duplicates.
            let racing = Self.subscription("evt_race", "updated", created: 200, prices: ["price_enterprise"])
            let shared = SharedClient(client: client)
            let replies = try await withThrowingTaskGroup(of: Reply.self) { group in
                for _ in 0..<4 { group.addTask { try await Self.deliver(shared.client, racing) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(replies.allSatisfy { $0.status == .ok })
            #expect(replies.filter { $0["duplicate"] == .bool(true) }.count == 3)
            #expect(replies.filter { $0.string("outcome") == "applied" }.count == 1)
            #expect(try await harness.store.version(of: .tenant(UUID(uuidString: tenant)!)) == version + 1)
            #expect(try await Self.tenant(client, tenant).string("plan") == "enterprise")

            // The appended PlanChanged names the Stripe event and its time.
            let events = try await harness.store.read(stream: .tenant(UUID(uuidString: tenant)!))
            let changed = try harness.store.catalog.decode(PlanChanged.self, events[1])
            #expect(changed.source == .stripe && changed.stripeEventID == "evt_dup")
            #expect(changed.stripeObjectTime == Date(timeIntervalSince1970: 100))
            #expect(
                events[1].metadataJSON.count > 2
                    && String(decoding: events[1].metadataJSON, as: UTF8.self).contains("stripe"))
        }
    }

    @Test("an updated delivered before its created ends on the updated plan")
    func updatedBeforeCreated() async throws {
        try await APIHarness.with(settings: Self.settings()) { harness, client in
            let (tenant, _, _) = try await client.tenantWithKey("acme", plan: "free")
            let updated = try await Self.deliver(
                client, Self.subscription("evt_2", "updated", created: 200, prices: ["price_enterprise"]))
            #expect(updated.string("outcome") == "applied", "\(updated.text)")
            let created = try await Self.deliver(client, Self.subscription("evt_1", "created", created: 200))
            #expect(
                created.status == .ok && created.string("outcome") == "stale",
                "a created never overrides at an equal second: \(created.text)")
            let older = try await Self.deliver(client, Self.subscription("evt_0", "created", created: 150))
            #expect(older.string("outcome") == "stale")
            #expect(try await Self.tenant(client, tenant).string("plan") == "enterprise")
        }
    }

    @Test("an old snapshot after a newer one never moves the tenant back, also when the newer one changed nothing")
    func oldSnapshot() async throws {
        try await APIHarness.with(settings: Self.settings()) { harness, client in
            let (tenant, _, _) = try await client.tenantWithKey("acme", plan: "free")
            let id = UUID(uuidString: tenant)!
            #expect(
                try await Self.deliver(client, Self.subscription("evt_1", "created", created: 100)).string("outcome")
                    == "applied")
            #expect(
                try await Self.deliver(
                    client, Self.subscription("evt_3", "updated", created: 300, prices: ["price_enterprise"])
                )
                .string("outcome") == "applied")
            let version = try await harness.store.version(of: .tenant(id))
            let old = try await Self.deliver(client, Self.subscription("evt_2", "updated", created: 200))
            #expect(old.status == .ok && old.string("outcome") == "stale", "\(old.text)")
            #expect(try await Self.tenant(client, tenant).string("plan") == "enterprise")

            // A newer state equal to the tenant's appends nothing, yet bounds what may come after it.
            let same = try await Self.deliver(
                client, Self.subscription("evt_5", "updated", created: 500, prices: ["price_enterprise"]))
            #expect(same.string("outcome") == "unchanged")
            let between = try await Self.deliver(client, Self.subscription("evt_4", "updated", created: 400))
            #expect(between.string("outcome") == "stale", "\(between.text)")
            #expect(try await harness.store.version(of: .tenant(id)) == version)
            #expect(try await Self.tenant(client, tenant).string("plan") == "enterprise")

            // Two updates in one second: the later delivery wins.
            let tie = try await Self.deliver(client, Self.subscription("evt_6", "updated", created: 500))
            #expect(tie.string("outcome") == "applied")
            #expect(try await Self.tenant(client, tenant).string("plan") == "pro")
        }
    }

    @Test("a deleted subscription moves the tenant to free; a subscription found by its linked customer")
    func deleted() async throws {
        try await APIHarness.with(settings: Self.settings()) { harness, client in
            let (tenant, _, _) = try await client.tenantWithKey("acme", plan: "free")
            #expect(
                try await Self.deliver(client, Self.subscription("evt_1", "created", created: 100)).string("outcome")
                    == "applied")
            #expect(try await Self.tenant(client, tenant).string("plan") == "pro")
            // No metadata: the customer linked by the first event names the tenant.
            let other = try await Self.deliver(
                client, Self.subscription("evt_2", "deleted", created: 200, slug: nil, subscription: "sub_old"))
            #expect(other.string("outcome") == "ignored: not the tenant's current subscription", "\(other.text)")
            let deleted = try await Self.deliver(client, Self.subscription("evt_3", "deleted", created: 300, slug: nil))
            #expect(deleted.status == .ok && deleted.string("outcome") == "applied", "\(deleted.text)")
            #expect(try await Self.tenant(client, tenant).string("plan") == "free")
            let late = try await Self.deliver(client, Self.subscription("evt_4", "updated", created: 300, slug: nil))
            #expect(late.string("outcome") == "stale", "nothing at the same second undoes a deletion")
        }
    }

    @Test("a paused subscription suspends the tenant and blocks its key at once; resumed reinstates it")
    func pausedResumed() async throws {
        try await APIHarness.with(settings: Self.settings()) { harness, client in
            let (tenant, key, _) = try await client.tenantWithKey("acme")
            #expect(try await client.call(.get, "/v1/tenant", token: key).status == .ok)
            let paused = try await Self.deliver(client, Self.subscription("evt_1", "paused", created: 100))
            #expect(paused.string("outcome") == "applied", "\(paused.text)")
            let refused = try await client.call(.get, "/v1/tenant", token: key)
            #expect(refused.status == .unauthorized)
            #expect(refused.string("detail")?.contains("suspended") == true, "\(refused.text)")
            #expect(try await Self.tenant(client, tenant).string("status") == "suspended")

            let events = try await harness.store.read(stream: .tenant(UUID(uuidString: tenant)!))
            let suspended = try harness.store.catalog.decode(TenantSuspended.self, events.last!)
            #expect(suspended.source == .stripe && suspended.stripeEventID == "evt_1")
            #expect(suspended.stripeObjectTime == Date(timeIntervalSince1970: 100))

            let resumed = try await Self.deliver(client, Self.subscription("evt_2", "resumed", created: 200))
            #expect(resumed.string("outcome") == "applied")
            #expect(try await client.call(.get, "/v1/tenant", token: key).status == .ok)
            #expect(try await Self.tenant(client, tenant).string("status") == "active")
        }
    }

    @Test("a Stripe resume does not lift the operator's suspension")
    func operatorSuspension() async throws {
        try await APIHarness.with(settings: Self.settings()) { harness, client in
            let (tenant, key, _) = try await client.tenantWithKey("acme")
            let token = APIHarness.operatorToken
            #expect(
                try await Self.deliver(client, Self.subscription("evt_1", "created", created: 50)).string("outcome")
                    == "applied")
            #expect(
                try await client.call(.post, "/v1/admin/tenants/\(tenant)/suspend", token: token, json: "{}").status
                    == .ok)
            let resumed = try await Self.deliver(client, Self.subscription("evt_2", "resumed", created: 100))
            #expect(resumed.string("outcome") == "unchanged", "\(resumed.text)")
            #expect(try await client.call(.get, "/v1/tenant", token: key).status == .unauthorized)
        }
    }

    @Test("unknown types, invoices, unknown prices and unknown tenants are acknowledged, recorded and change nothing")
    func ignored() async throws {
        try await APIHarness.with(settings: Self.settings()) { harness, client in
            let (tenant, _, _) = try await client.tenantWithKey("acme")
            let before = try await Self.counts(harness).events
            let cases: [(String, String)] = [
                (#"{"id":"evt_i1","type":"invoice.paid","created":100,"data":{"object":{"id":"in_1"}}}"#, "ignored"),
                (#"{"id":"evt_i2","type":"charge.refunded","created":100}"#, "ignored"),
                (
                    Self.subscription("evt_i3", "updated", created: 100, prices: ["price_unknown"]),
                    "ignored: unknown price price_unknown"
                ),
                (Self.subscription("evt_i4", "updated", created: 100, slug: "nobody"), "ignored: unknown tenant"),
                (
                    Self.subscription("evt_i5", "updated", created: 100, slug: nil, customer: "cus_unknown"),
                    "ignored: unknown tenant (no tenant metadata, customer not linked)"
                ),
                (
                    Self.subscription("evt_i6", "updated", created: 100, prices: ["price_pro", "price_enterprise"]),
                    "ignored: prices of several plans: enterprise, pro"
                ),
            ]
            for (body, outcome) in cases {
                let reply = try await Self.deliver(client, body)
                #expect(reply.status == .ok, "\(reply.text)")
                #expect(reply.string("outcome") == outcome, "\(reply.text)")
            }
            #expect(try await Self.counts(harness) == (before, Int64(cases.count)))
            let outcomes = try await harness.store.pool.query("SELECT outcome FROM stripe_events ORDER BY id").map {
                try $0.string(0)
            }
            #expect(outcomes == cases.map(\.1))

            // Operator data: a tenant's session sees none of it, and the application role cannot rewrite it.
            try await harness.store.pool.withConnection { connection in
                let asTenant = try await connection.withTransaction(
                    begin: "BEGIN; SET LOCAL ROLE tally_app; SET LOCAL tally.tenant_id = '\(tenant)'"
                ) { try await connection.query("SELECT count(*) FROM stripe_events").first?.int64(0) }
                #expect(asTenant == 0)
                // The operator's scope is a role: a setting does not give it to a tenant's session.
                let forged = try await connection.withTransaction(
                    begin: "BEGIN; SET LOCAL ROLE tally_app; SET LOCAL tally.operator = 'on'"
                ) {
                    try await connection.query("SELECT count(*) FROM stripe_events").first?.int64(0)
                }
                #expect(forged == 0)
                let asOperator = try await connection.withTransaction(begin: "BEGIN") {
                    try await connection.query("SELECT count(*) FROM stripe_events").first?.int64(0)
                }
                #expect(asOperator == Int64(cases.count))
                await #expect(throws: EventsError.self) {
                    try await connection.withTransaction(
                        begin: "BEGIN; SET LOCAL ROLE tally_app; SET LOCAL tally.operator = 'on'"
                    ) {
                        try await connection.query("DELETE FROM stripe_events")
                    }
                }
            }
            #expect(try await Self.tenant(client, tenant).string("plan") == "pro")
        }
    }
}
