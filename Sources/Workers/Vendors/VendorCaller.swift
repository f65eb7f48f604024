import AsyncHTTPClient
import Events
import Foundation
import NIOCore
import NIOHTTP1

/// Calls Prospeo, Findymail and ZeroBounce over HTTP and classifies their answers into `VendorOutcome`s.
///
/// One caller owns one `HTTPClient` (on the shared event loop group) and is meant to be shared by every worker of a
/// process. It never logs: the tenant's key travels in a header or in the URL of the request and nowhere else.
public final class VendorCaller: Sendable {
    private let client: HTTPClient
    private let endpoints: VendorEndpoints
    private let timeout: TimeAmount

    /// Creates a caller; `timeout` bounds each call from the first byte sent to the last byte of the answer.
    public init(endpoints: VendorEndpoints, timeout: Duration, maxConnectionsPerHost: Int = 512) {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, maxConnectionsPerHost))
        // A redirect would carry the key's header to wherever the vendor points; no vendor API redirects.
        configuration.redirectConfiguration = .disallow
        self.timeout = TimeAmount(timeout)
        configuration.timeout = .init(connect: min(self.timeout, .seconds(10)))
        self.client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        self.endpoints = endpoints
    }

    /// Calls the vendor with the tenant's plaintext key. The key is copied into the request (a header, or the
    /// query for ZeroBounce) and nowhere else; no reason or detail string ever contains it.
    public func call(_ request: VendorRequest, key: UnsafeRawBufferPointer) async -> VendorCallResult {
        let vendor = request.vendor
        // A key with a control character or a space cannot be sent in a header; the vendor would refuse it anyway.
        guard !key.isEmpty, key.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            return .keyFatal("\(vendor.rawValue): the key is empty or has characters no vendor accepts")
        }
        let plan: VendorHTTPPlan
        switch (vendor, request.kind) {
        case (.prospeo, .find): plan = ProspeoAdapter.plan(request.person, base: endpoints.prospeo, key: key)
        case (.findymail, .find): plan = FindymailAdapter.plan(request.person, base: endpoints.findymail, key: key)
        case (.zerobounce, .validate):
            plan = ZeroBounceAdapter.plan(email: request.email, base: endpoints.zerobounce, key: key)
        case (_, let kind):
            return .noCall("\(vendor.rawValue): cannot \(kind.rawValue)")
        }
        switch plan {
        case .skip(let result):
            return result
        case .send(let httpRequest):
            let answer: VendorHTTPAnswer
            do {
                answer = try await send(httpRequest)
            } catch {
                return .transient(Self.describe(error, vendor: vendor), status: nil, retryAfterSeconds: nil)
            }
            switch vendor {
            case .prospeo: return ProspeoAdapter.classify(answer)
            case .findymail: return FindymailAdapter.classify(answer)
            case .zerobounce: return ZeroBounceAdapter.classify(answer)
            }
        }
    }

    /// Closes the connections and releases the client.
    public func shutdown() async throws {
        try await client.shutdown()
    }

    private func send(_ request: HTTPClientRequest) async throws -> VendorHTTPAnswer {
        let response = try await client.execute(request, deadline: .now() + timeout)
        // Vendors answer small JSON documents; anything larger is not an answer we can use.
        let body = try await response.body.collect(upTo: 1 << 20)
        return VendorHTTPAnswer(status: Int(response.status.code), headers: response.headers, body: Array(buffer: body))
    }

    /// A short description of a failed exchange; AsyncHTTPClient's own descriptions are not used because some name
    /// the URL, which for ZeroBounce holds the key.
    static func describe(_ error: any Error, vendor: Vendor) -> String {
        let name = vendor.rawValue
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .writeTimeout, .connectTimeout, .tlsHandshakeTimeout,
                .getConnectionFromPoolTimeout:
                return "\(name): timed out"
            case .remoteConnectionClosed:
                return "\(name): connection closed before the answer"
            case .cancelled:
                return "\(name): cancelled"
            default:
                return "\(name): HTTP exchange failed"
            }
        }
        if error is CancellationError { return "\(name): cancelled" }
        if error is NIOTooManyBytesError { return "\(name): answer too large" }
        return "\(name): connection failed"
    }
}

/// What an adapter decided to do with a request.
enum VendorHTTPPlan {
    /// Send this request.
    case send(HTTPClientRequest)
    /// No call is needed or possible; this is the result.
    case skip(VendorCallResult)
}

/// A complete vendor answer, ready to classify.
struct VendorHTTPAnswer {
    var status: Int
    var headers: HTTPHeaders
    var body: [UInt8]

    /// The body as JSON of `type`, nil when it is not.
    func decode<T: Decodable>(_ type: T.Type) -> T? {
        try? JSONDecoder().decode(type, from: Data(body))
    }

    /// Seconds from a `Retry-After` header (delta-seconds or an HTTP date), nil when absent or unreadable.
    var retryAfterSeconds: Int? {
        guard let value = headers.first(name: "retry-after")?.trimmingCharacters(in: .whitespaces) else { return nil }
        if let seconds = Self.seconds(value) { return seconds }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        return max(1, Int(date.timeIntervalSinceNow.rounded(.up)))
    }

    /// Whole seconds (rounded up, at least 1) of a numeric header.
    func secondsHeader(_ name: String) -> Int? {
        headers.first(name: name).flatMap { Self.seconds($0.trimmingCharacters(in: .whitespaces)) }
    }

    private static func seconds(_ text: String) -> Int? {
        guard let value = Double(text), value.isFinite, value >= 0, value < 1e9 else { return nil }
        return max(1, Int(value.rounded(.up)))
    }
}

extension VendorCallResult {
    /// An address with a control character (U+0000 among them) or longer than any address can be is not an
    /// answer: it would reach the log and every reader of it. Such an answer counts as unreadable.
    static func found(email: String?, validationStatus: String?, credits: Int, status: Int) -> Self {
        if let email,
            email.utf8.count > 320 || email.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
        {
            return .transient(
                "the vendor answered an address that is not usable (HTTP \(status))", status: status,
                retryAfterSeconds: nil)
        }
        return VendorCallResult(
            outcome: .found(email: email, validationStatus: validationStatus, credits: credits), credits: credits,
            answered: true, httpStatus: status)
    }

    static func miss(status: Int, detail: String? = nil) -> Self {
        VendorCallResult(outcome: .cleanMiss, credits: 0, answered: true, httpStatus: status, detail: detail)
    }

    /// A clean miss decided before any call: the input cannot be asked of this vendor.
    static func noCall(_ detail: String) -> Self {
        VendorCallResult(outcome: .cleanMiss, credits: 0, answered: false, httpStatus: nil, detail: detail)
    }

    static func transient(_ reason: String, status: Int?, retryAfterSeconds: Int?) -> Self {
        VendorCallResult(
            outcome: .transient(reason: reason, retryAfterSeconds: retryAfterSeconds), credits: 0, answered: false,
            httpStatus: status)
    }

    static func keyFatal(_ reason: String, status: Int? = nil) -> Self {
        VendorCallResult(outcome: .keyFatal(reason: reason), credits: 0, answered: false, httpStatus: status)
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

extension String {
    /// Percent-encodes everything but RFC 3986 unreserved characters, so that `+`, `&` and `=` in an address or a
    /// key survive the query string.
    var queryEncoded: String {
        var out = ""
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }

    /// A base URL without its trailing slashes.
    var trimmedBase: String {
        var base = self
        while base.hasSuffix("/") { base.removeLast() }
        return base
    }

    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
