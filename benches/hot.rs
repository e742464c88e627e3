//! Micro-benchmarks of the hot functions (`cargo bench`): token digests, email normalization,
//! a session lookup on a populated database, and password verification at the default cost.

use std::hint::black_box;

use auth_service::auth::{Email, token};
use auth_service::db::sessions::{Lifetimes, find_session};
use auth_service::db::{Db, Options, now, seed};
use criterion::{Criterion, criterion_group, criterion_main};

const USERS: usize = 10_000;

fn digests(c: &mut Criterion) {
    let session_id = token::generate();
    c.bench_function("token digest (SHA-256 of a session id)", |b| {
        b.iter(|| token::digest(black_box(&session_id)))
    });
}

fn emails(c: &mut Criterion) {
    c.bench_function("email normalization", |b| {
        b.iter(|| Email::parse(black_box("  Ann.Example+tag@Mail.Example.COM ")))
    });
}

fn session_lookup(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let options = Options {
        pool_size: 1,
        ..Options::default()
    };
    let db = Db::open(path.to_str().unwrap(), &options).unwrap();
    let digest = |i: usize| token::digest(&format!("bench-session-{i}"));
    db.write_blocking(|tx| seed::seed_users(tx, 0, USERS, "not a hash", digest, 0))
        .unwrap();
    let mut conn = db.conn().unwrap();
    let lifetimes = Lifetimes {
        idle: 3600,
        absolute: 86400,
    };
    let mut i = 0;
    c.bench_function("session lookup with its user (10,000 users)", |b| {
        b.iter(|| {
            i = (i + 7919) % USERS;
            find_session(&mut conn, &digest(i), now(), lifetimes).unwrap()
        })
    });
}

fn password_verification(c: &mut Criterion) {
    let hash = bcrypt::hash("bench-password", 12).unwrap();
    let mut group = c.benchmark_group("password");
    group.sample_size(10);
    group.bench_function("bcrypt verify at cost 12", |b| {
        b.iter(|| bcrypt::verify(black_box("bench-password"), &hash).unwrap())
    });
    group.finish();
}

criterion_group!(
    benches,
    digests,
    emails,
    session_lookup,
    password_verification
);
criterion_main!(benches);
