import Foundation
import Hummingbird
import HummingbirdTesting
import TestSupport
import Testing

@testable import API
@testable import Events
@testable import Projections

@Suite("API: operator endpoints", .timeLimit(.minutes(5)))
struct OperatorAPITests {
    let token = APIHarness.operatorToken

    @Test(
        "tenants: create (201, Location), get, list with a cursor, a taken slug is 409, and nothing is appended for bad input"
    )
    func tenants() async throws {
        try await APIHarness.with { harness, client in
            let created = try await client.call(
                .post, "/v1/admin/tenants", token: token, json: #"{"name":"Acme","slug":"acme","plan":"pro"}"#)
            #expect(created.status == .created)
            let id = try #require(created.string("id"))
            #expect(created.headers[.location] == "/v1/admin/tenants/\(id)")
            #expect(created.string("status") == "active" && created.string("plan") == "pro")
            #expect(try await client.call(.get, "/v1/admin/tenants/\(id)", token: token).string("slug") == "acme")

            let taken = try await client.call(
                .post, "/v1/admin/tenants", token: token, json: #"{"name":"Other","slug":"acme","plan":"free"}"#)
            #expect(taken.status == .conflict)
            #expect(taken.headers[.contentType] == "application/problem+json")

            for slug in ["beta", "gamma", "delta"] {
                try await client.call(
                    .post, "/v1/admin/tenants", token: token,
                    json: #"{"name":"\#(slug)","slug":"\#(slug)","plan":"free"}"#)
            }
            let first = try await client.call(.get, "/v1/admin/tenants?limit=3", token: token)
            #expect(first["items"]?.arrayValue.count == 3)
            let cursor = try #require(first.string("nextCursor"))
            let second = try await client.call(.get, "/v1/admin/tenants?limit=3&cursor=\(cursor)", token: token)
            #expect(second["items"]?.arrayValue.count == 1)
            #expect(second["nextCursor"] == nil, "the last page has no cursor")
            #expect(
                try await client.call(.get, "/v1/admin/tenants?cursor=bogus", token: token).status
                    == .unprocessableContent)
            #expect(
                try await client.call(.get, "/v1/admin/tenants/\(UUID().lowercased)", token: token).status == .notFound)
            #expect(try await client.call(.get, "/v1/admin/tenants/not-a-uuid", token: token).status == .notFound)

            let before = try await harness.store.head()
            let bad = try await client.call(
                .post, "/v1/admin/tenants", token: token, json: #"{"name":"","slug":"X!","plan":"gold","extra":1}"#)
            #expect(bad.status == .unprocessableContent)
            #expect(bad["errors"]?[0]?["pointer"] == .string("/extra"))
            let invalid = try await client.call(
                .post, "/v1/admin/tenants", token: token, json: #"{"name":"","slug":"X!","plan":"gold"}"#)
            let pointers = Set(invalid["errors"]?.arrayValue.compactMap { $0["pointer"]?.stringValue } ?? [])
            #expect(pointers == ["/name", "/slug", "/plan"])
            let missing = try await client.call(
                .post, "/v1/admin/tenants", token: token, json: #"{"name":"x","plan":"free"}"#)
            #expect(missing["errors"]?[0]?["pointer"] == .string("/slug"))
            let mistyped = try await client.call(
                .post, "/v1/admin/tenants", token: token, json: #"{"name":5,"slug":"abc","plan":"free"}"#)
            #expect(mistyped["errors"]?[0]?["pointer"] == .string("/name"))
            #expect(
                try await client.call(.post, "/v1/admin/tenants", token: token, json: "{not json").status == .badRequest
            )
            #expect(
                try await client.call(.post, "/v1/admin/tenants", token: token, json: "[1]").status
                    == .unprocessableContent)
            let wrongType = try await client.call(
                .post, "/v1/admin/tenants", token: token, json: #"{"name":"a","slug":"abc","plan":"free"}"#,
                headers: [.contentType: "text/plain"])
            #expect(wrongType.status == .unsupportedMediaType)
            let huge = try await client.call(
                .post, "/v1/admin/tenants", token: token,
                json: #"{"name":""# + String(repeating: "a", count: 1_100_000) + #""}"#)
            #expect(huge.status == .contentTooLarge)
            #expect(huge.headers[.contentType] == "application/problem+json")
            try await TestDatabase.settle(harness.store)
            #expect(try await harness.store.head() == before, "bad input appended nothing")
        }
    }

    @Test("without the operator token every admin route is a 401 problem; a tenant key is not an operator token")
    func operatorAuth() async throws {
        try await APIHarness.with { harness, client in
            let (_, key, _) = try await client.tenantWithKey("acme")
            for (method, path) in [
                (HTTPRequest.Method.get, "/v1/admin/tenants"), (.post, "/v1/admin/tenants"),
                (.get, "/v1/admin/projections"),
            ] {
                for credential in [nil, "wrong-token", key] {
                    let reply = try await client.call(
                        method, path, token: credential, json: method == .post ? "{}" : nil)
                    #expect(reply.status == .unauthorized, "\(method) \(path)")
                    #expect(reply.headers[.contentType] == "application/problem+json")
                    #expect(reply.headers[.wwwAuthenticate] != nil)
                }
            }
        }
    }

    @Test("suspend and reinstate change what the tenant's key may do; repeating either changes nothing")
    func suspendReinstate() async throws {
        try await APIHarness.with { harness, client in
            let (tenant, key, _) = try await client.tenantWithKey("acme")
            #expect(try await client.call(.get, "/v1/tenant", token: key).status == .ok)
            let suspended = try await client.call(
                .post, "/v1/admin/tenants/\(tenant)/suspend", token: token, json: #"{"reason":"unpaid"}"#)
            #expect(suspended.string("status") == "suspended")
            let version = try await harness.store.version(of: .tenant(UUID(uuidString: tenant)!))
            #expect(
                try await client.call(.post, "/v1/admin/tenants/\(tenant)/suspend", token: token, json: "{}").status
                    == .ok)
            #expect(
                try await harness.store.version(of: .tenant(UUID(uuidString: tenant)!)) == version,
                "a second suspension appends nothing")
            let refused = try await client.call(.get, "/v1/tenant", token: key)
            #expect(refused.status == .unauthorized)
            #expect(refused.string("detail")?.contains("suspended") == true)
            #expect(
                try await client.call(.post, "/v1/admin/tenants/\(tenant)/reinstate", token: token).string("status")
                    == "active")
            #expect(try await client.call(.get, "/v1/tenant", token: key).status == .ok)
        }
    }

    @Test("a plan change is a PlanChanged event and the tenant's limits follow it at once")
    func planChange() async throws {
        try await APIHarness.with { harness, client in
            let (tenant, key, _) = try await client.tenantWithKey("acme", plan: "free")
            #expect(
                try await client.call(.get, "/v1/tenant", token: key)["limits"]?["keyRequestsPerSecond"] == .number(5))
            let changed = try await client.call(
                .put, "/v1/admin/tenants/\(tenant)/plan", token: token, json: #"{"plan":"enterprise"}"#)
            #expect(changed.status == .ok && changed.string("plan") == "enterprise")
            let events = try await harness.store.read(stream: .tenant(UUID(uuidString: tenant)!))
            #expect(events.last?.type == "PlanChanged")
            #expect(
                try await client.call(.get, "/v1/tenant", token: key)["limits"]?["keyRequestsPerSecond"] == .number(500)
            )
            let unknown = try await client.call(
                .put, "/v1/admin/tenants/\(tenant)/plan", token: token, json: #"{"plan":"platinum"}"#)
            #expect(unknown.status == .unprocessableContent && unknown["errors"]?[0]?["pointer"] == .string("/plan"))
        }
    }

    @Test(
        "keys: the plaintext is in the issuing response only; revoke stops it; rotate keeps the old key for the grace period"
    )
    func keys() async throws {
        try await APIHarness.with { harness, client in
            let (tenant, key, keyID) = try await client.tenantWithKey("acme")
            #expect(key.hasPrefix("tly_") && key.count == 44)
            let listed = try await client.call(.get, "/v1/admin/tenants/\(tenant)/keys", token: token)
            #expect(listed["items"]?.arrayValue.count == 1)
            #expect(!listed.text.contains(key))
            #expect(listed["items"]?[0]?["displayPrefix"] == .string(String(key.prefix(12))))

            let rotated = try await client.call(
                .post, "/v1/admin/tenants/\(tenant)/keys/\(keyID)/rotate", token: token, json: "{}")
            #expect(rotated.status == .created)
            let newKey = try #require(rotated["key"]?["key"]?.stringValue)
            #expect(
                try await client.call(.get, "/v1/tenant", token: key).status == .ok,
                "the old key works during the grace period")
            #expect(try await client.call(.get, "/v1/tenant", token: newKey).status == .ok)
            #expect(
                try await client.call(
                    .post, "/v1/admin/tenants/\(tenant)/keys/\(keyID)/rotate", token: token, json: "{}"
                ).status == .conflict)

            let newID = try #require(rotated["key"]?["id"]?.stringValue)
            let immediate = try await client.call(
                .post, "/v1/admin/tenants/\(tenant)/keys/\(newID)/rotate", token: token, json: #"{"graceSeconds":0}"#)
            let third = try #require(immediate["key"]?["key"]?.stringValue)
            #expect(
                try await client.call(.get, "/v1/tenant", token: newKey).status == .unauthorized,
                "no grace: the rotated key stops")

            let thirdID = try #require(immediate["key"]?["id"]?.stringValue)
            #expect(
                try await client.call(.delete, "/v1/admin/tenants/\(tenant)/keys/\(thirdID)", token: token).status
                    == .noContent)
            let revoked = try await client.call(.get, "/v1/tenant", token: third)
            #expect(revoked.status == .unauthorized && revoked.string("detail")?.contains("revoked") == true)
            #expect(
                try await client.call(.delete, "/v1/admin/tenants/\(tenant)/keys/\(thirdID)", token: token).status
                    == .noContent)

            let (other, _, _) = try await client.tenantWithKey("other")
            #expect(
                try await client.call(.delete, "/v1/admin/tenants/\(other)/keys/\(keyID)", token: token).status
                    == .notFound, "another tenant's key")
            let expired = try await client.call(
                .post, "/v1/admin/tenants/\(tenant)/keys", token: token,
                json: #"{"name":"x","expiresAt":"2020-01-01T00:00:00Z"}"#)
            #expect(expired.status == .unprocessableContent)
        }
    }

    @Test("a revoked key stops working on a second instance within about a second")
    func revocationReachesOtherInstances() async throws {
        try await APIHarness.with { harness, client in
            let (tenant, key, keyID) = try await client.tenantWithKey("acme")
            // Its own store: its own connections and LISTEN, as another process would have; it polls only every 10 s,
            // so the notification is what must carry the revocation.
            let otherStore = EventStore(
                configuration: .init(databaseURL: harness.url, maxConnections: 4, pollInterval: .seconds(10)))
            defer { otherStore.close() }
            let second = await APIServices.start(
                settings: APIHarness.settings(), store: otherStore, logger: APIHarness.logger)
            let background = Task { await second.run() }
            defer { background.cancel() }
            try await buildApplication(services: second).test(.router) { other in
                #expect(try await other.call(.get, "/v1/tenant", token: key).status == .ok)
                #expect(try await other.call(.get, "/v1/tenant", token: key).status == .ok)
                #expect(
                    try await client.call(.delete, "/v1/admin/tenants/\(tenant)/keys/\(keyID)", token: token).status
                        == .noContent)
                let revokedAt = ContinuousClock.now
                var status = HTTPResponse.Status.ok
                while status == .ok, ContinuousClock.now - revokedAt < .seconds(10) {
                    status = try await other.call(.get, "/v1/tenant", token: key).status
                    try await Task.sleep(for: .milliseconds(20))
                }
                let took = ContinuousClock.now - revokedAt
                #expect(status == .unauthorized)
                // About a second on an idle machine (the notification, else the 100 ms poll); under make
                // stress-test it was seen at 2.3 s, so the bound is the one a loaded machine keeps.
                #expect(took < .seconds(5), "the second instance took \(took)")
            }
            background.cancel()
            await background.value
        }
    }
}
