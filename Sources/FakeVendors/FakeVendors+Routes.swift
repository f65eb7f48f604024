import Events
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension FakeVendors {
    static func buildRouter(books: FakeVendorBooks) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        let vendors = FakeVendorHandlers(books: books)
        router.post("/enrich-person", use: vendors.prospeo)
        router.post("/api/search/name", use: vendors.findymail)
        router.get("/v2/validate", use: vendors.zerobounce)
        router.get("/__fake/stats") { _, _ in
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return FakeVendorHandlers.json(200, body: try encoder.encode(books.stats))
        }
        router.post("/__fake/reset") { _, _ in
            books.reset()
            return Response(status: .noContent)
        }
        return router
    }
}

/// The three vendors' endpoints. Each request is counted in, delayed, possibly failed at random or rate limited,
/// checked for its key, then answered by the script its input chooses.
struct FakeVendorHandlers: Sendable {
    let books: FakeVendorBooks

    // MARK: Prospeo

    struct ProspeoBody: Decodable {
        struct Person: Decodable {
            var fullName: String?
            var firstName: String?
            var lastName: String?
            var companyWebsite: String?
            var companyName: String?
            var linkedinURL: String?

            enum CodingKeys: String, CodingKey {
                case fullName = "full_name", firstName = "first_name", lastName = "last_name"
                case companyWebsite = "company_website", companyName = "company_name", linkedinURL = "linkedin_url"
            }
        }
        var data: Person
    }

    @Sendable func prospeo(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let key = request.headers[HTTPField.Name("X-KEY")!] ?? ""
        let body = try await request.body.collect(upTo: 1 << 20)
        return await answer(.prospeo, key: key) { keyID in
            func error(_ status: Int, _ code: String) -> Response {
                Self.json(status, ["error": true, "error_code": code])
            }
            if key.hasPrefix("invalid") || key.isEmpty { return error(401, "INVALID_API_KEY") }
            if key.hasPrefix("broke") { return error(400, "INSUFFICIENT_CREDITS") }
            guard let person = try? JSONDecoder().decode(ProspeoBody.self, from: Data(body.readableBytesView)).data
            else {
                return error(400, "INVALID_REQUEST")
            }
            let name =
                person.fullName.nonBlank
                ?? [person.firstName, person.lastName].compactMap(\.nonBlank).joined(separator: " ").nonBlankText
            let domain = person.companyWebsite.nonBlank ?? person.companyName.nonBlank
            let linkedin = person.linkedinURL.nonBlank
            guard (name != nil && domain != nil) || linkedin != nil else { return error(400, "INVALID_PARAM") }
            let record = FakeVendorScript.foundEmail(fullName: name, domain: domain, linkedinURL: linkedin)
            let script = FakeVendorScript(finder: .prospeo, domain: domain)
            return await perform(script, vendor: .prospeo, trap: keyID + "|" + record) { result in
                switch result {
                case .miss: return error(400, "NO_MATCH")
                case .noCredits: return error(400, "INSUFFICIENT_CREDITS")
                case .rateLimited:
                    return error(429, "RATE_LIMITED_BURST").with(["Retry-After": "1", "x-second-reset-seconds": "1"])
                case .failed(let status): return error(status, "INTERNAL_ERROR")
                case .validated: return error(500, "INTERNAL_ERROR")  // a finder's script never validates
                case .found:
                    let free = books.enrichAgain(keyID: keyID, record: record)
                    if !free { books.charge(keyID: keyID, vendor: .prospeo, credits: 1) }
                    let host = FakeVendorScript.normalizedDomain(domain)
                    return Self.json(
                        200,
                        [
                            "error": false, "free_enrichment": free,
                            "person": [
                                "person_id": FakeVendors.keyID(record), "full_name": name ?? NSNull(),
                                "linkedin_url": linkedin ?? NSNull(),
                                "email": ["status": "VERIFIED", "revealed": true, "email": record],
                            ] as [String: Any],
                            "company": host.isEmpty ? NSNull() : ["domain": host, "website": "https://" + host],
                        ])
                }
            }
        }
    }

    // MARK: Findymail

    struct FindymailBody: Decodable {
        var name: String?
        var domain: String?
    }

    @Sendable func findymail(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let authorization = request.headers[.authorization] ?? ""
        let key = authorization.hasPrefix("Bearer ") ? String(authorization.dropFirst(7)) : ""
        let body = try await request.body.collect(upTo: 1 << 20)
        return await answer(.findymail, key: key) { keyID in
            func error(_ status: Int, _ message: String) -> Response { Self.json(status, ["error": message]) }
            if key.hasPrefix("invalid") || key.isEmpty { return error(401, "Unauthenticated.") }
            if key.hasPrefix("broke") { return error(402, "Not enough credits.") }
            let person = try? JSONDecoder().decode(FindymailBody.self, from: Data(body.readableBytesView))
            guard let name = person?.name.nonBlank, let domain = person?.domain.nonBlank else {
                return error(422, "The name and domain fields are required.")
            }
            let email = FakeVendorScript.foundEmail(fullName: name, domain: domain, linkedinURL: nil)
            let script = FakeVendorScript(finder: .findymail, domain: domain)
            return await perform(script, vendor: .findymail, trap: keyID + "|" + email) { result in
                switch result {
                case .miss: return error(404, "Contact not found.")
                case .noCredits: return error(402, "Not enough credits.")
                case .rateLimited: return error(429, "Too Many Attempts.").with(["Retry-After": "1"])
                case .failed(let status): return error(status, "Server Error")
                case .validated: return error(500, "Server Error")  // a finder's script never validates
                case .found:
                    books.charge(keyID: keyID, vendor: .findymail, credits: 1)
                    return Self.json(
                        200,
                        [
                            "contact": [
                                "name": name, "email": email, "domain": FakeVendorScript.normalizedDomain(domain),
                            ]
                        ])
                }
            }
        }
    }

    // MARK: ZeroBounce

    @Sendable func zerobounce(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let query = request.uri.queryParameters
        let key = query["api_key"].map(String.init) ?? ""
        let email = query["email"].map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
        return await answer(.zerobounce, key: key) { keyID in
            if key.hasPrefix("invalid") || key.hasPrefix("broke") || key.isEmpty {
                return Self.json(200, ["error": "Invalid API Key or your account ran out of credits"])
            }
            guard email.contains("@") else { return Self.json(400, ["error": "Missing parameter: email"]) }
            let script = FakeVendorScript(validating: email)
            return await perform(script, vendor: .zerobounce, trap: keyID + "|" + email.lowercased()) { result in
                switch result {
                case .rateLimited: return Self.json(429, ["error": "Too many requests"]).with(["Retry-After": "1"])
                case .failed(let status): return Self.json(status, ["error": "Internal Server Error"])
                case .found, .miss, .noCredits:  // a validation script only validates or fails
                    return Self.json(500, ["error": "Internal Server Error"])
                case .validated(let status):
                    if status != "unknown" { books.charge(keyID: keyID, vendor: .zerobounce, credits: 1) }
                    return Self.json(200, Self.validation(email: email, status: status))
                }
            }
        }
    }

    /// The full ZeroBounce answer: booleans and numbers as strings, as the real API sends them.
    static func validation(email: String, status: String) -> [String: Any] {
        let parts = email.lowercased().split(separator: "@", maxSplits: 1).map(String.init)
        let account = parts.first ?? ""
        let domain = parts.count > 1 ? parts[1] : ""
        let names = account.split(separator: ".").map { $0.prefix(1).uppercased() + $0.dropFirst() }
        let subStatus: [String: String] = [
            "invalid": "mailbox_not_found", "unknown": "timeout_exceeded", "do_not_mail": "role_based",
            "abuse": "", "spamtrap": "", "catch-all": "", "valid": "",
        ]
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss.SSS"
        return [
            "address": email, "status": status, "sub_status": subStatus[status] ?? "", "free_email": "false",
            "did_you_mean": NSNull(), "account": account, "domain": domain, "domain_age_days": "9000",
            "smtp_provider": "", "mx_record": "mx." + domain, "mx_found": status == "invalid" ? "false" : "true",
            "firstname": names.first ?? NSNull(), "lastname": names.count > 1 ? names[names.count - 1] : NSNull(),
            "gender": NSNull(), "country": NSNull(), "region": NSNull(), "city": NSNull(), "zipcode": NSNull(),
            "processed_at": formatter.string(from: Date()),
        ]
    }

    // MARK: Shared

    /// How a scripted request ends, before the vendor's own shape is put on it.
    enum Scripted {
        case found
        case miss
        case noCredits
        case rateLimited
        case failed(status: Int)
        case validated(String)
    }

    /// Counts the request in and out, applies latency, random failures and the configured rate limit, then lets the
    /// vendor check the key and answer.
    func answer(_ vendor: Vendor, key: String, _ body: (String) async -> Response) async -> Response {
        let arrival = books.arrive(key: key, vendor: vendor)
        defer { books.leave(arrival.keyID) }
        if arrival.delayMilliseconds > 0 { try? await Task.sleep(for: .milliseconds(arrival.delayMilliseconds)) }
        if arrival.randomFailure { return Self.json(500, ["error": true, "error_code": "INTERNAL_ERROR"]) }
        if let seconds = arrival.rateLimitedForSeconds {
            let headers = ["Retry-After": "\(seconds)", "x-second-reset-seconds": "\(seconds)"]
            switch vendor {
            case .prospeo: return Self.json(429, ["error": true, "error_code": "RATE_LIMITED_BURST"]).with(headers)
            case .findymail, .zerobounce: return Self.json(429, ["error": "Too Many Attempts."]).with(headers)
            }
        }
        return await body(arrival.keyID)
    }

    /// Applies the one-shot traps and the slow label, then maps the script's result.
    func perform(
        _ script: FakeVendorScript, vendor: Vendor, trap: String, _ respond: (Scripted) async -> Response
    ) async -> Response {
        let trap = vendor.rawValue + "|" + trap
        if script.slow { try? await Task.sleep(for: .milliseconds(books.configuration.slowMilliseconds)) }
        if script.rateLimitOnce && books.fireOnce(trap + "|ratelimit") { return await respond(.rateLimited) }
        if script.flakyOnce && books.fireOnce(trap + "|flaky") { return await respond(.failed(status: 503)) }
        switch script.result {
        case .found: return await respond(.found)
        case .miss: return await respond(.miss)
        case .error: return await respond(.failed(status: 500))
        case .noCredits: return await respond(.noCredits)
        case .validation(let status): return await respond(.validated(status))
        }
    }

    static func json(_ status: Int, _ object: [String: Any]) -> Response {
        let data =
            (try? JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes]))
            ?? Data("{}".utf8)
        return json(status, body: data)
    }

    static func json(_ status: Int, body: Data) -> Response {
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        return Response(status: .init(code: status), headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

extension Response {
    /// The response with more header fields.
    func with(_ headers: [String: String]) -> Response {
        var response = self
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) {
            if let name = HTTPField.Name(name) { response.headers[name] = value }
        }
        return response
    }
}

extension String? {
    /// The trimmed text, nil when absent or blank: how the vendors read an optional field.
    var nonBlank: String? {
        guard let text = self?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else { return nil }
        return text
    }
}

extension String {
    /// Self, nil when blank.
    var nonBlankText: String? {
        Optional(self).nonBlank
    }
}
