import Foundation

/// Leadership held as a row of `leader_leases` rather than a session advisory lock, for a leader whose only
/// connection reaches a pooler in transaction mode (no session outlives a transaction there).
///
/// The expiry is on the database's clock, so the holders' clocks do not matter. A holder renews well within
/// the lease; when it dies or freezes, another takes the lease once it has expired, and the token grows. A
/// leader checks its token inside every transaction that writes as the leader (`check(on:)`): a holder that
/// wakes after its lease was taken cannot commit.
package struct LeaderLease: Sendable {
    package let name: String
    package let holder: String
    package let token: Int64

    /// Takes the lease when nobody holds it, it has expired, or `holder` holds it already; nil otherwise.
    ///
    /// A takeover reads the clock again after the expiry check (and after any wait for the row's lock), so the
    /// recorded `acquired_at` is never before the moment the previous holder's lease ran out.
    package static func acquire(_ name: String, holder: String, duration: Duration, pool: PostgresPool)
        async throws -> LeaderLease?
    {
        let rows = try await pool.query(
            """
            INSERT INTO leader_leases AS l (name, holder, token, acquired_at, renewed_at, expires_at)
            VALUES ($1, $2, 1, clock_timestamp(), clock_timestamp(), clock_timestamp() + $3 * interval '1 millisecond')
            ON CONFLICT (name) DO UPDATE
            SET holder = excluded.holder, token = l.token + 1, acquired_at = clock_timestamp(),
                renewed_at = clock_timestamp(), expires_at = clock_timestamp() + $3 * interval '1 millisecond'
            WHERE l.expires_at < clock_timestamp() OR l.holder = excluded.holder
            RETURNING token
            """,
            [.string(name), .string(holder), .int64(Self.milliseconds(duration))])
        guard let token = try rows.first?.int64(0) else { return nil }
        return LeaderLease(name: name, holder: holder, token: token)
    }

    /// Extends the lease by `duration` from now; false when another holder has taken it.
    package func renew(duration: Duration, pool: PostgresPool) async throws -> Bool {
        try await pool.query(
            """
            UPDATE leader_leases SET renewed_at = clock_timestamp(),
                                     expires_at = clock_timestamp() + $3 * interval '1 millisecond'
            WHERE name = $1 AND token = $2
            """,
            [.string(name), .int64(token), .int64(Self.milliseconds(duration))]
        ).affectedRows == 1
    }

    /// Gives the lease up, so that another holder may take it at once.
    package func release(pool: PostgresPool) async throws {
        try await pool.query(
            "UPDATE leader_leases SET expires_at = '-infinity' WHERE name = $1 AND token = $2",
            [.string(name), .int64(token)])
    }

    /// Runs `body` while renewing the lease every third of `duration` on `pool`; throws `lost()` (cancelling
    /// `body`) when another holder has taken it. Gives the lease up afterwards, however it ended, so that a
    /// standby need not wait it out (a no-op when another holder has it).
    package func hold(
        duration: Duration, pool: PostgresPool, lost: @escaping @Sendable () -> any Error,
        _ body: @escaping @Sendable () async throws -> Void
    ) async throws {
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await body() }
                group.addTask {
                    while true {
                        try await Task.sleep(for: duration / 3)
                        guard try await self.renew(duration: duration, pool: pool) else { throw lost() }
                    }
                }
                try await group.next()
                group.cancelAll()
            }
        } catch {
            try? await release(pool: pool)
            throw error
        }
        try? await release(pool: pool)
    }

    /// Inside the caller's transaction: true while this lease holds (not taken, not expired).
    package func holds(on connection: PostgresConnection) async throws -> Bool {
        try await connection.query(
            "SELECT 1 FROM leader_leases WHERE name = $1 AND token = $2 AND expires_at > clock_timestamp()",
            [.string(name), .int64(token)]
        ).count == 1
    }

    private static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
