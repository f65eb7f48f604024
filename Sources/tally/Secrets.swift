import ArgumentParser
import Events
import Foundation

struct SecretsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secrets",
        abstract: "Manage the keys that seal vendor secrets.",
        subcommands: [RotateMasterKey.self, TransferKey.self])

    struct RotateMasterKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-master-key",
            abstract: "Re-wrap every tenant key under a new master key, without touching the log.",
            discussion: """
                The current master key comes from TALLY_MASTER_KEY or TALLY_MASTER_KEY_FILE, the new one from
                --new-key-file (64 hex digits). One transaction: every tenant key is opened with the current key
                and wrapped under the new one, or nothing changes. Keys already under the new key are checked and
                skipped, so running it again (after an interruption, or to catch keys that instances still on the
                old key created meanwhile) is safe. Erased tenants' destroyed keys stay destroyed.
                Exit status: 0 done; 1 a tenant key is under neither master key or does not open, or the database
                failed (nothing changed); 64 a key is missing or malformed, or both keys are the same.
                """)

        @OptionGroup var database: DatabaseOptions

        @Option(help: "File holding the new master key (64 hex digits).")
        var newKeyFile: String

        func run() async throws {
            let environment = ProcessEnvironment.values
            guard let current = try ServeSettings.checkMasterKey(environment) else {
                throw ValidationError(
                    "The current master key is needed: set TALLY_MASTER_KEY or TALLY_MASTER_KEY_FILE.")
            }
            guard let data = FileManager.default.contents(atPath: newKeyFile) else {
                throw ValidationError("--new-key-file: cannot read \(newKeyFile).")
            }
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard let new = try? MasterKey(hex: text) else {
                throw ValidationError("--new-key-file must hold 64 hex digits (32 bytes); its value is not shown.")
            }
            guard new.id != current.id else { throw ValidationError("The new master key is the current one.") }
            let store = try database.makeStore(applicationName: "tally-secrets", maxConnections: 1)
            defer { store.close() }
            do {
                let rotation = try await SecretVault.rotateMasterKey(pool: store.pool, from: current, to: new)
                print(
                    "re-wrapped \(rotation.rewrapped) tenant keys under master key \(new.id) (\(rotation.alreadyCurrent) already were, "
                        + "\(rotation.destroyed) destroyed left as they are); the log is unchanged")
            } catch {
                reportError(error)
                throw ExitCode(1)
            }
        }
    }

    struct TransferKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "transfer-key",
            abstract:
                "Print this database's transfer key: what another database seals tenant keys to when a tenant moves here.",
            discussion: """
                The key is derived from the master key (TALLY_MASTER_KEY or TALLY_MASTER_KEY_FILE) and is public:
                give it to the source's tally log export --seal-keys-to. Only this master key opens what is sealed
                to it. Exit status: 0 printed; 64 no master key.
                """)

        func run() async throws {
            guard let key = try ServeSettings.checkMasterKey(ProcessEnvironment.values) else {
                throw ValidationError("The master key is needed: set TALLY_MASTER_KEY or TALLY_MASTER_KEY_FILE.")
            }
            print(key.transferKey.hex)
        }
    }
}
