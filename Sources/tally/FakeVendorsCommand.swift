import ArgumentParser
import FakeVendors
import Foundation
import Logging
import UnixSignals
import Workers

struct FakeVendorsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fake-vendors",
        abstract: "Serve fakes of Prospeo, Findymail and ZeroBounce on one port, for tests and load runs.",
        discussion: """
            Answers in the vendors' own shapes at their own paths (POST /enrich-person, POST /api/search/name,
            GET /v2/validate); point the workers at it with TALLY_VENDOR_BASE_URLS=prospeo=URL,findymail=URL,
            zerobounce=URL. The input chooses the answer (docs/fake-vendors.md has the details):

            Finders, by the labels of the company domain (dot-separated, anywhere in the domain):
              (none) or found   found: first.last@domain from the name (Prospeo: 1 credit, 0 when the same key
                                enriched the same person before; Findymail: 1 credit)
              miss              Prospeo 400 NO_MATCH, Findymail 404
              nocredits         Prospeo 400 INSUFFICIENT_CREDITS, Findymail 402
              error             HTTP 500, always
              ratelimit         the first call for this key and person answers 429 (Retry-After: 1), later ones
                                as the other labels say
              flaky             the first call for this key and person answers 503, later ones normally
              slow              sleeps --slow-ms, then answers as the other labels say
              prospeo-LABEL, findymail-LABEL
                                the label for that vendor only; a prefixed result (found, miss, nocredits,
                                error) overrides the plain one, prefixed and plain ratelimit/flaky/slow add up
            With only a LinkedIn URL, Prospeo finds <profile slug>@linkedin-found.example.

            ZeroBounce, by the labels of the validated address's domain:
              (none)            valid                 zb-invalid      invalid
              zb-catch-all      catch-all             zb-unknown      unknown (no credit)
              zb-spamtrap       spamtrap              zb-abuse        abuse
              zb-do-not-mail    do_not_mail           zb-error        HTTP 500
              zb-slow, zb-flaky, zb-ratelimit         as slow, flaky, ratelimit (a 429 the real API never sends)

            Keys: one starting with "invalid" is refused (Prospeo 401 INVALID_API_KEY, Findymail 401), one
            starting with "broke" is out of credits (Prospeo 400 INSUFFICIENT_CREDITS, Findymail 402); ZeroBounce
            answers both with HTTP 200 {"error": "Invalid API Key or your account ran out of credits"}.

            GET /__fake/stats gives per key (by a SHA-256 prefix, never the key) the requests, in flight, most
            in flight at once, credits charged and arrival times; POST /__fake/reset clears them.
            Prints one line with the base URL once listening; SIGINT or SIGTERM stops it and exits 0.
            """)

    @Option(help: "Port to listen on (0: any free port).")
    var port: Int

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(name: .customLong("latency-ms"), help: "Milliseconds added to every answer.")
    var latencyMilliseconds = 0

    @Option(
        name: .customLong("jitter-ms"), help: "Up to this many more milliseconds per answer, from the seeded generator."
    )
    var jitterMilliseconds = 0

    @Option(help: "Fraction (0...1) of calls answered with HTTP 500, from the seeded generator.")
    var failureRate = 0.0

    @Option(help: "Seed of the generator behind --failure-rate and --jitter-ms.")
    var seed: UInt64 = 1

    @Option(name: .customLong("slow-ms"), help: "How long the slow labels sleep.")
    var slowMilliseconds = 3000

    @Option(help: "Requests per second per key and vendor; above it the vendor answers 429.")
    var rateLimit: Int?

    func validate() throws {
        let problems = fakeConfiguration.problems
        guard problems.isEmpty else { throw ValidationError(problems.joined(separator: "; ") + ".") }
    }

    var fakeConfiguration: FakeVendorsConfiguration {
        FakeVendorsConfiguration(
            host: host, port: port, latencyMilliseconds: latencyMilliseconds, jitterMilliseconds: jitterMilliseconds,
            failureRate: failureRate, seed: seed, slowMilliseconds: slowMilliseconds, rateLimit: rateLimit)
    }

    func run() async throws {
        var logger = Logger(label: "tally.fake-vendors")
        logger.logLevel = .warning
        // Trap the signals before listening, so that a signal sent right after the URL is printed is not lost.
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        let fake: FakeVendors
        do {
            fake = try await FakeVendors.start(fakeConfiguration, logger: logger)
        } catch {
            throw ValidationError("cannot listen on \(host):\(port): \(error)")
        }
        // Written unbuffered: a script waiting for this line reads it from a pipe.
        FileHandle.standardOutput.write(Data("fake vendors listening on \(fake.baseURL)\n".utf8))
        for await _ in signals { break }
        await fake.stop()
    }
}
