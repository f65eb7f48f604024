import Foundation
import Synchronization
import TestSupport
import Testing

@testable import Events

@Suite("Event store: the commit-order feed", .timeLimit(.minutes(5)))
struct FeedTests {
    @Test("the gap case: an event whose transaction commits late is delivered, and no reader checkpoints past it")
    func lateCommitIsNotSkipped() async throws {
        try await TestDatabase.withStore(pollInterval: .milliseconds(50)) { store, url in
            let early = try Fixtures.runStarted()
            try await store.append([early], to: .run(UUID()), tenantID: nil, expected: .noStream)
            try await TestDatabase.settle(store)

            // Transaction A appends first (lower global position) and stays open.
            let connectionA = try await PostgresConnection.connect(PostgresConfiguration(url: url))
            defer { connectionA.close() }
            try await connectionA.execute("BEGIN")
            let eventA = try Fixtures.runStarted()
            let resultA = try await store.append(
                [StreamAppend(stream: .run(UUID()), tenantID: nil, expected: .noStream, events: [eventA])],
                on: connectionA)

            // Transaction B appends after it and commits.
            let eventB = try Fixtures.runStarted()
            let resultB = try await store.append([eventB], to: .run(UUID()), tenantID: nil, expected: .noStream)
            #expect(resultA[0].globalPositions[0] < resultB.globalPositions[0])

            // A reader now sees only what is below the horizon: not B, because A may still commit before it.
            let page = try await store.readFeed(after: .start)
            #expect(page.events.map(\.id) == [early.id])
            #expect(try await store.hasEventsBeyondHorizon())
            // The whole cluster's writers are listed oldest first; under a loaded suite there can be many.
            #expect(try await store.horizonHolders(limit: 1000).contains { $0.pid == Int(connectionA.backendPID) })

            let delivered = Mutex<[UUID]>([])
            let subscriber = Task {
                var iterator = store.subscribe(from: page.next).makeAsyncIterator()
                while let event = try await iterator.next() {
                    let count = delivered.withLock { ids in
                        ids.append(event.id)
                        return ids.count
                    }
                    if count == 2 { return iterator.position }
                }
                return iterator.position
            }
            try await Task.sleep(for: .milliseconds(300))
            #expect(delivered.withLock { $0 }.isEmpty, "nothing may be delivered while A is open")

            try await connectionA.execute("COMMIT")
            store.appended()
            let finalPosition = try await subscriber.value
            #expect(Set(delivered.withLock { $0 }) == [eventA.id, eventB.id])
            #expect(finalPosition > resultA[0].feedPositions[0] || finalPosition == resultA[0].feedPositions[0])
            let all = try await store.readFeed(after: .start).events.map(\.id)
            #expect(Set(all) == [early.id, eventA.id, eventB.id])
        }
    }

    @Test("pages follow each other without gaps or repeats, and filters select by tenant, type and category")
    func pagingAndFilters() async throws {
        try await TestDatabase.withStore { store, _ in
            let tenantA = UUID()
            let tenantB = UUID()
            var expected: [UUID] = []
            for index in 0..<25 {
                let tenant = index.isMultiple(of: 2) ? tenantA : tenantB
                let event = try Fixtures.usage(tenant: tenant, calls: index)
                expected.append(event.id)
                try await store.append([event], to: .usage(tenant: tenant), tenantID: tenant, expected: .any)
            }
            let run = try Fixtures.runStarted()
            try await store.append([run], to: .run(UUID()), tenantID: tenantA, expected: .noStream)
            expected.append(run.id)
            try await TestDatabase.settle(store)

            var seen: [UUID] = []
            var position = FeedPosition.start
            while true {
                let page = try await store.readFeed(after: position, limit: 7)
                if page.events.isEmpty { break }
                seen += page.events.map(\.id)
                position = page.next
            }
            #expect(seen == expected)

            let onlyA = try await store.readFeed(after: .start, filter: FeedFilter(tenantID: tenantA)).events
            #expect(onlyA.count == 14)
            #expect(onlyA.allSatisfy { $0.tenantID == tenantA })
            let onlyRuns = try await store.readFeed(after: .start, filter: FeedFilter(types: ["RunStarted"])).events
            #expect(onlyRuns.map(\.id) == [run.id])
            let usage = try await store.readFeed(after: .start, filter: FeedFilter(categories: ["usage"])).events
            #expect(usage.count == 25)
            let tail = try await store.readFeedTail(count: 3).events
            #expect(tail.map(\.id) == Array(expected.suffix(3)))
            #expect(try await store.head() == tail.last?.feedPosition)
        }
    }

    @Test("a subscriber in another process is woken by NOTIFY; without it, polling still delivers")
    func crossProcessWakeUp() async throws {
        try await TestDatabase.withStore(pollInterval: .seconds(30)) { store, url in
            // A second store stands in for another `tally` process: its appends reach this one only through
            // NOTIFY, because the poll interval here is far longer than the test waits.
            let other = EventStore(configuration: .init(databaseURL: url, maxConnections: 2))
            defer { other.close() }
            let received = Task {
                var ids: [UUID] = []
                for try await event in store.subscribe(from: .start) {
                    ids.append(event.id)
                    if ids.count == 3 { break }
                }
                return ids
            }
            var appended: [UUID] = []
            for _ in 0..<3 {
                try await Task.sleep(for: .milliseconds(200))
                let event = try Fixtures.runStarted()
                appended.append(event.id)
                try await other.append([event], to: .run(UUID()), tenantID: nil, expected: .noStream)
            }
            let outcome = try await withThrowingTaskGroup(of: [UUID]?.self) { group in
                group.addTask { try await received.value }
                group.addTask {
                    // Below the 30 s poll interval, so only a notification can deliver in time. Generous,
                    // because parallel tests (rebuilds) hold the cluster-wide horizon for seconds at a time.
                    try await Task.sleep(for: .seconds(25))
                    return nil
                }
                let first = try await group.next()!
                group.cancelAll()
                received.cancel()
                return first
            }
            #expect(outcome == appended)
        }

        // Polling alone (the notification is lost): a short poll interval still delivers.
        try await TestDatabase.withStore(pollInterval: .milliseconds(100)) { store, url in
            let connection = try await PostgresConnection.connect(PostgresConfiguration(url: url))
            defer { connection.close() }
            let subscriber = Task { () -> UUID? in
                for try await event in store.subscribe(from: .start) { return event.id }
                return nil
            }
            try await Task.sleep(for: .milliseconds(150))
            let event = try Fixtures.runStarted()
            // Appended on a bare connection: no local signal, no NOTIFY.
            _ = try await store.append(
                [StreamAppend(stream: .run(UUID()), tenantID: nil, expected: .noStream, events: [event])],
                on: connection)
            #expect(try await subscriber.value == event.id)
        }
    }
}
