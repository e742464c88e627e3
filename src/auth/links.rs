//! Mailed links: a password reset, a verification of the account's email, a change of email.
//! Every purpose is issued, mailed and spent here, under one policy:
//!
//! - A link carries a single-use token, stored as its SHA-256 in `account_tokens`; an account
//!   has one live link per purpose, so a new one replaces the last ([`LinkRow::store`]).
//! - It works for its purpose's time to live ([`Links::link_ttl`]).
//! - Mails are capped per account: an owner's requests (verification, email change) by the
//!   account, reset requests by the email they name, known or not, so the cap tells nothing
//!   (`throttle_mail_per_account` an hour, [`Scope::AccountMail`], [`Scope::ResetEmail`]).
//! - A change of credentials voids every link ([`revoke_derived_trust`]).
//! - Every check of a token counts against the client's address until it is found right
//!   ([`Links::check_link_token`]); invalid, expired and used tokens are alike.
//!
//! A link is spent only by a POST (its page's button), never by opening it.

use super::audit::Field;
use super::password::Password;
use super::throttle::Scope;
use super::view::Account;
use super::{Auth, AuthError, Caller, Email, token};
use crate::db::account_tokens::{self, AccountToken, NewToken, Purpose};
use crate::db::{
    DbError, Tx, User, devices, factors, now, sessions, sign_in_steps, throttle_events, users,
};
use crate::metrics::ResetStage;

/// How long a verification link works: a day, as a signup's mail may be read the next morning.
pub const VERIFY_TTL_SECS: i64 = 24 * 60 * 60;

/// What became of a reset request.
#[derive(Debug, PartialEq, Eq)]
pub enum ResetRequest {
    /// A token was issued and mailed: its raw value.
    Issued(String),
    /// No account has that email: nothing was issued or sent.
    NoAccount,
    /// The email had its `throttle_mail_per_account` requests this hour: nothing was sent and
    /// the last token stands.
    Capped,
    /// The token will be issued and mailed after the answer, if an account has that email and
    /// its cap allows: the request itself made the same writes for any email.
    Deferred,
}

/// A link about to be issued: the raw token its mail carries, and what is stored of it.
pub(super) struct Link {
    pub raw: String,
    pub row: LinkRow,
}

/// What is stored of a link: its purpose, the digest of its token and its expiry.
#[derive(Debug, Clone, Copy)]
pub(super) struct LinkRow {
    purpose: Purpose,
    digest: [u8; 32],
    expires_at: i64,
}

impl LinkRow {
    /// Stores the link for account `user_id` in the caller's transaction, replacing the
    /// account's last link of its purpose. `credential_version` is the account's as the issuer
    /// read it (before it checked a password, where it did): a change since voids the link.
    pub(super) fn store(
        self,
        tx: &mut Tx<'_>,
        user_id: i32,
        credential_version: i32,
        new_email: Option<&str>,
    ) -> Result<(), DbError> {
        let new = NewToken {
            user_id,
            purpose: self.purpose,
            token_digest: &self.digest,
            new_email,
            expires_at: self.expires_at,
            credential_version,
        };
        account_tokens::issue(tx, &new)
    }
}

/// Ends what was derived from account `user_id`'s credentials, in the transaction that changes
/// them (a new password, a reset, an operator's, "log out other devices", a second factor
/// added or removed): every mailed link, every half-done sign-in, a started authenticator setup,
/// every OpenID Connect code and token given to an application,
/// and the trust of every device but `keep_device`. The credential version moves on, so a link
/// issued under the old one in a transaction that raced this one fails too. Sessions are the
/// caller's to end (some keep the caller's).
pub(super) fn revoke_derived_trust(
    tx: &mut Tx<'_>,
    user_id: i32,
    keep_device: Option<&[u8]>,
) -> Result<(), DbError> {
    users::advance_credential_version(tx, user_id)?;
    account_tokens::delete_all_of_user(tx, user_id)?;
    devices::delete_devices_of(tx, user_id, keep_device)?;
    sign_in_steps::delete_steps_of(tx, user_id)?;
    factors::delete_pending_totp(tx, user_id)?;
    super::oidc::revoke_tokens_of(tx, user_id)?;
    Ok(())
}

/// The name of a purpose's flow in audit events (`{flow}.throttled`, `{flow}.invalid_token`).
fn flow(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Reset => "reset",
        Purpose::Verify => "verification",
        Purpose::Email => "email_change",
    }
}

/// The answer to a token of `purpose` that is not (or no longer) valid.
fn invalid(purpose: Purpose) -> AuthError {
    match purpose {
        Purpose::Reset => AuthError::InvalidResetToken,
        Purpose::Verify | Purpose::Email => AuthError::InvalidLinkToken,
    }
}

/// Issuing, mailing and spending mailed links.
#[derive(Clone, Copy)]
pub struct Links<'a>(pub(super) &'a Auth);

impl Links<'_> {
    /// How long a link of `purpose` works: a day for a verification, `reset_token_ttl_secs`
    /// for a reset or a change of email.
    fn link_ttl(self, purpose: Purpose) -> i64 {
        match purpose {
            Purpose::Verify => VERIFY_TTL_SECS,
            Purpose::Reset | Purpose::Email => self.0.reset_token_ttl,
        }
    }

    /// The link a mail carries to the page `path` with `token`; a page shows it when tokens are
    /// exposed (debug).
    pub fn url(self, path: &str, token: &str) -> String {
        self.0.mailer.link(path, token)
    }

    /// A new link of `purpose`, working from now for its time to live.
    pub(super) fn new_link(self, purpose: Purpose) -> Link {
        let raw = token::generate();
        let row = LinkRow {
            purpose,
            digest: token::digest(&raw),
            expires_at: now() + self.link_ttl(purpose),
        };
        Link { raw, row }
    }

    /// Mails `link` to `to`, in the mail of its purpose.
    pub(super) fn mail_link(self, link: &Link, to: &str) {
        let auth = self.0;
        match link.row.purpose {
            Purpose::Reset => auth.mailer.send_reset_link(to, &link.raw),
            Purpose::Verify => auth.mailer.send_verification_link(to, &link.raw),
            Purpose::Email => auth.mailer.send_email_change_link(to, &link.raw),
        }
    }

    /// Checks a mailed link's token with `check`, in a write transaction, after counting the
    /// check against the client's address at the gate: a token found releases the count in the
    /// same transaction, a wrong one keeps it, so wrong tokens use up the budget and beyond it
    /// no token is checked. Audit events are named for `purpose`'s flow: `{flow}.throttled`,
    /// `{flow}.invalid_token`.
    async fn check_link_token<T, F>(
        self,
        caller: &Caller,
        purpose: Purpose,
        check: F,
    ) -> Result<T, AuthError>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<Option<T>, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let auth = self.0;
        let flow = flow(purpose);
        let reservation = auth
            .gate(vec![(Scope::LinkGuess, caller.address_key())])
            .await
            .map_err(|e| auth.throttled(caller, &format!("{flow}.throttled"), e, None))?;
        let found = auth
            .db
            .write(move |tx| {
                let found = check(tx)?;
                match found {
                    Some(_) => reservation.release(tx)?,
                    None => reservation.keep(),
                }
                Ok(found)
            })
            .await?;
        if found.is_none() {
            auth.audit
                .record(caller, &format!("{flow}.invalid_token"), &[]);
        }
        found.ok_or_else(|| invalid(purpose))
    }

    /// The live link `raw` of `purpose` and its account, without spending it (its page).
    async fn link_holder(
        self,
        caller: &Caller,
        raw: &str,
        purpose: Purpose,
    ) -> Result<(AccountToken, User), AuthError> {
        let (digest, at) = (token::digest(raw), now());
        self.check_link_token(caller, purpose, move |tx| {
            account_tokens::find(tx, &digest, purpose, at)
        })
        .await
    }

    /// Spends the link `raw` of `purpose` and does what it was for (`then`, in the same
    /// transaction; `None` undoes nothing but answers as an invalid token would).
    async fn spend_link<T, F>(
        self,
        caller: &Caller,
        raw: &str,
        purpose: Purpose,
        then: F,
    ) -> Result<T, AuthError>
    where
        F: FnOnce(&mut Tx<'_>, AccountToken, i64) -> Result<Option<T>, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let (digest, at) = (token::digest(raw), now());
        self.check_link_token(caller, purpose, move |tx| {
            match account_tokens::spend(tx, &digest, purpose, at)? {
                Some(spent) => then(tx, spent, at),
                None => Ok(None),
            }
        })
        .await
    }

    /// Answers a request for a reset link to `email`, counted against the client's address
    /// (beyond its limit, [`AuthError::Throttled`]) and, within its cap, against the email. With
    /// `show_token` (the debug profile's `expose_reset_token`) the token is issued now and
    /// returned; otherwise the work that depends on the account (the token, the mail) is done
    /// after the answer, so a request for a known email costs the request the same writes as
    /// one for an unknown email.
    pub async fn request_reset(
        self,
        caller: &Caller,
        email: &Email,
        show_token: bool,
    ) -> Result<ResetRequest, AuthError> {
        let auth = self.0;
        let by_address = vec![(Scope::Reset, caller.address_key())];
        let cap = (Scope::ResetEmail, email.to_string());
        let (counted, within_cap) = auth
            .gate_within(by_address, Some(cap))
            .await
            .map_err(|e| auth.throttled(caller, "reset.throttled", e, Some(email.as_str())))?;
        counted.keep();
        if !within_cap {
            let fields = [Field::Email(email.as_str())];
            auth.audit.record(caller, "reset.capped", &fields);
            return Ok(match show_token {
                true => ResetRequest::Capped,
                false => ResetRequest::Deferred,
            });
        }
        if show_token {
            return self.issue_reset_link(caller, email).await;
        }
        let (auth, caller, email) = (auth.clone(), caller.clone(), email.clone());
        tokio::spawn(async move {
            if let Err(error) = auth.links().issue_reset_link(&caller, &email).await {
                log::error!(target: "auth_service::reset", "a reset link was not issued: {error}");
            }
        });
        Ok(ResetRequest::Deferred)
    }

    /// Issues a reset link for the account `email`, replacing any earlier one, and mails it.
    async fn issue_reset_link(
        self,
        caller: &Caller,
        email: &Email,
    ) -> Result<ResetRequest, AuthError> {
        let auth = self.0;
        let link = self.new_link(Purpose::Reset);
        let (address, row) = (email.to_string(), link.row);
        let issued = auth
            .db
            .write(move |tx| {
                let Some(user) = users::lock_account_by_email(tx, &address)? else {
                    return Ok(None);
                };
                row.store(tx, user.id, user.credential_version, None)?;
                Ok(Some(user))
            })
            .await?;
        let Some(user) = issued else {
            let fields = [Field::Email(email.as_str())];
            auth.audit
                .record(caller, "reset.requested_unknown", &fields);
            return Ok(ResetRequest::NoAccount);
        };
        let fields = [Field::UserId(user.id), Field::Email(&user.email)];
        auth.audit.record(caller, "reset.requested", &fields);
        auth.metrics.reset(ResetStage::requested);
        self.mail_link(&link, &user.email);
        Ok(ResetRequest::Issued(link.raw))
    }

    /// The account a reset token belongs to, without spending the token.
    pub async fn reset_token_holder(
        self,
        caller: &Caller,
        reset_token: &str,
    ) -> Result<Account, AuthError> {
        let (_, holder) = self
            .link_holder(caller, reset_token, Purpose::Reset)
            .await?;
        Ok(holder.into())
    }

    /// Spends `reset_token` on a new password, in one transaction: the token is used up, every
    /// session of the account ends, and so do its other mailed links and the trust of all its
    /// devices; the email counts as verified (the link was opened from it); no one is logged
    /// in, and the account's failed logins are forgiven. `owner`, when given, is the email the
    /// token must belong to (the API names it; the emailed link does not). The token is checked
    /// before the hash, so an invalid one costs no bcrypt.
    pub async fn spend_reset_token(
        self,
        caller: &Caller,
        reset_token: &str,
        owner: Option<&Email>,
        password: Password,
    ) -> Result<Account, AuthError> {
        let auth = self.0;
        let _admission = auth.hasher.admit()?;
        let holder = self.reset_token_holder(caller, reset_token).await?;
        if owner.is_some_and(|owner| owner.as_str() != holder.email) {
            return Err(AuthError::InvalidResetToken);
        }
        let hashed = auth.hasher.hash(password).await?;
        let (digest, lifetimes) = (token::digest(reset_token), auth.lifetimes);
        let user = auth
            .db
            .write(move |tx| {
                let at = now();
                let Some(spent) = account_tokens::spend(tx, &digest, Purpose::Reset, at)? else {
                    return Ok(None);
                };
                let mut user = users::set_password_hash(tx, spent.user_id, &hashed)?;
                sessions::delete_sessions_of(tx, user.id, None, at, lifetimes)?;
                if user.email_verified_at.is_none() {
                    user = users::mark_email_verified(tx, user.id, at)?;
                }
                for scope in [Scope::LoginAccount, Scope::LoginDevices] {
                    throttle_events::clear_events(tx, scope.name(), &user.email)?;
                }
                revoke_derived_trust(tx, user.id, None)?;
                Ok(Some(user))
            })
            .await?
            .ok_or(AuthError::InvalidResetToken)?;
        let fields = [Field::UserId(user.id), Field::Email(&user.email)];
        auth.audit.record(caller, "reset.completed", &fields);
        auth.metrics.reset(ResetStage::completed);
        auth.mailer.send_password_changed(&user.email);
        Ok(user.into())
    }

    /// Mails a new verification link to the account's email (the last one stops working),
    /// within the account's hourly mail cap; returns the token.
    pub async fn send_verification(
        self,
        caller: &Caller,
        user: &Account,
    ) -> Result<String, AuthError> {
        if user.is_verified() {
            return Err(AuthError::AlreadyVerified);
        }
        self.gate_account_mail(caller, user).await?;
        self.issue_verification(caller, user).await
    }

    /// [`Links::send_verification`] for a login refused for want of a verified email: a
    /// failure (the cap reached, the database) is logged, never answered.
    pub(super) async fn resend_verification_quietly(self, caller: &Caller, user: &Account) {
        let sent = match self.gate_account_mail(caller, user).await {
            Ok(()) => self.issue_verification(caller, user).await.map(drop),
            Err(error) => Err(error),
        };
        match sent {
            Ok(()) | Err(AuthError::Throttled { .. }) => {}
            Err(error) => {
                log::warn!(target: "auth_service::account", "no verification link sent: {error}");
            }
        }
    }

    /// Counts a mail the owner asked for against the account's hourly cap.
    async fn gate_account_mail(self, caller: &Caller, user: &Account) -> Result<(), AuthError> {
        let auth = self.0;
        let email = Some(user.email.as_str());
        auth.gate(vec![(Scope::AccountMail, user.id.to_string())])
            .await
            .map_err(|e| auth.throttled(caller, "account_mail.throttled", e, email))?
            .keep();
        Ok(())
    }

    async fn issue_verification(
        self,
        caller: &Caller,
        user: &Account,
    ) -> Result<String, AuthError> {
        let auth = self.0;
        let link = self.new_link(Purpose::Verify);
        let (row, user_id, version) = (link.row, user.id, user.credential_version());
        auth.db
            .write(move |tx| row.store(tx, user_id, version, None))
            .await?;
        let fields = [Field::UserId(user.id), Field::Email(&user.email)];
        auth.audit.record(caller, "verification.sent", &fields);
        self.mail_link(&link, &user.email);
        Ok(link.raw)
    }

    /// The account a verification token belongs to, without spending it (its link's page).
    pub async fn verification_holder(
        self,
        caller: &Caller,
        raw: &str,
    ) -> Result<Account, AuthError> {
        let (_, holder) = self.link_holder(caller, raw, Purpose::Verify).await?;
        Ok(holder.into())
    }

    /// Spends a verification token: the account's email is verified.
    pub async fn verify_email(self, caller: &Caller, raw: &str) -> Result<Account, AuthError> {
        let auth = self.0;
        let user = self
            .spend_link(caller, raw, Purpose::Verify, |tx, spent, at| {
                Ok(Some(users::mark_email_verified(tx, spent.user_id, at)?))
            })
            .await?;
        let fields = [Field::UserId(user.id), Field::Email(&user.email)];
        auth.audit.record(caller, "email.verified", &fields);
        Ok(user.into())
    }

    /// The account an email-change token belongs to and the address it moves to, without
    /// spending the token (its link's page).
    pub async fn email_change_holder(
        self,
        caller: &Caller,
        raw: &str,
    ) -> Result<(Account, String), AuthError> {
        let (token, holder) = self.link_holder(caller, raw, Purpose::Email).await?;
        let new_email = token.new_email.ok_or(AuthError::InvalidLinkToken)?;
        Ok((holder.into(), new_email))
    }

    /// Spends an email-change token: the account moves to the new address in one update,
    /// which the unique index decides (of two accounts racing for one address, one wins; the
    /// other gets [`AuthError::EmailTaken`] and keeps its token). Its reset link and any
    /// verification link of the old address are void, and so are its applications' codes and
    /// tokens (OpenID Connect); the new address is verified.
    pub async fn confirm_email_change(
        self,
        caller: &Caller,
        raw: &str,
    ) -> Result<Account, AuthError> {
        let auth = self.0;
        let user = self
            .spend_link(caller, raw, Purpose::Email, |tx, spent, at| {
                let Some(new_email) = spent.new_email else {
                    return Ok(None);
                };
                let user = users::change_email(tx, spent.user_id, &new_email, at)?;
                for purpose in [Purpose::Reset, Purpose::Verify] {
                    account_tokens::delete_of_user(tx, user.id, purpose)?;
                }
                // Applications were told the old address: their tokens end with it.
                super::oidc::revoke_tokens_of(tx, user.id)?;
                Ok(Some(user))
            })
            .await?;
        let fields = [Field::UserId(user.id), Field::Email(&user.email)];
        auth.audit.record(caller, "email.changed", &fields);
        Ok(user.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testing::{
        assert_invalid_reset_token, assert_no_session, assert_session_of, auth, auth_on, auth_with,
        caller, email, log_in, register, reset_token, spend_reset, stored_hash, with_session,
    };
    use crate::db::testing::stored_links;

    /// The answer to a request from `caller` for a reset link to `address`.
    async fn requested(auth: &Auth, caller: &Caller, address: &str, show: bool) -> ResetRequest {
        let answer = auth
            .links()
            .request_reset(caller, &email(address), show)
            .await;
        answer.expect("the request is answered")
    }

    /// The account the live reset token `token` would reset.
    async fn holder(auth: &Auth, token: &str) -> Account {
        let holder = auth.links().reset_token_holder(&caller(), token).await;
        holder.expect("the reset token is valid")
    }

    /// How many reset links the outbox holds (signups mail verification links too).
    fn mail_count(dir: &crate::db::scratch::Scratch) -> usize {
        std::fs::read_dir(dir.path().join("mail"))
            .unwrap()
            .filter(|entry| {
                let text = std::fs::read_to_string(entry.as_ref().unwrap().path());
                text.unwrap_or_default()
                    .contains("Subject: Reset your password")
            })
            .count()
    }

    #[rocket::async_test]
    async fn no_reset_token_is_issued_for_an_unknown_email() {
        let (auth, _db, dir) = auth().await;
        let result = requested(&auth, &caller(), "nobody@b.com", true).await;
        assert_eq!(result, ResetRequest::NoAccount);
        assert_eq!(mail_count(&dir), 0, "nothing is sent");
    }

    #[rocket::async_test]
    async fn beyond_its_cap_an_email_gets_no_new_token_from_any_address() {
        let (auth, _db, dir) = auth_with(|s| s.throttle_mail_per_account = 2).await;
        register(&auth, "a@b.com", "pw").await;
        reset_token(&auth, "a@b.com").await;
        let last = reset_token(&auth, "a@b.com").await;
        let elsewhere = Caller {
            address: Some("192.0.2.9".parse().unwrap()),
            ..caller()
        };
        let capped = requested(&auth, &elsewhere, "a@b.com", true).await;
        assert_eq!(capped, ResetRequest::Capped);
        let hidden = requested(&auth, &elsewhere, "a@b.com", false).await;
        assert_eq!(
            hidden,
            ResetRequest::Deferred,
            "the same answer as any other"
        );
        assert_eq!(holder(&auth, &last).await.email, "a@b.com");
        rocket::tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(mail_count(&dir), 2, "nothing sent beyond the cap");
    }

    #[rocket::async_test]
    async fn a_deferred_request_issues_and_mails_the_token_after_the_answer() {
        let (auth, db, dir) = auth().await;
        register(&auth, "a@b.com", "pw").await;
        let answer = requested(&auth, &caller(), "a@b.com", false).await;
        assert_eq!(answer, ResetRequest::Deferred);
        let unknown = requested(&auth, &caller(), "x@b.com", false).await;
        assert_eq!(unknown, ResetRequest::Deferred);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while mail_count(&dir) < 1 && std::time::Instant::now() < deadline {
            rocket::tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(mail_count(&dir), 1, "one link, to the known account");
        assert_eq!(stored_links(&db, "reset"), 1);
    }

    #[rocket::async_test]
    async fn a_reset_token_works_once_and_ends_every_session() {
        let (auth, _db, _dir) = auth().await;
        let session_id = with_session(&auth, "a@b.com", "old").await.1.session_id;
        let reset_token = reset_token(&auth, "a@b.com").await;

        let owner = email("a@b.com");
        spend_reset(&auth, &reset_token, Some("a@b.com"), "new")
            .await
            .unwrap();
        assert!(log_in(&auth, &caller(), &owner, "new").await.is_ok());
        assert!(log_in(&auth, &caller(), &owner, "old").await.is_err());
        assert_no_session(&auth, &session_id).await;

        let again = spend_reset(&auth, &reset_token, Some("a@b.com"), "newer").await;
        assert!(matches!(again, Err(AuthError::InvalidResetToken)));
        assert!(log_in(&auth, &caller(), &owner, "new").await.is_ok());
    }

    #[rocket::async_test]
    async fn a_reset_token_is_valid_only_for_its_own_email() {
        let (auth, _db, _dir) = auth().await;
        register(&auth, "a@b.com", "a").await;
        register(&auth, "c@d.com", "c").await;
        let reset_token = reset_token(&auth, "a@b.com").await;
        let result = spend_reset(&auth, &reset_token, Some("c@d.com"), "x").await;
        assert!(matches!(result, Err(AuthError::InvalidResetToken)));
        assert!(
            log_in(&auth, &caller(), &email("c@d.com"), "c")
                .await
                .is_ok()
        );
    }

    #[rocket::async_test]
    async fn a_reset_by_token_alone_changes_the_holders_password() {
        let (auth, _db, _dir) = auth().await;
        register(&auth, "a@b.com", "old").await;
        let reset_token = reset_token(&auth, "a@b.com").await;
        let holder = holder(&auth, &reset_token).await;
        assert_eq!(holder.email, "a@b.com");
        let user = spend_reset(&auth, &reset_token, None, "new").await.unwrap();
        assert_eq!(user.id, holder.id);
        assert!(
            log_in(&auth, &caller(), &email("a@b.com"), "new")
                .await
                .is_ok()
        );
        assert_invalid_reset_token(&auth, &reset_token).await;
    }

    #[rocket::async_test]
    async fn a_new_reset_token_replaces_the_old_one() {
        let (auth, _db, _dir) = auth().await;
        register(&auth, "a@b.com", "a").await;
        let old = reset_token(&auth, "a@b.com").await;
        let new = reset_token(&auth, "a@b.com").await;
        let result = spend_reset(&auth, &old, Some("a@b.com"), "x").await;
        assert!(matches!(result, Err(AuthError::InvalidResetToken)));
        let spent = spend_reset(&auth, &new, Some("a@b.com"), "x").await;
        assert!(spent.is_ok());
    }

    #[rocket::async_test]
    async fn racing_resets_with_one_token_succeed_once() {
        let (auth, _db, _dir) = auth().await;
        register(&auth, "a@b.com", "a").await;
        let reset_token = reset_token(&auth, "a@b.com").await;
        let spend = |new| spend_reset(&auth, &reset_token, Some("a@b.com"), new);
        let (one, two, three) = rocket::tokio::join!(spend("one"), spend("two"), spend("three"));
        let wins = [one.is_ok(), two.is_ok(), three.is_ok()];
        assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
    }

    /// A reset token issued before reset links moved into `account_tokens` (a column on
    /// `users` then) is carried over by the migration and spent after it as any other.
    #[rocket::async_test]
    async fn a_live_reset_token_from_before_the_move_to_account_tokens_is_spent_after_it() {
        use crate::db::testing::{blob_literal, migrated_before};
        let dir = crate::db::scratch::Scratch::new();
        let (reset_token, session_id) = ("the-old-reset-token", "the-old-session");
        let (at, hashed) = (now(), bcrypt::hash("old", 4).unwrap());
        let reset = blob_literal(&dir, &token::digest(reset_token));
        let session = blob_literal(&dir, &token::digest(session_id));
        migrated_before(
            &dir,
            "reset_tokens_in_account_tokens",
            &format!(
                "INSERT INTO users (id, email, hashed_password, created_at, reset_token,
                     reset_token_expires_at, email_verified_at)
                     VALUES (7, 'a@b.com', '{hashed}', {at}, {reset}, {}, {at});
                 INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, public_id)
                     VALUES ({session}, 7, {at}, {at}, 'p1');",
                at + 3600
            ),
        );
        let db = crate::db::Db::open(dir.url(), &crate::db::Options::default()).unwrap();
        let auth = crate::auth::testing::auth_on(&db, &dir, |_| {}).await;
        assert_session_of(&auth, session_id, 7).await;
        assert_eq!(holder(&auth, reset_token).await.id, 7);

        let owner = email("a@b.com");
        let user = spend_reset(&auth, reset_token, Some("a@b.com"), "new")
            .await
            .unwrap();
        assert_eq!(user.id, 7);
        assert!(bcrypt::verify("new", &stored_hash(&db, user.id)).unwrap());
        assert_no_session(&auth, session_id).await;
        assert!(log_in(&auth, &caller(), &owner, "new").await.is_ok());
        assert!(matches!(
            log_in(&auth, &caller(), &owner, "old").await,
            Err(AuthError::InvalidCredentials)
        ));
        assert_invalid_reset_token(&auth, reset_token).await;
    }

    /// A reset asked for the address an account is leaving (its change of email commits
    /// meanwhile) issues nothing: no live link is left for the old mailbox. On PostgreSQL the
    /// issuing transaction waits for the move's row lock, then finds no account at the old
    /// address; on SQLite the move holds the one write lock.
    #[rocket::async_test]
    async fn a_reset_for_the_address_an_account_is_leaving_issues_nothing() {
        let (auth, db, dir) = auth().await;
        let id = register(&auth, "a@b.com", "pw").await.id;
        let (moved, moving) = tokio::sync::oneshot::channel();
        let mover = db.clone();
        let move_away = tokio::spawn(async move {
            let write = mover.write(move |tx| {
                users::change_email(tx, id, "new@b.com", now())?;
                moved.send(()).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(500));
                Ok(())
            });
            write.await
        });
        moving.await.unwrap();
        let asked = requested(&auth, &caller(), "a@b.com", true).await;
        move_away.await.unwrap().unwrap();
        assert_eq!(asked, ResetRequest::NoAccount);
        assert_eq!(mail_count(&dir), 0, "nothing is mailed to the old address");
    }

    /// A reset deletes every session of the account, also those past this instance's limits:
    /// under longer lifetimes (another instance, a raised setting) none comes back.
    #[rocket::async_test]
    async fn a_reset_leaves_no_session_that_longer_lifetimes_would_revive() {
        let (auth, db, dir) = auth().await;
        let (_, signed_in) = with_session(&auth, "a@b.com", "pw").await;
        let idle_since = now() - 2 * auth.lifetimes.idle;
        let digest = token::digest(&signed_in.session_id);
        crate::db::testing::set_last_seen(&db, &digest, idle_since);
        let reset_token = reset_token(&auth, "a@b.com").await;

        spend_reset(&auth, &reset_token, None, "new").await.unwrap();
        let patient = auth_on(&db, &dir, |s| {
            s.session_idle_secs = 10 * auth.lifetimes.idle
        })
        .await;
        assert_no_session(&patient, &signed_in.session_id).await;
    }
}
