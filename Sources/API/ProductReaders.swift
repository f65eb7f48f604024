public import Events
import Projections
import Workers

/// The product's readers of the log and where they stand: the projections' checkpoints and the workers'
/// (each read by the module that owns its table), for the restore check.
public enum ProductReaders {
    /// Every reader's global position by name.
    public static func positions(_ store: EventStore) async throws -> [String: Int64] {
        try await ProjectionCheckpoints.globalPositions(store).merging(
            try await WorkerCheckpoints.globalPositions(store)
        ) { projection, _ in projection }
    }
}
