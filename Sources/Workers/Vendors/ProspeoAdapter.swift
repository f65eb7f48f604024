import AsyncHTTPClient
import Events
import Foundation
import NIOCore
import NIOHTTP1

/// Prospeo `POST /enrich-person`, header `X-KEY`, verified emails only.
enum ProspeoAdapter {
    struct Body: Encodable {
        struct Person: Encodable {
            var fullName: String?
            var companyWebsite: String?
            var linkedinURL: String?

            enum CodingKeys: String, CodingKey {
                case fullName = "full_name", companyWebsite = "company_website", linkedinURL = "linkedin_url"
            }
        }
        var onlyVerifiedEmail = true
        var data: Person

        enum CodingKeys: String, CodingKey { case onlyVerifiedEmail = "only_verified_email", data }
    }

    struct Answer: Decodable {
        struct Person: Decodable {
            struct Email: Decodable {
                var email: String?
                var status: String?
            }
            var email: Email?
        }
        var error: Bool?
        var errorCode: String?
        var freeEnrichment: Bool?
        var person: Person?

        enum CodingKeys: String, CodingKey {
            case error, errorCode = "error_code", freeEnrichment = "free_enrichment", person
        }
    }

    static func plan(_ person: PersonInput, base: String, key: UnsafeRawBufferPointer) -> VendorHTTPPlan {
        let name = person.fullName.nonBlank
        let domain = person.domain.nonBlank
        let linkedin = person.linkedinURL.nonBlank
        // Prospeo matches on a name at a company, or on a LinkedIn profile; with neither it can only say INVALID_REQUEST.
        guard (name != nil && domain != nil) || linkedin != nil else {
            return .skip(.noCall("prospeo: needs a name and a domain, or a LinkedIn URL"))
        }
        let body = Body(data: .init(fullName: name, companyWebsite: domain, linkedinURL: linkedin))
        var request = HTTPClientRequest(url: base.trimmedBase + "/enrich-person")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "X-KEY", value: String(decoding: key, as: UTF8.self))
        request.body = .bytes(ByteBuffer(bytes: (try? JSONEncoder().encode(body)) ?? Data()))
        return .send(request)
    }

    static func classify(_ answer: VendorHTTPAnswer) -> VendorCallResult {
        let status = answer.status
        let decoded = answer.decode(Answer.self)
        // Codes are echoed only when they look like Prospeo's SHOUTING_CODES: a reason never carries free text.
        let code = decoded?.errorCode.flatMap { code in
            code.count <= 40 && code.allSatisfy { $0.isASCII && ($0.isUppercase || $0.isNumber || $0 == "_") }
                ? code : nil
        }
        let label = "prospeo: HTTP \(status)" + (code.map { " \($0)" } ?? "")
        switch (status, code) {
        case (200, _) where decoded?.error != true:
            guard let email = decoded?.person?.email?.email, !email.isEmpty else { return .miss(status: status) }
            // Prospeo bills one credit per match, nothing when the same record was enriched before.
            let free = decoded?.freeEnrichment ?? false
            return .found(email: email, validationStatus: nil, credits: free ? 0 : 1, status: status)
        case (_, "NO_MATCH"):
            return .miss(status: status)
        case (_, "INVALID_API_KEY"), (_, "INSUFFICIENT_CREDITS"), (_, "ACCOUNT_RESTRICTED"), (401, _), (403, _):
            return .keyFatal(label, status: status)
        case (_, "INVALID_REQUEST"), (_, "INVALID_PARAM"):
            // The input's fault: retrying cannot help and the key is fine, so the honest answer is a miss.
            return .miss(status: status, detail: label)
        case (429, _):
            return .transient(label, status: status, retryAfterSeconds: retryAfter(answer, code: code))
        default:
            // 5xx, and anything unexpected (a wrong base URL, a proxy's page): worth a later try, never the key's fault.
            return .transient(label, status: status, retryAfterSeconds: answer.retryAfterSeconds)
        }
    }

    /// The pause a 429 asks for: `Retry-After`, and the reset header of the window that ran out (the per-second one
    /// for RATE_LIMITED_BURST, the per-minute one for RATE_LIMITED or when no minute requests are left); the
    /// largest of those that apply.
    static func retryAfter(_ answer: VendorHTTPAnswer, code: String?) -> Int? {
        var candidates = [answer.retryAfterSeconds]
        let minuteExhausted = answer.headers.first(name: "x-minute-request-left").flatMap { Int($0) } == 0
        switch code {
        case "RATE_LIMITED_BURST":
            candidates.append(answer.secondsHeader("x-second-reset-seconds"))
            if minuteExhausted { candidates.append(answer.secondsHeader("x-minute-reset-seconds")) }
        case "RATE_LIMITED":
            candidates.append(answer.secondsHeader("x-minute-reset-seconds"))
        default:
            candidates.append(answer.secondsHeader("x-second-reset-seconds"))
            candidates.append(answer.secondsHeader("x-minute-reset-seconds"))
        }
        return candidates.compactMap { $0 }.max()
    }
}

extension String? {
    /// The trimmed text, nil when absent or blank.
    var nonBlank: String? {
        guard let text = self?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else { return nil }
        return text
    }
}
