import AsyncHTTPClient
import Events
import FakeVendors
import Foundation
import NIOCore
import NIOHTTP1
import TestSupport
import Testing

@testable import Workers

/// The vendor adapters called over real HTTP against the fake vendor server started in-process.
@Suite("Vendor adapters against the fake vendors", .timeLimit(.minutes(5)))
struct VendorAdapterTests {
    static let ada = PersonInput(fullName: "Ada Lovelace", domain: "acme.com")

    static func person(_ domain: String) -> PersonInput {
        PersonInput(fullName: "Ada Lovelace", domain: domain)
    }

    static func find(_ vendor: Vendor, _ person: PersonInput) -> VendorRequest {
        VendorRequest(vendor: vendor, kind: .find, person: person)
    }

    static func validate(_ email: String) -> VendorRequest {
        VendorRequest(vendor: .zerobounce, kind: .validate, person: ada, email: email)
    }

    /// Starts a fake and a caller pointed at it, runs `body`, stops both.
    static func withFake(
        _ configuration: FakeVendorsConfiguration = .init(), timeout: Duration = .seconds(10),
        _ body: (FakeVendors, VendorCaller) async throws -> Void
    ) async throws {
        let fake = try await FakeVendors.start(configuration)
        let caller = VendorCaller(endpoints: .fake(fake.baseURL), timeout: timeout)
        do {
            try await body(fake, caller)
        } catch {
            try await caller.shutdown()
            await fake.stop()
            throw error
        }
        try await caller.shutdown()
        await fake.stop()
    }

    static func found(_ email: String, credits: Int = 1) -> VendorCallResult {
        VendorCallResult(
            outcome: .found(email: email, validationStatus: nil, credits: credits), credits: credits, answered: true,
            httpStatus: 200)
    }

    static func miss(_ status: Int?, answered: Bool = true, detail: String? = nil) -> VendorCallResult {
        VendorCallResult(outcome: .cleanMiss, credits: 0, answered: answered, httpStatus: status, detail: detail)
    }

    static func transient(_ reason: String, _ status: Int?, retryAfter: Int? = nil) -> VendorCallResult {
        VendorCallResult(
            outcome: .transient(reason: reason, retryAfterSeconds: retryAfter), credits: 0, answered: false,
            httpStatus: status)
    }

    static func keyFatal(_ reason: String, _ status: Int?) -> VendorCallResult {
        VendorCallResult(outcome: .keyFatal(reason: reason), credits: 0, answered: false, httpStatus: status)
    }

    static func validated(_ status: String, credits: Int = 1) -> VendorCallResult {
        VendorCallResult(
            outcome: .found(email: nil, validationStatus: status, credits: credits), credits: credits, answered: true,
            httpStatus: 200)
    }

    /// One row of the finders' magic table: a domain and what each finder answers for Ada Lovelace there.
    struct FinderRow: Sendable, CustomTestStringConvertible {
        var domain: String
        var prospeo: VendorCallResult
        var findymail: VendorCallResult
        var testDescription: String { domain }
    }

    static let finderRows: [FinderRow] = [
        FinderRow(
            domain: "acme.com", prospeo: found("ada.lovelace@acme.com"), findymail: found("ada.lovelace@acme.com")),
        FinderRow(
            domain: "found.acme.com", prospeo: found("ada.lovelace@found.acme.com"),
            findymail: found("ada.lovelace@found.acme.com")),
        FinderRow(domain: "miss.acme.com", prospeo: miss(400), findymail: miss(404)),
        FinderRow(
            domain: "nocredits.acme.com", prospeo: keyFatal("prospeo: HTTP 400 INSUFFICIENT_CREDITS", 400),
            findymail: keyFatal("findymail: HTTP 402 out of credits", 402)),
        FinderRow(
            domain: "error.acme.com", prospeo: transient("prospeo: HTTP 500 INTERNAL_ERROR", 500),
            findymail: transient("findymail: HTTP 500", 500)),
        FinderRow(
            domain: "prospeo-miss.example.com", prospeo: miss(400),
            findymail: found("ada.lovelace@prospeo-miss.example.com")),
        FinderRow(
            domain: "findymail-miss.example.com", prospeo: found("ada.lovelace@findymail-miss.example.com"),
            findymail: miss(404)),
        FinderRow(
            domain: "prospeo-found.miss.example.com", prospeo: found("ada.lovelace@prospeo-found.miss.example.com"),
            findymail: miss(404)),
        FinderRow(
            domain: "findymail-error.prospeo-nocredits.example.com",
            prospeo: keyFatal("prospeo: HTTP 400 INSUFFICIENT_CREDITS", 400),
            findymail: transient("findymail: HTTP 500", 500)),
        FinderRow(
            domain: "https://www.Slow.Acme.com/about", prospeo: found("ada.lovelace@slow.acme.com"),
            findymail: found("ada.lovelace@slow.acme.com")),
    ]

    @Test("each finder label answers as the table says", arguments: finderRows)
    func finderTable(row: FinderRow) async throws {
        try await Self.withFake(.init(slowMilliseconds: 50)) { _, caller in
            #expect(await caller.call(Self.find(.prospeo, Self.person(row.domain)), key: "good-key") == row.prospeo)
            #expect(await caller.call(Self.find(.findymail, Self.person(row.domain)), key: "good-key") == row.findymail)
        }
    }

    static let validationRows: [(domain: String, expected: VendorCallResult)] = [
        ("acme.com", validated("valid")),
        ("zb-invalid.acme.com", validated("invalid")),
        ("zb-catch-all.acme.com", validated("catch-all")),
        ("zb-unknown.acme.com", validated("unknown", credits: 0)),
        ("zb-spamtrap.acme.com", validated("spamtrap")),
        ("zb-abuse.acme.com", validated("abuse")),
        ("zb-do-not-mail.acme.com", validated("do_not_mail")),
        ("zb-error.acme.com", transient("zerobounce: HTTP 500", 500)),
        ("zb-slow.zb-invalid.acme.com", validated("invalid")),
    ]

    @Test("each ZeroBounce label answers as the table says; unknown costs no credit")
    func validationTable() async throws {
        try await Self.withFake(.init(slowMilliseconds: 50)) { fake, caller in
            for row in Self.validationRows {
                let result = await caller.call(Self.validate("ada+test@" + row.domain), key: "zb-key")
                #expect(result == row.expected, "\(row.domain)")
            }
            // Seven billed validations: every status but unknown; the 500 bills nothing.
            #expect(fake.stats().keys[FakeVendors.keyID("zb-key")]?.credits == 7)
        }
    }

    @Test("ratelimit answers 429 once per key and person, with the pause the headers ask for")
    func rateLimitOnce() async throws {
        try await Self.withFake { _, caller in
            let person = Self.person("ratelimit.acme.com")
            #expect(
                await caller.call(Self.find(.prospeo, person), key: "k")
                    == Self.transient("prospeo: HTTP 429 RATE_LIMITED_BURST", 429, retryAfter: 1))
            #expect(
                await caller.call(Self.find(.prospeo, person), key: "k")
                    == Self.found("ada.lovelace@ratelimit.acme.com"))
            // Another key, another vendor: each has its own first call.
            #expect(
                await caller.call(Self.find(.prospeo, person), key: "other")
                    == Self.transient("prospeo: HTTP 429 RATE_LIMITED_BURST", 429, retryAfter: 1))
            #expect(
                await caller.call(Self.find(.findymail, person), key: "k")
                    == Self.transient("findymail: HTTP 429", 429, retryAfter: 1))
            #expect(
                await caller.call(Self.find(.findymail, person), key: "k")
                    == Self.found("ada.lovelace@ratelimit.acme.com"))
            let email = "ada@zb-ratelimit.acme.com"
            #expect(
                await caller.call(Self.validate(email), key: "k")
                    == Self.transient("zerobounce: HTTP 429", 429, retryAfter: 1))
            #expect(await caller.call(Self.validate(email), key: "k") == Self.validated("valid"))
        }
    }

    @Test("flaky answers 503 once, then as the other labels say")
    func flakyOnce() async throws {
        try await Self.withFake { _, caller in
            let person = Self.person("flaky.miss.acme.com")
            #expect(
                await caller.call(Self.find(.prospeo, person), key: "k")
                    == Self.transient("prospeo: HTTP 503 INTERNAL_ERROR", 503))
            #expect(await caller.call(Self.find(.prospeo, person), key: "k") == Self.miss(400))
            #expect(
                await caller.call(Self.find(.findymail, person), key: "k") == Self.transient("findymail: HTTP 503", 503)
            )
            #expect(await caller.call(Self.find(.findymail, person), key: "k") == Self.miss(404))
            let email = "ada@zb-flaky.zb-spamtrap.acme.com"
            #expect(await caller.call(Self.validate(email), key: "k") == Self.transient("zerobounce: HTTP 503", 503))
            #expect(await caller.call(Self.validate(email), key: "k") == Self.validated("spamtrap"))
        }
    }

    @Test("Prospeo bills a record once per key: enriching it again is free")
    func prospeoReEnrichmentIsFree() async throws {
        try await Self.withFake { fake, caller in
            let request = Self.find(.prospeo, Self.ada)
            #expect(await caller.call(request, key: "k") == Self.found("ada.lovelace@acme.com", credits: 1))
            #expect(await caller.call(request, key: "k") == Self.found("ada.lovelace@acme.com", credits: 0))
            #expect(await caller.call(request, key: "k2") == Self.found("ada.lovelace@acme.com", credits: 1))
            // A miss bills nothing either.
            #expect(await caller.call(Self.find(.prospeo, Self.person("miss.acme.com")), key: "k") == Self.miss(400))
            let stats = fake.stats()
            #expect(stats.keys[FakeVendors.keyID("k")]?.credits == 1)
            #expect(stats.keys[FakeVendors.keyID("k")]?.requests == 3)
            #expect(stats.keys[FakeVendors.keyID("k2")]?.credits == 1)
        }
    }

    @Test("invalid and broke keys are key-fatal for all three vendors", arguments: ["invalid-key", "broke-key"])
    func keyFatalKeys(key: String) async throws {
        try await Self.withFake { _, caller in
            let prospeo = await caller.call(Self.find(.prospeo, Self.ada), key: key)
            let findymail = await caller.call(Self.find(.findymail, Self.ada), key: key)
            let zerobounce = await caller.call(Self.validate("ada.lovelace@acme.com"), key: key)
            if key.hasPrefix("invalid") {
                #expect(prospeo == Self.keyFatal("prospeo: HTTP 401 INVALID_API_KEY", 401))
                #expect(findymail == Self.keyFatal("findymail: HTTP 401 key refused", 401))
            } else {
                #expect(prospeo == Self.keyFatal("prospeo: HTTP 400 INSUFFICIENT_CREDITS", 400))
                #expect(findymail == Self.keyFatal("findymail: HTTP 402 out of credits", 402))
            }
            #expect(zerobounce == Self.keyFatal("zerobounce: HTTP 200 error: key invalid or out of credits", 200))
        }
    }

    @Test("a key that cannot be sent is key-fatal without a call")
    func unsendableKey() async throws {
        try await Self.withFake { fake, caller in
            #expect(
                await caller.call(Self.find(.prospeo, Self.ada), key: "")
                    == Self.keyFatal("prospeo: the key is empty or has characters no vendor accepts", nil))
            #expect(
                await caller.call(Self.find(.findymail, Self.ada), key: "two\nlines")
                    == Self.keyFatal("findymail: the key is empty or has characters no vendor accepts", nil))
            #expect(fake.stats().requests == 0)
        }
    }

    @Test("a slow vendor past the caller's timeout is transient without a status; within it, answered")
    func timeout() async throws {
        try await Self.withFake(.init(slowMilliseconds: 1500), timeout: .milliseconds(300)) { _, caller in
            let person = Self.person("slow.acme.com")
            #expect(
                await caller.call(Self.find(.prospeo, person), key: "k") == Self.transient("prospeo: timed out", nil))
            #expect(
                await caller.call(Self.find(.findymail, person), key: "k")
                    == Self.transient("findymail: timed out", nil))
            #expect(
                await caller.call(Self.validate("ada@zb-slow.acme.com"), key: "k")
                    == Self.transient("zerobounce: timed out", nil))
        }
        try await Self.withFake(.init(slowMilliseconds: 200), timeout: .seconds(5)) { _, caller in
            #expect(
                await caller.call(Self.find(.prospeo, Self.person("slow.acme.com")), key: "k")
                    == Self.found("ada.lovelace@slow.acme.com"))
        }
    }

    @Test("a closed port is a transient connection failure")
    func connectionRefused() async throws {
        let fake = try await FakeVendors.start(.init())
        let url = fake.baseURL
        await fake.stop()
        // AsyncHTTPClient retries a refused connection until the deadline and then reports the last failure; the
        // deadline leaves a loaded machine time to make the first attempt, or it reports a connect timeout instead.
        let caller = VendorCaller(endpoints: .fake(url), timeout: .seconds(5))
        let result = await caller.call(Self.find(.prospeo, Self.ada), key: "k")
        try await caller.shutdown()
        #expect(result == Self.transient("prospeo: connection failed", nil))
    }

    @Test("a LinkedIn URL alone: Prospeo finds by the profile, Findymail misses without a call")
    func linkedinOnly() async throws {
        try await Self.withFake { fake, caller in
            let person = PersonInput(linkedinURL: "https://www.linkedin.com/in/Ada-Lovelace/")
            #expect(
                await caller.call(Self.find(.prospeo, person), key: "k")
                    == Self.found("ada-lovelace@linkedin-found.example"))
            #expect(
                await caller.call(Self.find(.findymail, person), key: "k")
                    == Self.miss(nil, answered: false, detail: "findymail: needs a name and a domain"))
            #expect(fake.stats().keys[FakeVendors.keyID("k")]?.requestsByVendor == ["prospeo": 1])
        }
    }

    @Test("the key never appears in a reason or detail, even when it is in the URL")
    func keyNeverInReasons() async throws {
        try await Self.withFake(.init(slowMilliseconds: 1000), timeout: .milliseconds(200)) { fake, caller in
            var results: [VendorCallResult] = []
            for key in ["s3cr3t-MARKER-value", "invalid-MARKER", "broke-MARKER"] {
                for domain in [
                    "error.acme.com", "miss.acme.com", "nocredits.acme.com", "ratelimit.acme.com", "slow.acme.com",
                ] {
                    results.append(await caller.call(Self.find(.prospeo, Self.person(domain)), key: key))
                    results.append(await caller.call(Self.find(.findymail, Self.person(domain)), key: key))
                }
                for label in ["zb-error", "zb-ratelimit", "zb-slow", "zb-invalid"] {
                    results.append(await caller.call(Self.validate("ada@\(label).acme.com"), key: key))
                }
            }
            let stopped = fake.baseURL
            await fake.stop()
            let closed = VendorCaller(endpoints: .fake(stopped), timeout: .seconds(1))
            results.append(await closed.call(Self.validate("ada@acme.com"), key: "s3cr3t-MARKER-value"))
            try await closed.shutdown()
            var texts: [String] = []
            for result in results {
                switch result.outcome {
                case .transient(let reason, _), .keyFatal(let reason): texts.append(reason)
                case .found, .cleanMiss: break
                }
                if let detail = result.detail { texts.append(detail) }
            }
            #expect(texts.count >= 30)
            for text in texts { #expect(!text.contains("MARKER"), "\(text)") }
        }
    }

    @Test("the stats count the most requests in flight at once under concurrent slow calls")
    func maxInFlight() async throws {
        try await Self.withFake(.init(slowMilliseconds: 600)) { fake, caller in
            // Names differ in letters: the fake keeps ASCII letters only, so "Person 1" and "Person 2" are one record.
            let names = ["Ada", "Bea", "Cy", "Di", "Ed", "Flo", "Gus", "Hal"].map { $0 + " Lovelace" }
            let calls = names.count
            await withTaskGroup(of: VendorCallResult.self) { group in
                for name in names {
                    group.addTask {
                        await caller.call(
                            Self.find(.prospeo, PersonInput(fullName: name, domain: "slow.acme.com")), key: "pk")
                    }
                }
                for await result in group { #expect(result.credits == 1) }
            }
            #expect(await caller.call(Self.find(.findymail, Self.ada), key: "pk").credits == 1)
            let books = try #require(fake.stats().keys[FakeVendors.keyID("pk")])
            #expect(books.maxInFlight == calls)
            #expect(books.inFlight == 0)
            #expect(books.requests == calls + 1)
            #expect(books.requestsByVendor == ["prospeo": calls, "findymail": 1])
            #expect(books.credits == calls + 1)
            #expect(books.arrivalMilliseconds.count == calls + 1)
            #expect(books.arrivalMilliseconds == books.arrivalMilliseconds.sorted())

            // The same over HTTP, then a reset through HTTP clears it.
            let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
            let response = try await client.execute(
                HTTPClientRequest(url: fake.baseURL + "/__fake/stats"), timeout: .seconds(5))
            let body = try await response.body.collect(upTo: 1 << 20)
            let overHTTP = try JSONDecoder().decode(FakeVendorStats.self, from: Data(body.readableBytesView))
            #expect(overHTTP.keys[FakeVendors.keyID("pk")]?.maxInFlight == calls)
            #expect(overHTTP.keys.keys.allSatisfy { $0.count == 12 && !$0.contains("pk") })
            var reset = HTTPClientRequest(url: fake.baseURL + "/__fake/reset")
            reset.method = .POST
            let answer = try await client.execute(reset, timeout: .seconds(5))
            #expect(answer.status == .noContent)
            try await client.shutdown()
            #expect(fake.stats() == FakeVendorStats())
            // After a reset the record is new to the key again: billed once more.
            #expect(
                await caller.call(
                    Self.find(.prospeo, PersonInput(fullName: names[0], domain: "slow.acme.com")), key: "pk"
                ).credits == 1)
        }
    }

    @Test("failure rate 1 fails every call; a per-key rate limit answers 429 past it")
    func configuredFailures() async throws {
        try await Self.withFake(.init(failureRate: 1)) { _, caller in
            #expect(
                await caller.call(Self.find(.prospeo, Self.ada), key: "k")
                    == Self.transient("prospeo: HTTP 500 INTERNAL_ERROR", 500))
            #expect(
                await caller.call(Self.validate("ada@acme.com"), key: "k")
                    == Self.transient("zerobounce: HTTP 500", 500))
        }
        try await Self.withFake(.init(rateLimit: 2)) { _, caller in
            // Six calls at once: at most two one-second windows, so at least two are over the limit of two per second.
            let results = await withTaskGroup(of: VendorCallResult.self) { group in
                for index in 0..<6 {
                    group.addTask {
                        await caller.call(
                            Self.find(.prospeo, PersonInput(fullName: "Ada Lovelace", domain: "n\(index).acme.com")),
                            key: "rk")
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            let limited = results.filter { $0.httpStatus == 429 }
            #expect(limited.count >= 2)
            for result in limited {
                guard case .transient(let reason, let retryAfter) = result.outcome else {
                    Issue.record("a 429 that is not transient: \(result.outcome)")
                    continue
                }
                #expect(reason == "prospeo: HTTP 429 RATE_LIMITED_BURST")
                #expect(retryAfter == 1)
            }
        }
    }

    @Test("the same seed gives the same random failures")
    func seededFailures() async throws {
        func pattern() async throws -> [Bool] {
            var failed: [Bool] = []
            try await Self.withFake(.init(failureRate: 0.5, seed: 42)) { _, caller in
                for _ in 0..<16 {
                    failed.append(await caller.call(Self.find(.findymail, Self.ada), key: "k").httpStatus == 500)
                }
            }
            return failed
        }
        let first = try await pattern()
        #expect(try await pattern() == first)
        #expect(first.contains(true) && first.contains(false))
    }

    @Test("an unusable configuration refuses to start")
    func badConfiguration() async throws {
        await #expect(throws: FakeVendorsError.self) { try await FakeVendors.start(.init(failureRate: 2)) }
    }
}

/// The classification of answers the fake does not produce, checked on the adapters directly.
@Suite("Vendor answer classification", .timeLimit(.minutes(5)))
struct VendorAdapterClassificationTests {
    static func answer(_ status: Int, _ body: String, headers: [(String, String)] = []) -> VendorHTTPAnswer {
        VendorHTTPAnswer(status: status, headers: HTTPHeaders(headers), body: Array(body.utf8))
    }

    @Test("Prospeo: a rejected input is a miss with a detail, a restricted account is key-fatal")
    func prospeoCodes() {
        let invalid = ProspeoAdapter.classify(Self.answer(400, #"{"error": true, "error_code": "INVALID_REQUEST"}"#))
        #expect(
            invalid.outcome == .cleanMiss && invalid.answered && invalid.detail == "prospeo: HTTP 400 INVALID_REQUEST")
        let param = ProspeoAdapter.classify(Self.answer(400, #"{"error": true, "error_code": "INVALID_PARAM"}"#))
        #expect(param.outcome == .cleanMiss)
        let restricted = ProspeoAdapter.classify(
            Self.answer(403, #"{"error": true, "error_code": "ACCOUNT_RESTRICTED"}"#))
        #expect(restricted.outcome == .keyFatal(reason: "prospeo: HTTP 403 ACCOUNT_RESTRICTED"))
        // Free text in place of a code is never echoed.
        let odd = ProspeoAdapter.classify(Self.answer(502, #"{"error": true, "error_code": "see key abc"}"#))
        #expect(odd.outcome == .transient(reason: "prospeo: HTTP 502", retryAfterSeconds: nil))
    }

    @Test("Prospeo 429: the reset header of the window that ran out, the largest that applies")
    func prospeoRetryAfter() {
        let headers = [
            ("x-second-reset-seconds", "1"), ("x-minute-reset-seconds", "37.2"), ("x-minute-request-left", "12"),
        ]
        let burst = ProspeoAdapter.classify(
            Self.answer(429, #"{"error": true, "error_code": "RATE_LIMITED_BURST"}"#, headers: headers))
        #expect(burst.outcome == .transient(reason: "prospeo: HTTP 429 RATE_LIMITED_BURST", retryAfterSeconds: 1))
        let minute = ProspeoAdapter.classify(
            Self.answer(429, #"{"error": true, "error_code": "RATE_LIMITED"}"#, headers: headers))
        #expect(minute.outcome == .transient(reason: "prospeo: HTTP 429 RATE_LIMITED", retryAfterSeconds: 38))
        let both = ProspeoAdapter.classify(
            Self.answer(
                429, #"{"error": true, "error_code": "RATE_LIMITED_BURST"}"#,
                headers: [
                    ("x-second-reset-seconds", "1"), ("x-minute-reset-seconds", "20"), ("x-minute-request-left", "0"),
                ]))
        #expect(both.outcome == .transient(reason: "prospeo: HTTP 429 RATE_LIMITED_BURST", retryAfterSeconds: 20))
        let retryAfter = ProspeoAdapter.classify(Self.answer(503, "", headers: [("Retry-After", "7")]))
        #expect(retryAfter.outcome == .transient(reason: "prospeo: HTTP 503", retryAfterSeconds: 7))
    }

    @Test("Findymail and ZeroBounce: a 200 without an answer")
    func emptyAnswers() {
        #expect(FindymailAdapter.classify(Self.answer(200, #"{"contact": null}"#)).outcome == .cleanMiss)
        #expect(FindymailAdapter.classify(Self.answer(403, "{}")).outcome.failureClass == .keyFatal)
        #expect(FindymailAdapter.classify(Self.answer(422, "{}")).detail == "findymail: HTTP 422")
        #expect(ZeroBounceAdapter.classify(Self.answer(200, "<html>")).outcome.failureClass == .transient)
        #expect(
            ZeroBounceAdapter.classify(Self.answer(200, #"{"status": "maybe"}"#)).outcome.failureClass == .transient)
    }

    @Test("query values are percent-encoded so + & = survive")
    func queryEncoding() {
        #expect("a+b&c=d@x.com".queryEncoded == "a%2Bb%26c%3Dd%40x.com")
        #expect("é".queryEncoded == "%C3%A9")
    }
}
