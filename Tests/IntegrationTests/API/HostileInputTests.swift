import Foundation
import HTTPTypes
import HummingbirdTesting
import TestSupport
import Testing

@testable import API
@testable import Events
@testable import Projections

/// The decoders' extremes: each is a 4xx naming what is wrong, and the process goes on answering.
@Suite("API: hostile input at the decoders' extremes", .timeLimit(.minutes(5)))
struct HostileInputTests {
    static func cursor(_ text: String) -> String { Base64URL.encode(Array(text.utf8)) }

    @Test("crafted cursors, limits, periods and timestamps are 422 naming the parameter or field; the process lives")
    func extremes() async throws {
        try await APIHarness.with { _, client in
            let (tenant, key, _) = try await client.tenantWithKey("acme")
            let id = "00000000-0000-0000-0000-000000000001"
            // Int64.max and .min micros trapped the conversion to a timestamp and killed the process.
            let cursors =
                [
                    "9223372036854775807|\(id)", "-9223372036854775808|\(id)", "-210866803200000001|\(id)",
                    "253402300800000000|\(id)", "12|not-a-uuid",
                ].map(Self.cursor) + ["%%%", String(repeating: "A", count: 3000)]
            for (path, token) in [
                ("/v1/runs", key), ("/v1/workflows", key), ("/v1/admin/tenants", APIHarness.operatorToken),
            ] {
                for cursor in cursors {
                    let reply = try await client.call(.get, "\(path)?cursor=\(cursor)", token: token)
                    #expect(reply.status == .unprocessableContent, "\(path) \(cursor.prefix(40)): \(reply.text)")
                    #expect(reply["errors"]?[0]?["parameter"]?.stringValue == "cursor")
                }
                for limit in ["0", "201", "-1", "9223372036854775808", "1.5", "x"] {
                    let reply = try await client.call(.get, "\(path)?limit=\(limit)", token: token)
                    #expect(reply.status == .unprocessableContent, "\(path) limit \(limit)")
                }
            }
            for period in ["9999-12", "2024-+1", "1999-12", "2024-13", "20241-01", "0000-01"] {
                let reply = try await client.call(.get, "/v1/usage?period=\(period)", token: key)
                #expect(reply.status == .unprocessableContent, "period \(period): \(reply.text)")
                #expect(reply["errors"]?[0]?["parameter"]?.stringValue == "period")
            }
            // Years of more than four digits and hours past 23 parsed as dates no timestamp holds: the key's
            // event would then have stopped the api_keys projection on every start.
            for expiresAt in [
                "300000-01-01T00:00:00Z", "2030-01-01T9999999999:00:00Z", "2030-02-30T00:00:00Z", "2030-01-01",
            ] {
                let reply = try await client.call(
                    .post, "/v1/admin/tenants/\(tenant)/keys", token: APIHarness.operatorToken,
                    json: #"{"name":"k","expiresAt":"\#(expiresAt)"}"#)
                #expect(reply.status == .unprocessableContent, "expiresAt \(expiresAt): \(reply.text)")
                #expect(reply["errors"]?[0]?["pointer"]?.stringValue == "/expiresAt")
            }
            let far = try await client.call(
                .post, "/v1/admin/tenants/\(tenant)/keys", token: APIHarness.operatorToken,
                json: #"{"name":"k","expiresAt":"9999-12-31T23:59:59.5+01:00"}"#)
            #expect(far.status == .created, "\(far.text)")
            // Still answering, and the projections took the far key.
            #expect(try await client.call(.get, "/v1/tenant", token: key).status == .ok)
            #expect(try await client.call(.get, "/readyz").status == .ok)
        }
    }

    @Test("RFC 3339 timestamps: what parses is exactly what was written")
    func rfc3339() {
        #expect(RFC3339.date(from: "2026-12-01T09:30:00Z") == Date(timeIntervalSince1970: 1_796_117_400))
        #expect(RFC3339.date(from: "2026-12-01T10:30:00.250+01:00") == Date(timeIntervalSince1970: 1_796_117_400.25))
        #expect(RFC3339.date(from: "2024-02-29T00:00:00Z") != nil)
        for bad in [
            "2023-02-29T00:00:00Z", "2026-12-01T24:00:00Z", "2026-12-01 09:30:00Z", "2026-12-01T09:30:00",
            "1969-12-31T23:59:59Z", "2026-12-01T09:30:00.1234567890Z",
        ] {
            #expect(RFC3339.date(from: bad) == nil, "\(bad)")
        }
    }

    @Test("a run whose append fails gives its quota back: the plan's last run can still be started")
    func quotaReleasedOnFailedAppend() async throws {
        let plans = try Plans([
            Plan(
                name: "pro", keyRequestsPerSecond: 100, tenantRequestsPerSecond: 100, monthlyAPICalls: nil,
                monthlyRuns: 1)
        ])
        try await APIHarness.with(plans: plans) { harness, client in
            let (_, key, _) = try await client.tenantWithKey("acme")
            let workflow = try await client.workflow(key)
            let start = #"{"workflowId":"\#(workflow)","input":{"linkedinUrl":"https://www.linkedin.com/in/a"}}"#
            // This database refuses the next RunStarted (a fault of the test's own).
            try await harness.store.pool.withConnection { connection in
                try await connection.execute(
                    """
                    CREATE FUNCTION refuse_runs() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN RAISE EXCEPTION 'refused by the test' USING ERRCODE = '57014'; END $$;
                    CREATE TRIGGER refuse_runs BEFORE INSERT ON events FOR EACH ROW
                        WHEN (NEW.event_type = 'RunStarted') EXECUTE FUNCTION refuse_runs();
                    """)
            }
            let failed = try await client.call(.post, "/v1/runs", token: key, json: start)
            #expect(failed.status == .serviceUnavailable, "\(failed.text)")
            #expect(failed.headers[.retryAfter] != nil)
            try await harness.store.pool.query("DROP TRIGGER refuse_runs ON events")
            let started = try await client.call(.post, "/v1/runs", token: key, json: start)
            #expect(started.status == .accepted, "the failed start kept its quota: \(started.text)")
            #expect(try await client.call(.post, "/v1/runs", token: key, json: start).status == .tooManyRequests)
        }
    }
}
