import Foundation
import Hummingbird
import HummingbirdTesting
import TestSupport
import Testing

@testable import API
@testable import Events
@testable import Projections

@Suite("API: flow keys and flow limits", .timeLimit(.minutes(5)))
struct FlowAPITests {
    let token = APIHarness.operatorToken

    /// Runs `sql` as the operator (the workers' tables are theirs to write; tests stand in for them).
    static func asOperator(_ store: EventStore, _ sql: String) async throws {
        try await store.pool.withTransaction { connection in
            try await connection.execute("SET LOCAL tally.operator = 'on'; " + sql)
        }
    }

    static func limitsEvents(_ store: EventStore, _ stream: StreamName) async throws -> [FlowLimitsSet] {
        try await store.read(stream: stream).map { try store.catalog.decode(FlowLimitsSet.self, $0) }
    }

    static let invalidLimits: [(body: String, pointers: [String])] = [
        (#"{"windows":[{"limit":0,"seconds":1}]}"#, ["/windows/0/limit"]),
        (#"{"windows":[{"limit":1,"seconds":0}]}"#, ["/windows/0/seconds"]),
        (#"{"windows":[{"limit":1000001,"seconds":86401}]}"#, ["/windows/0/limit", "/windows/0/seconds"]),
        (#"{"windows":[{"limit":5,"seconds":60},{"limit":9,"seconds":60}]}"#, ["/windows/1/seconds"]),
        (#"{"windows":[\#((1...9).map { #"{"limit":1,"seconds":\#($0)}"# }.joined(separator: ","))]}"#, ["/windows"]),
        (#"{"windows":[{"limit":1,"seconds":1,"burst":2}]}"#, ["/windows/0/burst"]),
        (#"{"windows":[{"seconds":1}]}"#, ["/windows/0/limit"]),
        (#"{"windows":[{"limit":"1","seconds":1}]}"#, ["/windows/0/limit"]),
        (#"{"windows":{"limit":1,"seconds":1}}"#, ["/windows"]),
        (#"{"parallelism":0}"#, ["/parallelism"]),
        (#"{"parallelism":10001}"#, ["/parallelism"]),
        (#"{"parallelism":2.5}"#, ["/parallelism"]),
        (#"{"parallelism":5,"rate":3}"#, ["/rate"]),
    ]

    @Test("flow limits: every invalid field is a 422 with its pointer, for defaults and overrides, and appends nothing")
    func invalidLimits() async throws {
        try await APIHarness.with { harness, client in
            let (tenant, _, _) = try await client.tenantWithKey("acme")
            try await TestDatabase.settle(harness.store)
            let before = try await harness.store.head()
            for (body, pointers) in Self.invalidLimits {
                for path in ["/v1/admin/flow-limits/prospeo", "/v1/admin/tenants/\(tenant)/flow-limits/prospeo"] {
                    let reply = try await client.call(.put, path, token: token, json: body)
                    #expect(reply.status == .unprocessableContent, "\(path) \(body): \(reply.text)")
                    #expect(
                        reply["errors"]?.arrayValue.compactMap { $0["pointer"]?.stringValue } == pointers,
                        "\(body): \(reply.text)")
                }
            }
            try await TestDatabase.settle(harness.store)
            #expect(try await harness.store.head() == before, "nothing appended")
        }
    }

    @Test("flow limits: a default, a tenant override and its removal each append one FlowLimitsSet on their stream")
    func setLimits() async throws {
        try await APIHarness.with { harness, client in
            let (tenant, key, _) = try await client.tenantWithKey("acme")
            let tenantID = try #require(UUID(uuidString: tenant))

            let set = try await client.call(
                .put, "/v1/admin/flow-limits/prospeo", token: token,
                json: #"{"windows":[{"limit":10,"seconds":1},{"limit":300,"seconds":60}],"parallelism":5}"#)
            #expect(set.status == .ok, "\(set.text)")
            #expect(
                set.text
                    == #"{"parallelism":5,"scope":"default","vendor":"prospeo","windows":[{"limit":10,"seconds":1},{"limit":300,"seconds":60}]}"#
            )
            let defaults = try await harness.store.read(stream: .flowLimits(vendor: .prospeo, tenant: nil))
            #expect(defaults.count == 1 && defaults[0].tenantID == nil)
            let first = try harness.store.catalog.decode(FlowLimitsSet.self, defaults[0])
            #expect(first.vendor == .prospeo && first.tenantID == nil && first.parallelism == 5)
            #expect(first.windows == [RateWindow(limit: 10, seconds: 1), RateWindow(limit: 300, seconds: 60)])

            // Omitted or null inherits; an empty list is no rate limit at all.
            let inherit = try await client.call(
                .put, "/v1/admin/flow-limits/prospeo", token: token, json: #"{"windows":null}"#)
            #expect(inherit.status == .ok && inherit.text == #"{"scope":"default","vendor":"prospeo"}"#)
            let unlimited = try await client.call(
                .put, "/v1/admin/flow-limits/prospeo", token: token, json: #"{"windows":[]}"#)
            #expect(unlimited.text == #"{"scope":"default","vendor":"prospeo","windows":[]}"#)
            let all = try await Self.limitsEvents(harness.store, .flowLimits(vendor: .prospeo, tenant: nil))
            #expect(all.count == 3)
            #expect(all[1].windows == nil && all[1].parallelism == nil)
            #expect(all[2].windows == [] && all[2].parallelism == nil)

            let override = try await client.call(
                .put, "/v1/admin/tenants/\(tenant)/flow-limits/zerobounce", token: token, json: #"{"parallelism":2}"#)
            #expect(override.status == .ok)
            #expect(
                override.text == #"{"parallelism":2,"scope":"tenant","tenantId":"\#(tenant)","vendor":"zerobounce"}"#)
            let cleared = try await client.call(
                .delete, "/v1/admin/tenants/\(tenant)/flow-limits/zerobounce", token: token)
            #expect(cleared.status == .noContent)
            let stream = StreamName.flowLimits(vendor: .zerobounce, tenant: tenantID)
            #expect(try await harness.store.read(stream: stream).allSatisfy { $0.tenantID == tenantID })
            let tenantEvents = try await Self.limitsEvents(harness.store, stream)
            #expect(tenantEvents.count == 2)
            #expect(
                tenantEvents[0].tenantID == tenantID && tenantEvents[0].vendor == .zerobounce
                    && tenantEvents[0].parallelism == 2)
            #expect(tenantEvents[0].windows == nil)
            #expect(
                tenantEvents[1].tenantID == tenantID && tenantEvents[1].windows == nil
                    && tenantEvents[1].parallelism == nil)

            try await TestDatabase.settle(harness.store)
            let before = try await harness.store.head()
            let nobody = UUID().lowercased
            #expect(
                try await client.call(.put, "/v1/admin/tenants/\(nobody)/flow-limits/prospeo", token: token, json: "{}")
                    .status == .notFound)
            #expect(
                try await client.call(.delete, "/v1/admin/tenants/\(nobody)/flow-limits/prospeo", token: token).status
                    == .notFound)
            #expect(
                try await client.call(.put, "/v1/admin/flow-limits/mailchimp", token: token, json: "{}").status
                    == .notFound)
            #expect(
                try await client.call(.put, "/v1/admin/flow-limits/prospeo", token: key, json: "{}").status
                    == .unauthorized)
            try await TestDatabase.settle(harness.store)
            #expect(try await harness.store.head() == before, "refused requests appended nothing")
        }
    }

    @Test(
        "GET /v1/admin/flow-limits lists the built-in, default and tenant rows with their scope, filtered by vendor or tenant"
    )
    func listLimits() async throws {
        try await APIHarness.with { harness, client in
            let (tenant, _, _) = try await client.tenantWithKey("acme")
            let builtin = try await client.call(.get, "/v1/admin/flow-limits", token: token)
            #expect(builtin.status == .ok)
            let items = builtin["items"]?.arrayValue ?? []
            #expect(items.map { $0["vendor"]?.stringValue } == ["findymail", "prospeo", "zerobounce"])
            #expect(items.allSatisfy { $0["scope"] == .string("builtin") && $0["tenantId"] == nil })
            #expect(items[1]["parallelism"]?.intValue == 10)
            #expect(
                items[1]["windows"]?.arrayValue.map { [$0["limit"]?.intValue, $0["seconds"]?.intValue] } == [
                    [10, 1], [300, 60],
                ])
            #expect(items[0]["windows"]?.arrayValue == [], "findymail: no rate limit")

            try await Self.asOperator(
                harness.store,
                """
                INSERT INTO flow_limits (vendor, tenant_id, window_limits, window_seconds, parallelism) VALUES
                    ('prospeo', '00000000-0000-0000-0000-000000000000', NULL, NULL, 7),
                    ('prospeo', '\(tenant)', '{3}', '{1}', NULL)
                """)
            let prospeo =
                try await client.call(.get, "/v1/admin/flow-limits?vendor=prospeo", token: token)["items"]?.arrayValue
                ?? []
            #expect(prospeo.map { $0["scope"]?.stringValue } == ["builtin", "default", "tenant"])
            #expect(
                prospeo[1]["windows"] == nil && prospeo[1]["parallelism"]?.intValue == 7, "NULL windows inherit: absent"
            )
            #expect(prospeo[2]["tenantId"] == .string(tenant) && prospeo[2]["parallelism"] == nil)
            #expect(prospeo[2]["windows"]?.arrayValue.map { $0["limit"]?.intValue } == [3])
            let own =
                try await client.call(.get, "/v1/admin/flow-limits?tenantId=\(tenant)", token: token)["items"]?
                .arrayValue ?? []
            #expect(own.count == 1 && own[0]["vendor"] == .string("prospeo"))
            let bad = try await client.call(.get, "/v1/admin/flow-limits?vendor=x&tenantId=y", token: token)
            #expect(bad.status == .unprocessableContent)
            #expect(
                Set(bad["errors"]?.arrayValue.compactMap { $0["parameter"]?.stringValue } ?? []) == [
                    "vendor", "tenantId",
                ])
        }
    }

    @Test(
        "flow keys: states, limits, windows and queue per key; a tenant sees only its own keys, by its query and by row-level security"
    )
    func flowKeys() async throws {
        try await APIHarness.with { harness, client in
            let (a, keyA, _) = try await client.tenantWithKey("tenant-a")
            let (b, keyB, _) = try await client.tenantWithKey("tenant-b")
            try await Self.asOperator(
                harness.store,
                """
                INSERT INTO work_vendor_keys (tenant_id, vendor, secret_version, fingerprint, suspended_reason, stream_version) VALUES
                    ('\(a)', 'prospeo', 2, 'fpa1', NULL, 2),
                    ('\(a)', 'findymail', 1, 'fpa2', 'HTTP 402: out of credits', 2),
                    ('\(b)', 'prospeo', 1, 'fpb1', NULL, 1),
                    ('\(b)', 'findymail', 1, 'fpb2', NULL, 1);
                INSERT INTO flow_keys (vendor, tenant_id, fingerprint, paused_until, pause_reason) VALUES
                    ('prospeo', '\(b)', 'fpb1', now() + interval '5 minutes', 'HTTP 429'),
                    ('findymail', '\(b)', 'fpb2', now() - interval '1 minute', 'HTTP 429 long ago');
                INSERT INTO work_queue (run_id, tenant_id, state, definition, input, step, attempt, kind, vendor, stream_version,
                                        waiting_since, lease_owner, lease_until, leased_fingerprint) VALUES
                    (gen_random_uuid(), '\(a)', 'waiting', '{}', '{}', 1, 1, 'find', 'prospeo', 2, now() - interval '40 seconds', NULL, NULL, NULL),
                    (gen_random_uuid(), '\(a)', 'waiting', '{}', '{}', 1, 1, 'find', 'prospeo', 2, now() - interval '10 seconds', NULL, NULL, NULL),
                    (gen_random_uuid(), '\(a)', 'leased', '{}', '{}', 1, 1, 'find', 'prospeo', 2, now(), 'w1', now() + interval '1 minute', 'fpa1'),
                    (gen_random_uuid(), '\(a)', 'done', '{}', '{}', 1, 1, 'find', 'prospeo', 5, now(), NULL, NULL, NULL),
                    (gen_random_uuid(), '\(a)', 'waiting', '{}', '{}', 2, 1, 'validate', 'zerobounce', 4, now(), NULL, NULL, NULL),
                    (gen_random_uuid(), '\(b)', 'waiting', '{}', '{}', 1, 1, 'find', 'prospeo', 2, now(), NULL, NULL, NULL);
                INSERT INTO flow_starts (vendor, tenant_id, fingerprint, started_at, run_id, step, attempt, worker) VALUES
                    ('prospeo', '\(a)', 'fpa1', now() - interval '10 minutes', gen_random_uuid(), 1, 1, 'w1'),
                    ('prospeo', '\(a)', 'fpa1', now() - interval '20 minutes', gen_random_uuid(), 1, 1, 'w1'),
                    ('prospeo', '\(a)', 'fpa1', now() - interval '2 hours', gen_random_uuid(), 1, 1, 'w1'),
                    ('prospeo', '\(a)', 'old-key', now() - interval '10 minutes', gen_random_uuid(), 1, 1, 'w1');
                INSERT INTO flow_limits (vendor, tenant_id, window_limits, window_seconds, parallelism) VALUES
                    ('prospeo', '\(a)', '{100,1000}', '{3600,86400}', 4),
                    ('prospeo', '00000000-0000-0000-0000-000000000000', NULL, NULL, 7);
                """)

            let mine = try await client.call(.get, "/v1/flow-keys", token: keyA)
            #expect(mine.status == .ok, "\(mine.text)")
            let items = mine["items"]?.arrayValue ?? []
            #expect(items.map { $0["vendor"]?.stringValue } == ["findymail", "prospeo", "zerobounce"])
            #expect(items.map { $0["state"]?.stringValue } == ["suspended", "active", "no_key"])
            #expect(items.allSatisfy { $0["tenantId"] == nil }, "a tenant's answer does not repeat its id")
            #expect(!mine.text.contains("fpb") && !mine.text.contains(b))

            let findymail = items[0]
            #expect(
                findymail["suspendedReason"] == .string("HTTP 402: out of credits")
                    && findymail["fingerprint"] == .string("fpa2"))
            #expect(
                findymail["limits"]?["parallelism"]?.intValue == 300
                    && findymail["limits"]?["windows"]?.arrayValue == [])
            #expect(findymail["waiting"]?.intValue == 0 && findymail["oldestWaitingSeconds"] == nil, "nothing waits")

            let prospeo = items[1]
            #expect(prospeo["fingerprint"] == .string("fpa1") && prospeo["secretVersion"]?.intValue == 2)
            #expect(prospeo["pausedUntil"] == nil && prospeo["suspendedReason"] == nil)
            #expect(prospeo["limits"]?["parallelism"]?.intValue == 4, "the tenant's override")
            let windows = prospeo["limits"]?["windows"]?.arrayValue.map {
                [$0["limit"]?.intValue, $0["seconds"]?.intValue, $0["used"]?.intValue]
            }
            #expect(
                windows == [[100, 3600, 2], [1000, 86400, 3]],
                "starts of this key within each window; another key's do not count")
            #expect(prospeo["waiting"]?.intValue == 2 && prospeo["inFlight"]?.intValue == 1)
            let oldest = try #require(
                prospeo["oldestWaitingSeconds"].flatMap { value -> Double? in
                    if case .number(let seconds) = value { return seconds }
                    return nil
                })
            #expect(oldest >= 40 && oldest < 100)

            let zerobounce = items[2]
            #expect(
                zerobounce["fingerprint"] == nil && zerobounce["secretVersion"] == nil
                    && zerobounce["waiting"]?.intValue == 1)
            #expect(zerobounce["limits"]?["parallelism"]?.intValue == 50)

            let theirs = try await client.call(.get, "/v1/flow-keys", token: keyB)["items"]?.arrayValue ?? []
            #expect(
                theirs.map { $0["state"]?.stringValue } == ["active", "paused"],
                "findymail's pause is over; prospeo's is not")
            #expect(theirs[0]["pauseReason"] == nil && theirs[0]["pausedUntil"] == nil)
            #expect(theirs[1]["pauseReason"] == .string("HTTP 429") && theirs[1]["pausedUntil"]?.stringValue != nil)
            #expect(theirs[1]["limits"]?["parallelism"]?.intValue == 7, "the vendor default")
            let inherited = theirs[1]["limits"]?["windows"]?.arrayValue.map {
                [$0["limit"]?.intValue, $0["seconds"]?.intValue, $0["used"]?.intValue]
            }
            #expect(inherited == [[10, 1, 0], [300, 60, 0]], "the built-in windows")

            let every = try await client.call(.get, "/v1/admin/flow-keys", token: token)
            #expect(every.status == .ok)
            let all = every["items"]?.arrayValue ?? []
            #expect(all.count == 5)
            #expect(Set(all.compactMap { $0["tenantId"]?.stringValue }) == [a, b], "lower-case ids")
            #expect(
                try await client.call(.get, "/v1/admin/flow-keys?tenantId=\(b)", token: token)["items"]?.arrayValue
                    .count == 2)
            #expect(
                try await client.call(.get, "/v1/admin/flow-keys?vendor=prospeo", token: token)["items"]?.arrayValue
                    .count == 2)
            let one =
                try await client.call(.get, "/v1/admin/flow-keys?tenantId=\(a)&vendor=zerobounce", token: token)[
                    "items"]?.arrayValue ?? []
            #expect(one.count == 1 && one[0]["state"] == .string("no_key") && one[0]["tenantId"] == .string(a))
            let bad = try await client.call(.get, "/v1/admin/flow-keys?vendor=mailchimp", token: token)
            #expect(bad.status == .unprocessableContent && bad["errors"]?[0]?["parameter"] == .string("vendor"))
            #expect(try await client.call(.get, "/v1/admin/flow-keys", token: keyA).status == .unauthorized)

            // Without the route's WHERE: row-level security alone shows a tenant its own rows.
            for (tenant, count) in [(a, Int64(3)), (b, 2)] {
                let id = try #require(UUID(uuidString: tenant))
                let seen = try await harness.services.database.tenant(id, readOnly: true) { connection in
                    try await connection.query(
                        "SELECT count(*), count(*) FILTER (WHERE tenant_id <> $1) FROM flow_key_status", [.uuid(id)]
                    ).first.map { (try $0.int64(0), try $0.int64(1)) }
                }
                #expect(seen?.0 == count && seen?.1 == 0, "tenant \(tenant)")
                for table in ["work_vendor_keys", "work_queue", "flow_keys", "flow_starts"] {
                    let foreign = try await harness.services.database.tenant(id, readOnly: true) { connection in
                        try await connection.query("SELECT count(*) FROM \(table) WHERE tenant_id <> $1", [.uuid(id)])
                            .first?.int64(0)
                    }
                    #expect(foreign == 0, "\(table) as \(tenant)")
                }
            }
        }
    }
}
