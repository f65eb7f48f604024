import Foundation
import Testing

@testable import API
@testable import Events

@Suite("API: configuration, cursors and Stripe signatures")
struct ConfigurationTests {
    @Test(
        "TALLY_LISTEN parses host:port and rejects anything else",
        arguments: [
            ("127.0.0.1:8080", true), (":9000", true), ("[::1]:80", true), ("localhost", false), ("h:99999", false),
            ("h:x", false),
        ])
    func listen(text: String, valid: Bool) {
        #expect((APISettings.parseListen(text) != nil) == valid)
    }

    @Test("a cursor round-trips its row's sort key; anything the API did not write is a 422 naming the parameter")
    func cursors() throws {
        let id = UUID()
        let date = Date(timeIntervalSince1970: 1_796_083_200.123456)
        let (decoded, decodedID) = try Cursor.decode(Cursor.encode(date, id))
        #expect(decodedID == id && abs(decoded.timeIntervalSince(date)) < 0.000_001)
        for bad in [
            "", "not base64!", Base64URL.encode(Array("12|x".utf8)), Base64URL.encode(Array("-1|\(id)".utf8)),
            Base64URL.encode(Array("253402300800000000|\(id.lowercased)".utf8)),
        ] {
            #expect {
                try Cursor.decode(bad)
            } throws: { error in
                (error as? Problem)?.errors.first?.parameter == "cursor"
            }
        }
    }

    static func signed(_ body: String, secret: String, at timestamp: Int) -> String {
        let message = Array("\(timestamp).\(body)".utf8)
        return "t=\(timestamp),v1=\(Sodium.hex(Sodium.hmacSHA256(key: Array(secret.utf8), message: message)))"
    }

    @Test("a Stripe signature matches under any configured secret, within the tolerance either way, and nothing else")
    func stripeSignatures() {
        let body = #"{"id":"evt_1"}"#
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        func verify(_ header: String?, secrets: [String] = ["whsec_old", "whsec_new"]) -> StripeSignature.Failure? {
            do {
                try StripeSignature.verify(
                    header: header, body: Array(body.utf8), secrets: secrets, now: now, tolerance: .seconds(300))
                return nil
            } catch {
                return error
            }
        }
        #expect(verify(Self.signed(body, secret: "whsec_new", at: 1_800_000_000)) == nil)
        #expect(verify(Self.signed(body, secret: "whsec_old", at: 1_799_999_700)) == nil)
        #expect(verify(Self.signed(body, secret: "whsec_other", at: 1_800_000_000)) == .noMatch)
        #expect(verify(Self.signed(body, secret: "whsec_new", at: 1_799_999_699)) == .tooOld)
        #expect(verify(Self.signed(body, secret: "whsec_new", at: 1_800_000_301)) == .inFuture)
        // Signed for other bytes (one space more): the body is never re-serialised, so it does not match.
        #expect(verify(Self.signed(body + " ", secret: "whsec_new", at: 1_800_000_000)) == .noMatch)
        #expect(verify(nil) == .missing)
        #expect(verify("  ") == .missing)
        #expect(verify("v1=abc") == .malformed)
        #expect(verify(Self.signed(body, secret: "whsec_new", at: 1_800_000_000), secrets: []) == .noMatch)
    }
}
