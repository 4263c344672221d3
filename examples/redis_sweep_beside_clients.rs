//! What the other clients of a shared Redis server feel while a consolidation sweeps one agent's
//! short-term memory (the Redis tier runs its changes as server-side scripts, and Redis runs
//! nothing else while a script runs).
//!
//! Fills one agent with `SESSIONS` sessions x `ITEMS` items (each with a `DIM`-d vector, as an
//! app embedding its turns sends them), the first half of the sessions a TTL before the rest, so
//! that the sweep moves half of the windows (expired) and returns the other half's items
//! (unpersisted, staying). Then runs `Memory::consolidate` while another connection sends a PING
//! every millisecond, and reports the longest PING wait, its percentiles, the consolidation's
//! time and the server's slow log (every command of 1 ms or more during the consolidation).
//! The consolidation threshold is 1, so that nothing is promoted: the long-term side (and the
//! marking of promoted items) stays out of the figures, which are the sweep's.
//!
//! ```text
//! eval "$(scripts/services.sh env)"     # or MEMORY_CORE_REDIS_URL=redis://127.0.0.1:PORT
//! cargo run --release --features redis --example redis_sweep_beside_clients -- [SESSIONS] [ITEMS] [DIM]
//! ```
//! Defaults 5,000 x 20 x 384 (about 0.5 GB in Redis). The keys live under a prefix of their own,
//! deleted at the end; the server's slow log is reset and its threshold set to 1 ms (restored).
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memory_core::{
    ManualClock, Memory, MemoryConfig, NewEntry, RedisConfig, Role, ShortTermStorage, Storage,
    Timestamp,
};

const AGENT: &str = "agent-0";

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("SESSIONS ITEMS DIM are numbers"))
        .collect();
    let sessions = args.first().copied().unwrap_or(5_000);
    let items = args.get(1).copied().unwrap_or(20);
    let dim = args.get(2).copied().unwrap_or(384);
    let url = match std::env::var("MEMORY_CORE_REDIS_URL") {
        Ok(u) if !u.trim().is_empty() => u,
        _ => {
            eprintln!(
                "MEMORY_CORE_REDIS_URL is unset (scripts/services.sh start; \
                 eval \"$(scripts/services.sh env)\")"
            );
            std::process::exit(2);
        }
    };
    let address = address(&url);
    let ttl = Duration::from_secs(3600);
    let config = MemoryConfig {
        embedding_dim: dim,
        stm_capacity: items,
        stm_ttl: ttl,
        consolidation: memory_core::ConsolidationConfig {
            threshold: 1.0,
            ..Default::default()
        },
        ..MemoryConfig::default()
    };
    let redis = RedisConfig::new(url.clone())
        .with_prefix(format!("sweep-bench-{}", std::process::id()))
        .with_timeout(Duration::from_secs(120));
    let clock = Arc::new(ManualClock::new(Timestamp(1_700_000_000_000_000)));
    let memory = Memory::builder(Storage::InMemory)
        .with_short_term(ShortTermStorage::Redis(redis.clone()))
        .with_config(config)
        .with_clock(clock.clone())
        .open()
        .expect("open the store");

    // Fill: two threads, the first half of the sessions, a TTL and a second, the second half.
    let start = Instant::now();
    let fill = |range: std::ops::Range<usize>| {
        std::thread::scope(|scope| {
            for part in 0..2 {
                let memory = &memory;
                let range = range.clone();
                scope.spawn(move || {
                    for s in range.filter(|s| s % 2 == part) {
                        for i in 0..items {
                            let entry = NewEntry::new(
                                AGENT,
                                format!("session-{s}"),
                                Role::User,
                                format!("session {s} turn {i}: the note says {}", s * 31 + i),
                            )
                            .with_embedding(vector(dim, (s * items + i) as u64));
                            memory.append(entry).expect("append");
                        }
                    }
                });
            }
        })
    };
    fill(0..sessions / 2);
    clock.advance(ttl + Duration::from_secs(1));
    fill(sessions / 2..sessions);
    let mut admin = Resp::connect(&address);
    let used = admin.command(&["INFO", "memory"]);
    let used = used
        .text()
        .lines()
        .find(|l| l.starts_with("used_memory_human:"))
        .map(|l| l.trim().to_owned())
        .unwrap_or_default();
    println!(
        "filled {sessions} sessions x {items} items ({dim}-d vectors) in {:.1} s; {used}",
        start.elapsed().as_secs_f64()
    );

    // Warm the scripts (the first call of each loads it), on another agent.
    memory
        .append(NewEntry::new("warm-up", "s", Role::User, "hello").with_embedding(vector(dim, 1)))
        .unwrap();
    let old_threshold = admin.command(&["CONFIG", "GET", "slowlog-log-slower-than"]);
    let old_threshold = old_threshold
        .items()
        .get(1)
        .map(Reply::text)
        .unwrap_or_default();
    admin.command(&["CONFIG", "SET", "slowlog-log-slower-than", "1000"]);
    admin.command(&["CONFIG", "SET", "slowlog-max-len", "100000"]);
    admin.command(&["SLOWLOG", "RESET"]);

    // The other client: a PING every millisecond, each one's wait recorded.
    let stop = Arc::new(AtomicBool::new(false));
    let pinger = {
        let stop = stop.clone();
        let mut con = Resp::connect(&address);
        std::thread::spawn(move || {
            let mut waits = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                con.command(&["PING"]);
                let wait = sent.elapsed();
                waits.push(wait);
                if let Some(rest) = Duration::from_millis(1).checked_sub(wait) {
                    std::thread::sleep(rest);
                }
            }
            waits
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    let report = memory.consolidate().expect("consolidate");
    let took = start.elapsed();
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    let mut waits = pinger.join().unwrap();
    waits.sort();
    let at = |q: f64| waits[((waits.len() - 1) as f64 * q).round() as usize];
    println!(
        "consolidate: {:.3} s; {} expired sessions, {} examined",
        took.as_secs_f64(),
        report.expired_sessions,
        report.examined
    );
    println!(
        "PING beside it: {} sent, wait p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms; {} waited >= 10 ms",
        waits.len(),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(*waits.last().unwrap()),
        waits
            .iter()
            .filter(|w| **w >= Duration::from_millis(10))
            .count()
    );

    // The slow log: every command of 1 ms or more, by command (a script by its hash and first
    // key's kind), longest first.
    let log = admin.command(&["SLOWLOG", "GET", "-1"]);
    let mut kinds: Vec<(String, usize, i64, i64)> = Vec::new();
    for e in log.items() {
        let f = e.items();
        let micros = f[2].int();
        let args: Vec<String> = f[3].items().iter().map(Reply::text).collect();
        let kind = match args.first().map(String::as_str) {
            Some("EVALSHA") => format!(
                "EVALSHA {} {}",
                args.get(1).map_or("", |h| &h[..h.len().min(8)]),
                args.get(3).map_or(String::new(), |k| key_kind(k))
            ),
            Some(cmd) => format!(
                "{cmd} {}",
                args.get(1).map_or(String::new(), |k| key_kind(k))
            ),
            None => String::new(),
        };
        match kinds.iter_mut().find(|k| k.0 == kind) {
            Some(k) => {
                k.1 += 1;
                k.2 = k.2.max(micros);
                k.3 += micros;
            }
            None => kinds.push((kind, 1, micros, micros)),
        }
    }
    kinds.sort_by_key(|k| std::cmp::Reverse(k.2));
    println!("slow log (commands of 1 ms or more), by command: count, longest, sum");
    for (kind, n, max, sum) in &kinds {
        println!(
            "  {kind:<36} {n:>5} {:>9.1} ms {:>9.1} ms",
            *max as f64 / 1000.0,
            *sum as f64 / 1000.0
        );
    }
    admin.command(&["CONFIG", "SET", "slowlog-log-slower-than", &old_threshold]);
    drop(memory);
    redis.destroy().expect("delete the keys");
}

/// `P:s:...` -> `:s:` (the kind of a key of the tier), `P:inflight` -> `:inflight`.
fn key_kind(key: &str) -> String {
    let rest = key.split_once(':').map_or(key, |(_, r)| r);
    match rest.split_once(':') {
        Some((kind, _)) => format!(":{kind}:"),
        None => format!(":{rest}"),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A unit vector of its own for each seed (xorshift).
fn vector(dim: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v: Vec<f32> = (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    v.iter_mut().for_each(|a| *a /= norm);
    v
}

/// `host:port` of a `redis://` URL (no password support: a local test server).
fn address(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    authority[authority.rfind('@').map_or(0, |at| at + 1)..].to_owned()
}

/// A reply of the Redis protocol (RESP2).
enum Reply {
    Text(String),
    Int(i64),
    Nil,
    Array(Vec<Reply>),
}

impl Reply {
    fn text(&self) -> String {
        match self {
            Reply::Text(s) => s.clone(),
            Reply::Int(i) => i.to_string(),
            _ => String::new(),
        }
    }
    fn int(&self) -> i64 {
        match self {
            Reply::Int(i) => *i,
            _ => 0,
        }
    }
    fn items(&self) -> &[Reply] {
        match self {
            Reply::Array(a) => a,
            _ => &[],
        }
    }
}

/// A plain blocking connection: no pool, no runtime between the PING and the clock.
struct Resp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Resp {
    fn connect(address: &str) -> Resp {
        let stream = TcpStream::connect(address).expect("connect to Redis");
        stream.set_nodelay(true).unwrap();
        Resp {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    fn command(&mut self, args: &[&str]) -> Reply {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.writer
            .write_all(out.as_bytes())
            .expect("send to Redis");
        let reply = self.read();
        if let Reply::Text(s) = &reply {
            assert!(!s.starts_with("ERR"), "Redis: {s}");
        }
        reply
    }

    fn read(&mut self) -> Reply {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read from Redis");
        let line = line.trim_end_matches("\r\n");
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" => Reply::Text(rest.to_owned()),
            "-" => panic!("Redis: {rest}"),
            ":" => Reply::Int(rest.parse().unwrap()),
            "$" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    return Reply::Nil;
                }
                let mut buf = vec![0u8; n as usize + 2];
                std::io::Read::read_exact(&mut self.reader, &mut buf).unwrap();
                buf.truncate(n as usize);
                Reply::Text(String::from_utf8_lossy(&buf).into_owned())
            }
            "*" => {
                let n: i64 = rest.parse().unwrap();
                Reply::Array((0..n.max(0)).map(|_| self.read()).collect())
            }
            other => panic!("unexpected Redis reply {other:?}"),
        }
    }
}
