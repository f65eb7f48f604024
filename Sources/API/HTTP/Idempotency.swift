import Events
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// `Idempotency-Key` on POST (draft-ietf-httpapi-idempotency-key-header), scoped by tenant (the operator
/// has a scope of its own). The first request runs and its response (errors included, 5xx excepted) is
/// stored for 24 hours; a repeat with the same payload gets the stored response with
/// `Idempotent-Replayed: true` (409 and 429 answers are not kept: the repeat runs again); a repeat while
/// the first is still running gets 409; the same key with
/// another payload gets 422. A first request whose process died is taken over after 60 s.
struct IdempotencyMiddleware: RouterMiddleware {
    typealias Context = TallyContext
    let services: APIServices

    static let retention = "24 hours"
    static let abandonAfter = "60 seconds"
    static let operatorScope = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
    private static let storedHeaders: [HTTPField.Name] = [.contentType, .location, .cacheControl]

    func handle(_ request: Request, context: TallyContext, next: (Request, TallyContext) async throws -> Response)
        async throws -> Response
    {
        guard request.method == .post, let header = request.headers[.idempotencyKey] else {
            return try await next(request, context)
        }
        guard let key = Self.parse(header) else {
            throw Problem(
                .badRequest, "invalid-idempotency-key", title: "Invalid Idempotency-Key",
                detail:
                    "Idempotency-Key must be a structured-field string of 1 to 255 printable characters, such as \"8e03978e-40d5-43e8-bc93-6894a57f9324\".",
                errors: [.init(detail: "not a valid key", header: "Idempotency-Key")])
        }
        let scope: UUID
        switch context.principal {
        case .tenant(let tenant): scope = tenant.tenantID
        default: scope = Self.operatorScope
        }
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: API.maxBodyBytes)
        } catch {
            throw Problem.tooLarge
        }
        let fingerprint = Sodium.hex(
            Sodium.sha256(Array("\(request.method.rawValue) \(request.uri.path)\n".utf8) + Array(buffer: body)))
        let database = services.database

        let claimed = try await database.scoped(scope) { connection in
            try await connection.query(
                """
                INSERT INTO idempotency_keys AS k (tenant_id, key, method, path, fingerprint, state, locked_until, expires_at)
                VALUES ($1, $2, $3, $4, $5, 'in_flight', now() + interval '\(Self.abandonAfter)', now() + interval '\(Self.retention)')
                ON CONFLICT (tenant_id, key) DO UPDATE SET method = excluded.method, path = excluded.path,
                    fingerprint = excluded.fingerprint, state = 'in_flight', status = NULL, headers = NULL, body = NULL,
                    locked_until = excluded.locked_until, created_at = now(), expires_at = excluded.expires_at
                WHERE k.expires_at <= now()
                   OR (k.state = 'in_flight' AND k.locked_until <= now() AND k.fingerprint = excluded.fingerprint)
                RETURNING true
                """,
                [
                    .uuid(scope), .string(key), .string(request.method.rawValue), .string(request.uri.path),
                    .string(fingerprint),
                ]
            ).count == 1
        }
        if !claimed {
            let rows = try await database.scoped(scope) { connection in
                try await connection.query(
                    "SELECT fingerprint, state, status, headers, body FROM idempotency_keys WHERE tenant_id = $1 AND key = $2",
                    [.uuid(scope), .string(key)])
            }
            guard let row = rows.first else {
                throw Problem.conflict("The request with this Idempotency-Key changed state; retry it.")
            }
            guard try row.string(0) == fingerprint else {
                throw Problem(
                    .unprocessableContent, "idempotency-key-reused", title: "Idempotency-Key reused",
                    detail: "This Idempotency-Key was used with another request payload.",
                    errors: [.init(detail: "already used with another payload", header: "Idempotency-Key")])
            }
            guard try row.string(1) == "complete" else {
                throw Problem(
                    .conflict, "idempotency-key-in-flight", title: "Request in progress",
                    detail: "A request with this Idempotency-Key is still being processed; retry later.",
                    headers: [.retryAfter: "1"])
            }
            var headers = HTTPFields()
            let stored = try JSONSerialization.jsonObject(with: Data(try row.jsonBytes(3))) as? [String: String] ?? [:]
            for (name, value) in stored { if let field = HTTPField.Name(name) { headers[field] = value } }
            headers[.idempotentReplayed] = "true"
            return Response(
                status: HTTPResponse.Status(code: try row.int(2)), headers: headers,
                body: .init(byteBuffer: ByteBuffer(bytes: try row.bytes(4))))
        }

        var response: Response
        do {
            response = try await next(request, context)
        } catch let problem as Problem {
            response = problem.response
        } catch {
            try? await forget(scope, key)
            throw error
        }
        // A server error, a lost race (409) or a limit (429) is worth retrying: nothing is kept for them.
        guard response.status.code < 500, response.status != .conflict, response.status != .tooManyRequests else {
            try? await forget(scope, key)
            return response
        }
        // Responses of this API are single buffers; keep the bytes and answer with them.
        let collector = CollectingWriter.Collector()
        try await response.body.write(CollectingWriter(collector: collector))
        let collected = collector.buffer
        var storedStatus = response.status
        var storedBody = Array(buffer: collected)
        var headers: [String: String] = [:]
        for name in Self.storedHeaders { if let value = response.headers[name] { headers[name.canonicalName] = value } }
        if response.headers[.cacheControl]?.contains("no-store") == true {
            // A response that reveals a secret (a new API key) is never written to the database: a repeat
            // learns that the request completed, not the secret.
            let problem = Problem(
                .conflict, "idempotent-secret-not-replayed", title: "Already completed",
                detail:
                    "The request with this Idempotency-Key completed; its response revealed a secret once and is not stored."
            )
            storedStatus = problem.status
            storedBody = problem.body
            headers = [HTTPField.Name.contentType.canonicalName: "application/problem+json"]
            if let location = response.headers[.location] { headers[HTTPField.Name.location.canonicalName] = location }
        }
        let storedHeaders = try JSONSerialization.data(withJSONObject: headers, options: [.sortedKeys])
        try await database.scoped(scope) { connection in
            try await connection.query(
                """
                UPDATE idempotency_keys SET state = 'complete', status = $3, headers = $4, body = $5
                WHERE tenant_id = $1 AND key = $2 AND fingerprint = $6
                """,
                [
                    .uuid(scope), .string(key), .int32(Int32(storedStatus.code)), .jsonb(Array(storedHeaders)),
                    .bytes(storedBody), .string(fingerprint),
                ])
        }
        response.body = .init(byteBuffer: collected)
        return response
    }

    private func forget(_ scope: UUID, _ key: String) async throws {
        try await services.database.scoped(scope) { connection in
            try await connection.query(
                "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2", [.uuid(scope), .string(key)])
        }
    }

    /// An sf-string (`"..."`) as the draft specifies; a bare token is accepted too.
    static func parse(_ header: String) -> String? {
        var value = Substring(header.trimmingCharacters(in: .whitespaces))
        if value.hasPrefix("\"") {
            guard value.count >= 2, value.hasSuffix("\"") else { return nil }
            value = value.dropFirst().dropLast()
        }
        guard (1...255).contains(value.utf8.count),
            value.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7e && $0 != 0x22 && $0 != 0x5c })
        else {
            return nil
        }
        return String(value)
    }
}

/// Gathers a response body written in parts into one buffer.
struct CollectingWriter: ResponseBodyWriter {
    /// Only the writing task touches it, one part after another.
    final class Collector: @unchecked Sendable {
        var buffer = ByteBuffer()
    }

    let collector: Collector

    mutating func write(_ buffer: ByteBuffer) async throws {
        var part = buffer
        collector.buffer.writeBuffer(&part)
    }

    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
