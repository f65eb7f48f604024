/// The OpenAPI 3.1 document served at `/openapi.json`; `docs/openapi.json` is a copy (`make openapi`).
enum OpenAPIDocument {
    static let json = #"""
        {"openapi":"3.1.0","info":{"title":"Tally","version":"1"},"paths":{}}
        """#
}
