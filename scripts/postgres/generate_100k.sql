-- Generates the 100K-entry corpus that the figures in schema.sql's header come from, into
-- staging tables (schema gen), and loads it through memory_core.insert_entries in batches of
-- 1000, timing each step. Run by scripts/postgres/measure_100k.sh on a fresh store with
-- embedding_dim = 384.
-- Agents (by id): 'big' 50%, 'mid' 10%, 'tiny' 0.1%, 37 'small-N' ~1% each.
-- Words: a Zipf (s = 1) draw from 5000 words w1..w5000 (w1 is the most common, as 'the' is in
-- English), 5..34 tokens per entry. Vectors: 384-d, 200 clusters plus noise, unit length.
\set ON_ERROR_STOP 1
\timing on
SELECT setseed(0.42);
DROP SCHEMA IF EXISTS gen CASCADE;
CREATE SCHEMA gen;

CREATE UNLOGGED TABLE gen.docs AS
SELECT d AS id,
       CASE WHEN d % 2 = 0 THEN 'big'
            WHEN d % 10 = 1 THEN 'mid'
            WHEN d % 1000 = 3 THEN 'tiny'
            ELSE 'small-' || (d % 37) END AS agent_id,
       5 + floor(random() * 30)::int AS len,
       d % 200 AS cluster
FROM generate_series(1, 100000) AS d;

CREATE UNLOGGED TABLE gen.tokens AS
SELECT g.id, i AS pos, 'w' || floor(exp(random() * ln(5000)))::int AS term
FROM gen.docs g, LATERAL generate_series(1, g.len) AS i;

CREATE UNLOGGED TABLE gen.centers AS
SELECT c, array_agg(random()::real - 0.5 ORDER BY i) AS v
FROM generate_series(0, 199) AS c, generate_series(1, 384) AS i
GROUP BY c;

CREATE UNLOGGED TABLE gen.vectors AS
SELECT g.id, l2_normalize((SELECT array_agg(x + 0.35 * (random()::real - 0.5) ORDER BY i)
                           FROM unnest(c.v) WITH ORDINALITY AS u (x, i))::vector) AS embedding
FROM gen.docs g JOIN gen.centers c ON c.c = g.cluster;

CREATE UNLOGGED TABLE gen.postings AS
SELECT id, term, count(*)::int AS tf FROM gen.tokens GROUP BY id, term;
CREATE INDEX ON gen.postings (id);
CREATE UNLOGGED TABLE gen.content AS
SELECT id, string_agg(term, ' ' ORDER BY pos) AS content FROM gen.tokens GROUP BY id;
ANALYZE gen.docs, gen.postings, gen.content, gen.vectors;

-- Loads entries [lo, hi] through insert_entries in one call.
CREATE FUNCTION gen.load(lo int, hi int) RETURNS int LANGUAGE sql AS $$
    SELECT cardinality(memory_core.insert_entries(
        e.ids, e.agents, e.sessions, e.roles, e.contents, e.embeddings, e.importances, e.created,
        e.created, e.zeros, e.metadata, e.lens, p.entry_ids, p.terms, p.tfs))
    FROM (SELECT array_agg(d.id::bigint ORDER BY d.id) AS ids,
                 array_agg(d.agent_id ORDER BY d.id) AS agents,
                 array_agg('session-' || (d.id / 50) ORDER BY d.id) AS sessions,
                 array_agg((d.id % 2)::smallint ORDER BY d.id) AS roles,
                 array_agg(c.content ORDER BY d.id) AS contents,
                 array_agg(v.embedding ORDER BY d.id) AS embeddings,
                 array_agg(0.5::real ORDER BY d.id) AS importances,
                 array_agg(1700000000000000 + d.id::bigint * 1000000 ORDER BY d.id) AS created,
                 array_agg(0::bigint ORDER BY d.id) AS zeros,
                 array_agg(jsonb_build_object('topic', 't' || (d.id % 7)) ORDER BY d.id) AS metadata,
                 array_agg(d.len ORDER BY d.id) AS lens
          FROM gen.docs d JOIN gen.content c USING (id) JOIN gen.vectors v USING (id)
          WHERE d.id BETWEEN lo AND hi) AS e,
         (SELECT array_agg(id::bigint) AS entry_ids, array_agg(term) AS terms, array_agg(tf) AS tfs
          FROM gen.postings WHERE id BETWEEN lo AND hi) AS p
$$;

-- Query vectors. Off-topic: near the 200 cluster centres, regardless of agent (an agent's
-- entries lie in some clusters only: 'big' has ids = 0 mod 2, so none in odd clusters, the
-- case where an agent filter and the HNSW graph disagree most). On-topic: near a random entry
-- of the agent.
CREATE UNLOGGED TABLE gen.queries AS
SELECT q AS qid, l2_normalize((SELECT array_agg(x + 0.35 * (random()::real - 0.5) ORDER BY i)
                               FROM unnest(c.v) WITH ORDINALITY AS u (x, i))::vector) AS v
FROM generate_series(1, 200) AS q JOIN gen.centers c ON c.c = (q * 7) % 200;
CREATE UNLOGGED TABLE gen.agent_queries AS
SELECT a.agent_id, row_number() OVER (PARTITION BY a.agent_id) AS qid,
       l2_normalize((SELECT array_agg(x + 0.35 * (random()::real - 0.5) / 10 ORDER BY i)
                     FROM unnest(v.embedding::real[]) WITH ORDINALITY AS u (x, i))::vector) AS v
FROM (VALUES ('big'), ('mid'), ('small-5')) AS a (agent_id),
     LATERAL (SELECT d.id FROM gen.docs d WHERE d.agent_id = a.agent_id ORDER BY random() LIMIT 30) AS d
JOIN gen.vectors v ON v.id = d.id;

-- Bulk load: 100 calls of insert_entries with 1000 entries each, each its own transaction, with
-- the HNSW index dropped (built once afterwards, as a bulk import would).
DROP INDEX memory_core.entries_embedding_hnsw;
\timing off
SELECT clock_timestamp() AS t0 \gset
\o /dev/null
SELECT format('SELECT gen.load(%s, %s)', lo, lo + 999) FROM generate_series(1, 100000, 1000) AS lo \gexec
\o
SELECT round(extract(epoch FROM clock_timestamp() - :'t0')::numeric, 1) AS load_with_postings_s;

-- The same entries without postings and term statistics, for the cost of maintaining them.
CREATE TABLE gen.entries_only (LIKE memory_core.entries INCLUDING ALL);
CREATE FUNCTION gen.load_entries_only(lo int, hi int) RETURNS int LANGUAGE sql AS $$
    WITH ins AS (
        INSERT INTO gen.entries_only
        SELECT d.id, d.agent_id, 'session-' || (d.id / 50), (d.id % 2)::smallint, c.content,
               v.embedding, 0.5, 1700000000000000 + d.id::bigint * 1000000,
               1700000000000000 + d.id::bigint * 1000000, 0,
               jsonb_build_object('topic', 't' || (d.id % 7)), d.len
        FROM gen.docs d JOIN gen.content c USING (id) JOIN gen.vectors v USING (id)
        WHERE d.id BETWEEN lo AND hi
        ON CONFLICT (id) DO NOTHING RETURNING 1)
    -- The postings arrays are built, as a client would send them, and not written.
    SELECT count(*)::int + (SELECT cardinality(array_agg(term)) * 0 FROM gen.postings
                            WHERE id BETWEEN lo AND hi)
    FROM ins
$$;
SELECT clock_timestamp() AS t0 \gset
\o /dev/null
SELECT format('SELECT gen.load_entries_only(%s, %s)', lo, lo + 999) FROM generate_series(1, 100000, 1000) AS lo \gexec
\o
SELECT round(extract(epoch FROM clock_timestamp() - :'t0')::numeric, 1) AS load_entries_only_s;
DROP TABLE gen.entries_only;

SELECT clock_timestamp() AS t0 \gset
SET maintenance_work_mem = '512MB';
CREATE INDEX entries_embedding_hnsw ON memory_core.entries
    USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);
SELECT round(extract(epoch FROM clock_timestamp() - :'t0')::numeric, 1) AS hnsw_build_s;
VACUUM ANALYZE memory_core.entries, memory_core.postings, memory_core.terms, memory_core.agents;
ANALYZE gen.queries, gen.agent_queries;
SELECT c.relname, pg_size_pretty(pg_relation_size(c.oid)) AS size
FROM pg_class c WHERE c.relnamespace = 'memory_core'::regnamespace AND c.relkind IN ('r', 'i')
  AND pg_relation_size(c.oid) > 1000000 ORDER BY pg_relation_size(c.oid) DESC;
