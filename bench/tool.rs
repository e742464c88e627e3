//! Benchmark helper, built with the service (`cargo build --release --bin auth-bench`):
//!
//! - `auth-bench seed DB USERS [SEEN_AGO]`: migrates DB and adds USERS users
//!   `user{i}@bench.test` (password `bench-password`, hashed once at `BENCH_COST`, default 12),
//!   each with a session whose id is `bench-session-{i}`, last used SEEN_AGO seconds ago
//!   (default 0; 60 or more makes every session due its once-a-minute touch);
//! - `auth-bench hash-time COST RUNS THREADS`: THREADS threads hash RUNS times each at COST at
//!   once; prints the mean time of one hash, in ms. With one thread per core this is what each
//!   hash takes while every core hashes, as during a login storm.

use std::time::Instant;

use auth_service::auth::token;
use auth_service::db::{Db, Options, seed};

const CHUNK: usize = 100_000;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize| -> Result<usize, String> {
        let text = args
            .get(i)
            .ok_or("missing argument; see the doc comment of bench/tool.rs")?;
        text.parse().map_err(|e| format!("{text:?}: {e}"))
    };
    match args.first().map(String::as_str) {
        Some("seed") => {
            let path = args.get(1).ok_or("seed DB USERS")?;
            let users = number(2)?;
            let seen_ago = if args.len() > 3 { number(3)? as i64 } else { 0 };
            let cost = std::env::var("BENCH_COST").map_or(Ok(12), |c| c.parse::<u32>());
            let hash = bcrypt::hash("bench-password", cost.map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
            let options = Options {
                pool_size: 1,
                ..Options::default()
            };
            let db = Db::open(path, &options).map_err(|e| e.to_string())?;
            for first in (0..users).step_by(CHUNK) {
                let count = CHUNK.min(users - first);
                let digest = |i: usize| token::digest(&format!("bench-session-{i}"));
                db.write_blocking(|tx| seed::seed_users(tx, first, count, &hash, digest, seen_ago))
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        Some("hash-time") => {
            let (cost, runs, threads) = (number(1)? as u32, number(2)?.max(1), number(3)?.max(1));
            let start_line = std::sync::Arc::new(std::sync::Barrier::new(threads));
            let hashers: Vec<_> = (0..threads)
                .map(|_| {
                    let start_line = start_line.clone();
                    std::thread::spawn(move || {
                        start_line.wait();
                        let start = Instant::now();
                        for _ in 0..runs {
                            bcrypt::hash("bench-password", cost).map_err(|e| e.to_string())?;
                        }
                        Ok::<_, String>(start.elapsed().as_secs_f64() * 1000.0 / runs as f64)
                    })
                })
                .collect();
            let mut total = 0.0;
            for hasher in hashers {
                total += hasher.join().map_err(|_| "a hashing thread panicked")??;
            }
            println!("{:.2}", total / threads as f64);
            Ok(())
        }
        _ => Err(
            "usage: auth-bench seed DB USERS [SEEN_AGO] | auth-bench hash-time COST RUNS THREADS"
                .into(),
        ),
    }
}
