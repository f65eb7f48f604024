import AsyncHTTPClient
import Foundation
import NIOHTTP1

/// ZeroBounce `GET /v2/validate`; the key travels in the query string, so the URL is never logged or described.
enum ZeroBounceAdapter {
    /// The fields the adapter reads; ZeroBounce sends booleans and numbers as strings, and they are not needed here.
    struct Answer: Decodable {
        var status: String?
        var error: String?
    }

    /// Statuses ZeroBounce documents; anything else is not an answer the workflow can act on.
    static let statuses: Set<String> = ["valid", "invalid", "catch-all", "unknown", "spamtrap", "abuse", "do_not_mail"]

    static func plan(email: String?, base: String, key: UnsafeRawBufferPointer) -> VendorHTTPPlan {
        guard let email = email.nonBlank else { return .skip(.noCall("zerobounce: no email to validate")) }
        let query =
            "api_key=" + String(decoding: key, as: UTF8.self).queryEncoded + "&email=" + email.queryEncoded
            + "&ip_address="
        var request = HTTPClientRequest(url: base.trimmedBase + "/v2/validate?" + query)
        request.method = .GET
        request.headers.add(name: "Accept", value: "application/json")
        return .send(request)
    }

    static func classify(_ answer: VendorHTTPAnswer) -> VendorCallResult {
        let status = answer.status
        guard status == 200 else {
            return .transient("zerobounce: HTTP \(status)", status: status, retryAfterSeconds: answer.retryAfterSeconds)
        }
        guard let decoded = answer.decode(Answer.self) else {
            return .transient("zerobounce: HTTP 200 unreadable answer", status: status, retryAfterSeconds: nil)
        }
        if decoded.error != nil {
            // ZeroBounce says "invalid key or out of credits" in one message with HTTP 200; its text is not echoed.
            return .keyFatal("zerobounce: HTTP 200 error: key invalid or out of credits", status: status)
        }
        guard let validation = decoded.status?.lowercased(), statuses.contains(validation) else {
            return .transient("zerobounce: HTTP 200 without a known status", status: status, retryAfterSeconds: nil)
        }
        // One credit per validation, never for `unknown`.
        return .found(
            email: nil, validationStatus: validation, credits: validation == "unknown" ? 0 : 1, status: status)
    }
}
