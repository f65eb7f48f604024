import Events
import Foundation

/// The answers chosen by the input: labels of the company domain for the finders, of the email's domain for
/// ZeroBounce, and the key's prefix for all three (the table is in docs/fake-vendors.md).
struct FakeVendorScript: Hashable {
    /// How the finder or the validator answers once the one-shot traps have fired.
    enum Result: Hashable {
        case found
        case miss
        case error
        case noCredits
        /// A ZeroBounce status.
        case validation(String)
    }

    var result: Result
    /// The first call for this key, vendor and person answers 429.
    var rateLimitOnce = false
    /// The first call for this key, vendor and person answers 503.
    var flakyOnce = false
    /// Sleep `slowMilliseconds` before answering.
    var slow = false

    /// The script of a finder for a company domain: vendor-prefixed labels (`prospeo-miss`) override the plain
    /// result labels (`miss`) for that vendor; the modifiers (`ratelimit`, `flaky`, `slow`) of both kinds add up.
    init(finder vendor: Vendor, domain: String?) {
        let labels = Self.labels(of: domain)
        let prefix = vendor.rawValue + "-"
        let own = labels.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
        let plain = labels.filter { label in !Vendor.allCases.contains { label.hasPrefix($0.rawValue + "-") } }
        func result(_ labels: [String]) -> Result? {
            // The strongest label wins when several are given, so the order of labels never matters.
            if labels.contains("error") { return .error }
            if labels.contains("nocredits") { return .noCredits }
            if labels.contains("miss") { return .miss }
            if labels.contains("found") { return .found }
            return nil
        }
        self.result = result(own) ?? result(plain) ?? .found
        let all = Set(own + plain)
        rateLimitOnce = all.contains("ratelimit")
        flakyOnce = all.contains("flaky")
        slow = all.contains("slow")
    }

    /// The ZeroBounce script for an address: `zb-` labels of its domain.
    init(validating email: String) {
        let domain = email.split(separator: "@").last.map(String.init)
        let labels = Self.labels(of: domain).filter { $0.hasPrefix("zb-") }.map { String($0.dropFirst(3)) }
        let statuses: [(label: String, status: String)] = [
            ("invalid", "invalid"), ("spamtrap", "spamtrap"), ("abuse", "abuse"), ("do-not-mail", "do_not_mail"),
            ("catch-all", "catch-all"), ("unknown", "unknown"),
        ]
        if labels.contains("error") {
            result = .error
        } else if let match = statuses.first(where: { labels.contains($0.label) }) {
            result = .validation(match.status)
        } else {
            result = .validation("valid")
        }
        rateLimitOnce = labels.contains("ratelimit")
        flakyOnce = labels.contains("flaky")
        slow = labels.contains("slow")
    }

    /// The lowercased dot-separated labels of a domain given as a bare domain or a website URL.
    static func labels(of domain: String?) -> [String] {
        normalizedDomain(domain).split(separator: ".").map(String.init)
    }

    /// `https://www.Acme.com/about` → `acme.com`.
    static func normalizedDomain(_ domain: String?) -> String {
        var text = (domain ?? "").trimmingCharacters(in: .whitespaces).lowercased()
        if let range = text.range(of: "://") { text = String(text[range.upperBound...]) }
        if let slash = text.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) { text = String(text[..<slash]) }
        if text.hasPrefix("www.") { text.removeFirst(4) }
        return text
    }

    /// The address the finders return: `first.last@domain` from the first and last words of the name (diacritics
    /// folded, then ASCII letters only); with no usable name or domain, `<profile slug>@linkedin-found.example`.
    static func foundEmail(fullName: String?, domain: String?, linkedinURL: String?) -> String {
        let words = (fullName ?? "").folding(options: [.diacriticInsensitive, .caseInsensitive], locale: nil)
            .split(whereSeparator: \.isWhitespace)
            .map {
                String($0.unicodeScalars.filter { $0.isASCII && $0.properties.isAlphabetic }.map(Character.init))
                    .lowercased()
            }
            .filter { !$0.isEmpty }
        let host = normalizedDomain(domain)
        if let first = words.first, !host.isEmpty {
            let local = words.count > 1 ? first + "." + words[words.count - 1] : first
            return local + "@" + host
        }
        return linkedinSlug(linkedinURL) + "@linkedin-found.example"
    }

    /// `https://www.linkedin.com/in/Ada-Lovelace/` → `ada-lovelace`; "profile" when the URL has no usable slug.
    static func linkedinSlug(_ url: String?) -> String {
        let parts = (url ?? "").lowercased().split(separator: "?").first.map { $0.split(separator: "/") } ?? []
        let slug = parts.last(where: { !$0.isEmpty }).map { part in
            String(
                part.unicodeScalars.filter {
                    $0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil || $0 == "-")
                }
                .map(Character.init))
        }
        guard let slug, !slug.isEmpty, parts.count > 1 else { return "profile" }
        return slug
    }
}
