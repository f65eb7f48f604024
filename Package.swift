// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "tally",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tally", targets: ["tally"]),
        .library(name: "Events", targets: ["Events"]),
        .library(name: "Projections", targets: ["Projections"]),
        .library(name: "Commands", targets: ["Commands"]),
        .library(name: "API", targets: ["API"]),
        .library(name: "Workers", targets: ["Workers"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // Already in the graph (swift-nio-extras); the tests parse the RateLimit fields with it (RFC 9651).
        .package(url: "https://github.com/apple/swift-http-structured-headers.git", from: "1.7.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        // Already built for async-http-client's certificates; its SHA-256 uses the CPU's SHA extensions.
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
    ],
    targets: [
        // C libraries from Debian's -dev packages, wrapped once by the Events module.
        .systemLibrary(name: "CTallyPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CTallySodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CTallyLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),

        .target(
            name: "Events",
            dependencies: [
                "CTallyPQ", "CTallySodium", "CTallyLZ4",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Projections",
            dependencies: [
                "Events",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The decisions that turn commands into events: the API, the CLI and the tests call them.
        .target(name: "Commands", dependencies: ["Events", "Projections"]),
        .target(
            name: "API",
            dependencies: [
                "Commands", "Events", "Projections", "Workers",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // The OpenAPI document's one text (docs/openapi.json links to it).
            resources: [.copy("Resources/openapi.json")]
        ),
        .target(
            name: "Workers",
            dependencies: [
                "Events",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Not product code: a seeded generator and a synthetic history covering every event type, for tests and
        // benchmarks.
        .target(name: "Synthetic", dependencies: ["Events"]),
        // Not product code: the three vendors' APIs, scriptable, for tests, benchmarks and `tally fake-vendors`.
        .target(
            name: "FakeVendors",
            dependencies: [
                "Events", "Synthetic",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "tally",
            dependencies: [
                "Events", "Projections", "Commands", "API", "Workers", "FakeVendors", "Synthetic",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),

        // Not product code: what the test targets share (a database per test, the API harness, waits, a
        // subprocess runner, fixtures).
        .target(
            name: "TestSupport",
            dependencies: [
                "Events", "Projections", "Commands", "API", "Workers",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/TestSupport"
        ),

        // Unit tests of one module each, no database; the integration target runs against PostgreSQL.
        .testTarget(name: "EventsTests", dependencies: ["Events"]),
        .testTarget(name: "ProjectionsTests", dependencies: ["Events", "Projections"]),
        .testTarget(
            name: "APITests",
            dependencies: [
                "API", "Commands", "Events", "Projections",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "RawStructuredFieldValues", package: "swift-http-structured-headers"),
            ]
        ),
        .testTarget(
            name: "WorkersTests",
            dependencies: [
                "Events", "Workers", "FakeVendors", "TestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "Events", "Projections", "Commands", "API", "Workers", "FakeVendors", "Synthetic", "TestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)

// Every target of ours gets the same language settings (swift-configuration does this in one loop).
for target in package.targets where target.type != .system {
    target.swiftSettings =
        (target.swiftSettings ?? []) + [
            .enableUpcomingFeature("ExistentialAny"),
            .enableUpcomingFeature("MemberImportVisibility"),
            .enableUpcomingFeature("InternalImportsByDefault"),
            .treatAllWarnings(as: .error),
        ]
}
