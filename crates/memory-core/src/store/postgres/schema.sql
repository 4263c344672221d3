-- memory-core's long-term store in PostgreSQL (>= 13) with pgvector (>= 0.8.0).
--
-- Measured (scripts/postgres/measure_100k.sh; PostgreSQL 16.14 + pgvector 0.8.5 from
-- scripts/services.sh, shared_buffers 256MB; 2 cores shared with other builds: load average 8-9
-- throughout, so absolute times are inflated and vary by 2x between runs; compare rows of one
-- run only). Corpus: 100K entries, 384-d unit vectors in 200 clusters, 5-34 Zipf words from a
-- 5000-word vocabulary (17.5 distinct words per entry); agents 'big' 50K entries, 'mid' 10K,
-- 37 'small-N' ~1K, 'tiny' 100.
--   Size: entries 195 MB, HNSW index 195 MB, postings 94 MB + primary key 109 MB + by-entry
--     index 19 MB (1.75M postings), terms 8 MB (135K rows).
--   Bulk load, 100 insert_entries calls of 1000 entries, HNSW index dropped: 48-51 s with
--     postings and term statistics, 17-22 s without (entries only): ~0.3 ms of upkeep per entry.
--     HNSW build afterwards (m 16, ef_construction 64): 36-134 s.
--   Single-entry insert_entries, one per transaction, HNSW present, one client, p50 / p99:
--     durable commit 8.0 / 21 ms with postings, 6.3 / 20 ms without; with synchronous_commit
--     off 7.9 / 19 vs 5.8 / 17 ms (quieter run: 2.0 vs 1.3 ms p50): postings + df upkeep
--     costs 0.7-2 ms of CPU per entry, the commit the rest.
--   4 clients: 178 commits/s spread over 4 agents, 117/s all on one agent (writers of one
--     agent serialize on its lock until commit); agent statistics stayed exact.
--   BM25 top 10, random 4-word Zipf queries (pgbench, one client), p50 / p99:
--     agent 'big' (50K):  full scan 67-76 / 187-192 ms, bm25_top_k 29-36 / 176-231 ms
--     agent 'mid' (10K):  full scan 17 / 41 ms,         bm25_top_k 11-13 / 43-45 ms
--     'small-5' (1K):     full scan 1.5-2.5 / 11 ms,    bm25_top_k 2.8-3.8 / 12-13 ms
--     (a quieter earlier run: 'big' full 46 / 116 ms, bm25_top_k 10 / 64 ms). The cost is the
--     posting lists of common words (w1 is in 75% of entries): EXPLAIN ANALYZE of
--     "w1 w7 w150 w2200" on 'big': full scan 172 ms, 51K postings into 40K groups (HashAggregate
--     4.1 MB: set work_mem >= 16MB so it never spills); bm25_top_k 23 ms (809 candidates from
--     the two rare words, the common lists never read). Queries of common words only cannot be
--     pruned and cost a full scan.
--   Vector top 10 (HNSW, ef_search 40, hnsw.iterative_scan = relaxed_order), p50 / p99:
--     no agent filter 3.5 / 14 ms; filtered by agent, query near the agent's own entries:
--     'big' 3.6 / 14, 'mid' 3.6 / 13, 'small-5' 9.1 / 27 ms; query in a region where the agent
--     has no entries: 'big' 11 / 57, 'mid' 52 / 238, 'small-5' 30 / 132 ms; exact scan of
--     'small-5' (1K entries) 15 / 28 ms (2 ms in a quieter run).
--   Recall@10 against the exact top 10 (30 queries each), off / relaxed_order ef 40 / ef 100:
--     on-topic  'big' .99 / .99 / 1.0, 'mid' .96 / .96 / .96, 'small-5' .22 (2.2 rows) / .99 / .99
--     off-topic 'big' .49 (5 rows) / .78 / .84, 'mid' .09 (1 row) / .65 / .71,
--               'small-5' .04 (0.4 rows) / .94 / .94
--     With iterative scan off, an agent-filtered query returns fewer than k rows: never use it.
--     The global graph serves an agent well when the query lies near its entries; across
--     regions it holds few of, recall drops and the scan grows. Agents with <= 2000 entries
--     take the exact path (vector_top_k_exact). If many mid-size agents with off-topic queries
--     matter, the next step is per-agent partial HNSW indexes for the largest agents or hash
--     partitions of entries by agent.
--
-- Layout of this file, for the migration runner:
--   * `-- migration N: text` starts migration N; it runs to the next such line. Migration N
--     takes the schema from version N - 1 to N and records itself in memory_core.migrations.
--     Never edit a released migration: append a new one.
--   * `:embedding_dim` is the store's embedding dimension, chosen when the store is created
--     (1..=2000: pgvector's HNSW limit for `vector`). The runner substitutes it (a validated
--     integer); psql does the same with `psql -v embedding_dim=384 -f schema.sql`.
--   * The runner applies the missing migrations in one transaction under
--     `pg_advisory_xact_lock(1296387395)` (0x4D454D43, "MEMC"), so that two app instances
--     starting together do not both migrate, and refuses a database whose version is newer
--     than the ones it knows.
--   * After the migrations, `-- query NAME` blocks: the statements the backend sends, kept here
--     so that they are checked against the schema in psql beside it.
--
-- Design notes
--   Ids. Entry ids are assigned by the client before the write (short-term entries need one the
--   moment they are appended, without a round trip), so the database hands out blocks: one
--   `nextval` on memory_core.entry_id_blocks (INCREMENT BY 1024) reserves the 1024 ids
--   [v, v + 1023] for the caller alone. nextval never returns a value twice and is not rolled back
--   with its transaction; the `id_block` query also makes the reservation durable before use
--   (see there): ids never collide across instances, processes or server crashes. Unused
--   ids of a crashed client are a gap, never reused. The client reads the block size from
--   pg_sequences.increment_by at open; a later migration may raise it, never lower it (a lower
--   increment would give out ids inside blocks that old clients still hold). Because ids are
--   client-assigned, an insert is idempotent (ON CONFLICT (id) DO NOTHING): a batch whose
--   commit outcome was lost with the connection is retried safely.
--
--   BM25. The client analyzes text (memory_core::text: case folding, split on non-alphanumerics,
--   English stems unless the store's analyzer is plain, see migration 3) and sends each entry's
--   term count (doc_len) and its (term, tf) pairs; the server never tokenizes, so the two
--   backends see the same terms. Statistics are per agent and exact
--   at every commit, maintained by insert_entries / delete_entries in the write's transaction:
--     agents(doc_count, total_len)   N and the sum of lengths (avgdl = total_len / N)
--     terms(agent_key, term, df)     document frequency
--     postings(agent_key, term, entry_id, tf, doc_len)   covering primary key, so ranking
--                                    reads postings by index-only scan and never the entries
--   Postings carry a 4-byte agent_key instead of the agent id (up to 256 bytes, repeated in
--   every posting). Ranking: score = sum over query terms of
--     idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * doc_len / avgdl)),
--     idf = ln(1 + (N - df + 0.5) / (df + 0.5)),
--   k1 = 1.2, b = 0.75, avgdl = 1 when the agent has no tokens; repeated query terms count once
--   (term = ANY), ties by id ascending: memory_core::keyword's BM25, computed in float8 where
--   the engine uses f32 (scores agree to ~1e-6 relative; compare with a tolerance).
--
--   Write concurrency. Each write transaction first takes a transaction-scoped advisory lock per
--   agent it touches, (1296387395, hashtext(agent_id)), in ascending key order: writers of one
--   agent serialize (as in the embedded engine), writers of different agents never wait for each
--   other, and since every transaction locks in the same order no two can deadlock on the
--   agents, terms or postings rows behind those locks. A hash collision only serializes two
--   agents. Readers take no locks (MVCC).
--
--   Generation. agents.generation is bumped by every write transaction that changes an agent's
--   entries (in the same commit as the change). An app instance caches query answers tagged
--   with the generation it read BEFORE (or in the same statement as) the query; a cached answer
--   is valid while `query generation` returns the same number. Reading it after the query could
--   tag an old answer with a new generation and serve it forever. Access statistics
--   (record_access) do not bump it, as in the embedded engine.

-- migration 1: entries, per-agent BM25 statistics, id blocks, write functions
CREATE EXTENSION IF NOT EXISTS vector;
CREATE SCHEMA memory_core;

CREATE TABLE memory_core.migrations (
    version     integer PRIMARY KEY,
    description text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- One row: what the store was created with. The client refuses to open a store whose dimension
-- differs from its configuration.
CREATE TABLE memory_core.store (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    embedding_dim integer NOT NULL CHECK (embedding_dim BETWEEN 1 AND 2000),
    created_at    timestamptz NOT NULL DEFAULT now()
);
INSERT INTO memory_core.store (embedding_dim) VALUES (:embedding_dim);

CREATE SEQUENCE memory_core.entry_id_blocks AS bigint START WITH 1 INCREMENT BY 1024 NO CYCLE;

CREATE TABLE memory_core.agents (
    agent_key  integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id   text NOT NULL UNIQUE,
    doc_count  bigint NOT NULL DEFAULT 0 CHECK (doc_count >= 0),
    total_len  bigint NOT NULL DEFAULT 0 CHECK (total_len >= 0),
    generation bigint NOT NULL DEFAULT 0
) WITH (fillfactor = 50); -- rewritten by every write: room for HOT updates

-- Mirrors memory_core::MemoryEntry (tier is implied: every row here is long-term).
CREATE TABLE memory_core.entries (
    id               bigint PRIMARY KEY,
    agent_id         text NOT NULL,
    session_id       text NOT NULL,
    role             smallint NOT NULL CHECK (role BETWEEN 0 AND 4), -- index into Role::ALL
    content          text NOT NULL,
    embedding        vector(:embedding_dim),                         -- unit length, or NULL
    importance       real NOT NULL CHECK (importance BETWEEN 0 AND 1),
    created_at       bigint NOT NULL,                                -- microseconds since epoch
    last_accessed_at bigint NOT NULL,
    access_count     bigint NOT NULL CHECK (access_count BETWEEN 0 AND 4294967295),
    metadata         jsonb,                                          -- NULL for JSON null
    doc_len          integer NOT NULL CHECK (doc_len >= 0)           -- tokens, for BM25
);
-- Listing by agent (and session) newest first; also the exact-scan path of vector search for
-- agents too small for the HNSW index to pay.
CREATE INDEX entries_agent_time ON memory_core.entries (agent_id, created_at DESC, id);
CREATE INDEX entries_agent_session_time ON memory_core.entries (agent_id, session_id, created_at DESC);
-- One graph for all agents; a query filtered by agent relies on hnsw.iterative_scan (see the
-- `vector_top_k` query).
CREATE INDEX entries_embedding_hnsw ON memory_core.entries
    USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);

CREATE TABLE memory_core.terms (
    agent_key integer NOT NULL,
    term      text NOT NULL,
    df        integer NOT NULL CHECK (df >= 0),
    PRIMARY KEY (agent_key, term)
) WITH (fillfactor = 70); -- df of common words changes with most writes: room for HOT updates

CREATE TABLE memory_core.postings (
    agent_key integer NOT NULL,
    term      text NOT NULL,
    entry_id  bigint NOT NULL,
    tf        integer NOT NULL CHECK (tf > 0),
    doc_len   integer NOT NULL,
    PRIMARY KEY (agent_key, term, entry_id) INCLUDE (tf, doc_len)
);
-- Deleting an entry finds its postings without its terms.
CREATE INDEX postings_by_entry ON memory_core.postings (entry_id);

-- Inserts a batch of entries (any agents) with their postings, in one round trip. Parallel
-- arrays, one element per entry, except the p_post_* arrays: one element per (entry, term).
-- Entries whose id exists already are skipped (idempotent retry); returns the ids inserted.
CREATE FUNCTION memory_core.insert_entries(
    p_ids bigint[], p_agent_ids text[], p_session_ids text[], p_roles smallint[],
    p_contents text[], p_embeddings vector[], p_importances real[], p_created_at bigint[],
    p_last_accessed_at bigint[], p_access_counts bigint[], p_metadata jsonb[], p_doc_lens integer[],
    p_post_entry_ids bigint[], p_post_terms text[], p_post_tfs integer[]
) RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE
    inserted bigint[];
BEGIN
    PERFORM pg_advisory_xact_lock(1296387395, k)
    FROM (SELECT DISTINCT hashtext(a) AS k FROM unnest(p_agent_ids) AS a ORDER BY 1) AS locks;

    -- No conflict is possible: this transaction holds the agents' locks.
    INSERT INTO memory_core.agents (agent_id)
    SELECT DISTINCT a FROM unnest(p_agent_ids) AS a
    WHERE NOT EXISTS (SELECT 1 FROM memory_core.agents g WHERE g.agent_id = a);

    WITH ins AS (
        INSERT INTO memory_core.entries AS e (id, agent_id, session_id, role, content, embedding,
            importance, created_at, last_accessed_at, access_count, metadata, doc_len)
        SELECT * FROM unnest(p_ids, p_agent_ids, p_session_ids, p_roles, p_contents, p_embeddings,
            p_importances, p_created_at, p_last_accessed_at, p_access_counts, p_metadata, p_doc_lens)
        ON CONFLICT (id) DO NOTHING
        RETURNING e.id, e.agent_id, e.doc_len
    ), post AS (
        INSERT INTO memory_core.postings (agent_key, term, entry_id, tf, doc_len)
        SELECT g.agent_key, p.term, p.entry_id, p.tf, ins.doc_len
        FROM unnest(p_post_entry_ids, p_post_terms, p_post_tfs) AS p (entry_id, term, tf)
        JOIN ins ON ins.id = p.entry_id
        JOIN memory_core.agents g ON g.agent_id = ins.agent_id
        RETURNING agent_key, term
    ), df AS (
        INSERT INTO memory_core.terms AS t (agent_key, term, df)
        SELECT agent_key, term, count(*) FROM post GROUP BY agent_key, term
        ON CONFLICT (agent_key, term) DO UPDATE SET df = t.df + excluded.df
    ), stats AS (
        UPDATE memory_core.agents g
        SET doc_count = g.doc_count + s.n, total_len = g.total_len + s.len,
            generation = g.generation + 1
        FROM (SELECT agent_id, count(*) AS n, sum(doc_len) AS len FROM ins GROUP BY agent_id) s
        WHERE g.agent_id = s.agent_id
    )
    SELECT coalesce(array_agg(id ORDER BY id), '{}') INTO inserted FROM ins;
    RETURN inserted;
END
$$;

-- Deletes entries of one agent with their postings; returns the ids that existed.
CREATE FUNCTION memory_core.delete_entries(p_agent_id text, p_ids bigint[]) RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE
    deleted bigint[];
BEGIN
    PERFORM pg_advisory_xact_lock(1296387395, hashtext(p_agent_id));
    WITH del AS (
        DELETE FROM memory_core.entries
        WHERE agent_id = p_agent_id AND id = ANY (p_ids)
        RETURNING id, doc_len
    ), pdel AS (
        DELETE FROM memory_core.postings p
        USING del
        WHERE p.entry_id = del.id
        RETURNING p.agent_key, p.term
    ), df AS (
        UPDATE memory_core.terms t SET df = t.df - d.n
        FROM (SELECT agent_key, term, count(*) AS n FROM pdel GROUP BY agent_key, term) d
        WHERE t.agent_key = d.agent_key AND t.term = d.term
    ), stats AS (
        UPDATE memory_core.agents g
        SET doc_count = g.doc_count - s.n, total_len = g.total_len - s.len,
            generation = g.generation + 1
        FROM (SELECT count(*) AS n, coalesce(sum(doc_len), 0) AS len FROM del) s
        WHERE g.agent_id = p_agent_id AND s.n > 0
    )
    SELECT coalesce(array_agg(id ORDER BY id), '{}') INTO deleted FROM del;
    RETURN deleted;
END
$$;

-- The BM25 score of every entry of the agent holding at least one of the terms (the client's
-- tokens, case-folded). The planner inlines it into the calling query, so the caller adds
-- filters (a join with entries), ORDER BY and LIMIT: see the `bm25_filtered` query. Each term's
-- weight idf * (k1 + 1) is computed once (the MATERIALIZED CTE), not once per posting.
CREATE FUNCTION memory_core.bm25_scores(
    p_agent_id text, p_terms text[], k1 float8 DEFAULT 1.2, b float8 DEFAULT 0.75
) RETURNS TABLE (entry_id bigint, score float8)
LANGUAGE sql STABLE AS $$
    WITH q AS MATERIALIZED (
        SELECT t.agent_key, t.term,
               ln(1 + (a.n - t.df + 0.5::float8) / (t.df + 0.5::float8)) * (k1 + 1) AS weight,
               k1 * (1 - b) AS len_base, k1 * b / a.avgdl AS len_slope
        FROM (SELECT agent_key, doc_count::float8 AS n,
                     CASE WHEN total_len > 0 THEN total_len::float8 / doc_count ELSE 1 END AS avgdl
              FROM memory_core.agents WHERE agent_id = p_agent_id) AS a
        JOIN memory_core.terms t
          ON t.agent_key = a.agent_key AND t.term = ANY (p_terms) AND t.df > 0
    )
    SELECT p.entry_id, sum(q.weight * p.tf / (p.tf + q.len_base + q.len_slope * p.doc_len))
    FROM q JOIN memory_core.postings p ON p.agent_key = q.agent_key AND p.term = q.term
    GROUP BY p.entry_id
$$;

-- The k best entries of the agent by BM25 (score descending, id ascending): the same answer as
-- bm25_scores ... ORDER BY score DESC, entry_id LIMIT k, without reading the posting lists of
-- common words when a rarer query word decides the top k. Unfiltered searches use this one.
CREATE FUNCTION memory_core.bm25_top_k(
    p_agent_id text, p_terms text[], p_k integer, k1 float8 DEFAULT 1.2, b float8 DEFAULT 0.75
) RETURNS TABLE (entry_id bigint, score float8)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_key integer;
    v_n float8;
    v_avgdl float8;
    v_terms text[];
    v_weights float8[];
    v_dfs integer[];
    v_m integer;
    v_e integer := 0;
    v_read bigint := 0;
    v_rest float8 := 0;
    v_ids bigint[];
    v_scores float8[];
BEGIN
    IF p_k <= 0 THEN
        RETURN;
    END IF;
    SELECT g.agent_key, g.doc_count,
           CASE WHEN g.total_len > 0 THEN g.total_len::float8 / g.doc_count ELSE 1 END
    INTO v_key, v_n, v_avgdl
    FROM memory_core.agents g WHERE g.agent_id = p_agent_id;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- The query's terms that the agent holds, rarest (highest weight) first.
    SELECT array_agg(t.term ORDER BY t.df, t.term),
           array_agg(ln(1 + (v_n - t.df + 0.5) / (t.df + 0.5)) * (k1 + 1) ORDER BY t.df, t.term),
           array_agg(t.df ORDER BY t.df, t.term)
    INTO v_terms, v_weights, v_dfs
    FROM memory_core.terms t
    WHERE t.agent_key = v_key AND t.term = ANY (p_terms) AND t.df > 0;
    v_m := coalesce(cardinality(v_terms), 0);
    IF v_m = 0 THEN
        RETURN;
    END IF;

    -- MaxScore (Turtle & Flood, 1995) at the level of terms. A term's contribution
    -- w * tf / (tf + k1 * (1 - b + b * dl / avgdl)) never exceeds its weight w = idf * (k1 + 1),
    -- so a document holding none of the rarest ("essential") terms scores at most the sum of
    -- the other terms' weights. The documents holding an essential term are scored exactly
    -- (the common terms' postings probed by entry id); when the k-th best of them scores above
    -- that sum, no other document can enter the top k. Otherwise every posting is scored.
    -- The essential terms are the rarest ones within a budget of postings (2% of the agent's
    -- entries), so the probing stays cheaper than reading the common terms' lists. Below 4096
    -- entries no list is long enough to repay the extra pass (measured: at 1K entries the
    -- pruned path was slower than the full scan, at 10K faster).
    WHILE v_n >= 4096 AND v_e < v_m - 1 AND v_read + v_dfs[v_e + 1] <= v_n / 50 LOOP
        v_e := v_e + 1;
        v_read := v_read + v_dfs[v_e];
    END LOOP;
    IF v_e > 0 THEN
        FOR i IN v_e + 1 .. v_m LOOP
            v_rest := v_rest + v_weights[i];
        END LOOP;
        -- Partial scores (essential terms only) of every document holding an essential term.
        SELECT array_agg(c.entry_id ORDER BY c.s DESC, c.entry_id),
               array_agg(c.s ORDER BY c.s DESC, c.entry_id)
        INTO v_ids, v_scores
        FROM (SELECT p.entry_id,
                     sum(q.w * p.tf / (p.tf + k1 * (1 - b) + k1 * b / v_avgdl * p.doc_len)) AS s
              FROM unnest(v_terms[1:v_e], v_weights[1:v_e]) AS q (term, w)
              JOIN memory_core.postings p ON p.agent_key = v_key AND p.term = q.term
              GROUP BY p.entry_id) AS c;
        -- theta = the k-th best partial score bounds the k-th best full score from below. A
        -- document holding no essential term scores at most v_rest; a candidate at most its
        -- partial score plus v_rest. Both are out of the top k when that is below theta.
        -- (The margin covers float rounding in the sums.)
        IF cardinality(v_ids) >= p_k AND v_rest * (1 + 1e-9) < v_scores[p_k] THEN
            RETURN QUERY
            SELECT c.id, c.partial + coalesce(sum(q.w * x.tf / (x.tf + k1 * (1 - b) + k1 * b / v_avgdl * x.doc_len)), 0) AS s
            FROM unnest(v_ids, v_scores) AS c (id, partial)
            CROSS JOIN unnest(v_terms[v_e + 1:], v_weights[v_e + 1:]) AS q (term, w)
            LEFT JOIN LATERAL (
                SELECT p.tf, p.doc_len FROM memory_core.postings p
                WHERE p.agent_key = v_key AND p.term = q.term AND p.entry_id = c.id) AS x ON true
            WHERE c.partial + v_rest * (1 + 1e-9) >= v_scores[p_k]
            GROUP BY c.id, c.partial
            ORDER BY s DESC, c.id
            LIMIT p_k;
            RETURN;
        END IF;
    END IF;
    RETURN QUERY
    SELECT p.entry_id,
           sum(q.w * p.tf / (p.tf + k1 * (1 - b) + k1 * b / v_avgdl * p.doc_len)) AS s
    FROM unnest(v_terms, v_weights) AS q (term, w)
    JOIN memory_core.postings p ON p.agent_key = v_key AND p.term = q.term
    GROUP BY p.entry_id
    ORDER BY s DESC, p.entry_id
    LIMIT p_k;
END
$$;

INSERT INTO memory_core.migrations (version, description)
VALUES (1, 'entries, per-agent BM25 statistics, id blocks, write functions');

-- migration 2: vector_top_k, the approximate vector query pinned to the HNSW index
-- The planner chose between the HNSW index scan and the agent's rows (bitmap scan on an agent
-- index, then a top-N sort: an exact scan) from its estimate of the agent's share of the table.
-- Right after a bulk load, before autovacuum analyzes (up to a minute), and for an agent the
-- statistics do not know yet, that estimate is the default 0.5%, which makes the index scan
-- look like it must visit the whole graph for LIMIT 50: measured at 10K entries of one agent,
-- 15-17 ms per query instead of 1.2-2 ms. Inside this function enable_sort is off, which
-- leaves the index scan as the only plan without a sort. Agents small enough for an exact
-- scan use vector_top_k_exact (a plain statement) instead.
CREATE FUNCTION memory_core.vector_top_k(
    p_agent_id text, p_query vector, p_k bigint,
    p_session_id text, p_role smallint, p_since bigint, p_until bigint
) RETURNS TABLE (id bigint, similarity real)
LANGUAGE plpgsql STABLE SET enable_sort = off AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT hits.id, (1 - hits.distance)::real FROM (
        SELECT e.id, e.embedding <=> p_query AS distance FROM memory_core.entries e
        WHERE e.agent_id = p_agent_id AND e.embedding IS NOT NULL
          AND (p_session_id IS NULL OR e.session_id = p_session_id)
          AND (p_role IS NULL OR e.role = p_role)
          AND (p_since IS NULL OR e.created_at >= p_since)
          AND (p_until IS NULL OR e.created_at < p_until)
        ORDER BY e.embedding <=> p_query
        LIMIT p_k
    ) AS hits;
END
$$;

INSERT INTO memory_core.migrations (version, description)
VALUES (2, 'vector_top_k: the approximate vector query pinned to the HNSW index');

-- migration 3: the keyword analyzer the store's terms were made with
-- memory_core::Analyzer::code: 1 = plain tokens (every store before this migration), 2 = English
-- stems. The client analyzes text the way the store's row says, so postings and queries always
-- agree; at open, a store without entries takes the analyzer of the configuration (query
-- store_analyzer below). A store with entries keeps its analyzer.
ALTER TABLE memory_core.store ADD COLUMN analyzer smallint NOT NULL DEFAULT 1 CHECK (analyzer > 0);

INSERT INTO memory_core.migrations (version, description)
VALUES (3, 'store.analyzer: the keyword analyzer of the store''s terms');

-- migration 4: the embedder the store's vectors were made with (memory_core::Embedder::id),
-- recorded at the first open that knows of it (query store_embedder). The client refuses to open
-- the store with another embedder unless told the two make the same vectors.
ALTER TABLE memory_core.store ADD COLUMN embedder text;

INSERT INTO memory_core.migrations (version, description)
VALUES (4, 'store.embedder: the embedder of the store''s vectors');

-- migration 5: re-embedding a store with another embedder (MemoryBuilder::reembed_on_embedder_change)
-- While it runs, store.embedder is 'reembedding:' followed by the new embedder's id, and
-- reembedded_through the last entry id whose vector is recomputed: an interrupted re-embedding is
-- taken up there. One instance re-embeds at a time, under the session advisory lock (1296387397,
-- hashtext('<schema>.reembed'); 1296387395 before, which agents' write locks shared) on a
-- connection of its own, which the others poll for (a statement
-- waiting for it would hold up the REINDEX CONCURRENTLY that ends a re-embedding: the index then
-- holds a dead version of every row, which searches would walk through). set_embeddings writes one
-- batch: it takes the agents' write locks in ascending key order (see Write concurrency), replaces
-- the vectors (NULL for a text with nothing to embed), bumps the agents' generations so that cached
-- answers of other instances are dropped, and records the progress, in one transaction.
ALTER TABLE memory_core.store ADD COLUMN reembedded_through bigint;

CREATE FUNCTION memory_core.set_embeddings(p_ids bigint[], p_embeddings vector[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1296387395, k)
    FROM (SELECT DISTINCT hashtext(e.agent_id) AS k FROM memory_core.entries e
          WHERE e.id = ANY (p_ids) ORDER BY 1) AS locks;
    WITH upd AS (
        UPDATE memory_core.entries e SET embedding = v.embedding
        FROM unnest(p_ids, p_embeddings) AS v (id, embedding)
        WHERE e.id = v.id
        RETURNING e.agent_id
    )
    UPDATE memory_core.agents g SET generation = g.generation + 1
    WHERE g.agent_id IN (SELECT agent_id FROM upd);
    UPDATE memory_core.store
    SET reembedded_through = greatest(reembedded_through, (SELECT max(i) FROM unnest(p_ids) AS i));
END
$$;

INSERT INTO memory_core.migrations (version, description)
VALUES (5, 'store.reembedded_through, set_embeddings: re-embedding with another embedder');

-- migration 6: writes made with the embedder the store records, and no other. An app instance
-- checks the store's embedder when it opens, but instances already running may meet a change of
-- it made by another (a re-embedding, or an accepted change): an instance with the old embedder
-- would then write vectors of the old space into the new one, which no later open detects.
-- embedder_for_write runs in every write transaction that inserts vectors: it takes the
-- embedder lock (1296387396 ("MEMD"), hashtext('<schema>')) shared and returns the
-- embedder recorded now; the client refuses to commit when it is not its own
-- (Error::StoreEmbedderMismatch). Every change of store.embedder takes that lock exclusively in
-- its transaction, before the UPDATE. So a change waits for the writes under way, and a write
-- begun after it sees it: no row of the old embedder is committed after the re-embedding's mark,
-- and every row committed before the mark is visible to the re-embedding, which begins after it.
-- PL/pgSQL, so that the SELECT takes its snapshot after the lock is granted (one statement
-- would read the record as it was before waiting). An advisory lock, not FOR SHARE on the store
-- row: a row lock is written into the row by every writer. Its key is apart from the agents'
-- write locks (1296387395, hashtext(agent_id)), taken in the same transaction, so no agent's
-- hash can meet it.
CREATE FUNCTION memory_core.embedder_for_write()
RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(1296387396, hashtext('memory_core'));
    RETURN (SELECT embedder FROM memory_core.store);
END
$$;

INSERT INTO memory_core.migrations (version, description)
VALUES (6, 'embedder_for_write: writes check the store''s embedder under a shared lock');

-- migration 7: access counts applied once. A write whose commit reply is lost (a dropped
-- connection) is sent again on a new connection; its entries are skipped by id, but the
-- deferred access counts riding along were added a second time (and the standalone access
-- write, not repeated for that reason, returned an error after committing, so the caller's
-- next flush added them again). Each access write now carries a random token, claimed in its
-- transaction: a repeat finds the token claimed and adds nothing. A repeat comes within
-- seconds (the client's retries); tokens older than an hour are deleted now and then.
CREATE TABLE memory_core.applied_access (
    token bigint PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX applied_access_time ON memory_core.applied_access (applied_at);

CREATE FUNCTION memory_core.record_access_once(
    token bigint, ids bigint[], ns bigint[], ats bigint[]
)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO memory_core.applied_access (token) VALUES (token) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF random() < 0.01 THEN
        DELETE FROM memory_core.applied_access WHERE applied_at < now() - interval '1 hour';
    END IF;
    UPDATE memory_core.entries e
    SET access_count = least(e.access_count + a.n, 4294967295),
        last_accessed_at = greatest(e.last_accessed_at, a.at)
    FROM unnest(ids, ns, ats) AS a (id, n, at)
    WHERE e.id = a.id;
    RETURN true;
END
$$;

INSERT INTO memory_core.migrations (version, description)
VALUES (7, 'record_access_once: deferred access counts applied once, also when a write is repeated');

-- migration 8: retrieval counts in a narrow table of their own
-- record_access_once (migration 7) updated each retrieved entry's row in entries: the text, the
-- vector (1.5 KB at 384 dimensions) and the metadata, in a table filled to the default
-- fillfactor, so an update seldom found room on its page (not HOT). Each then wrote a new
-- version of the whole row, a tuple into every index of the table, the HNSW index included
-- (an insert into the graph: a search for neighbours and the rewrite of their pages), and left a
-- dead version for vacuum; the write-back of a second of searches did that for every entry
-- they retrieved, in the transaction of the insert it rode along with. Measured with
-- examples/inserts_beside_searches_pg.rs (100K entries of one agent, ~650 ANN searches/s, load
-- average 5-7; docs/measurements.md): a write-back of 6,300-9,700 entries' counts took 3.7-6.9 s
-- and wrote 71-158 MB of WAL, and one-entry inserts beside the searches waited 20-24 s at p99;
-- the table grew from 198 to 342-363 MB in about a minute. With this table: 34-194 ms, 0.9 MB
-- (updates) to 40 MB (first counts, the entries' locks with full-page images right after a
-- checkpoint), inserts p99 126-283 ms, and the entries are not written at all.
-- Counts recorded since go to access (id, count, last_at): one narrow row per entry retrieved,
-- which a read of the entry adds to the base columns of entries (written at insert, and holding
-- what earlier versions recorded): the base count plus the row's (at most 4294967295), the later
-- of the two times (the `entry` and `list` queries below). An existing row is updated in place (no indexed
-- column changes, and the fillfactor leaves room on its page: HOT); a new one is made only for
-- an id stored in entries, whose row the write locks FOR KEY SHARE (a lock, no new version: what
-- a foreign key's check takes, without a trigger per row or an error when the entry is gone).
-- delete_entries removes an entry's row in the same transaction, in a statement after the
-- entries' delete: a write-back that made a row for an entry being deleted held the entry's
-- lock, so the delete waited for its commit, and the later statement's snapshot sees the row. So
-- a row exists only for a stored id (ids are never reused: see Ids) and goes with its entry.
-- Older builds refuse this version at open; instances of version 7 still running meanwhile read
-- the base columns only (counts recorded since are missing from their scores until they
-- restart), and their writes call the functions below.
CREATE TABLE memory_core.access (
    id      bigint PRIMARY KEY,
    count   bigint NOT NULL CHECK (count BETWEEN 0 AND 4294967295),
    last_at bigint NOT NULL                                          -- microseconds since epoch
) WITH (fillfactor = 70); -- rewritten by every write-back that retrieves the entry again

CREATE OR REPLACE FUNCTION memory_core.record_access_once(
    token bigint, ids bigint[], ns bigint[], ats bigint[]
)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO memory_core.applied_access (token) VALUES (token) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF random() < 0.01 THEN
        DELETE FROM memory_core.applied_access WHERE applied_at < now() - interval '1 hour';
    END IF;
    -- One statement, one snapshot: `upd` adds to the rows the snapshot holds (a row deleted
    -- since with its entry is skipped); `stored` takes the other ids whose entries are stored,
    -- locking them, and the insert makes their rows (adding to a row that another write-back
    -- made since the snapshot). Every join is an index lookup per id, also in
    -- the generic plan PL/pgSQL uses after five calls (which does not know the arrays' lengths:
    -- an `IN (SELECT ... FOR KEY SHARE)` or `<> ALL (array)` there compared every id with
    -- every other, 0.9 s for 6,000).
    WITH a AS (
        SELECT r.id, sum(r.n) AS n, max(r.at) AS at
        FROM unnest(ids, ns, ats) AS r (id, n, at) GROUP BY r.id
    ), upd AS (
        UPDATE memory_core.access t
        SET count = least(t.count + a.n, 4294967295), last_at = greatest(t.last_at, a.at)
        FROM a WHERE t.id = a.id
    ), stored AS (
        SELECT a.id, a.n, a.at FROM a JOIN memory_core.entries e ON e.id = a.id
        WHERE NOT EXISTS (SELECT 1 FROM memory_core.access x WHERE x.id = a.id)
        FOR KEY SHARE OF e
    )
    INSERT INTO memory_core.access AS t (id, count, last_at)
    SELECT stored.id, least(stored.n, 4294967295), stored.at FROM stored ORDER BY stored.id
    ON CONFLICT (id) DO UPDATE
    SET count = least(t.count + excluded.count, 4294967295),
        last_at = greatest(t.last_at, excluded.last_at);
    RETURN true;
END
$$;

-- As in migration 1, and the entries' retrieval counts deleted with them (see above).
CREATE OR REPLACE FUNCTION memory_core.delete_entries(p_agent_id text, p_ids bigint[])
RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE
    deleted bigint[];
BEGIN
    PERFORM pg_advisory_xact_lock(1296387395, hashtext(p_agent_id));
    WITH del AS (
        DELETE FROM memory_core.entries
        WHERE agent_id = p_agent_id AND id = ANY (p_ids)
        RETURNING id, doc_len
    ), pdel AS (
        DELETE FROM memory_core.postings p
        USING del
        WHERE p.entry_id = del.id
        RETURNING p.agent_key, p.term
    ), df AS (
        UPDATE memory_core.terms t SET df = t.df - d.n
        FROM (SELECT agent_key, term, count(*) AS n FROM pdel GROUP BY agent_key, term) d
        WHERE t.agent_key = d.agent_key AND t.term = d.term
    ), stats AS (
        UPDATE memory_core.agents g
        SET doc_count = g.doc_count - s.n, total_len = g.total_len - s.len,
            generation = g.generation + 1
        FROM (SELECT count(*) AS n, coalesce(sum(doc_len), 0) AS len FROM del) s
        WHERE g.agent_id = p_agent_id AND s.n > 0
    )
    SELECT coalesce(array_agg(id ORDER BY id), '{}') INTO deleted FROM del;
    -- A statement of its own: its snapshot sees the rows of write-backs that committed while
    -- the delete above waited for their locks.
    DELETE FROM memory_core.access WHERE id = ANY (deleted);
    RETURN deleted;
END
$$;

INSERT INTO memory_core.migrations (version, description)
VALUES (8, 'access: retrieval counts in a narrow table, added to the entries'' base counts');

-- query id_block: reserve the ids [v, v + block_size - 1]. Run in autocommit (not inside a
-- transaction that may roll back), so that the reservation is durable before any id of the
-- block is used. pg_current_xact_id() gives the transaction an xid, so its commit flushes the
-- WAL even when this nextval was served from values an earlier nextval logged ahead (sequences
-- log 32 steps at a time) in a transaction that never committed; without it a server crash
-- could hand the same block out again. The shared advisory lock, taken first (the subquery is
-- a fence), keeps it out of a reservation of several consecutive blocks, which a client makes
-- under the same lock taken exclusively, with one nextval per block in one statement.
-- SELECT nextval('memory_core.entry_id_blocks') AS block_start, pg_current_xact_id()
-- FROM (SELECT pg_advisory_xact_lock_shared(1296387395, 0) OFFSET 0) AS ordered;

-- query id_block_size: read once at open.
-- SELECT increment_by FROM pg_sequences
-- WHERE schemaname = 'memory_core' AND sequencename = 'entry_id_blocks';

-- query store_config: at open, after migrating; a dimension other than the configured one is an
-- error naming both.
-- SELECT embedding_dim FROM memory_core.store;

-- query store_analyzer: at open, after migrating, in the migration's transaction; $1 = the
-- configured analyzer's code. A store without entries takes it; the answer is the store's.
-- UPDATE memory_core.store SET analyzer = $1
-- WHERE analyzer <> $1 AND NOT EXISTS (SELECT 1 FROM memory_core.entries);
-- SELECT analyzer FROM memory_core.store;

-- query store_embedder: at open, after migrating, in the migration's transaction; the last
-- records the embedder ($1) where the store names none yet (or the caller accepts a change), or
-- the mark of a re-embedding begun, and forgets an earlier re-embedding's progress, under the
-- embedder lock (migration 6), as every change of the record does ($2 = the schema's name).
-- SELECT embedder FROM memory_core.store;
-- SELECT pg_advisory_xact_lock(1296387396, hashtext($2));
-- UPDATE memory_core.store SET embedder = $1, reembedded_through = NULL;

-- query reembed: the batches of a re-embedding, after the last id done (reembedded_through,
-- or -1 for none), then the new vectors; finally the embedder is recorded (the update above).
-- SELECT reembedded_through FROM memory_core.store;
-- SELECT id, content FROM memory_core.entries WHERE id > $1 ORDER BY id LIMIT $2;
-- SELECT memory_core.set_embeddings($1, $2);

-- query generation: $1 = the agent id; an agent without a row has generation 0 and no
-- entries. Read it before the query whose answer it tags (see Generation above); doc_count
-- picks the BM25 and vector query variants below; the store's embedder comes with it, so that an
-- instance whose embedder the store no longer records refuses to search (its query vectors are
-- of another space) at no extra request.
-- SELECT g.generation, g.doc_count, s.embedder
-- FROM memory_core.store s LEFT JOIN memory_core.agents g ON g.agent_id = $1;

-- query insert: a write transaction's statement: the store's embedder read under the embedder
-- lock (migration 6), which the transaction then holds to its end, and the insert; the client
-- commits only when the embedder is its own (else rolls back). Which of the two runs first does
-- not matter: the record is read under the lock and the commit comes before its release.
-- SELECT memory_core.embedder_for_write(), memory_core.insert_entries($1, ..., $15);

-- query bm25_top_k: $1 agent, $2 query tokens (text[]), $3 k. For an agent with fewer than 4096
-- entries (agents.doc_count, read with the generation) the plain bm25_scores ranking is cheaper:
-- one inlined statement instead of a PL/pgSQL call (1.5 vs 2.8 ms p50 at 1K entries).
-- SELECT entry_id, score FROM memory_core.bm25_top_k($1, $2, $3);
-- SELECT s.entry_id, s.score FROM memory_core.bm25_scores($1, $2) AS s
-- ORDER BY s.score DESC, s.entry_id LIMIT $3;

-- query bm25_filtered: with a session / role / time / metadata filter. N, avgdl and df stay the
-- agent's (as in the embedded index); only the ranked entries are filtered.
-- SELECT s.entry_id, s.score
-- FROM memory_core.bm25_scores($1, $2) AS s
-- JOIN memory_core.entries e ON e.id = s.entry_id
-- WHERE e.session_id = $4 AND e.created_at >= $5 AND e.metadata -> $6 = $7
-- ORDER BY s.score DESC, s.entry_id LIMIT $3;

-- query vector_top_k: $1 agent, $2 query vector (unit length), $3 k. The connection runs with
-- hnsw.iterative_scan = relaxed_order (set in the startup options of every pooled connection:
-- `-c hnsw.iterative_scan=relaxed_order`). With the default (off) the HNSW scan returns its
-- ef_search = 40 nearest entries of ALL agents and the agent filter then drops most of them:
-- measured, an agent holding 1% of the entries got 1.6 of 10 rows. The outer ORDER BY restores
-- exact order among the candidates, which relaxed_order may return slightly out of order.
-- The query runs inside the function vector_top_k (migration 2: why), with the filters of
-- bm25_filtered as $4-$7 (NULL: no filter):
-- SELECT id, similarity FROM memory_core.vector_top_k($1, $2, $3, $4, $5, $6, $7);

-- query hybrid: a hybrid search sends the keyword and the vector query at once, on two pooled
-- connections, so it waits for the slower of the two instead of their sum; the keyword query
-- brings each candidate's exact similarity to the query vector ($6, or $10 with a filter), which
-- score fusion needs for candidates the vector query did not return (saving a third request):
-- SELECT h.entry_id, h.score,
--   (SELECT 1 - (e.embedding <=> $6) FROM memory_core.entries e WHERE e.id = h.entry_id)
-- FROM (<bm25 query above>) AS h ORDER BY h.score DESC, h.entry_id;
-- Not a LEFT JOIN: estimating 1,000 rows for the function, the planner merge-joined them with
-- the entries' primary key in id order, reading 9,864 rows for 50 candidates at 10K entries.

-- query vector_top_k_exact: the same for an agent with few entries (agents.doc_count <= 2000):
-- every entry of the agent is compared, recall 1. MATERIALIZED keeps the planner off the HNSW
-- index, which for such an agent would have to skip ~all of the graph's other entries.
-- WITH mine AS MATERIALIZED (
--     SELECT id, embedding FROM memory_core.entries WHERE agent_id = $1 AND embedding IS NOT NULL
-- )
-- SELECT id, 1 - (embedding <=> $2) AS similarity FROM mine ORDER BY embedding <=> $2, id LIMIT $3;

-- query record_access: deferred access counts (migrations 7 and 8: applied once, into the
-- access table), in the insert's transaction or in one of their own; $1 = the write's token,
-- the same in every attempt. Does not bump the generation.
-- SELECT memory_core.record_access_once($1, $2::bigint[], $3::bigint[], $4::bigint[]);

-- query entry: entries by id, each with its retrieval counts: the base columns plus its row of
-- access (migration 8), if any. <columns> stands for
--   e.id, e.agent_id, e.session_id, e.role, e.content, e.embedding, e.importance, e.created_at,
--   greatest(e.last_accessed_at, a.last_at), least(e.access_count + coalesce(a.count, 0), 4294967295),
--   e.metadata
-- SELECT <columns> FROM memory_core.entries e LEFT JOIN memory_core.access a ON a.id = e.id
-- WHERE e.agent_id = $1 AND e.id = ANY ($2);

-- query list: newest first (entries_agent_time / entries_agent_session_time), with the
-- retrieval counts as in the entry query.
-- SELECT <columns> FROM memory_core.entries e LEFT JOIN memory_core.access a ON a.id = e.id
-- WHERE e.agent_id = $1 AND ($2::text IS NULL OR e.session_id = $2)
--   AND e.created_at >= $3 AND e.created_at < $4
-- ORDER BY e.created_at DESC, e.id DESC LIMIT $5;
