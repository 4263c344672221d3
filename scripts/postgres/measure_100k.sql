-- Checks and recall figures on the corpus of generate_100k.sql (run by measure_100k.sh).
\set ON_ERROR_STOP 1
SET max_parallel_workers_per_gather = 0;

-- 1. bm25_top_k returns bm25_scores' ranking cut at k, on 400 random Zipf queries (1..7 words,
--    some unknown) over agents of every size and k in {1, 5, 10, 50}. Fails on any mismatch.
SELECT setseed(0.7);
DO $$
DECLARE
    r record; a record; f record; bad int := 0;
BEGIN
    FOR r IN SELECT (ARRAY['big', 'mid', 'tiny', 'small-5', 'small-17'])[1 + floor(random() * 5)::int] AS agent,
                    (SELECT array_agg('w' || floor(exp(random() * ln(6000)))::int)
                     FROM generate_series(1, 1 + floor(random() * 7)::int) WHERE i > 0) AS terms,
                    (ARRAY[1, 5, 10, 50])[1 + floor(random() * 4)::int] AS k
             FROM generate_series(1, 400) AS i LOOP
        SELECT array_agg(entry_id ORDER BY score DESC, entry_id) AS ids,
               array_agg(score ORDER BY score DESC, entry_id) AS scores
        INTO a FROM memory_core.bm25_top_k(r.agent, r.terms, r.k);
        SELECT array_agg(entry_id ORDER BY score DESC, entry_id) AS ids,
               array_agg(score ORDER BY score DESC, entry_id) AS scores
        INTO f FROM (SELECT * FROM memory_core.bm25_scores(r.agent, r.terms) AS s
                     ORDER BY s.score DESC, s.entry_id LIMIT r.k) AS x;
        IF a.ids IS DISTINCT FROM f.ids OR EXISTS (
            SELECT 1 FROM unnest(a.scores, f.scores) AS u (x, y) WHERE abs(x - y) > 1e-9 * greatest(abs(y), 1)) THEN
            bad := bad + 1;
            RAISE WARNING 'bm25_top_k differs: % % k=%: % vs %', r.agent, r.terms, r.k, a.ids, f.ids;
        END IF;
    END LOOP;
    ASSERT bad = 0, format('%s of 400 queries differ', bad);
    RAISE NOTICE 'bm25_top_k = bm25_scores top k on 400 random queries';
END
$$;

-- 2. Vector top-10 filtered by agent: rows returned and recall@10 against the exact top 10, for
--    hnsw.iterative_scan off / relaxed_order, on- and off-topic queries (30 each).
CREATE OR REPLACE FUNCTION pg_temp.hnsw_eval(p_agent text, p_on_topic boolean, p_mode text, p_ef int)
RETURNS TABLE (agent text, queries text, mode text, ef int, avg_rows numeric, recall numeric)
LANGUAGE plpgsql AS $$
DECLARE
    q record; got bigint[]; exact bigint[]; n int := 0; sum_rows float8 := 0; sum_recall float8 := 0;
BEGIN
    PERFORM set_config('hnsw.iterative_scan', p_mode, true);
    PERFORM set_config('hnsw.ef_search', p_ef::text, true);
    FOR q IN SELECT v FROM gen.agent_queries WHERE p_on_topic AND agent_id = p_agent
             UNION ALL SELECT v FROM gen.queries WHERE NOT p_on_topic AND qid <= 30 LOOP
        SELECT array_agg(id) INTO got FROM (
            SELECT e.id FROM memory_core.entries e WHERE e.agent_id = p_agent AND e.embedding IS NOT NULL
            ORDER BY e.embedding <=> q.v LIMIT 10) AS x;
        SELECT array_agg(id) INTO exact FROM (
            SELECT e.id FROM memory_core.entries e WHERE e.agent_id = p_agent AND e.embedding IS NOT NULL
            ORDER BY (e.embedding <=> q.v) + 0 LIMIT 10) AS x;
        n := n + 1;
        sum_rows := sum_rows + coalesce(cardinality(got), 0);
        sum_recall := sum_recall + (SELECT count(*) FROM unnest(got) AS g WHERE g = ANY (exact))::float8 / 10;
    END LOOP;
    RETURN QUERY SELECT p_agent, CASE WHEN p_on_topic THEN 'on-topic' ELSE 'off-topic' END, p_mode, p_ef,
        round((sum_rows / n)::numeric, 1), round((sum_recall / n)::numeric, 3);
END
$$;
SELECT r.* FROM (VALUES ('big', 1), ('mid', 2), ('small-5', 3)) AS a (agent, o),
     (VALUES (true), (false)) AS t (on_topic),
     (VALUES ('off', 40, 1), ('relaxed_order', 40, 2), ('relaxed_order', 100, 3)) AS m (mode, ef, o),
     LATERAL pg_temp.hnsw_eval(a.agent, t.on_topic, m.mode, m.ef) AS r
ORDER BY a.o, t.on_topic DESC, m.o;

-- 3. EXPLAIN ANALYZE of one query of each kind (agent 'big', 50K entries).
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT * FROM memory_core.bm25_top_k('big', ARRAY['w1', 'w7', 'w150', 'w2200'], 10);
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT s.entry_id, s.score FROM memory_core.bm25_scores('big', ARRAY['w1', 'w7', 'w150', 'w2200']) AS s
ORDER BY s.score DESC, s.entry_id LIMIT 10;
SET hnsw.iterative_scan = relaxed_order;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT id, 1 - distance AS similarity FROM (
    SELECT id, embedding <=> (SELECT v FROM gen.agent_queries WHERE agent_id = 'big' AND qid = 1) AS distance
    FROM memory_core.entries WHERE agent_id = 'big' AND embedding IS NOT NULL
    ORDER BY embedding <=> (SELECT v FROM gen.agent_queries WHERE agent_id = 'big' AND qid = 1) LIMIT 10
) AS nearest ORDER BY distance, id;
