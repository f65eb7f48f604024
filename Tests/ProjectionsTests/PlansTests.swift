import Events
import Foundation
import Testing

@testable import Projections

@Suite("Plans and billing periods")
struct PlansTests {
    @Test(
        "a plans file error names the field at fault",
        arguments: [
            (
                #"{"plans": [{"name": "pro", "keyRequestsPerSecond": 5}]}"#,
                "plans[0].tenantRequestsPerSecond: is required"
            ),
            (
                #"{"plans": [{"name": "pro", "keyRequestsPerSecond": 5, "tenantRequestsPerSecond": 5, "monthlyApiCall": 9}]}"#,
                "plans[0].monthlyApiCall: unknown field"
            ),
            (
                #"{"plans": [{"name": "pro", "keyRequestsPerSecond": 5, "tenantRequestsPerSecond": 5, "unitPriceMicros": {"vendor_credits:acme": 1}}]}"#,
                "plans[0].unitPriceMicros.vendor_credits:acme: unknown meter"
            ),
            (
                #"{"plans": [{"name": "pro", "keyRequestsPerSecond": 5, "tenantRequestsPerSecond": 5, "unitPriceMicros": {"runs": 1.5}}]}"#,
                "plans[0].unitPriceMicros.runs: must be a whole number"
            ),
            (
                #"{"plans": [{"name": "a", "keyRequestsPerSecond": 5, "tenantRequestsPerSecond": 5}, {"name": "b", "keyRequestsPerSecond": 0, "tenantRequestsPerSecond": 5}]}"#,
                "plans[1].keyRequestsPerSecond: must be positive"
            ),
            (
                #"{"plans": [{"name": "a", "keyRequestsPerSecond": 5, "tenantRequestsPerSecond": 5, "stripePriceIds": {"runs": "price_1"}}, {"name": "b", "keyRequestsPerSecond": 5, "tenantRequestsPerSecond": 5, "stripePriceIds": {"api_calls": "price_1"}}]}"#,
                "plans[1].stripePriceIds.api_calls: price_1 is already the price of a runs"
            ),
            (
                #"{"plans": [{"name": "a", "keyRequestsPerSecond": 5, "tenantRequestsPerSecond": 5, "baseFeeMicros": -1}]}"#,
                "plans[0].baseFeeMicros: cannot be negative"
            ),
            (
                #"{"plans": [{"name": "a", "keyRequestsPerSecond": 5, "tenantRequestsPerSecond": 5, "currency": "USD"}]}"#,
                "plans[0].currency: must be a lower-case ISO 4217 code"
            ),
            (#"{"plan": []}"#, "plan: unknown field"),
        ])
    func plansErrors(document: String, message: String) throws {
        #expect {
            try Plans(json: Data(document.utf8))
        } throws: { error in
            (error as? PlansError)?.description.hasPrefix(message) == true
        }
    }

    @Test("the shipped plans and a full plans file load; a Stripe price maps back to its plan and meter")
    func plansLoad() throws {
        #expect(Plans.defaults["pro"]?.baseFeeMicros == 49_000_000)
        let plans = try Plans(
            json: Data(
                #"{"plans": [{"name": "team", "keyRequestsPerSecond": 20, "tenantRequestsPerSecond": 40, "monthlyApiCalls": 5, "monthlyRuns": null, "currency": "eur", "baseFeeMicros": 10, "unitPriceMicros": {"vendor_calls:zerobounce": 3}, "stripePriceIds": {"base_fee": "price_team"}}]}"#
                    .utf8))
        let team = try #require(plans["team"])
        #expect(team.monthlyAPICalls == 5 && team.monthlyRuns == nil && team.currency == "eur")
        #expect(
            team.unitPrice(.vendorCalls(.zerobounce)) == 3 && team.unitPrice(.baseFee) == 10
                && team.unitPrice(.runs) == 0)
        #expect(plans.owner(ofStripePrice: "price_team")?.meter == .baseFee)
        #expect(plans.owner(ofStripePrice: "price_other") == nil)
        #expect(Currency.minorUnits(fromMicros: 25_000, currency: "usd") == 3)
        #expect(Currency.minorUnits(fromMicros: 24_999, currency: "usd") == 2)
        #expect(Currency.minorUnits(fromMicros: 1_500_000, currency: "jpy") == 2)
        #expect(StripeInvoiceLine.minorUnits("49.5", currency: "usd") == 4_950)
        #expect(StripeInvoiceLine.minorUnits("4950", currency: "usd") == 4_950)
        #expect(StripeInvoiceLine.minorUnits("1.234", currency: "usd") == nil)
    }

    @Test(
        "a billing period parses YYYY-MM from 1970 on and nothing else",
        arguments: [
            ("2026-12", "2026-12"), ("1970-01", "1970-01"), ("2026-13", nil), ("2026-00", nil), ("1969-12", nil),
            ("2026-1", nil), ("26-12", nil), ("2026/12", nil), ("２０２６-12", nil), ("2026-12 ", nil), ("", nil),
        ] as [(String, String?)])
    func periodParsing(text: String, parsed: String?) {
        #expect(BillingPeriod(text)?.description == parsed)
    }

    @Test("a period runs from its first instant, UTC, to the next period's, and they order by time")
    func periodBounds() throws {
        let december = try #require(BillingPeriod("2026-12"))
        #expect(december.start == Date(timeIntervalSince1970: 1_796_083_200))
        #expect(december.end == Date(timeIntervalSince1970: 1_798_761_600))
        #expect(december.next.description == "2027-01")
        #expect(BillingPeriod(containing: december.end.addingTimeInterval(-0.001)) == december)
        #expect(BillingPeriod(containing: december.end) == december.next)
        #expect(december < december.next && !(december.next < december))
    }
}
