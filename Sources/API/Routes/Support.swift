import Events
import Foundation
import Hummingbird

extension TallyContext {
    /// A path parameter that must be a UUID; anything else is 404 (it names nothing).
    func uuidParameter(_ name: String, _ what: String) throws -> UUID {
        guard let text = parameters.get(name), let id = UUID(uuidString: text) else { throw Problem.notFound(what) }
        return id
    }

    /// The `vendor` path parameter; an unknown vendor is 404 (it names nothing).
    func vendorParameter() throws -> Vendor {
        guard let text = parameters.get("vendor"), let vendor = Vendor(rawValue: text) else {
            throw Problem(
                .notFound, "not-found", title: "Not found",
                detail: "Vendors are \(Vendor.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        return vendor
    }
}

/// Opaque cursors for keyset pagination: base64url of the last row's sort key.
enum Cursor {
    static func encode(_ date: Date, _ id: UUID) -> String {
        let text = "\(Int64((date.timeIntervalSince1970 * 1_000_000).rounded()))|\(id.lowercased)"
        return Base64URL.encode(Array(text.utf8))
    }

    static func decode(_ cursor: String) throws -> (Date, UUID) {
        guard let bytes = Base64URL.decode(cursor), let text = String(validating: bytes, as: UTF8.self) else {
            throw invalid
        }
        let parts = text.split(separator: "|")
        // The API's own cursors hold times between 1970 and 9999; anything else was made up.
        guard parts.count == 2, let micros = Int64(parts[0]), (0...253_402_300_799_999_999).contains(micros),
            let id = UUID(uuidString: String(parts[1]))
        else {
            throw invalid
        }
        return (Date(timeIntervalSince1970: Double(micros) / 1_000_000), id)
    }

    private static let invalid = Problem.validation([
        .init(detail: "is not a cursor this API returned", parameter: "cursor")
    ])
}

/// Query parameters common to lists.
struct Page {
    var limit: Int
    var after: (Date, UUID)?

    init(_ request: Request, defaultLimit: Int = 50, maxLimit: Int = 200) throws {
        let query = request.uri.queryParameters
        limit = defaultLimit
        if let text = query["limit"] {
            guard let value = Int(String(text)), (1...maxLimit).contains(value) else {
                throw Problem.validation([.init(detail: "must be an integer from 1 to \(maxLimit)", parameter: "limit")]
                )
            }
            limit = value
        }
        after = try query["cursor"].map { try Cursor.decode(String($0)) }
    }
}

struct ListBody<Item: Encodable>: Encodable {
    var items: [Item]
    var nextCursor: String?
}

extension Problem {
    /// An append lost a race with another command on the same stream.
    static func raced(_ what: String) -> Problem {
        conflict("The \(what) changed while this request was processed; retry it.")
    }
}

/// Reads of a resource whose stream a projection parked say so, instead of answering from rows that miss
/// some of its events.
enum ParkedRead {
    /// Throws a 503 problem when one of `readers` parked `stream`, or (with `tenant`) any stream of the tenant.
    static func check(
        _ readers: [String], stream: StreamName? = nil, tenant: UUID? = nil, what: String,
        on connection: PostgresConnection
    ) async throws {
        guard
            let since = try await ParkedStreams.oldestParking(
                readers: readers, stream: stream, tenant: tenant, on: connection)
        else { return }
        throw Problem(
            .serviceUnavailable, "stream-parked", title: "Partly applied",
            detail:
                "Some of this \(what)'s history could not be applied (parked since \(JSON.timestamp(since))), so what Tally "
                + "has for it may be incomplete; the operator has been told and can retry it once the cause is fixed.")
    }
}
