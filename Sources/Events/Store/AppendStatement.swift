/// The SQL of appends. Each append is one prepared statement and one round trip: a data-modifying CTE
/// advances the stream's version in `streams` only if the expectation holds, and the events are inserted
/// from its result, so a failed expectation inserts nothing. The unique `(stream_id, stream_version)`
/// constraint is the backstop.
enum AppendStatement {
    private static let columns =
        "tenant_id, stream_id, stream_version, event_id, event_type, schema_version, codec, payload, metadata"

    /// Advances one stream ($1 name, $2 tenant, $3 number of events, $4 expected version) and returns its new
    /// version; no row when the expectation does not hold.
    private static func advance(_ expected: ExpectedVersion) -> String {
        switch expected {
        case .any:
            """
            INSERT INTO streams AS t (stream_id, tenant_id, version) VALUES ($1, $2, $3)
            ON CONFLICT (stream_id) DO UPDATE SET version = t.version + $3 RETURNING t.version
            """
        case .noStream:
            """
            INSERT INTO streams (stream_id, tenant_id, version) VALUES ($1, $2, $3)
            ON CONFLICT (stream_id) DO NOTHING RETURNING version
            """
        case .exactly:
            "UPDATE streams SET version = version + $3 WHERE stream_id = $1 AND version = $4 RETURNING version"
        }
    }

    /// One event: $5 id, $6 type, $7 schema version, $8 codec, $9 payload, $10 metadata.
    static func single(_ expected: ExpectedVersion) -> String {
        """
        WITH s AS (\(advance(expected)))
        INSERT INTO events (\(columns))
        SELECT $2, $1, s.version, $5, $6, $7, $8, $9, $10 FROM s
        RETURNING stream_version, global_position, tx_id
        """
    }

    /// Several events of one stream: $5...$10 are arrays in append order.
    static func batch(_ expected: ExpectedVersion) -> String {
        """
        WITH s AS (\(advance(expected)))
        INSERT INTO events (\(columns))
        SELECT $2, $1, s.version - $3 + e.k, e.id, e.t, e.sv, e.c, e.p, e.m
        FROM s, unnest($5::uuid[], $6::text[], $7::int4[], $8::int2[], $9::bytea[], $10::jsonb[])
             WITH ORDINALITY AS e(id, t, sv, c, p, m, k)
        ORDER BY e.k
        RETURNING stream_version, global_position, tx_id
        """
    }

    /// Several streams at once: $1 names, $2 tenants, $3 expected versions (-1 any, 0 none, n), $4 event
    /// counts; per event $5 stream index (from 1), $6 index within its stream (from 1), $7...$12 as above.
    /// When an expectation fails, `tally_append_conflict` raises, which rolls back every stream advanced.
    static let multiStream = """
        WITH input AS (
            SELECT * FROM unnest($1::text[], $2::uuid[], $3::int8[], $4::int8[]) AS i(stream_id, tenant_id, expected, n)
        ), anys AS (
            INSERT INTO streams AS t (stream_id, tenant_id, version)
            SELECT stream_id, tenant_id, n FROM input WHERE expected = -1
            ON CONFLICT (stream_id) DO UPDATE SET version = t.version + excluded.version
            RETURNING t.stream_id, t.version
        ), fresh AS (
            INSERT INTO streams (stream_id, tenant_id, version)
            SELECT stream_id, tenant_id, n FROM input WHERE expected = 0
            ON CONFLICT (stream_id) DO NOTHING
            RETURNING stream_id, version
        ), exact AS (
            UPDATE streams AS t SET version = t.version + i.n FROM input i
            WHERE i.expected > 0 AND t.stream_id = i.stream_id AND t.version = i.expected
            RETURNING t.stream_id, t.version
        ), granted AS (
            SELECT * FROM anys UNION ALL SELECT * FROM fresh UNION ALL SELECT * FROM exact
        ), guard AS (
            SELECT CASE WHEN (SELECT count(*) FROM granted) = cardinality($1::text[]) THEN 0
                        ELSE tally_append_conflict($1::text[], ARRAY(SELECT stream_id FROM granted)) END AS ok
        )
        INSERT INTO events (\(columns))
        SELECT ($2::uuid[])[e.si], g.stream_id, g.version - ($4::int8[])[e.si] + e.k, e.id, e.t, e.sv, e.c, e.p, e.m
        FROM guard,
             unnest($5::int4[], $6::int8[], $7::uuid[], $8::text[], $9::int4[], $10::int2[], $11::bytea[], $12::jsonb[])
                 WITH ORDINALITY AS e(si, k, id, t, sv, c, p, m, ord)
             JOIN granted g ON g.stream_id = ($1::text[])[e.si]
        WHERE guard.ok = 0
        ORDER BY e.ord
        RETURNING stream_id, stream_version, global_position, tx_id
        """
}
