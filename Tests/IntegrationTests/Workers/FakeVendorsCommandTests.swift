import Events
import Foundation
import TestSupport
import Testing
import Workers

/// `tally fake-vendors`, the process: the fake vendors themselves are tested in WorkersTests.
@Suite("The tally CLI: fake-vendors", .timeLimit(.minutes(5)))
struct FakeVendorsCommandTests {
    @Test("tally fake-vendors prints its URL, answers, and exits 0 on SIGTERM")
    func command() async throws {
        let process = try Subprocess(CLI.binary, ["fake-vendors", "--port", "0"], environment: CLI.environment([:]))
        let line = try await process.readStdout { $0.contains("\n") }
        let url = try #require(
            line.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) })
        #expect(line.hasPrefix("fake vendors listening on http://127.0.0.1:"))
        let caller = VendorCaller(endpoints: .fake(url), timeout: .seconds(5))
        let result = await caller.call(
            VendorRequest(
                vendor: .findymail, kind: .find, person: PersonInput(fullName: "Ada Lovelace", domain: "acme.com")),
            key: "k")
        try await caller.shutdown()
        process.send(signal: SIGTERM)
        let exit = try await process.finish()
        #expect(result.outcome == .found(email: "ada.lovelace@acme.com", validationStatus: nil, credits: 1))
        #expect(exit.status == 0)
    }

    @Test("tally fake-vendors --help has the magic table; bad options are usage errors")
    func commandHelp() async throws {
        let help = try await CLI.run(["fake-vendors", "--help"])
        #expect(help.status == 0)
        for text in [
            "--latency-ms", "--rate-limit", "prospeo-LABEL", "nocredits", "zb-do-not-mail", "invalid", "broke",
            "/__fake/stats",
        ] {
            #expect(help.stdout.contains(text), "\(text)")
        }
        let bad = try await CLI.run(["fake-vendors", "--port", "0", "--failure-rate", "2"])
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("failure rate must be between 0 and 1"))
    }
}
