import Events

extension Migration {
    /// Requests-per-second budgets shared by every instance: a row per subject (an API key or a tenant) and
    /// one-second window (Unix seconds on the instances' clocks), holding how much of the window's limit
    /// instances have taken. `claim_rate_budgets` hands out chunks under the row's lock and never lets a
    /// window's total pass the limit it is given, so across all instances a subject is admitted at most its
    /// limit in any window, whatever their number. Rows of windows that are over are deleted by any instance.
    static let rateBudgets = Migration(
        version: 13, name: "rate_budgets",
        sql: #"""
            CREATE TABLE rate_budgets (
                subject uuid NOT NULL,
                second bigint NOT NULL,
                granted integer NOT NULL CHECK (granted >= 0),
                PRIMARY KEY (subject, second)
            );

            -- Grants each subject min(want, limit - granted so far) of the window, in subject order (two
            -- instances claiming the same subjects never deadlock); returns what it gave each and how much of
            -- the window is taken now.
            CREATE FUNCTION claim_rate_budgets(subjects uuid[], window_second bigint, wants integer[], limits integer[])
            RETURNS TABLE (subject uuid, given integer, taken integer)
            LANGUAGE plpgsql AS $fn$
            DECLARE
                claim record;
                have integer;
            BEGIN
                FOR claim IN
                    SELECT u.s, u.w, u.l FROM unnest(subjects, wants, limits) AS u(s, w, l) ORDER BY u.s
                LOOP
                    INSERT INTO rate_budgets AS b (subject, second, granted) VALUES (claim.s, window_second, 0)
                    ON CONFLICT ON CONSTRAINT rate_budgets_pkey DO NOTHING;
                    SELECT b.granted INTO have FROM rate_budgets b
                    WHERE b.subject = claim.s AND b.second = window_second FOR UPDATE;
                    given := least(greatest(claim.w, 0), greatest(claim.l - have, 0));
                    IF given > 0 THEN
                        UPDATE rate_budgets b SET granted = b.granted + given
                        WHERE b.subject = claim.s AND b.second = window_second;
                    END IF;
                    subject := claim.s;
                    taken := have + given;
                    RETURN NEXT;
                END LOOP;
            END;
            $fn$;

            GRANT SELECT, INSERT, UPDATE, DELETE ON rate_budgets TO tally_service;
            """#)
}
