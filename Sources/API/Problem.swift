import Foundation
import Hummingbird

/// An RFC 9457 problem document; every error response of the API is one.
struct Problem: Encodable, Sendable {
    var type: String
    var title: String
    var status: Int
    var detail: String?
    var instance: String?

    init(status: HTTPResponse.Status, title: String, detail: String? = nil, type: String = "about:blank", instance: String? = nil) {
        self.type = type
        self.title = title
        self.status = status.code
        self.detail = detail
        self.instance = instance
    }

    var response: Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = (try? encoder.encode(self)) ?? Data(#"{"status":500,"title":"Internal Server Error"}"#.utf8)
        return Response(
            status: HTTPResponse.Status(code: status),
            headers: [.contentType: "application/problem+json"],
            body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
