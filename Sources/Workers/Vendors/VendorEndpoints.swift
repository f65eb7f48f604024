public import Events

/// Where the vendors live: production by default, or one base URL for all three (the fake vendor server).
public struct VendorEndpoints: Sendable, Hashable {
    /// Base URL of Prospeo, without a trailing slash.
    public var prospeo: String
    /// Base URL of Findymail, without a trailing slash.
    public var findymail: String
    /// Base URL of ZeroBounce, without a trailing slash.
    public var zerobounce: String

    /// Creates endpoints from three base URLs.
    public init(prospeo: String, findymail: String, zerobounce: String) {
        self.prospeo = prospeo
        self.findymail = findymail
        self.zerobounce = zerobounce
    }

    /// The vendors' public APIs.
    public static let production = VendorEndpoints(
        prospeo: "https://api.prospeo.io", findymail: "https://app.findymail.com",
        zerobounce: "https://api.zerobounce.net")

    /// All three at the fake vendor server's base URL, e.g. "http://127.0.0.1:9100".
    public static func fake(_ baseURL: String) -> VendorEndpoints {
        VendorEndpoints(prospeo: baseURL, findymail: baseURL, zerobounce: baseURL)
    }

    /// The base URL of one vendor.
    public subscript(vendor: Vendor) -> String {
        switch vendor {
        case .prospeo: prospeo
        case .findymail: findymail
        case .zerobounce: zerobounce
        }
    }
}
