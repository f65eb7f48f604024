import AsyncHTTPClient
import Events
import Foundation
import NIOCore
import NIOHTTP1

/// Findymail `POST /api/search/name`, header `Authorization: Bearer`; it returns verified emails only.
enum FindymailAdapter {
    struct Body: Encodable {
        var name: String
        var domain: String
    }

    struct Answer: Decodable {
        struct Contact: Decodable {
            var email: String?
        }
        var contact: Contact?
    }

    static func plan(_ person: PersonInput, base: String, key: UnsafeRawBufferPointer) -> VendorHTTPPlan {
        // The name search needs both; a LinkedIn URL alone is Prospeo's to answer, so this vendor misses without a
        // call (no credit, no vendor call counted) and the waterfall moves on.
        guard let name = person.fullName.nonBlank, let domain = person.domain.nonBlank else {
            return .skip(.noCall("findymail: needs a name and a domain"))
        }
        var request = HTTPClientRequest(url: base.trimmedBase + "/api/search/name")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "Authorization", value: "Bearer " + String(decoding: key, as: UTF8.self))
        request.body = .bytes(
            ByteBuffer(bytes: (try? JSONEncoder().encode(Body(name: name, domain: domain))) ?? Data()))
        return .send(request)
    }

    static func classify(_ answer: VendorHTTPAnswer) -> VendorCallResult {
        let status = answer.status
        let label = "findymail: HTTP \(status)"
        switch status {
        case 200:
            guard let email = answer.decode(Answer.self)?.contact?.email, !email.isEmpty else {
                return .miss(status: status)
            }
            return .found(email: email, validationStatus: nil, credits: 1, status: status)
        case 404:
            return .miss(status: status)
        case 401, 403:
            return .keyFatal(label + " key refused", status: status)
        case 402:
            return .keyFatal(label + " out of credits", status: status)
        case 400, 422:
            // Findymail rejected the input itself (a malformed name or domain): retrying cannot help.
            return .miss(status: status, detail: label)
        default:
            return .transient(label, status: status, retryAfterSeconds: answer.retryAfterSeconds)
        }
    }
}
