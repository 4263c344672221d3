-- Checks schema.sql's BM25 against hand-computed scores (the corpus and figures of the unit test
-- `bm25_scores_match_hand_computed_values` in crates/memory-core/src/keyword.rs), plus agent
-- isolation, deletion and idempotent retries. Fails (ON_ERROR_STOP) on any mismatch.
--   psql -v ON_ERROR_STOP=1 -f scripts/postgres/bm25_worked_example.sql   (on a store, any dim)
-- Runs in a transaction that it rolls back, so it leaves the store as it found it.
BEGIN;

-- The client's tokenization of the corpus (lowercase, split on non-alphanumerics):
--   1 "the cat sat on the mat"         dl 6: the 2, cat, sat, on, mat
--   2 "the dog chased the cat"         dl 5: the 2, dog, chased, cat
--   3 "dogs and cats living together"  dl 5: dogs, and, cats, living, together
--   4 "a bird"                         dl 2: a, bird
-- plus agent 'other', whose words must not move agent 'demo''s statistics.
SELECT memory_core.insert_entries(
    ARRAY[1, 2, 3, 4, 5]::bigint[],
    ARRAY['demo', 'demo', 'demo', 'demo', 'other'],
    ARRAY['s', 's', 's', 's', 's'],
    ARRAY[0, 1, 0, 1, 0]::smallint[],
    ARRAY['the cat sat on the mat', 'the dog chased the cat', 'dogs and cats living together',
          'a bird', 'cat cat cat'],
    ARRAY[NULL, NULL, NULL, NULL, NULL]::vector[],
    ARRAY[0.5, 0.5, 0.5, 0.5, 0.5]::real[],
    ARRAY[10, 20, 30, 40, 50]::bigint[], ARRAY[10, 20, 30, 40, 50]::bigint[],
    ARRAY[0, 0, 0, 0, 0]::bigint[],
    ARRAY[NULL, NULL, NULL, NULL, NULL]::jsonb[],
    ARRAY[6, 5, 5, 2, 3],
    ARRAY[1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3, 4, 4, 5]::bigint[],
    ARRAY['the', 'cat', 'sat', 'on', 'mat', 'the', 'dog', 'chased', 'cat',
          'dogs', 'and', 'cats', 'living', 'together', 'a', 'bird', 'cat'],
    ARRAY[2, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3]) AS inserted;

-- By hand (k1 = 1.2, b = 0.75): N = 4, avgdl = 18 / 4 = 4.5, df(cat) = df(the) = 2,
-- idf = ln(1 + 2.5 / 2.5) = ln 2 = 0.693147.
--   doc 1: K = 1.2 * (0.25 + 0.75 * 6 / 4.5) = 1.5
--          cat: ln2 * 1 * 2.2 / (1 + 1.5) = 0.609970   the: ln2 * 2 * 2.2 / (2 + 1.5) = 0.871385
--   doc 2: K = 1.2 * (0.25 + 0.75 * 5 / 4.5) = 1.3
--          cat: ln2 * 2.2 / 2.3 = 0.663011             the: ln2 * 4.4 / 3.3 = 0.924196
--   "cat":     doc 2 0.663011, doc 1 0.609970
--   "the cat": doc 2 1.587207, doc 1 1.481355 (the values the Rust unit test asserts)
SELECT s.entry_id, round(s.score::numeric, 6) AS score
FROM memory_core.bm25_scores('demo', ARRAY['the', 'cat', 'cat']) AS s
ORDER BY s.score DESC, s.entry_id LIMIT 10;

DO $$
DECLARE
    got float8[];
    ids bigint[];
BEGIN
    SELECT array_agg(score ORDER BY score DESC, entry_id), array_agg(entry_id ORDER BY score DESC, entry_id)
    INTO got, ids FROM memory_core.bm25_scores('demo', ARRAY['cat']);
    ASSERT ids = ARRAY[2, 1]::bigint[], format('cat: ids %s', ids);
    ASSERT abs(got[1] - 0.663011) < 1e-6 AND abs(got[2] - 0.609970) < 1e-6, format('cat: %s', got);

    -- Repeated query terms count once; unknown terms add nothing.
    SELECT array_agg(score ORDER BY score DESC, entry_id), array_agg(entry_id ORDER BY score DESC, entry_id)
    INTO got, ids FROM memory_core.bm25_scores('demo', ARRAY['the', 'cat', 'cat', 'zebra']);
    ASSERT ids = ARRAY[2, 1]::bigint[], format('the cat: ids %s', ids);
    ASSERT abs(got[1] - 1.587207) < 1e-6 AND abs(got[2] - 1.481355) < 1e-6, format('the cat: %s', got);

    -- The same figures from the formula over raw counts, independent of the terms table.
    ASSERT abs(got[1] - (ln(2) * 2 * 2.2 / (2 + 1.2 * (0.25 + 0.75 * 5 / 4.5))
                       + ln(2) * 1 * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 5 / 4.5)))) < 1e-12;

    -- Agent 'other' sees only its own entry: N = 1, df = 1, dl = avgdl = 3, tf = 3:
    -- ln(1 + 0.5 / 1.5) * 3 * 2.2 / (3 + 1.2) = 0.287682 * 1.571429 = 0.452071.
    SELECT array_agg(score), array_agg(entry_id) INTO got, ids
    FROM memory_core.bm25_scores('other', ARRAY['cat']);
    ASSERT ids = ARRAY[5]::bigint[] AND abs(got[1] - 0.452071) < 1e-6, format('other: %s %s', ids, got);

    -- A retried batch changes nothing (ids exist) and bumps no generation.
    ASSERT (SELECT generation FROM memory_core.agents WHERE agent_id = 'demo') = 1;
    ASSERT memory_core.insert_entries(ARRAY[1]::bigint[], ARRAY['demo'], ARRAY['s'], ARRAY[0]::smallint[],
        ARRAY['the cat sat on the mat'], ARRAY[NULL]::vector[], ARRAY[0.5]::real[], ARRAY[10]::bigint[],
        ARRAY[10]::bigint[], ARRAY[0]::bigint[], ARRAY[NULL]::jsonb[], ARRAY[6],
        ARRAY[1, 1]::bigint[], ARRAY['the', 'cat'], ARRAY[2, 1]) = '{}'::bigint[];
    ASSERT (SELECT (doc_count, total_len, generation) = (4::bigint, 18::bigint, 1::bigint)
            FROM memory_core.agents WHERE agent_id = 'demo');

    -- Deleting doc 1 leaves statistics equal to a corpus without it: N = 3, avgdl = 12 / 3 = 4,
    -- df(cat) = 1; doc 2: ln(1 + 2.5 / 1.5) * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 5 / 4)) = 0.889825.
    ASSERT memory_core.delete_entries('demo', ARRAY[1, 5]) = ARRAY[1]::bigint[]; -- 5 is 'other''s
    ASSERT (SELECT (doc_count, total_len, generation) = (3::bigint, 12::bigint, 2::bigint)
            FROM memory_core.agents WHERE agent_id = 'demo');
    SELECT array_agg(score), array_agg(entry_id) INTO got, ids
    FROM memory_core.bm25_scores('demo', ARRAY['cat']);
    ASSERT ids = ARRAY[2]::bigint[] AND abs(got[1] - 0.889825) < 1e-6, format('after delete: %s %s', ids, got);
    ASSERT NOT EXISTS (SELECT 1 FROM memory_core.postings WHERE entry_id = 1);
    ASSERT (SELECT df FROM memory_core.terms t JOIN memory_core.agents g USING (agent_key)
            WHERE g.agent_id = 'demo' AND t.term = 'mat') = 0;
    -- bm25_top_k gives bm25_scores' ranking, cut at k.
    ASSERT (SELECT array_agg(entry_id ORDER BY score DESC, entry_id)
            FROM memory_core.bm25_top_k('demo', ARRAY['the', 'cat', 'zebra'], 1)) = ARRAY[2]::bigint[];
    ASSERT (SELECT array_agg(entry_id ORDER BY score DESC, entry_id)
            FROM memory_core.bm25_top_k('demo', ARRAY['dogs', 'bird', 'the'], 10)) = ARRAY[2, 3, 4]::bigint[]
        OR (SELECT array_agg(entry_id ORDER BY score DESC, entry_id)
            FROM memory_core.bm25_top_k('demo', ARRAY['dogs', 'bird', 'the'], 10))
           = (SELECT array_agg(entry_id ORDER BY score DESC, entry_id)
              FROM memory_core.bm25_scores('demo', ARRAY['dogs', 'bird', 'the']));
    ASSERT NOT EXISTS (SELECT 1 FROM memory_core.bm25_top_k('demo', ARRAY['cat'], 0));
    ASSERT NOT EXISTS (SELECT 1 FROM memory_core.bm25_top_k('nobody', ARRAY['cat'], 5));
    RAISE NOTICE 'bm25 worked example: all checks passed';
END
$$;

-- The pruned path of bm25_top_k (taken from 4096 entries up): agent 'prune' has 4999 entries
-- "filler common" and one "rare common". For "rare common" the rare word decides the top 1, so
-- bm25_top_k scores only the entries holding it, and must still agree with the full ranking.
SELECT cardinality(memory_core.insert_entries(
    array_agg(1000 + i::bigint), array_agg('prune'::text), array_agg('s'::text), array_agg(0::smallint),
    array_agg(CASE WHEN i = 0 THEN 'rare common' ELSE 'filler common' END),
    array_agg(NULL::vector), array_agg(0.5::real), array_agg(i::bigint), array_agg(i::bigint),
    array_agg(0::bigint), array_agg(NULL::jsonb), array_agg(2),
    (SELECT array_agg(1000 + j::bigint / 2) FROM generate_series(0, 9999) j),
    (SELECT array_agg(CASE WHEN j % 2 = 1 THEN 'common' WHEN j = 0 THEN 'rare' ELSE 'filler' END)
     FROM generate_series(0, 9999) j),
    (SELECT array_agg(1) FROM generate_series(0, 9999) j))) AS inserted
FROM generate_series(0, 4999) i;
DO $$
DECLARE
    pruned record;
    full_ record;
BEGIN
    FOR k IN 1 .. 3 LOOP
        SELECT array_agg(entry_id ORDER BY score DESC, entry_id) AS ids,
               array_agg(score ORDER BY score DESC, entry_id) AS scores
        INTO pruned FROM memory_core.bm25_top_k('prune', ARRAY['rare', 'common'], k);
        SELECT array_agg(entry_id ORDER BY score DESC, entry_id) AS ids,
               array_agg(score ORDER BY score DESC, entry_id) AS scores
        INTO full_ FROM (SELECT * FROM memory_core.bm25_scores('prune', ARRAY['rare', 'common']) s
                         ORDER BY s.score DESC, s.entry_id LIMIT k) x;
        ASSERT pruned.ids = full_.ids, format('k = %s: %s vs %s', k, pruned.ids, full_.ids);
        ASSERT NOT EXISTS (SELECT 1 FROM unnest(pruned.scores, full_.scores) u (x, y)
                           WHERE abs(x - y) > 1e-9), format('k = %s', k);
    END LOOP;
    ASSERT (SELECT entry_id FROM memory_core.bm25_top_k('prune', ARRAY['rare', 'common'], 1)) = 1000;
    RAISE NOTICE 'bm25_top_k pruned path: agrees with the full ranking';
END
$$;

ROLLBACK;
