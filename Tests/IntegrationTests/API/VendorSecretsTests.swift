import Foundation
import Hummingbird
import HummingbirdTesting
import TestSupport
import Testing

@testable import API
@testable import Events
@testable import Projections

/// The vendor secrets tests' keys and sealed events.
enum SecretsHarness {
    static func newKey() -> MasterKey { MasterKey(bytes: Sodium.randomBytes(32)) }

    /// The newest `VendorSecretSealed` of the tenant's stream for `vendor`.
    static func sealedEvent(_ store: EventStore, tenant: String, vendor: Vendor) async throws -> VendorSecretSealed {
        let events = try await store.read(
            stream: .vendorSecret(tenant: try #require(UUID(uuidString: tenant)), vendor: vendor))
        let sealed = try events.compactMap { try store.catalog.decode($0) as? VendorSecretSealed }
        return try #require(sealed.last)
    }

    static func plaintext(_ vault: SecretVault, _ event: VendorSecretSealed) async throws -> String {
        try await vault.withPlaintext(of: event) { String(decoding: $0, as: UTF8.self) }
    }

    /// A vendor-looking key nobody else uses.
    static func vendorKey() -> String { "pk_live_" + Sodium.hex(Sodium.randomBytes(20)) }
}

@Suite("Vendor secrets: sealed, rotated, erased", .timeLimit(.minutes(5)))
struct VendorSecretsTests {
    @Test(
        "a stored secret is answered as metadata only, opens with the vault, and appears in no pg_dump of the database nor any log line"
    )
    func storeAndDump() async throws {
        try await APIHarness.with(masterKey: SecretsHarness.newKey()) { harness, client in
            let (tenant, key, _) = try await client.tenantWithKey("acme")
            let first = SecretsHarness.vendorKey()
            let second = SecretsHarness.vendorKey()
            let created = try await client.call(
                .put, "/v1/vendor-secrets/prospeo", token: key, json: #"{"apiKey":"\#(first)"}"#)
            #expect(created.status == .created, "\(created.text)")
            #expect(
                created.string("vendor") == "prospeo" && created.string("status") == "active"
                    && created["secretVersion"]?.intValue == 1)
            #expect(created.string("fingerprint")?.utf8.count == 16)
            let replaced = try await client.call(
                .put, "/v1/vendor-secrets/prospeo", token: key, json: #"{"apiKey":"\#(second)"}"#)
            #expect(replaced.status == .ok && replaced["secretVersion"]?.intValue == 2)
            #expect(replaced.string("fingerprint") != created.string("fingerprint"))
            for reply in [created, replaced] { #expect(!reply.text.contains(first) && !reply.text.contains(second)) }
            let list = try await client.call(.get, "/v1/vendor-secrets", token: key)
            #expect(
                list["items"]?[0]?["secretVersion"]?.intValue == 2
                    && list["items"]?[0]?["fingerprint"] == replaced["fingerprint"])

            let vault = try #require(harness.services.vault)
            let event = try await SecretsHarness.sealedEvent(harness.store, tenant: tenant, vendor: .prospeo)
            #expect(try await SecretsHarness.plaintext(vault, event) == second)
            #expect(event.fingerprint == replaced.string("fingerprint"))

            try await harness.services.meter.flush()
            try await TestDatabase.settle(harness.store)
            let pgDump = try #require(
                (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql"))?.sorted().last.map {
                    "/usr/lib/postgresql/\($0)/bin/pg_dump"
                })
            let dump = try await Subprocess.run(pgDump, ["--dbname", harness.url], environment: [:])
            #expect(dump.status == 0, "\(dump.stderr)")
            #expect(
                dump.stdout.contains("tenant_keys") && dump.stdout.contains(event.fingerprint),
                "the dump holds the tables")
            for secret in [first, second] {
                let bytes = Array(secret.utf8)
                for form in [secret, Data(bytes).base64EncodedString(), Sodium.hex(bytes), String(secret.dropFirst(8))]
                {
                    #expect(!dump.stdout.contains(form))
                    #expect(!LogCapture.shared.contains(form))
                }
            }
        }
    }

    @Test("a sealed blob opens only for the tenant, vendor and version it was sealed for, and not once a byte changed")
    func boundToContext() async throws {
        try await TestDatabase.withStore { store, _ in
            let vault = SecretVault(pool: store.pool, masterKey: SecretsHarness.newKey())
            let (a, b) = (UUID(), UUID())
            let secret = Array(SecretsHarness.vendorKey().utf8)
            let sealed = try await vault.seal(secret, tenant: a, vendor: .prospeo, secretVersion: 1)
            _ = try await vault.seal(secret, tenant: b, vendor: .prospeo, secretVersion: 1)
            let opened = try await vault.withPlaintext(
                sealed.sealed, tenant: a, vendor: .prospeo, secretVersion: 1, tenantKeyVersion: 1
            ) { Array($0) }
            #expect(opened == secret)
            let elsewhere: [(UUID, Vendor, Int)] = [(b, .prospeo, 1), (a, .findymail, 1), (a, .prospeo, 2)]
            for (tenant, vendor, version) in elsewhere {
                await #expect(throws: EventsError.self) {
                    try await vault.withPlaintext(
                        sealed.sealed, tenant: tenant, vendor: vendor, secretVersion: version, tenantKeyVersion: 1
                    ) { _ in }
                }
                do {
                    try await vault.withPlaintext(
                        sealed.sealed, tenant: tenant, vendor: vendor, secretVersion: version, tenantKeyVersion: 1
                    ) { _ in }
                } catch let error as EventsError {
                    #expect(error.code == .secretUnopenable)
                }
            }
            var tampered = sealed.sealed
            tampered[tampered.count - 1] ^= 1
            await #expect(throws: EventsError.self) {
                try await vault.withPlaintext(
                    tampered, tenant: a, vendor: .prospeo, secretVersion: 1, tenantKeyVersion: 1
                ) { _ in }
            }
            let sameSecretOtherTenant = try await vault.seal(secret, tenant: b, vendor: .prospeo, secretVersion: 2)
            #expect(sameSecretOtherTenant.fingerprint != sealed.fingerprint, "fingerprints are keyed per tenant")
            #expect(
                try await vault.seal(secret, tenant: a, vendor: .findymail, secretVersion: 1).fingerprint
                    == sealed.fingerprint)
        }
    }

    @Test("two instances sealing for a new tenant at once end up with one tenant key")
    func concurrentKeyCreation() async throws {
        try await TestDatabase.withStore { store, _ in
            let vault = SecretVault(pool: store.pool, masterKey: SecretsHarness.newKey())
            let tenant = UUID()
            let secret = Array("zb_".utf8) + Array(Sodium.hex(Sodium.randomBytes(16)).utf8)
            let sealed = try await withThrowingTaskGroup(of: SealedSecret.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        try await vault.seal(secret, tenant: tenant, vendor: .zerobounce, secretVersion: 1)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(Set(sealed.map(\.fingerprint)).count == 1)
            for blob in sealed {
                #expect(
                    try await vault.withPlaintext(
                        blob.sealed, tenant: tenant, vendor: .zerobounce, secretVersion: 1, tenantKeyVersion: 1
                    ) { Array($0) } == secret)
            }
            #expect(try await store.pool.query("SELECT count(*) FROM tenant_keys").first?.int64(0) == 1)
        }
    }

    @Test(
        "tally secrets rotate-master-key re-wraps every tenant key: secrets open under the new key, not the old, and the log is unchanged"
    )
    func rotation() async throws {
        try await TestDatabase.withStore { store, url in
            let oldHex = MasterKey.generateHex()
            let newHex = MasterKey.generateHex()
            let old = try MasterKey(hex: oldHex)
            let new = try MasterKey(hex: newHex)
            let vault = SecretVault(pool: store.pool, masterKey: old)
            var events: [VendorSecretSealed] = []
            var secrets: [String] = []
            for _ in 0..<3 {
                let tenant = UUID()
                let secret = SecretsHarness.vendorKey()
                let sealed = try await vault.seal(
                    Array(secret.utf8), tenant: tenant, vendor: .findymail, secretVersion: 1)
                let event = VendorSecretSealed(
                    tenantID: tenant, vendor: .findymail, secretVersion: 1, tenantKeyVersion: sealed.tenantKeyVersion,
                    sealed: Data(sealed.sealed),
                    fingerprint: sealed.fingerprint)
                try await store.append([
                    StreamAppend(
                        stream: .vendorSecret(tenant: tenant, vendor: .findymail), tenantID: tenant,
                        expected: .noStream, events: [try EventCatalog.tally.encode(event)])
                ])
                events.append(event)
                secrets.append(secret)
            }
            let erased = UUID()
            _ = try await vault.seal(Array("doomed-key".utf8), tenant: erased, vendor: .prospeo, secretVersion: 1)
            try await SecretVault.destroyKeys(of: erased, pool: store.pool)
            let logDigest = "SELECT md5(string_agg(e::text, '|' ORDER BY global_position)) FROM events e"
            let before = try await store.pool.query(logDigest).first?.string(0)

            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-rotate-\(UUID())")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let newFile = directory.appendingPathComponent("new.key")
            try Data((newHex + "\n").utf8).write(to: newFile)
            let wrongFile = directory.appendingPathComponent("wrong.key")
            try Data("not a key".utf8).write(to: wrongFile)

            let arguments = ["secrets", "rotate-master-key", "--database-url", url, "--new-key-file", newFile.path]
            let stranger = try await CLI.run(arguments, environment: ["TALLY_MASTER_KEY": MasterKey.generateHex()])
            #expect(stranger.status == 1, "a current key that wrapped nothing changes nothing: \(stranger.stderr)")
            #expect(stranger.stderr.contains("neither"))
            #expect(try await CLI.run(arguments, environment: [:]).status == 64)
            #expect(
                try await CLI.run(arguments, environment: ["TALLY_MASTER_KEY": newHex]).status == 64,
                "the same key twice")
            let malformed = try await CLI.run(
                ["secrets", "rotate-master-key", "--database-url", url, "--new-key-file", wrongFile.path],
                environment: ["TALLY_MASTER_KEY": oldHex])
            #expect(malformed.status == 64 && !malformed.stderr.contains("not a key"))
            #expect(
                try await SecretsHarness.plaintext(vault, events[0]) == secrets[0], "the failed runs changed nothing")

            let rotated = try await CLI.run(arguments, environment: ["TALLY_MASTER_KEY": oldHex])
            #expect(rotated.status == 0, "\(rotated.stderr)")
            #expect(
                rotated.stdout.contains("re-wrapped 3 tenant keys") && rotated.stdout.contains("1 destroyed"),
                "\(rotated.stdout)")
            for secret in [oldHex, newHex] {
                #expect(!rotated.stdout.contains(secret) && !rotated.stderr.contains(secret))
            }
            let again = try await CLI.run(arguments, environment: ["TALLY_MASTER_KEY": oldHex])
            #expect(
                again.status == 0 && again.stdout.contains("re-wrapped 0 tenant keys")
                    && again.stdout.contains("3 already were"), "\(again.stdout)")

            let newVault = SecretVault(pool: store.pool, masterKey: new)
            for (event, secret) in zip(events, secrets) {
                #expect(try await SecretsHarness.plaintext(newVault, event) == secret)
                do {
                    _ = try await SecretsHarness.plaintext(vault, event)
                    Issue.record("the old master key still opens a tenant key")
                } catch let error as EventsError {
                    #expect(error.code == .masterKeyMismatch)
                }
            }
            #expect(
                try await store.pool.query(logDigest).first?.string(0) == before, "the log is byte for byte the same")
        }
    }

    @Test(
        "erasing a tenant destroys its key: its secrets no longer open, another tenant's still do, lists still answer, a second erase is 409"
    )
    func erasure() async throws {
        try await APIHarness.with(masterKey: SecretsHarness.newKey()) { harness, client in
            let (a, keyA, _) = try await client.tenantWithKey("tenant-a")
            let (b, keyB, _) = try await client.tenantWithKey("tenant-b")
            let (c, _, _) = try await client.tenantWithKey("tenant-c")
            for key in [keyA, keyB] {
                let reply = try await client.call(
                    .put, "/v1/vendor-secrets/zerobounce", token: key,
                    json: #"{"apiKey":"\#(SecretsHarness.vendorKey())"}"#)
                #expect(reply.status == .created, "\(reply.text)")
            }
            let vault = try #require(harness.services.vault)
            let sealedA = try await SecretsHarness.sealedEvent(harness.store, tenant: a, vendor: .zerobounce)
            let sealedB = try await SecretsHarness.sealedEvent(harness.store, tenant: b, vendor: .zerobounce)
            _ = try await SecretsHarness.plaintext(vault, sealedA)

            let erased = try await client.call(
                .post, "/v1/admin/tenants/\(a)/erase", token: APIHarness.operatorToken,
                json: #"{"reason":"GDPR request"}"#)
            #expect(erased.status == .ok && erased.string("status") == "erased", "\(erased.text)")
            do {
                _ = try await SecretsHarness.plaintext(vault, sealedA)
                Issue.record("an erased tenant's secret opened")
            } catch let error as EventsError {
                #expect(error.code == .tenantKeyDestroyed)
            }
            await #expect(throws: EventsError.self) {
                try await vault.seal(Array("x".utf8), tenant: UUID(uuidString: a)!, vendor: .prospeo, secretVersion: 9)
            }
            #expect(
                try await harness.store.pool.query(
                    "SELECT length(wrapped) FROM tenant_keys WHERE tenant_id = $1", [.uuid(UUID(uuidString: a)!)]
                ).first?.int(0) == 0)
            _ = try await SecretsHarness.plaintext(vault, sealedB)
            #expect(try await client.call(.get, "/v1/vendor-secrets", token: keyB)["items"]?.arrayValue.count == 1)
            #expect(
                try await client.call(.get, "/v1/tenant", token: keyA).status == .unauthorized,
                "the erased tenant's keys stop working")
            let rows = try await harness.services.database.asOperator(readOnly: true) { connection in
                try await connection.query(
                    "SELECT fingerprint FROM vendor_secrets WHERE tenant_id = $1", [.uuid(UUID(uuidString: a)!)]
                ).count
            }
            #expect(rows == 1, "the metadata of an erased tenant's secret still reads")

            let repeated = try await client.call(
                .post, "/v1/admin/tenants/\(a)/erase", token: APIHarness.operatorToken, json: "{}")
            #expect(repeated.status == .conflict)
            #expect(
                try await client.call(
                    .post, "/v1/admin/tenants/\(UUID().lowercased)/erase", token: APIHarness.operatorToken, json: "{}"
                ).status == .notFound)
            // A tenant erased before it ever sealed anything never gets a key afterwards.
            #expect(
                try await client.call(
                    .post, "/v1/admin/tenants/\(c)/erase", token: APIHarness.operatorToken, json: "{}"
                ).status == .ok)
            do {
                _ = try await vault.seal(
                    Array("x".utf8), tenant: UUID(uuidString: c)!, vendor: .prospeo, secretVersion: 1)
                Issue.record("an erased tenant got a key")
            } catch let error as EventsError {
                #expect(error.code == .tenantKeyDestroyed)
            }
        }
    }

    @Test(
        "bad input and a missing secret change nothing: empty, oversized or unprintable keys, unknown fields or vendors, DELETE twice"
    )
    func badInput() async throws {
        try await APIHarness.with(masterKey: SecretsHarness.newKey()) { harness, client in
            let (_, key, _) = try await client.tenantWithKey("acme")
            let before = try await harness.store.head()
            let oversized = String(repeating: "k", count: 4097)
            let secretish = "sk_live_bad input"
            for body in [
                #"{"apiKey":""}"#, #"{"apiKey":"\#(oversized)"}"#, #"{"apiKey":"\#(secretish)"}"#,
                #"{"apiKey":"tab\tkey"}"#,
                #"{"apiKey":"ok-key","extra":1}"#, #"{}"#, #"{"apiKey":42}"#,
            ] {
                let reply = try await client.call(.put, "/v1/vendor-secrets/prospeo", token: key, json: body)
                #expect(reply.status == .unprocessableContent, "\(body.prefix(40)): \(reply.text)")
                #expect(!reply.text.contains(secretish) && !reply.text.contains(oversized))
            }
            #expect(
                try await client.call(.put, "/v1/vendor-secrets/mailchimp", token: key, json: #"{"apiKey":"k"}"#).status
                    == .notFound)
            #expect(
                try await client.call(.put, "/v1/vendor-secrets/prospeo", token: key, json: "nope").status
                    == .badRequest)
            #expect(try await client.call(.delete, "/v1/vendor-secrets/prospeo", token: key).status == .notFound)
            try await TestDatabase.settle(harness.store)
            #expect(
                try await harness.store.readFeed(after: before, filter: FeedFilter(categories: ["vendorsecret"])).events
                    .isEmpty)
            #expect(!LogCapture.shared.contains(secretish))

            #expect(
                try await client.call(.put, "/v1/vendor-secrets/findymail", token: key, json: #"{"apiKey":"fm-1"}"#)
                    .status == .created)
            #expect(try await client.call(.delete, "/v1/vendor-secrets/findymail", token: key).status == .noContent)
            #expect(
                try await client.call(.get, "/v1/vendor-secrets", token: key)["items"]?[0]?["status"]
                    == .string("removed"))
            #expect(try await client.call(.delete, "/v1/vendor-secrets/findymail", token: key).status == .notFound)
            let again = try await client.call(
                .put, "/v1/vendor-secrets/findymail", token: key, json: #"{"apiKey":"fm-2"}"#)
            #expect(
                again.status == .created && again["secretVersion"]?.intValue == 2,
                "a removed secret's versions go on: \(again.text)")
        }
    }

    @Test("without a master key, storing a secret is a 503 naming TALLY_MASTER_KEY and appends nothing")
    func noMasterKey() async throws {
        try await APIHarness.with(masterKey: nil) { harness, client in
            let (_, key, _) = try await client.tenantWithKey("acme")
            let before = try await harness.store.head()
            let reply = try await client.call(
                .put, "/v1/vendor-secrets/prospeo", token: key, json: #"{"apiKey":"pk-unsealed"}"#)
            #expect(reply.status == .serviceUnavailable && reply.text.contains("TALLY_MASTER_KEY"), "\(reply.text)")
            try await TestDatabase.settle(harness.store)
            #expect(
                try await harness.store.readFeed(after: before, filter: FeedFilter(categories: ["vendorsecret"])).events
                    .isEmpty)
            #expect(try await harness.store.pool.query("SELECT count(*) FROM tenant_keys").first?.int64(0) == 0)
        }
    }
}
