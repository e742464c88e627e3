//! The journey every fault test takes: an owner logs in while the storage is sound, the fault
//! bites under a burst of signups, the server is tried as its users would try it, the fault is
//! healed where it can be, and after a crash and a restart the file is checked row by row.

use std::path::Path;

use diesel::prelude::*;
use reqwest::StatusCode;
use rocket::tokio::task::JoinSet;
use sha2::Digest;

use crate::server::{Api, Limits, Server, integrity_check};

pub const PASSWORD: &str = "pw";
pub const OWNER: &str = "owner@example.com";

/// The owner's account and two sessions, made while the storage is sound.
pub struct Owner {
    pub session: String,
    pub second_session: String,
}

pub async fn owner(api: &Api) -> Owner {
    assert_eq!(api.register(OWNER, PASSWORD).await.status, StatusCode::OK);
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let answer = api.login(OWNER, PASSWORD).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        sessions.push(answer.session_id().expect("a session cookie"));
    }
    Owner {
        second_session: sessions.pop().unwrap(),
        session: sessions.pop().unwrap(),
    }
}

/// Emails sorted by how their signup was answered, and the request id of one refusal.
#[derive(Debug, Default)]
pub struct Signups {
    pub acknowledged: Vec<String>,
    pub refused: Vec<String>,
    pub refusal_id: Option<String>,
}

/// Signs up `count` new accounts named `<prefix><n>@example.com`, `concurrency` at a time. Every
/// answer must be a 200 or an honest 503; anything else fails the test.
pub async fn sign_up_burst(api: &Api, prefix: &str, count: usize, concurrency: usize) -> Signups {
    let mut signups = Signups::default();
    let mut burst = JoinSet::new();
    let mut next = 0;
    while next < count || !burst.is_empty() {
        while next < count && burst.len() < concurrency {
            let (api, email) = (api.clone(), format!("{prefix}{next}@example.com"));
            burst.spawn(async move { (api.register(&email, PASSWORD).await, email) });
            next += 1;
        }
        let (answer, email) = burst.join_next().await.unwrap().unwrap();
        match answer.status {
            StatusCode::OK => {
                assert_eq!(answer.json()["email"], email.as_str());
                signups.acknowledged.push(email);
            }
            _ => {
                answer.assert_unavailable();
                signups.refused.push(email);
                signups.refusal_id = answer.header("x-request-id").map(str::to_owned);
            }
        }
    }
    signups
}

/// The reset token a request got while the storage was failing, if it got one: it must then
/// be stored (checked after the restart).
pub type IssuedToken = Option<String>;

/// While the storage is failing: reads are served, and every write either is refused with an
/// honest 503 and changes nothing, or succeeds and is really done (a storage can still have
/// room for a small write when a larger one no longer fits). The server logs the burst's
/// refused signup at error level, with its cause. Signups made here join `signups`.
pub async fn every_write_is_done_or_refused(
    api: &Api,
    server: &Server,
    owner: &Owner,
    signups: &mut Signups,
) -> IssuedToken {
    let refusal_id = signups.refusal_id.clone().expect("the fault bit the burst");
    assert_eq!(api.root().await.status, StatusCode::OK);
    let profile = api.profile(&owner.session).await;
    assert_eq!(profile.status, StatusCode::OK, "{profile:?}");
    assert_eq!(profile.json()["email"], OWNER);

    let login = api.login(OWNER, PASSWORD).await;
    match login.status {
        StatusCode::OK => {
            let session = login.session_id().expect("a session cookie");
            assert_eq!(api.profile(&session).await.status, StatusCode::OK);
        }
        _ => {
            login.assert_unavailable();
            assert_eq!(
                login.session_id(),
                None,
                "no cookie for a session not stored"
            );
        }
    }

    let logout = api.logout(&owner.second_session).await;
    let after = api.profile(&owner.second_session).await.status;
    match logout.status {
        StatusCode::SEE_OTHER => assert_eq!(after, StatusCode::FORBIDDEN, "ended"),
        _ => {
            logout.assert_unavailable();
            assert_eq!(
                after,
                StatusCode::OK,
                "a refused logout leaves the session live"
            );
        }
    }

    let reset = api.request_reset(OWNER).await;
    let token = match reset.status {
        StatusCode::OK => Some(reset.json()["reset_token"].as_str().unwrap().to_owned()),
        _ => {
            reset.assert_unavailable();
            None
        }
    };

    a_page_signup_is_refused_with_an_error_page(api, signups).await;

    let log = server.log();
    let line = log
        .lines()
        .find(|line| line.contains(&refusal_id) && line.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line for {refusal_id} in:\n{log}"));
    assert!(
        ["disk", "full", "readonly", "I/O"]
            .iter()
            .any(|cause| line.contains(cause)),
        "the line names the cause: {line}"
    );
    token
}

/// Page signups the storage cannot take. A failing storage may still take a few (a write-ahead
/// log restarted by a checkpoint has room again until it fills), so the browser's journey is
/// tried until the first refusal, which must be the HTML error page with `Retry-After`. Every
/// signup the page acknowledged must be stored like any other.
async fn a_page_signup_is_refused_with_an_error_page(api: &Api, signups: &mut Signups) {
    const ATTEMPTS: usize = 200;
    for n in 0..ATTEMPTS {
        let email = format!("page{n}@example.com");
        let page = api.sign_up_page(&email).await;
        if page.status == StatusCode::SEE_OTHER {
            assert_eq!(page.header("location"), Some("/profile"), "{page:?}");
            signups.acknowledged.push(email);
            continue;
        }
        assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE, "{page:?}");
        assert!(page.header("retry-after").is_some());
        assert!(
            page.header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
        assert!(
            page.body
                .contains("Temporarily unavailable: nothing was changed"),
            "{}",
            page.body
        );
        signups.refused.push(email);
        return;
    }
    panic!("{ATTEMPTS} page signups were all stored on a failing storage");
}

diesel::table! {
    users (id) {
        id -> Integer,
        email -> Text,
    }
}

diesel::table! {
    account_tokens (token_hash) {
        token_hash -> Binary,
        user_id -> Integer,
        purpose -> Text,
    }
}

diesel::joinable!(account_tokens -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(account_tokens, users);

/// After the server is gone: the file passes `PRAGMA integrity_check`, holds every acknowledged
/// account and none that was refused (and the owner's reset token if one was issued), and a
/// restarted server logs every acknowledged account in.
pub async fn every_acknowledged_write_survives_a_restart(
    db: &Path,
    work: &Path,
    acknowledged: &[String],
    refused: &[String],
    token: IssuedToken,
) {
    assert_eq!(integrity_check(db), "ok");
    let mut conn = SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    let stored: std::collections::HashSet<String> = users::table
        .select(users::email)
        .load(&mut conn)
        .unwrap()
        .into_iter()
        .collect();
    if let Some(token) = token {
        let stored: Option<Vec<u8>> = account_tokens::table
            .inner_join(users::table)
            .filter(users::email.eq(OWNER))
            .filter(account_tokens::purpose.eq("reset"))
            .select(account_tokens::token_hash)
            .first(&mut conn)
            .optional()
            .unwrap();
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        assert_eq!(
            stored.as_deref(),
            Some(&digest[..]),
            "the issued reset token is stored"
        );
    }
    drop(conn);
    for email in acknowledged {
        assert!(
            stored.contains(email),
            "{email} was acknowledged but is not stored"
        );
    }
    for email in refused {
        assert!(!stored.contains(email), "{email} was refused but is stored");
    }

    let server = Server::start(db.to_str().unwrap(), work, Limits::default());
    let api = Api::new(&server);
    for email in acknowledged {
        let login = api.login(email, PASSWORD).await;
        assert_eq!(login.status, StatusCode::OK, "{email}: {login:?}");
    }
}
