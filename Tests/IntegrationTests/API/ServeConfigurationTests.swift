import Foundation
import TestSupport
import Testing

@Suite("tally serve: configuration", .timeLimit(.minutes(5)))
struct ServeConfigurationTests {
    static let url = "postgresql://postgres@/nope?host=/nonexistent"
    static let token = "operator-token-0123456789abcdef-0123456789"
    static let pepper = "pepper-0123456789abcdef-0123456789abcdef"

    @Test(
        "a missing or weak secret, a bad plans file or a bad master key is a refusal to start that names the variable, never the value"
    )
    func refusals() async throws {
        let badPlans = FileManager.default.temporaryDirectory.appendingPathComponent("plans-\(UUID()).json")
        try Data(#"{"plans":[{"name":"x","keyRequestsPerSecond":0,"tenantRequestsPerSecond":1}]}"#.utf8).write(
            to: badPlans)
        defer { try? FileManager.default.removeItem(at: badPlans) }
        let secretValue = "short-secret-value"
        let cases: [([String: String], String)] = [
            (["TALLY_KEY_PEPPER": Self.pepper], "TALLY_OPERATOR_TOKEN is not set"),
            (["TALLY_OPERATOR_TOKEN": Self.token], "TALLY_KEY_PEPPER is not set"),
            (
                ["TALLY_OPERATOR_TOKEN": secretValue, "TALLY_KEY_PEPPER": Self.pepper],
                "TALLY_OPERATOR_TOKEN must be at least 32 characters"
            ),
            (
                [
                    "TALLY_OPERATOR_TOKEN": Self.token, "TALLY_KEY_PEPPER": Self.pepper,
                    "TALLY_PLANS_FILE": badPlans.path,
                ], "plans[0].keyRequestsPerSecond: must be positive"
            ),
            (
                ["TALLY_OPERATOR_TOKEN": Self.token, "TALLY_KEY_PEPPER": Self.pepper, "TALLY_MASTER_KEY": secretValue],
                "master key must be 64 hex digits"
            ),
            (
                [
                    "TALLY_OPERATOR_TOKEN": Self.token, "TALLY_KEY_PEPPER": Self.pepper,
                    "TALLY_STRIPE_WEBHOOK_SECRETS": secretValue,
                ], "whsec_"
            ),
            (
                [
                    "TALLY_OPERATOR_TOKEN": Self.token, "TALLY_KEY_PEPPER": Self.pepper,
                    "TALLY_VENDOR_BASE_URLS": "acme=http://x",
                ], "vendor=url"
            ),
            (
                ["TALLY_OPERATOR_TOKEN": Self.token, "TALLY_KEY_PEPPER": Self.pepper, "TALLY_LISTEN": "nowhere"],
                "host:port"
            ),
        ]
        for (environment, message) in cases {
            let result = try await CLI.run(["serve", "--database-url", Self.url], environment: environment)
            #expect(result.status == 64, "\(environment.keys.sorted()): \(result.stderr)")
            #expect(result.stderr.contains(message), "\(result.stderr)")
            #expect(!result.stderr.contains(secretValue) && !result.stdout.contains(secretValue))
        }
    }

    @Test("serve --help documents every environment variable of the contract")
    func help() async throws {
        let result = try await CLI.run(["serve", "--help"])
        for name in [
            "DATABASE_URL", "TALLY_LISTEN", "TALLY_OPERATOR_TOKEN", "TALLY_KEY_PEPPER", "TALLY_MASTER_KEY",
            "TALLY_MASTER_KEY_FILE",
            "TALLY_PLANS_FILE", "TALLY_STRIPE_WEBHOOK_SECRETS", "TALLY_VENDOR_BASE_URLS",
        ] {
            #expect(result.stdout.contains(name), "\(name)")
        }
    }
}
