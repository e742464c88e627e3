//! The auth layer's test fixture: an `Auth` on a fresh temporary database, cost 4, mail to an
//! outbox in the same temporary directory.

use super::{
    Account, AuditLog, Auth, AuthError, Caller, Email, Password, ResetRequest, SignedIn, Step,
};
use crate::config::{LinkPaths, LogFormat, Settings};
use crate::db::Db;
use crate::db::scratch::Scratch;
use crate::db::testing::temp_db;
use crate::mail::Mailer;

pub async fn auth() -> (Auth, Db, Scratch) {
    auth_with(|_| {}).await
}

/// [`auth`] with settings changed by `configure`.
pub async fn auth_with(configure: impl FnOnce(&mut Settings)) -> (Auth, Db, Scratch) {
    let (db, dir) = temp_db();
    let auth = auth_on(&db, &dir, configure).await;
    (auth, db, dir)
}

/// An `Auth` on `db`, with its outbox and audit log in `dir`, and settings changed by
/// `configure`.
pub async fn auth_on(db: &Db, dir: &Scratch, configure: impl FnOnce(&mut Settings)) -> Auth {
    let mut settings = Settings {
        bcrypt_cost: 4,
        password_min_length: 1,
        require_verified_email: false,
        mail_outbox_dir: dir.path().join("mail").to_str().unwrap().to_owned(),
        mfa_key: Some(super::SealingKeys::generate()),
        ..Settings::default()
    };
    configure(&mut settings);
    let audit_path = dir.path().join("audit.log");
    let audit = AuditLog::open(audit_path.to_str().unwrap(), LogFormat::Text).unwrap();
    let links = LinkPaths {
        reset: "/password/reset",
        verify: "/email/verify",
        email_change: "/email/confirm",
    };
    let mailer = Mailer::from_settings(&settings, links).unwrap();
    let metrics = crate::metrics::Metrics::new(true);
    Auth::new(db.clone(), &settings, audit, mailer, metrics)
        .await
        .unwrap()
}

pub fn caller() -> Caller {
    Caller::default()
}

pub fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

pub fn password(s: &str) -> Password {
    Password::parse(s).unwrap()
}

/// The password hash stored for the account `user_id`.
pub fn stored_hash(db: &Db, user_id: i32) -> String {
    let user = crate::db::users::find_user_by_id(&mut crate::db::testing::conn(db), user_id);
    user.unwrap().expect("the account exists").hashed_password
}

/// Signs in with a password, to the session it ends in (the account has no second factor).
pub async fn log_in(
    auth: &Auth,
    caller: &Caller,
    email: &Email,
    password: &str,
) -> Result<SignedIn, AuthError> {
    match auth.sign_in().password(caller, email, password).await? {
        Step::Session(signed_in) => Ok(signed_in),
        Step::Pending(pending) => panic!("a second factor was asked for: {pending:?}"),
    }
}

/// The account `address` with password `pw`, registered as a client would.
pub async fn register(auth: &Auth, address: &str, pw: &str) -> Account {
    auth.accounts()
        .register(&caller(), &email(address), password(pw))
        .await
        .expect("the account is registered")
}

/// The account `address` with password `pw`, registered, and a live session of it.
pub async fn with_session(auth: &Auth, address: &str, pw: &str) -> (Account, SignedIn) {
    let account = register(auth, address, pw).await;
    (account, signed_in(auth, address, pw).await)
}

/// A session of the account `address`, signed in with its right password `pw`.
pub async fn signed_in(auth: &Auth, address: &str, pw: &str) -> SignedIn {
    log_in(auth, &caller(), &email(address), pw)
        .await
        .expect("the right password signs in")
}

/// A reset token for `address`, an account that exists (issued at once, as with
/// `expose_reset_token`).
pub async fn reset_token(auth: &Auth, address: &str) -> String {
    let requested = auth
        .links()
        .request_reset(&caller(), &email(address), true)
        .await;
    match requested.unwrap() {
        ResetRequest::Issued(token) => token,
        other => panic!("a known account gets a token, not {other:?}"),
    }
}

/// Spends the reset token `token` for the new password `new`, as the reset form does: checked
/// against the email `owner` when the form names one.
pub async fn spend_reset(
    auth: &Auth,
    token: &str,
    owner: Option<&str>,
    new: &str,
) -> Result<Account, AuthError> {
    let owner = owner.map(email);
    auth.links()
        .spend_reset_token(&caller(), token, owner.as_ref(), password(new))
        .await
}

/// Asserts that `session_id` names a live session of the account `account_id`.
pub async fn assert_session_of(auth: &Auth, session_id: &str, account_id: i32) {
    let found = auth.sessions().account_of(session_id).await;
    assert_eq!(
        found.expect("the session is live").id,
        account_id,
        "the session's account"
    );
}

/// Asserts that `session_id` names no live session.
pub async fn assert_no_session(auth: &Auth, session_id: &str) {
    let found = auth.sessions().account_of(session_id).await;
    assert!(
        matches!(found, Err(AuthError::NoSession)),
        "the session is live: {found:?}"
    );
}

/// Asserts that `token` is no (longer a) valid reset token.
pub async fn assert_invalid_reset_token(auth: &Auth, token: &str) {
    let holder = auth.links().reset_token_holder(&caller(), token).await;
    assert!(
        matches!(holder, Err(AuthError::InvalidResetToken)),
        "the reset token still works: {holder:?}"
    );
}
