import Foundation
import Testing

@testable import Events

@Suite("Payload codecs", .timeLimit(.minutes(5)))
struct CodecTests {
    private func recorded(_ data: EventData, codec: PayloadCodec, stored: [UInt8], position: Int64 = 42)
        -> RecordedEvent
    {
        RecordedEvent(
            feedPosition: FeedPosition(transactionID: 7, globalPosition: position), tenantID: nil,
            stream: StreamName(unchecked: "run-1"),
            streamVersion: 1, id: data.id, type: data.type, schemaVersion: data.schemaVersion, codec: codec,
            storedPayload: stored, metadataJSON: Array("{}".utf8), recordedAt: Date())
    }

    @Test("small payloads stay plain JSON; large ones are LZ4-compressed and round-trip byte for byte")
    func lz4RoundTrip() throws {
        let small = Array(#"{"a":1}"#.utf8)
        #expect(PayloadCodec.encode(json: small).0 == .json)

        let large = Array(("{\"text\":\"" + String(repeating: "all work and no play ", count: 200) + "\"}").utf8)
        let (codec, stored) = PayloadCodec.encode(json: large)
        #expect(codec == .lz4JSON)
        #expect(stored.count < large.count / 4)
        #expect(try PayloadCodec.decode(tag: codec.tag, bytes: stored, position: 1) == large)
    }

    @Test("incompressible large payloads are stored as plain JSON")
    func incompressible() {
        let random = Sodium.randomBytes(4096).map { UInt8(0x41 + $0 % 26) }
        let json = Array("\"".utf8) + random + Array("\"".utf8)
        #expect(PayloadCodec.encode(json: json).0 == .json)
    }

    @Test("a corrupt LZ4 payload and an unknown codec are clear errors naming the position")
    func corruptAndUnknown() throws {
        let large = Array(String(repeating: "x", count: 5000).utf8)
        var (_, stored) = PayloadCodec.encode(json: large)
        stored[6] ^= 0xff
        stored.removeLast(10)
        #expect { try PayloadCodec.decode(tag: 2, bytes: stored, position: 99) } throws: { error in
            guard let error = error as? EventsError else { return false }
            return error.code == .corruptPayload && error.position == 99 && error.description.contains("99")
        }
        // A length prefix claiming gigabytes must not allocate them.
        #expect { try PayloadCodec.decode(tag: 2, bytes: [0xff, 0xff, 0xff, 0x7f, 0], position: 5) } throws: {
            ($0 as? EventsError)?.code == .corruptPayload
        }
        #expect { try PayloadCodec.decode(tag: 9, bytes: large, position: 100) } throws: { error in
            guard let error = error as? EventsError else { return false }
            return error.code == .unknownCodec && error.position == 100 && error.description.contains("codec 9")
        }
    }

    @Test("every catalog event encodes and decodes back to itself")
    func catalogRoundTrip() throws {
        let catalog = EventCatalog.tally
        let tenant = UUID()
        let run = UUID()
        // Payload dates keep millisecond precision; this one is exact in binary too.
        let date = Date(timeIntervalSince1970: 1_790_000_000.125)
        let definition = WorkflowDefinition(finders: [.prospeo, .findymail], validator: .zerobounce, maxAttempts: 5)
        let events: [any DomainEvent] = [
            TenantCreated(tenantID: tenant, name: "Acme", slug: "acme", plan: "free"),
            PlanChanged(
                tenantID: tenant, fromPlan: "free", toPlan: "pro", source: .stripe, stripeEventID: "evt_1",
                stripeObjectTime: date, effectiveAt: date),
            StripeCustomerLinked(tenantID: tenant, customerID: "cus_1", subscriptionID: "sub_1"),
            TenantSuspended(
                tenantID: tenant, reason: "unpaid", source: .stripe, stripeEventID: "evt_2", stripeObjectTime: date),
            TenantReinstated(tenantID: tenant, source: .stripe, stripeEventID: "evt_3", stripeObjectTime: date),
            TenantErased(tenantID: tenant, reason: "request"),
            KeyIssued(
                keyID: UUID(), tenantID: tenant, name: "ci", displayPrefix: "tly_ab12", keyHash: "00ff", expiresAt: date
            ),
            KeyRevoked(keyID: UUID(), tenantID: tenant, reason: "leaked"),
            KeyRotated(keyID: UUID(), tenantID: tenant, replacementKeyID: UUID(), graceUntil: date),
            VendorSecretSealed(
                tenantID: tenant, vendor: .prospeo, secretVersion: 1, tenantKeyVersion: 1,
                sealed: Data([1, 2, 3]), fingerprint: "fp"),
            VendorSecretRemoved(tenantID: tenant, vendor: .prospeo, secretVersion: 1),
            VendorKeySuspended(
                tenantID: tenant, vendor: .zerobounce, secretVersion: 1, fingerprint: "fp", reason: "402"),
            WorkflowDefined(workflowID: UUID(), tenantID: tenant, name: "default", definition: definition),
            WorkflowChanged(workflowID: UUID(), tenantID: tenant, name: "default", definition: definition),
            RunStarted(
                runID: run, tenantID: tenant, workflowID: UUID(), definition: definition,
                input: PersonInput(fullName: "Ada Lovelace", domain: "example.com"), batchID: UUID()),
            StepScheduled(runID: run, step: 1, kind: .find, vendor: .prospeo, attempt: 1, notBefore: date),
            StepStarted(runID: run, step: 1, attempt: 1, workerID: "w1", fencingToken: 3),
            VendorCallBilled(
                runID: run, tenantID: tenant, step: 1, attempt: 1, vendor: .prospeo, credits: 1, keyFingerprint: "fp"),
            StepFinished(
                runID: run, step: 1, attempt: 1, vendor: .prospeo, outcome: .found, email: "a@example.com",
                validationStatus: nil),
            StepFailed(runID: run, step: 2, attempt: 1, vendor: .zerobounce, failure: .transient, reason: "503"),
            RunFinished(runID: run, status: .succeeded, email: "a@example.com", validationStatus: "valid", reason: nil),
            RunCancelled(runID: run, reason: "by tenant"),
            UsageRecorded(
                tenantID: tenant, keyID: UUID(), windowStart: date, windowEnd: date, apiCalls: 12, instanceID: "i1"),
            FlowLimitsSet(
                vendor: .prospeo, tenantID: nil,
                windows: [RateWindow(limit: 10, seconds: 1), RateWindow(limit: 300, seconds: 60)],
                parallelism: 5),
            FlowLimitsSet(vendor: .zerobounce, tenantID: tenant, windows: [], parallelism: nil),
            FlowLimitsSet(vendor: .findymail, tenantID: tenant, windows: nil, parallelism: nil),
        ]
        #expect(Set(events.map { type(of: $0).eventType }) == Set(catalog.eventTypes), "the test covers every type")
        for event in events {
            let data = try encode(event, catalog)
            let decoded = try catalog.decode(recorded(data, codec: .json, stored: data.json))
            let same = isEqual(decoded, event)
            #expect(same, "\(data.type)")
            // Encoding is deterministic: idempotent re-appends compare the stored bytes.
            let again = try encode(event, catalog).json
            #expect(again == data.json)
        }
    }

    @Test(
        "TenantSuspended and TenantReinstated written before their Stripe fields existed still decode, and encode as before"
    )
    func stripeFieldsAreOptional() throws {
        let catalog = EventCatalog.tally
        let tenant = UUID()
        let suspendedJSON = #"{"reason":"unpaid","source":"operator","tenantId":"\#(tenant.uuidString)"}"#
        let reinstatedJSON = #"{"source":"operator","tenantId":"\#(tenant.uuidString)"}"#
        let suspended = try catalog.decode(TenantSuspended.self, recorded(type: "TenantSuspended", json: suspendedJSON))
        #expect(suspended == TenantSuspended(tenantID: tenant, reason: "unpaid", source: .operator))
        let reinstated = try catalog.decode(
            TenantReinstated.self, recorded(type: "TenantReinstated", json: reinstatedJSON))
        #expect(reinstated == TenantReinstated(tenantID: tenant, source: .operator))
        // Absent fields stay absent, so an operator's events encode to the bytes they always had.
        #expect(!String(decoding: try encode(suspended, catalog).json, as: UTF8.self).contains("stripe"))
        #expect(!String(decoding: try encode(reinstated, catalog).json, as: UTF8.self).contains("stripe"))
    }

    private func recorded(type: String, json: String) -> RecordedEvent {
        RecordedEvent(
            feedPosition: FeedPosition(transactionID: 7, globalPosition: 1), tenantID: nil,
            stream: StreamName(unchecked: "tenant-1"),
            streamVersion: 1, id: UUID(), type: type, schemaVersion: 1, codec: .json, storedPayload: Array(json.utf8),
            metadataJSON: Array("{}".utf8), recordedAt: Date())
    }

    private func encode<E: DomainEvent>(_ event: E, _ catalog: EventCatalog) throws -> EventData {
        try catalog.encode(event)
    }

    private func isEqual<E: DomainEvent>(_ lhs: any DomainEvent, _ rhs: E) -> Bool {
        (lhs as? E) == rhs
    }
}

/// A type whose first shape had one `name`; version 2 split it. Stands in for any event whose payload changes.
private struct PersonRenamed: DomainEvent {
    static let eventType = "PersonRenamed"
    static let schemaVersion = 2
    var firstName: String
    var lastName: String
}

@Suite("Event catalog", .timeLimit(.minutes(5)))
struct CatalogTests {
    private let catalog = EventCatalog(
        [PersonRenamed.self],
        upcasters: [
            Upcaster(eventType: "PersonRenamed", fromVersion: 1) { old in
                guard case .string(let name)? = old["name"] else { throw EventsError(.decoding, "v1 needs name") }
                let parts = name.split(separator: " ", maxSplits: 1).map(String.init)
                return .object(["firstName": .string(parts[0]), "lastName": .string(parts.count > 1 ? parts[1] : "")])
            }
        ])

    private func recorded(type: String, version: Int, json: String) -> RecordedEvent {
        RecordedEvent(
            feedPosition: FeedPosition(transactionID: 1, globalPosition: 17), tenantID: nil,
            stream: StreamName(unchecked: "person-1"),
            streamVersion: 1, id: UUID(), type: type, schemaVersion: version, codec: .json,
            storedPayload: Array(json.utf8), metadataJSON: Array("{}".utf8), recordedAt: Date())
    }

    @Test("an event written with an old schema version decodes through its upcaster")
    func upcast() throws {
        let old = recorded(type: "PersonRenamed", version: 1, json: #"{"name":"Grace Hopper"}"#)
        let event = try catalog.decode(PersonRenamed.self, old)
        #expect(event == PersonRenamed(firstName: "Grace", lastName: "Hopper"))
        let current = recorded(type: "PersonRenamed", version: 2, json: #"{"firstName":"Ada","lastName":"Lovelace"}"#)
        #expect(try catalog.decode(PersonRenamed.self, current).firstName == "Ada")
    }

    @Test(
        "unknown types, future versions and malformed payloads are clear errors naming the position",
        arguments: [
            ("Mystery", 1, "{}", EventsError.Code.unknownEventType),
            ("PersonRenamed", 3, "{}", EventsError.Code.decoding),
            ("PersonRenamed", 2, #"{"firstName":1}"#, EventsError.Code.decoding),
            ("PersonRenamed", 2, "not json", EventsError.Code.decoding),
            ("PersonRenamed", 1, #"{"nom":"x"}"#, EventsError.Code.decoding),
        ])
    func decodeErrors(type: String, version: Int, json: String, code: EventsError.Code) {
        #expect { try catalog.decode(recorded(type: type, version: version, json: json)) } throws: { error in
            guard let error = error as? EventsError else { return false }
            return error.code == code && error.position == 17 && error.description.contains("17")
        }
    }
}
