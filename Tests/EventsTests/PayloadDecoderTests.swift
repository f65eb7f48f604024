import Foundation
import Testing

@testable import Events

@Suite("Payload decoder", .timeLimit(.minutes(5)))
struct PayloadDecoderTests {
    enum Color: String, Codable, Equatable { case red, green }

    struct Inner: Codable, Equatable {
        var label: String
        var colors: [Color]
        var weight: Double?
    }

    struct Sample: Codable, Equatable {
        var id: UUID
        var name: String
        var count: Int
        var big: Int64
        var small: Int32
        var ratio: Double
        var flag: Bool
        var at: Date
        var later: Date?
        var bytes: Data
        var note: String?
        var inner: Inner
        var list: [Inner]
        var tally: [String: Int]
        var matrix: [[Int]]
    }

    static let sample = Sample(
        id: UUID(), name: "Zoë \"quoted\" \\ back/slash\n\t\u{1F600}", count: -42, big: Int64.max, small: Int32.min,
        ratio: 0.1,
        flag: true, at: Date(timeIntervalSince1970: 1_790_000_000.5), later: nil,
        bytes: Data((0..<57).map { UInt8($0 * 7 % 256) }),
        note: "", inner: Inner(label: "x", colors: [.red, .green], weight: 2.5),
        list: [Inner(label: "a", colors: [], weight: nil), Inner(label: "", colors: [.green], weight: -0.0)],
        tally: ["a": 1, "b": 2], matrix: [[1, 2], [], [3]])

    /// The same value or the same failure as the JSONDecoder of the catalog.
    private func agree<T: Decodable & Equatable>(
        _ type: T.Type, _ json: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let bytes = Array(json.utf8)
        let expected = Result { try EventCatalog.makeDecoder().decode(T.self, from: Data(bytes)) }
        let actual = Result { try PayloadDecoder().decode(T.self, from: bytes) }
        switch (expected, actual) {
        case (.success(let a), .success(let b)):
            #expect(a == b, "\(json)", sourceLocation: sourceLocation)
        case (.failure, .failure):
            break
        case (.success, .failure(let error)):
            Issue.record(
                "JSONDecoder decodes \(json) but PayloadDecoder fails: \(error)", sourceLocation: sourceLocation)
        case (.failure(let error), .success):
            Issue.record(
                "PayloadDecoder decodes \(json) but JSONDecoder fails: \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("what the catalog's encoder writes decodes to the same value as with JSONDecoder")
    func roundTrip() throws {
        let json = try EventCatalog.makeEncoder().encode(Self.sample)
        #expect(try PayloadDecoder().decode(Sample.self, from: Array(json)) == Self.sample)
        agree(Sample.self, String(decoding: json, as: UTF8.self))
        var other = Self.sample
        other.later = Date(timeIntervalSince1970: 0)
        other.note = nil
        agree(Sample.self, String(decoding: try EventCatalog.makeEncoder().encode(other), as: UTF8.self))
    }

    @Test(
        "hand-written documents: whitespace, escapes, unknown and repeated keys, nulls, odd numbers and UUIDs agree with JSONDecoder",
        arguments: [
            #"{"label":"a","colors":[]}"#,
            #" { "label" : "a\u00e9\ud83d\ude00\/" , "colors" : [ "red" ] , "weight" : null , "extra" : {"x":[1,{"y":null}]} } "#,
            #"{"label":"a","colors":["red"],"weight":1e2}"#,
            #"{"label":"a","colors":["red"],"weight":-1.5E-3}"#,
            #"{"label":"first","label":"second","colors":[]}"#,
            #"{"la\u0062el":"escaped key","colors":[]}"#,
            #"{"colors":[]}"#,
            #"{"label":null,"colors":[]}"#,
            #"{"label":1,"colors":[]}"#,
            #"{"label":"a","colors":["blue"]}"#,
            #"{"label":"a","colors":"red"}"#,
            #"{"label":"a","colors":[],"weight":"1"}"#,
            #"{"label":"a","colors":[]"#,
            #"{"label":"a","colors":[]}x"#,
            #"{"label":"a\x","colors":[]}"#,
            #"{"label":"a","colors":[],"weight":01}"#,
            #"{"label":"a","colors":[],"weight":1.}"#,
            #"{"label":"a","colors":[],}"#,
            #"{"label":"a","colors":["red",],}"#,
            #"{"label":"a","colors":[,]}"#,
            #"{,}"#,
            #"[]"#,
            "",
        ])
    func documents(json: String) {
        agree(Inner.self, json)
    }

    struct Numbers: Codable, Equatable {
        var int: Int
        var int8: Int8
        var uint: UInt64
        var id: UUID
    }

    @Test(
        "integers at their limits and UUIDs in any case agree with JSONDecoder",
        arguments: [
            #"{"int":9223372036854775807,"int8":-128,"uint":18446744073709551615,"id":"E621E1F8-C36C-495A-93FC-0C247A3E6E5F"}"#,
            #"{"int":-9223372036854775808,"int8":127,"uint":0,"id":"e621e1f8-c36c-495a-93fc-0c247a3e6e5f"}"#,
            #"{"int":9223372036854775808,"int8":0,"uint":0,"id":"e621e1f8-c36c-495a-93fc-0c247a3e6e5f"}"#,
            #"{"int":0,"int8":128,"uint":0,"id":"e621e1f8-c36c-495a-93fc-0c247a3e6e5f"}"#,
            #"{"int":0,"int8":0,"uint":-1,"id":"e621e1f8-c36c-495a-93fc-0c247a3e6e5f"}"#,
            #"{"int":1.5,"int8":0,"uint":0,"id":"e621e1f8-c36c-495a-93fc-0c247a3e6e5f"}"#,
            #"{"int":0,"int8":0,"uint":0,"id":"e621e1f8c36c495a93fc0c247a3e6e5f"}"#,
            #"{"int":0,"int8":0,"uint":0,"id":"e621e1f8-c36c-495a-93fc-0c247a3e6e5g"}"#,
            #"{"int":0,"int8":0,"uint":0,"id":"e621e1f8-c36c-495a-93fc-0c247a3e6e5"}"#,
            #"{"int":0,"int8":0,"uint":0,"id":"e621e1f8_c36c-495a-93fc-0c247a3e6e5f"}"#,
        ])
    func numbers(json: String) {
        agree(Numbers.self, json)
    }
}
