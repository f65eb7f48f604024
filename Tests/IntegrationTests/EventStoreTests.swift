import Foundation
import Synchronization
import TestSupport
import Testing

@testable import Events

@Suite("Event store: appends", .timeLimit(.minutes(5)))
struct EventStoreAppendTests {
    @Test("appended events read back in stream order with their types, versions and metadata")
    func roundTrip() async throws {
        try await TestDatabase.withStore { store, _ in
            let tenant = UUID()
            let stream = StreamName.tenant(tenant)
            var created = try Fixtures.tenantCreated(tenant)
            created.metadata = EventMetadata(correlationID: UUID(), actor: "operator", requestID: "req-1")
            let plan = try store.catalog.encode(
                PlanChanged(tenantID: tenant, fromPlan: "free", toPlan: "pro", source: .operator, effectiveAt: Date()))
            let result = try await store.append([created, plan], to: stream, tenantID: tenant, expected: .noStream)
            #expect(result.streamVersion == 2)
            #expect(result.globalPositions.count == 2)
            #expect(result.globalPositions[0] < result.globalPositions[1])

            let events = try await store.read(stream: stream)
            #expect(events.map(\.streamVersion) == [1, 2])
            #expect(events.map(\.type) == ["TenantCreated", "PlanChanged"])
            #expect(events.allSatisfy { $0.tenantID == tenant })
            #expect(try events[0].metadata() == created.metadata)
            let decoded = try store.catalog.decode(TenantCreated.self, events[0])
            #expect(decoded.name == "Acme")
            #expect(try await store.version(of: stream) == 2)
        }
    }

    @Test("large payloads are stored LZ4-compressed, tagged, and read back byte for byte")
    func largePayloads() async throws {
        try await TestDatabase.withStore { store, _ in
            let tenant = UUID()
            let name = String(repeating: "Initech Corporation of Greater Springfield ", count: 60)
            let event = try store.catalog.encode(
                TenantCreated(tenantID: tenant, name: name, slug: "initech", plan: "pro"))
            #expect(event.json.count > PayloadCodec.compressionThreshold)
            try await store.append(
                [event, try Fixtures.tenantCreated(tenant)], to: .tenant(tenant), tenantID: tenant, expected: .noStream)
            let stored = try await store.pool.query(
                "SELECT codec, octet_length(payload) FROM events ORDER BY global_position")
            #expect(try stored.map { try $0.int64(0) } == [2, 1])
            #expect(try stored[0].int64(1) < Int64(event.json.count / 4))
            let events = try await store.read(stream: .tenant(tenant))
            #expect(try events[0].json() == event.json)
            #expect(try store.catalog.decode(TenantCreated.self, events[0]).name == name)
        }
    }

    @Test("64 concurrent appenders with the same expected version: exactly one wins, the rest see the actual version")
    func concurrentSameExpectedVersion() async throws {
        try await TestDatabase.withStore(maxConnections: 64) { store, _ in
            let stream = StreamName.run(UUID())
            try await store.append([try Fixtures.runStarted()], to: stream, tenantID: nil, expected: .noStream)
            let outcomes = try await withThrowingTaskGroup(of: (UUID, Result<AppendResult, EventsError>).self) {
                group in
                for _ in 0..<64 {
                    group.addTask {
                        let event = try Fixtures.runStarted()
                        do {
                            return (
                                event.id,
                                .success(
                                    try await store.append([event], to: stream, tenantID: nil, expected: .exactly(1)))
                            )
                        } catch let error as EventsError {
                            return (event.id, .failure(error))
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let winners = outcomes.filter { if case .success = $0.1 { true } else { false } }
            #expect(winners.count == 1)
            for case (_, .failure(let error)) in outcomes {
                #expect(error.code == .conflict)
                #expect(error.actualVersion == 2)
                #expect(error.stream == stream.rawValue)
            }
            let events = try await store.read(stream: stream)
            #expect(events.count == 2)
            #expect(events[1].id == winners[0].0)
        }
    }

    @Test("concurrent appenders on distinct streams: every acknowledged event is in the log exactly once")
    func concurrentDistinctStreams() async throws {
        try await TestDatabase.withStore(maxConnections: 32) { store, _ in
            let acknowledged = try await withThrowingTaskGroup(of: [UUID].self) { group in
                for _ in 0..<32 {
                    group.addTask {
                        let stream = StreamName.run(UUID())
                        var ids: [UUID] = []
                        var version: ExpectedVersion = .noStream
                        for _ in 0..<20 {
                            let events = [try Fixtures.runStarted(), try Fixtures.runStarted()]
                            let result = try await store.append(events, to: stream, tenantID: nil, expected: version)
                            version = .exactly(result.streamVersion)
                            ids += events.map(\.id)
                        }
                        return ids
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            let rows = try await store.pool.query("SELECT event_id FROM events")
            let stored = try rows.map { try $0.uuid(0) }
            #expect(stored.count == acknowledged.count)
            #expect(Set(stored) == Set(acknowledged))
            #expect(Set(stored).count == stored.count)
        }
    }

    @Test("appending the same event ids again returns the original result and writes nothing")
    func idempotentReappend() async throws {
        try await TestDatabase.withStore { store, _ in
            let stream = StreamName.run(UUID())
            let events = [try Fixtures.runStarted(), try Fixtures.runStarted()]
            let first = try await store.append(events, to: stream, tenantID: nil, expected: .noStream)
            let again = try await store.append(events, to: stream, tenantID: nil, expected: .noStream)
            #expect(again == first)
            #expect(try await store.read(stream: stream).count == 2)
            #expect(try await store.version(of: stream) == 2)
        }
    }

    @Test("concurrent appends of the same event ids: one writes, the others get its result")
    func concurrentIdempotentReappend() async throws {
        try await TestDatabase.withStore(maxConnections: 8) { store, _ in
            let stream = StreamName.run(UUID())
            let events = [try Fixtures.runStarted()]
            let results = try await withThrowingTaskGroup(of: AppendResult.self) { group in
                for _ in 0..<8 {
                    group.addTask { try await store.append(events, to: stream, tenantID: nil, expected: .any) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(Set(results).count == 1)
            #expect(try await store.read(stream: stream).count == 1)
        }
    }

    @Test("the same event ids with different content are an error, and nothing is written")
    func conflictingReappend() async throws {
        try await TestDatabase.withStore { store, _ in
            let stream = StreamName.run(UUID())
            let original = try Fixtures.runStarted()
            try await store.append([original], to: stream, tenantID: nil, expected: .noStream)
            let changed = try Fixtures.runStarted(id: original.id)
            let extra = try Fixtures.runStarted()
            await #expect { try await store.append([changed], to: stream, tenantID: nil, expected: .any) } throws: {
                EventsError.Code.duplicateEventIDs.matches($0)
            }
            // A batch that repeats one known id next to a new one is not a replay either.
            await #expect {
                try await store.append([original, extra], to: stream, tenantID: nil, expected: .any)
            } throws: {
                EventsError.Code.duplicateEventIDs.matches($0)
            }
            let events = try await store.read(stream: stream)
            #expect(events.map(\.id) == [original.id])
        }
    }

    @Test("a multi-stream append that conflicts on one stream writes nothing to any")
    func multiStreamAtomic() async throws {
        try await TestDatabase.withStore { store, _ in
            let existing = StreamName.run(UUID())
            try await store.append([try Fixtures.runStarted()], to: existing, tenantID: nil, expected: .noStream)
            let fresh = (0..<5).map { _ in StreamName.run(UUID()) }
            var appends = try fresh.map {
                StreamAppend(stream: $0, tenantID: nil, expected: .noStream, events: [try Fixtures.runStarted()])
            }
            appends.append(
                StreamAppend(stream: existing, tenantID: nil, expected: .noStream, events: [try Fixtures.runStarted()]))
            await #expect { try await store.append(appends) } throws: { error in
                guard let error = error as? EventsError else { return false }
                return error.code == .conflict && error.actualVersion == 1 && error.stream == existing.rawValue
            }
            let count = try await store.pool.query("SELECT count(*) FROM events").first!.int64(0)
            #expect(count == 1)
            for stream in fresh {
                #expect(try await store.version(of: stream) == 0)
            }

            appends.removeLast()
            let results = try await store.append(appends)
            #expect(results.map(\.stream) == fresh)
            #expect(results.allSatisfy { $0.streamVersion == 1 })
        }
    }

    @Test("re-appending a multi-stream batch returns the original results, whatever the expectations say now")
    func multiStreamReplay() async throws {
        try await TestDatabase.withStore { store, _ in
            let appends = try (0..<3).map { _ in
                StreamAppend(
                    stream: .run(UUID()), tenantID: UUID(), expected: .noStream,
                    events: [try Fixtures.runStarted(), try Fixtures.runStarted()])
            }
            let first = try await store.append(appends)
            #expect(first.map(\.streamVersion) == [2, 2, 2])
            #expect(try await store.append(appends) == first)
            var anyExpectation = appends
            for index in anyExpectation.indices { anyExpectation[index].expected = .any }
            #expect(try await store.append(anyExpectation) == first)
            #expect(try await store.pool.query("SELECT count(*) FROM events").first!.int64(0) == 6)
        }
    }

    @Test("expectations: no stream on an existing stream and a wrong exact version conflict with the actual version")
    func expectations() async throws {
        try await TestDatabase.withStore { store, _ in
            let stream = StreamName.run(UUID())
            await #expect {
                try await store.append([try Fixtures.runStarted()], to: stream, tenantID: nil, expected: .exactly(3))
            } throws: {
                ($0 as? EventsError)?.actualVersion == 0
            }
            try await store.append([try Fixtures.runStarted()], to: stream, tenantID: nil, expected: .any)
            try await store.append([try Fixtures.runStarted()], to: stream, tenantID: nil, expected: .any)
            await #expect {
                try await store.append([try Fixtures.runStarted()], to: stream, tenantID: nil, expected: .noStream)
            } throws: {
                ($0 as? EventsError)?.actualVersion == 2
            }
            await #expect {
                try await store.append([try Fixtures.runStarted()], to: stream, tenantID: nil, expected: .exactly(1))
            } throws: {
                ($0 as? EventsError)?.actualVersion == 2
            }
            try await store.append([try Fixtures.runStarted()], to: stream, tenantID: nil, expected: .exactly(2))
            #expect(try await store.version(of: stream) == 3)
        }
    }

    @Test("bad appends are rejected before any I/O with a clear error")
    func badInput() async throws {
        try await TestDatabase.withStore { store, _ in
            let stream = StreamName.run(UUID())
            let event = try Fixtures.runStarted()
            let cases: [[StreamAppend]] = [
                [],
                [StreamAppend(stream: stream, tenantID: nil, expected: .any, events: [])],
                [StreamAppend(stream: stream, tenantID: nil, expected: .any, events: [event, event])],
                [
                    StreamAppend(stream: stream, tenantID: nil, expected: .any, events: [event]),
                    StreamAppend(stream: stream, tenantID: nil, expected: .any, events: [try Fixtures.runStarted()]),
                ],
                [StreamAppend(stream: stream, tenantID: nil, expected: .exactly(-1), events: [event])],
                [
                    StreamAppend(
                        stream: stream, tenantID: nil, expected: .any,
                        events: [EventData(type: "", schemaVersion: 1, json: [])])
                ],
            ]
            for appends in cases {
                await #expect { try await store.append(appends) } throws: {
                    EventsError.Code.invalidArgument.matches($0)
                }
            }
            #expect(try await store.pool.query("SELECT count(*) FROM events").first!.int64(0) == 0)
            #expect(throws: EventsError.self) { try StreamName("Run-1") }
            #expect(throws: EventsError.self) { try StreamName("run-") }
            #expect(throws: EventsError.self) { try StreamName("run-a b") }
        }
    }
}
