//! What a second factor adds to a sign-in (`cargo bench --bench sign_in`): a password alone,
//! a password and an authenticator code, a password and a passkey, and a passkey alone, each
//! through the whole HTTP stack (Rocket's local client) on one SQLite database, bcrypt at the
//! release cost (12). Quote them as ratios to the password sign-in of the same run.
//!
//! And what the OpenID Connect provider's token endpoint costs beside that login: an
//! application's whole sign-in (the authorization request of a signed-in browser, then the code
//! exchange, an RS256 ID token signed), a refresh (rotation and a new ID token) and a userinfo
//! read.

use std::hint::black_box;

use auth_service::auth::totp;
use auth_service::db::schema::totp_credentials;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use diesel::prelude::*;
use rocket::http::{ContentType, Status};
use rocket::local::blocking::Client;
use rocket::serde::json::{Value, json};

#[path = "../tests/api/authenticator.rs"]
mod authenticator;

use authenticator::SoftPasskey;

const ORIGIN: &str = "http://localhost:5000";

struct Bench {
    client: Client,
    db: auth_service::db::Db,
    _dir: tempfile::TempDir,
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bench.db");
        let figment = auth_service::config::file_figment("debug")
            .merge(("database_url", path.to_str().unwrap()))
            .merge(("mail_outbox_dir", dir.path().join("mail")))
            .merge(("audit_log", dir.path().join("audit.log")))
            .merge(("admin_socket", ""))
            .merge(("log_level", "critical"))
            .merge(("bcrypt_cost", 12))
            .merge(("throttle_enabled", false));
        let client = Client::untracked(auth_service::build(figment)).unwrap();
        let db = auth_service::db::Db::open(path.to_str().unwrap(), &Default::default()).unwrap();
        Bench {
            client,
            db,
            _dir: dir,
        }
    }

    fn post(&self, path: &str, body: Value) -> Value {
        let response = self
            .client
            .post(path.to_owned())
            .header(ContentType::JSON)
            .body(body.to_string())
            .dispatch();
        assert_eq!(response.status().class(), Status::Ok.class(), "{path}");
        response.into_json().unwrap()
    }

    fn post_as(&self, path: &str, session: &str, body: Value) -> Value {
        let response = self
            .client
            .post(path.to_owned())
            .header(ContentType::JSON)
            .cookie(rocket::http::Cookie::new("session_id", session.to_owned()))
            .body(body.to_string())
            .dispatch();
        assert!(
            response.status().code < 300,
            "{path}: {}",
            response.status()
        );
        response.into_json().unwrap()
    }

    /// Signs `email` up and in: its session.
    fn account(&self, email: &str) -> String {
        self.post(
            "/users",
            json!({"email": email, "password": "bench-password"}),
        );
        let response = self
            .client
            .post("/sessions")
            .header(ContentType::JSON)
            .body(json!({"email": email, "password": "bench-password"}).to_string())
            .dispatch();
        response
            .cookies()
            .get("session_id")
            .unwrap()
            .value()
            .to_owned()
    }

    fn password(&self, email: &str) -> Value {
        self.post(
            "/sessions",
            json!({"email": email, "password": "bench-password"}),
        )
    }

    /// Lets the authenticator's codes be used again (outside the measured time).
    fn forget_used_codes(&self) {
        self.db
            .write_blocking(|tx| {
                Ok(diesel::update(totp_credentials::table)
                    .set(totp_credentials::last_step.eq(-1))
                    .execute(&mut **tx)?)
            })
            .unwrap();
    }
}

fn now_step() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    totp::step_at(now)
}

fn sign_ins(c: &mut Criterion) {
    let bench = Bench::new();
    bench.account("password@bench.test");

    let session = bench.account("totp@bench.test");
    let setup = bench.post_as(
        "/account/totp",
        &session,
        json!({"current_password": "bench-password"}),
    );
    let secret = data_encoding::BASE32_NOPAD
        .decode(setup["secret"].as_str().unwrap().as_bytes())
        .unwrap();
    let code = totp::code(&secret, now_step());
    bench.post_as("/account/totp/confirm", &session, json!({"code": code}));

    let mut passkey = SoftPasskey::new(ORIGIN);
    let session = bench.account("passkey@bench.test");
    let options = bench.post_as(
        "/account/passkeys/options",
        &session,
        json!({"current_password": "bench-password"}),
    );
    let credential = passkey.register(&options["publicKey"]);
    let body =
        json!({"challenge_id": options["challenge_id"], "credential": credential, "name": "bench"});
    bench.post_as("/account/passkeys", &session, body);

    let mut group = c.benchmark_group("sign-in");
    group.sample_size(20);
    group.bench_function("password", |b| {
        b.iter(|| black_box(bench.password("password@bench.test")))
    });
    group.bench_function("password + authenticator code", |b| {
        b.iter_batched(
            || bench.forget_used_codes(),
            |()| {
                let step = bench.password("totp@bench.test");
                let code = totp::code(&secret, now_step());
                let answer = json!({"mfa_token": step["mfa_token"], "code": code});
                black_box(bench.post("/sessions/mfa", answer))
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("password + passkey", |b| {
        b.iter(|| {
            let step = bench.password("passkey@bench.test");
            let token = step["mfa_token"].clone();
            let options = bench.post("/sessions/mfa/passkey/options", json!({"mfa_token": token}));
            let credential = passkey.sign_in(&options["publicKey"]);
            let answer = json!({"mfa_token": token, "credential": credential});
            black_box(bench.post("/sessions/mfa/passkey", answer))
        })
    });
    group.bench_function("passkey alone", |b| {
        b.iter(|| {
            let options = bench.post(
                "/sessions/passkey/options",
                json!({"email": "passkey@bench.test"}),
            );
            let credential = passkey.sign_in(&options["publicKey"]);
            let answer = json!({"challenge_id": options["challenge_id"], "credential": credential});
            black_box(bench.post("/sessions/passkey", answer))
        })
    });
    group.finish();
}

/// The authorization request of a signed-in browser (a first-party client: no consent page)
/// and the code exchange: the tokens.
fn application_sign_in(bench: &Bench, session: &str, client_id: &str, secret: &str) -> Value {
    let authorize = format!(
        "/oauth/authorize?response_type=code&client_id={client_id}&redirect_uri=https%3A%2F%2Fapp.bench.test%2Fcb\
         &scope=openid%20email%20offline_access&state=s&nonce=n\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
    );
    let response = bench
        .client
        .get(authorize)
        .cookie(rocket::http::Cookie::new("session_id", session.to_owned()))
        .dispatch();
    let location = response.headers().get_one("Location").unwrap().to_owned();
    let code = location
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    token(
        bench,
        client_id,
        secret,
        &format!(
            "grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Fapp.bench.test%2Fcb\
         &code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ),
    )
}

fn token(bench: &Bench, client_id: &str, secret: &str, body: &str) -> Value {
    let response = bench
        .client
        .post("/oauth/token")
        .header(ContentType::Form)
        .body(format!(
            "{body}&client_id={client_id}&client_secret={secret}"
        ))
        .dispatch();
    assert_eq!(response.status(), Status::Ok);
    response.into_json().unwrap()
}

fn token_endpoint(c: &mut Criterion) {
    let bench = Bench::new();
    let session = bench.account("oidc@bench.test");
    let auth = bench
        .client
        .rocket()
        .state::<auth_service::auth::Auth>()
        .unwrap();
    let registered = rocket::async_test(auth.oidc().clients().add(
        auth_service::auth::oidc::NewClient {
            name: "bench".into(),
            redirect_uris: vec!["https://app.bench.test/cb".into()],
            public: false,
            post_logout_uris: Vec::new(),
            skip_consent: true,
            scopes: Vec::new(),
            pkce_optional: false,
            id_token_alg: None,
        },
    ))
    .unwrap();
    let (id, secret) = (registered.client.client_id, registered.secret.unwrap());
    let tokens = application_sign_in(&bench, &session, &id, &secret);
    let refresh = std::cell::RefCell::new(tokens["refresh_token"].as_str().unwrap().to_owned());
    let access = tokens["access_token"].as_str().unwrap().to_owned();

    let mut group = c.benchmark_group("token endpoint");
    group.sample_size(20);
    group.bench_function("login (password)", |b| {
        b.iter(|| black_box(bench.password("oidc@bench.test")))
    });
    group.bench_function("application sign-in (authorize + code exchange)", |b| {
        b.iter(|| black_box(application_sign_in(&bench, &session, &id, &secret)))
    });
    group.bench_function("refresh", |b| {
        b.iter(|| {
            let body = format!(
                "grant_type=refresh_token&refresh_token={}",
                refresh.borrow()
            );
            let tokens = token(&bench, &id, &secret, &body);
            *refresh.borrow_mut() = tokens["refresh_token"].as_str().unwrap().to_owned();
            black_box(tokens)
        })
    });
    group.bench_function("userinfo", |b| {
        b.iter(|| {
            let response = bench
                .client
                .get("/oauth/userinfo")
                .header(rocket::http::Header::new(
                    "Authorization",
                    format!("Bearer {access}"),
                ))
                .dispatch();
            assert_eq!(response.status(), Status::Ok);
            black_box(response.into_string())
        })
    });
    group.finish();
}

criterion_group!(benches, sign_ins, token_endpoint);
criterion_main!(benches);
