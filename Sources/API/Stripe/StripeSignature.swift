import Events
import Foundation
import HTTPTypes

/// The `Stripe-Signature` header of a webhook delivery: `t=<unix seconds>,v1=<hex>[,v1=<hex>...]`.
///
/// Stripe signs `"<t>." + the raw body` with HMAC-SHA-256 under the endpoint's secret. A delivery is
/// authentic when any `v1` matches under any configured secret (several are configured while one is
/// rolled); other schemes (`v0`, test-mode signatures) are ignored. The timestamp is signed too, so
/// checking it bounds how long a captured delivery can be replayed.
struct StripeSignature: Equatable {
    var timestamp: Int64
    /// The `v1` signatures as sent (hex); unusable ones simply match nothing.
    var signatures: [String]

    /// Why a delivery is not authentic.
    enum Failure: Error, Equatable {
        case missing
        case malformed
        case noMatch
        case tooOld
        case inFuture
    }

    /// Parses the header; nil when it is not `key=value` pairs with exactly one numeric `t`.
    init?(header: String) {
        var timestamp: Int64?
        var signatures: [String] = []
        for item in header.split(separator: ",") {
            let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2 else { return nil }
            let key = pair[0].trimmingCharacters(in: .whitespaces)
            let value = pair[1].trimmingCharacters(in: .whitespaces)
            switch key {
            case "t":
                guard timestamp == nil, (1...18).contains(value.utf8.count),
                    value.utf8.allSatisfy({ (0x30...0x39).contains($0) })
                else {
                    return nil
                }
                timestamp = Int64(value)
            case "v1":
                signatures.append(value)
            default:
                continue
            }
        }
        guard let timestamp else { return nil }
        self.timestamp = timestamp
        self.signatures = signatures
    }

    /// Checks `header` against `body` (the raw bytes received, never re-serialised): some `v1` must match
    /// under some secret, and the timestamp must be within `tolerance` of `now` either way. Every
    /// signature is compared with every secret in constant time.
    static func verify(header: String?, body: [UInt8], secrets: [String], now: Date, tolerance: Duration)
        throws(Failure)
    {
        guard let header, !header.trimmingCharacters(in: .whitespaces).isEmpty else { throw .missing }
        guard let signature = StripeSignature(header: header) else { throw .malformed }
        let signed = Array("\(signature.timestamp).".utf8) + body
        let given = signature.signatures.map { Array($0.lowercased().utf8) }
        var matched = false
        for secret in secrets {
            let expected = Array(Sodium.hex(Sodium.hmacSHA256(key: Array(secret.utf8), message: signed)).utf8)
            for candidate in given where Sodium.constantTimeEquals(expected, candidate) {
                matched = true
            }
        }
        guard matched else { throw .noMatch }
        let age = now.timeIntervalSince1970 - Double(signature.timestamp)
        let limit = Double(tolerance.components.seconds)
        if age > limit { throw .tooOld }
        if -age > limit { throw .inFuture }
    }
}

extension Problem {
    static func stripeSignature(_ failure: StripeSignature.Failure, tolerance: Duration) -> Problem {
        let seconds = tolerance.components.seconds
        switch failure {
        case .missing:
            return Problem(
                .badRequest, "malformed-stripe-signature", title: "Malformed Stripe-Signature",
                detail: "The Stripe-Signature header is missing.")
        case .malformed:
            return Problem(
                .badRequest, "malformed-stripe-signature", title: "Malformed Stripe-Signature",
                detail: "The Stripe-Signature header is not t=<unix seconds>,v1=<hex>[,v1=<hex>...].")
        case .noMatch:
            return Problem(
                .badRequest, "invalid-stripe-signature", title: "Invalid Stripe signature",
                detail: "No v1 signature matches the body under a configured webhook secret.")
        case .tooOld:
            return Problem(
                .badRequest, "invalid-stripe-signature", title: "Invalid Stripe signature",
                detail: "The signature's timestamp is more than \(seconds) s old.")
        case .inFuture:
            return Problem(
                .badRequest, "invalid-stripe-signature", title: "Invalid Stripe signature",
                detail: "The signature's timestamp is more than \(seconds) s in the future.")
        }
    }

    static let stripeNotConfigured = Problem(
        .serviceUnavailable, "stripe-webhooks-not-configured", title: "Stripe webhooks are not configured",
        detail:
            "Set TALLY_STRIPE_WEBHOOK_SECRETS to the endpoint's signing secret (whsec_...) and restart; until then every delivery is refused."
    )
}
