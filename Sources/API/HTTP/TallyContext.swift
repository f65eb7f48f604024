import Events
import Foundation
import Hummingbird
import Logging

/// Who a request acts for, once authenticated.
enum Principal: Sendable {
    case `operator`
    case tenant(TenantPrincipal)
}

struct TenantPrincipal: Sendable {
    var tenantID: UUID
    var keyID: UUID
    var plan: String
}

/// The per-request context: Hummingbird's core storage plus the request id and the principal.
struct TallyContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    var requestID = ""
    var principal: Principal?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    var maxUploadSize: Int { API.maxBodyBytes }

    var tenant: TenantPrincipal {
        get throws {
            guard case .tenant(let tenant) = principal else { throw Problem.unauthorized }
            return tenant
        }
    }

    /// Metadata for the events this request appends: the request id and who acted.
    var eventMetadata: EventMetadata {
        switch principal {
        case .operator: EventMetadata(actor: "operator", requestID: requestID)
        case .tenant(let tenant): EventMetadata(actor: "key:\(tenant.keyID.lowercased)", requestID: requestID)
        case nil: EventMetadata(requestID: requestID)
        }
    }
}

enum API {
    /// The largest request body accepted (a batch of 1,000 runs fits comfortably).
    static let maxBodyBytes = 1 << 20
}

extension Request {
    /// Decodes a JSON body of type `T`: 415 for another content type, 413 above the size limit, 400 for
    /// malformed JSON, 422 with JSON pointers for strings PostgreSQL cannot store (`StorableText`) and for
    /// fields that are missing, mistyped, unknown or invalid.
    mutating func decodeJSON<T: RequestBody>(_ type: T.Type) async throws -> T {
        let contentType = headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces)
            .lowercased()
        guard contentType == "application/json" else {
            throw Problem(
                .unsupportedMediaType, "unsupported-media-type", title: "Unsupported media type",
                detail: "The body must be application/json.", headers: [.accept: "application/json"])
        }
        let buffer: ByteBuffer
        do {
            buffer = try await collectBody(upTo: API.maxBodyBytes)
        } catch {
            throw Problem.tooLarge
        }
        if let finding = StorableText.firstUnstorable(in: buffer.readableBytesView) {
            throw Problem.validation(finding.detail, pointer: finding.pointer)
        }
        let data = Data(buffer.readableBytesView)
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw Problem(.badRequest, "malformed-json", title: "Malformed JSON", detail: "The body is not valid JSON.")
        }
        guard let fields = object as? [String: Any] else {
            throw Problem.validation("The body must be a JSON object.", pointer: "")
        }
        let unknown = fields.keys.filter { !T.fields.contains($0) }.sorted()
        if !unknown.isEmpty {
            throw Problem.validation(
                unknown.map { .init(detail: "\($0) is not a field of this request", pointer: "/" + Pointer.escape($0)) }
            )
        }
        let value: T
        do {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = RFC3339.decodingStrategy
            value = try decoder.decode(T.self, from: data)
        } catch let error as DecodingError {
            throw Problem.validation([Pointer.fieldError(error)])
        }
        let errors = value.validate()
        if !errors.isEmpty { throw Problem.validation(errors) }
        return value
    }
}

extension Problem {
    static let tooLarge = Problem(
        .contentTooLarge, "body-too-large", title: "Body too large",
        detail: "Request bodies are limited to \(API.maxBodyBytes) bytes.")
}

/// A request body: its fields (unknown ones are rejected, so a typo is an error and not silently ignored)
/// and the checks beyond types.
protocol RequestBody: Decodable {
    static var fields: Set<String> { get }
    func validate() -> [Problem.FieldError]
}

enum Pointer {
    static func escape(_ key: String) -> String {
        key.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }

    static func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.map { "/" + ($0.intValue.map(String.init) ?? escape($0.stringValue)) }.joined()
    }

    static func fieldError(_ error: DecodingError) -> Problem.FieldError {
        switch error {
        case .keyNotFound(let key, let context):
            return .init(detail: "\(key.stringValue) is required", pointer: path(context.codingPath + [key]))
        case .valueNotFound(_, let context):
            return .init(detail: "must not be null", pointer: path(context.codingPath))
        case .typeMismatch(let type, let context):
            return .init(detail: "must be \(describe(type))", pointer: path(context.codingPath))
        case .dataCorrupted(let context):
            return .init(detail: context.debugDescription, pointer: path(context.codingPath))
        @unknown default:
            return .init(detail: "is not valid", pointer: "")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type, is Int32.Type: "an integer"
        case is Bool.Type: "a boolean"
        case is Double.Type: "a number"
        default:
            String(describing: type).hasPrefix("Array")
                ? "an array" : String(describing: type).hasPrefix("Dictionary") ? "an object" : "\(type)"
        }
    }
}
