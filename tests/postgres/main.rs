//! What only a real PostgreSQL server can show: TLS to the database, connection errors that
//! name their cause, instances migrating a fresh database at once, and several instances of
//! the real binary behind one database: sessions, resets and throttling across them, one
//! killed under load, and the database itself stopped under load.
//!
//! Ignored by plain `cargo test`: they need a server (`TEST_DATABASE_URL`, with `TEST_PG_CA`,
//! `TEST_PG_OTHER_CA` and `TEST_PG_CTL` for the outage). `.ci/run` starts a throwaway cluster
//! with `.ci/postgres.sh` and runs them one at a time (the outage stops the cluster):
//! `cargo test --test postgres -- --ignored --test-threads=1`.

#[path = "../common/server.rs"]
mod server;

use std::time::{Duration, Instant};

use auth_service::db::scratch::Scratch;
use auth_service::db::{Db, Options};
use diesel::prelude::*;
use reqwest::StatusCode;
use rocket::tokio;
use rocket::tokio::task::JoinSet;
use server::{Api, Limits, Server};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set; see README"))
}

/// `url` with its `key=value` query parameter replaced (or added).
fn with_param(url: &str, key: &str, value: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut params: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with(&format!("{key}=")))
        .map(str::to_owned)
        .collect();
    params.push(format!("{key}={value}"));
    format!("{base}?{}", params.join("&"))
}

fn open(url: &str) -> Result<Db, String> {
    Db::open(url, &Options::default()).map_err(|e| e.to_string())
}

#[test]
#[ignore = "needs PostgreSQL (TEST_DATABASE_URL); see README"]
fn connections_use_tls_verified_against_the_configured_ca() {
    let scratch = Scratch::new();
    let db = open(scratch.url()).expect("verify-full with the cluster's CA");
    #[derive(QueryableByName)]
    struct Ssl {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        ssl: bool,
    }
    let ssl: Ssl = diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result(&mut **db.conn().unwrap())
        .unwrap();
    assert!(ssl.ssl, "the connection is encrypted");

    let require = with_param(scratch.url(), "sslmode", "require");
    assert!(open(&require).is_ok(), "require: encrypted, not verified");

    let wrong_ca = with_param(scratch.url(), "sslrootcert", &env("TEST_PG_OTHER_CA"));
    let error = open(&wrong_ca)
        .err()
        .expect("a server our CA did not sign is refused");
    assert!(error.contains("certificate"), "{error}");
}

#[test]
#[ignore = "needs PostgreSQL (TEST_DATABASE_URL); see README"]
fn a_connection_error_names_its_cause() {
    let server = env("TEST_DATABASE_URL");
    let wrong_password = server.replace(":auth-test-password@", ":not-the-password@");
    let error = open(&wrong_password).err().unwrap();
    assert!(error.contains("password authentication failed"), "{error}");

    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed_port.local_addr().unwrap().port();
    drop(closed_port);
    let refused = format!("postgres://auth:x@127.0.0.1:{port}/auth?sslmode=disable");
    let error = open(&refused).err().unwrap();
    assert!(error.contains("refused"), "{error}");
    assert!(!error.contains("invalid connection url"), "{error}");
}

#[test]
#[ignore = "needs PostgreSQL (TEST_DATABASE_URL); see README"]
fn instances_starting_at_once_on_a_fresh_database_both_come_up() {
    let scratch = Scratch::new();
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = scratch.url().to_owned();
            std::thread::spawn(move || open(&url))
        })
        .collect();
    for start in starts {
        start.join().unwrap().expect("every instance comes up");
    }
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let db = open(scratch.url()).unwrap();
    let migrations: Count =
        diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
            .get_result(&mut **db.conn().unwrap())
            .unwrap();
    let written = std::fs::read_dir("migrations/postgres").unwrap().count();
    assert_eq!(migrations.n, written as i64, "each migration ran once");
}

/// Two instances of the real binary on one fresh schema, sharing a secret key as a deployment
/// must, with throttling on.
struct Cluster {
    a: Option<Server>,
    b: Server,
    _work: tempfile::TempDir,
    scratch: Scratch,
}

fn cluster(extra: &[(&str, &str)]) -> Cluster {
    let scratch = Scratch::new();
    let work = tempfile::tempdir().unwrap();
    let mut env = vec![
        (
            "ROCKET_SECRET_KEY",
            "hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk=",
        ),
        ("ROCKET_THROTTLE_ENABLED", "true"),
        ("ROCKET_THROTTLE_LOGIN_PER_ACCOUNT", "4"),
        ("ROCKET_DATABASE_TIMEOUT_SECS", "2"),
    ];
    env.extend_from_slice(extra);
    let limits = Limits {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Limits::default()
    };
    // The first instance migrates; the second finds the schema ready.
    let a = Server::start(scratch.url(), work.path(), limits.clone());
    let b = Server::start(scratch.url(), work.path(), limits);
    Cluster {
        a: Some(a),
        b,
        _work: work,
        scratch,
    }
}

#[rocket::async_test]
#[ignore = "needs PostgreSQL (TEST_DATABASE_URL); see README"]
async fn sessions_resets_and_throttling_hold_across_instances() {
    let cluster = cluster(&[]);
    let (a, b) = (Api::new(cluster.a.as_ref().unwrap()), Api::new(&cluster.b));
    assert_eq!(
        a.register("ann@example.com", "pw").await.status,
        StatusCode::OK
    );
    let login = b.login("ann@example.com", "pw").await;
    assert_eq!(login.status, StatusCode::OK);
    let session = login.session_id().unwrap();
    assert_eq!(a.profile(&session).await.json()["email"], "ann@example.com");
    assert_eq!(a.logout(&session).await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        b.profile(&session).await.status,
        StatusCode::FORBIDDEN,
        "ended everywhere"
    );

    let token = a.request_reset("ann@example.com").await.json()["reset_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let reset = b.update_password("ann@example.com", &token, "new").await;
    assert_eq!(
        reset.status,
        StatusCode::OK,
        "a link issued by A works on B"
    );
    assert_eq!(
        a.login("ann@example.com", "new").await.status,
        StatusCode::OK
    );

    for api in [&a, &b, &a, &b] {
        let guess = api.login("ann@example.com", "guess").await;
        assert_eq!(guess.status, StatusCode::UNAUTHORIZED);
    }
    for api in [&a, &b] {
        let locked = api.login("ann@example.com", "new").await;
        assert_eq!(
            locked.status,
            StatusCode::TOO_MANY_REQUESTS,
            "four failures across both"
        );
    }
}

/// Signs up `count` accounts `<prefix><n>@example.com` through `api`, `concurrency` at once;
/// returns the emails answered 200, and every other answer's status (`None`: no answer).
async fn signups(
    api: &Api,
    prefix: &str,
    count: usize,
    concurrency: usize,
) -> (Vec<String>, Vec<Option<StatusCode>>) {
    let mut acknowledged = Vec::new();
    let mut others = Vec::new();
    let mut running = JoinSet::new();
    for n in 0..count {
        if running.len() >= concurrency
            && let Some(done) = running.join_next().await
        {
            let (email, status) = done.unwrap();
            match status {
                Some(StatusCode::OK) => acknowledged.push(email),
                other => others.push(other),
            }
        }
        let (api, email) = (api.clone(), format!("{prefix}{n}@example.com"));
        running.spawn(async move {
            let status = api.try_register(&email, "pw").await;
            (email, status)
        });
    }
    while let Some(done) = running.join_next().await {
        let (email, status) = done.unwrap();
        match status {
            Some(StatusCode::OK) => acknowledged.push(email),
            other => others.push(other),
        }
    }
    (acknowledged, others)
}

/// Every one of `emails` has an account in the cluster's schema.
fn all_stored(cluster: &Cluster, emails: &[String]) {
    let db = open(cluster.scratch.url()).unwrap();
    diesel::table! { users (id) { id -> Integer, email -> Text, } }
    let stored: std::collections::HashSet<String> = users::table
        .select(users::email)
        .load(&mut **db.conn().unwrap())
        .unwrap()
        .into_iter()
        .collect();
    for email in emails {
        assert!(
            stored.contains(email),
            "{email} was acknowledged but is not stored"
        );
    }
}

#[rocket::async_test]
#[ignore = "needs PostgreSQL (TEST_DATABASE_URL); see README"]
async fn with_one_instance_killed_under_load_the_other_answers_every_request() {
    let mut cluster = cluster(&[("ROCKET_THROTTLE_ENABLED", "false")]);
    let (a, b) = (Api::new(cluster.a.as_ref().unwrap()), Api::new(&cluster.b));
    let on_b = tokio::spawn({
        let b = b.clone();
        async move { signups(&b, "b", 150, 8).await }
    });
    let on_a = tokio::spawn({
        let a = a.clone();
        async move { signups(&a, "a", 150, 8).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.a.take().unwrap().kill();
    let (from_b, b_failures) = on_b.await.unwrap();
    let (from_a, _) = on_a.await.unwrap();
    assert!(
        b_failures.is_empty(),
        "B answered every request: {b_failures:?}"
    );
    assert_eq!(from_b.len(), 150);
    assert!(cluster.b.is_running());
    all_stored(&cluster, &from_a);
    all_stored(&cluster, &from_b);
}

#[rocket::async_test]
#[ignore = "needs PostgreSQL (TEST_DATABASE_URL); see README"]
async fn with_the_database_stopped_requests_fail_fast_and_the_service_recovers_by_itself() {
    let pg_ctl = env("TEST_PG_CTL");
    let cluster = cluster(&[("ROCKET_THROTTLE_ENABLED", "false")]);
    let (a, b) = (Api::new(cluster.a.as_ref().unwrap()), Api::new(&cluster.b));
    assert_eq!(
        a.register("ann@example.com", "pw").await.status,
        StatusCode::OK
    );
    let session = b.login("ann@example.com", "pw").await.session_id().unwrap();
    let (before, _) = signups(&a, "before", 20, 4).await;
    assert_eq!(before.len(), 20);
    assert_eq!(a.ready().await.status, StatusCode::OK);

    let stop = std::process::Command::new("sh")
        .args(["-c", &format!("{pg_ctl} stop")])
        .status()
        .unwrap();
    assert!(stop.success(), "pg_ctl stop");
    for n in 0..10 {
        let api = if n % 2 == 0 { &a } else { &b };
        let started = Instant::now();
        let signup = api.register(&format!("during{n}@example.com"), "pw").await;
        let profile = api.profile(&session).await;
        assert!(
            started.elapsed() < Duration::from_secs(2 * 2 + 3),
            "no hang past database_timeout_secs: {:?}",
            started.elapsed()
        );
        for answer in [&signup, &profile] {
            answer.assert_unavailable();
        }
        let ready = api.ready().await;
        assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE, "{ready:?}");
        assert_eq!(ready.json(), serde_json::json!({ "status": "unavailable" }));
    }
    let start = std::process::Command::new("sh")
        .args(["-c", &format!("{pg_ctl} start")])
        .status()
        .unwrap();
    assert!(start.success(), "pg_ctl start");

    let deadline = Instant::now() + Duration::from_secs(30);
    let recovered = loop {
        let answer = b.profile(&session).await;
        if answer.status == StatusCode::OK || Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        recovered.status,
        StatusCode::OK,
        "recovers without a restart"
    );
    assert_eq!(b.ready().await.status, StatusCode::OK);
    let (after, others) = signups(&a, "after", 20, 4).await;
    assert!(others.is_empty(), "{others:?}");
    let mut acknowledged = before;
    acknowledged.extend(after);
    all_stored(&cluster, &acknowledged);
}
