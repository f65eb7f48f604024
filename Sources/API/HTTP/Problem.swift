import Foundation
import HTTPTypes
import Hummingbird

/// An RFC 9457 problem document; every error response of the API is one. Handlers throw it.
struct Problem: Error, HTTPResponseError, Sendable {
    /// One invalid part of a request, located by a JSON pointer (RFC 6901) into the body, or a query
    /// parameter or header name.
    struct FieldError: Encodable, Sendable, Equatable {
        var detail: String
        var pointer: String?
        var parameter: String?
        var header: String?

        init(detail: String, pointer: String? = nil, parameter: String? = nil, header: String? = nil) {
            self.detail = detail
            self.pointer = pointer
            self.parameter = parameter
            self.header = header
        }
    }

    var type: String
    var title: String
    var status: HTTPResponse.Status
    var detail: String?
    var instance: String?
    var errors: [FieldError] = []
    var violatedPolicies: [String] = []
    var headers: HTTPFields = [:]

    init(
        _ status: HTTPResponse.Status, _ slug: String?, title: String, detail: String? = nil, errors: [FieldError] = [],
        headers: HTTPFields = [:]
    ) {
        self.type = slug.map { Self.typeBase + $0 } ?? "about:blank"
        self.title = title
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers
    }

    static let typeBase = "https://tally.dev/problems/"

    func response(from request: Request, context: some RequestContext) throws -> Response { response }

    var response: Response {
        var fields = headers
        fields[.contentType] = "application/problem+json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    var body: [UInt8] {
        struct Document: Encodable {
            var type: String
            var title: String
            var status: Int
            var detail: String?
            var instance: String?
            var errors: [FieldError]?
            var violatedPolicies: [String]?
            enum CodingKeys: String, CodingKey {
                case type, title, status, detail, instance, errors, violatedPolicies = "violated-policies"
            }
        }
        let document = Document(
            type: type, title: title, status: status.code, detail: detail, instance: instance,
            errors: errors.isEmpty ? nil : errors,
            violatedPolicies: violatedPolicies.isEmpty ? nil : violatedPolicies)
        return (try? JSON.encode(document)) ?? Array(#"{"status":500,"title":"Internal Server Error"}"#.utf8)
    }
}

extension Problem {
    static func validation(_ errors: [FieldError]) -> Problem {
        Problem(
            .unprocessableContent, "validation", title: "The request is not valid",
            detail: errors.count == 1 ? errors[0].detail : "\(errors.count) fields are not valid", errors: errors)
    }

    static func validation(_ detail: String, pointer: String) -> Problem {
        validation([FieldError(detail: detail, pointer: pointer)])
    }

    static func notFound(_ what: String) -> Problem {
        Problem(.notFound, "not-found", title: "Not found", detail: "No \(what) with this id exists.")
    }

    static func conflict(_ detail: String) -> Problem {
        Problem(.conflict, "conflict", title: "Conflict", detail: detail)
    }

    static let unauthorized = Problem(
        .unauthorized, "unauthorized", title: "Unauthorized", detail: "A valid bearer credential is required.",
        headers: [.wwwAuthenticate: #"Bearer realm="tally""#])

    static func unauthorized(_ detail: String) -> Problem {
        var problem = unauthorized
        problem.detail = detail
        return problem
    }
}

/// JSON as the API writes it: keys sorted, dates in RFC 3339 with milliseconds, slashes unescaped.
enum JSON {
    static func encode(_ value: some Encodable) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(timestamp(date))
        }
        return Array(try encoder.encode(value))
    }

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws
        -> Response
    {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: try encode(value))))
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(
            Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: TimeZone(identifier: "UTC")!))
    }
}

// Ids appear in lower case everywhere in the API (paths, Location, bodies). Synthesized `Encodable`
// conformances in this module pick these overloads over the generic ones.
extension KeyedEncodingContainer {
    mutating func encode(_ value: UUID, forKey key: Key) throws {
        try encode(value.uuidString.lowercased(), forKey: key)
    }

    mutating func encodeIfPresent(_ value: UUID?, forKey key: Key) throws {
        try encodeIfPresent(value.map { $0.uuidString.lowercased() }, forKey: key)
    }
}
