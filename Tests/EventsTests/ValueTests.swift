import Foundation
import Testing

@testable import Events

@Suite("Small value types", .timeLimit(.minutes(5)))
struct ValueTests {
    @Test(
        "stream names: category-id, validated",
        arguments: [
            ("run-abc", true), ("vendorsecret-1f:prospeo", true), ("usage-A_b.c-d", true),
            ("Run-1", false), ("run", false), ("-x", false), ("run-", false), ("run-a b", false), ("r\u{e9}-1", false),
            ("run-" + String(repeating: "x", count: 200), false),
        ])
    func streamNames(name: String, valid: Bool) {
        #expect(((try? StreamName(name)) != nil) == valid)
    }

    @Test("a stream's category is the part before the first dash")
    func category() throws {
        #expect(StreamName.run(UUID()).category == "run")
        let name = try StreamName(String("vendorsecret-a-b:c"))
        #expect(name.category == "vendorsecret")
    }

    @Test("feed positions order by transaction id first and print as tx/position")
    func feedPositions() {
        let a = FeedPosition(transactionID: 5, globalPosition: 100)
        let b = FeedPosition(transactionID: 6, globalPosition: 3)
        #expect(a < b)
        #expect(FeedPosition(a.description) == a)
        #expect(FeedPosition("5") == nil)
        #expect(FeedPosition("x/1") == nil)
    }

    @Test("binary array parameters have the layout PostgreSQL expects")
    func arrayEncoding() {
        let value = PostgresValue.int32Array([7])
        #expect(value.oid == 1007)
        #expect(value.bytes == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 23, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 7])
        #expect(PostgresValue.uuidArray([nil]).bytes?[7] == 1, "the has-null flag is set")
    }

    @Test("error descriptions say what failed without the detail")
    func errorDescription() {
        let error = EventsError(
            .query, "duplicate key value violates unique constraint", sqlState: "23505", detail: "Key (x)=(secret)")
        #expect(!error.description.contains("secret"))
        #expect(error.description.contains("23505"))
        #expect(error.debugDescription.contains("secret"))
    }
}
