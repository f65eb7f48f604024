import Commands
import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import TestSupport
import Testing

@testable import API
@testable import Events

/// The key directory of a second instance, with a pool of its own so that every database round trip it makes
/// is counted.
@Suite("API: the key directory without feed reads", .timeLimit(.minutes(5)))
struct KeyDirectoryTests {
    @Test(
        "an unknown key costs one indexed lookup, then nothing while it is remembered (whatever else the log gets); a key another instance issued is found"
    )
    func unknownKeys() async throws {
        try await APIHarness.with { harness, client in
            let (_, key, _) = try await client.tenantWithKey("directory")
            let own = EventStore(configuration: .init(databaseURL: harness.url, maxConnections: 2))
            defer { own.close() }
            // Remembered for longer than a loaded machine takes to run this test.
            let directory = KeyDirectory(
                store: own, pepper: APIHarness.pepper, logger: APIHarness.logger, unknownFor: .seconds(300))
            try await directory.load()
            #expect(try await directory.verify(Substring(key)) != .rejected("The API key is not valid."))

            let unknown = APIKeyFormat.generate()
            let before = own.pool.acquisitions
            #expect(try await directory.verify(Substring(unknown)) == .rejected("The API key is not valid."))
            #expect(own.pool.acquisitions - before == 1, "one round trip: the lookup in api_keys")

            // Events keep arriving (another tenant, usage): the unknown key is still answered from memory.
            _ = try await client.tenantWithKey("directory-other")
            let tenant = UUID()
            try await harness.store.append(
                [try Fixtures.usage(tenant: tenant, calls: 1)], to: .usage(tenant: tenant), tenantID: tenant,
                expected: .any)
            let again = own.pool.acquisitions
            for _ in 0..<20 {
                #expect(try await directory.verify(Substring(unknown)) == .rejected("The API key is not valid."))
            }
            #expect(own.pool.acquisitions == again, "no round trip while the key is remembered as unknown")

            // A key issued meanwhile through the other instance: this directory has not followed the feed (no
            // follow loop runs here), finds it in api_keys and catches up.
            let (_, fresh, _) = try await client.tenantWithKey("directory-fresh")
            guard case .valid = try await directory.verify(Substring(fresh)) else {
                Issue.record("a key issued by another instance was not found")
                return
            }
        }
    }

    @Test(
        "an event of a key's stream that does not decode parks that stream: its key answers 503, every other key works")
    func parkedKeyStream() async throws {
        try await APIHarness.with { harness, client in
            let (tenantText, key, keyText) = try await client.tenantWithKey("directory-parked")
            let (_, other, _) = try await client.tenantWithKey("directory-fine")
            let tenant = try #require(UUID(uuidString: tenantText))
            let keyID = try #require(UUID(uuidString: keyText))
            let own = EventStore(configuration: .init(databaseURL: harness.url, maxConnections: 2))
            defer { own.close() }
            let directory = KeyDirectory(store: own, pepper: APIHarness.pepper, logger: APIHarness.logger)
            try await directory.load()
            // A revocation written by something that did not follow the catalog: it cannot be decoded.
            try await harness.store.append(
                [EventData(type: KeyRevoked.eventType, schemaVersion: 1, json: Array(#"{"keyId":"not a uuid"}"#.utf8))],
                to: .apiKey(keyID), tenantID: tenant, expected: .exactly(1))
            try await directory.refresh()
            #expect(directory.parkedStreams.keys.contains(StreamName.apiKey(keyID).rawValue))
            #expect(try await directory.verify(Substring(key)) == .parked)
            guard case .valid = try await directory.verify(Substring(other)) else {
                Issue.record("another tenant's key stopped working")
                return
            }
        }
    }
}
