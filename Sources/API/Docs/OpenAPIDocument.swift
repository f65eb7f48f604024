import Foundation
import NIOCore

/// The OpenAPI 3.1 document served at /openapi.json. Its one text is `Resources/openapi.json` of this target,
/// shipped in the target's resource bundle (`tally_API.resources`, beside the `tally` binary);
/// docs/openapi.json links to it.
enum OpenAPIDocument {
    /// The document's bytes, read once. The router reads them when it is built, so that a binary installed
    /// without its resource bundle stops at start with the paths it looked in, not on a request.
    static let bytes: ByteBuffer = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json"),
            let data = try? Data(contentsOf: url)
        else {
            fatalError(
                "openapi.json is missing from \(Bundle.module.bundlePath): install tally_API.resources beside tally")
        }
        return ByteBuffer(bytes: data)
    }()
}
