import Foundation

/// The process's environment, read once: every command takes its `TALLY_*` settings (and `DATABASE_URL`)
/// from here, after its flags, so a setting means the same wherever it is read.
enum ProcessEnvironment {
    static let values: [String: String] = ProcessInfo.processInfo.environment
}
