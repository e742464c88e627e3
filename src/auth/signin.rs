//! Signing in, as steps: a credential checked by [`super::credentials`] becomes the sign-in's
//! next [`Step`]. Signing up signs in too: a new account's first session is stored with it.

use super::audit::Field;
use super::credentials::Proof;
use super::passkeys::{ONE_ANSWER, SIGN_IN, Used};
use super::sessions::{NewSession, SignedIn};
use super::throttle::{Reservation, Scope};
use super::view::Account;
use super::{Auth, AuthError, Caller, Email, Password, STEP_TTL_SECS, recovery, token, totp};
use crate::db::factors::{self, Enrolled};
use crate::db::sign_in_steps::{self, NewStep};
use crate::db::{DbError, Tx, User, now, sessions, throttle_events, users};
use crate::metrics::LoginOutcome;
use serde_json::Value;

/// Where a sign-in stands after a step: what the client is handed.
#[derive(Debug)]
pub enum Step {
    /// Signed in: the session to hand to the client.
    Session(SignedIn),
    /// The password was right and the account has a second factor: the step to complete.
    Pending(Pending),
}

/// A sign-in waiting for a second factor. Stored (its token's digest, the account, the methods
/// that may complete it) for [`STEP_TTL_SECS`]; the token is handed to the client in place of a
/// session, and [`SignIn::second_factor`] completes it once.
#[derive(Debug)]
pub struct Pending {
    pub email: String,
    /// The step's token: the only copy of the raw value.
    pub token: String,
    pub methods: Vec<Method>,
}

/// A second factor that completes a sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// A code of the authenticator app.
    Totp,
    /// One of the recovery codes.
    RecoveryCode,
    /// A passkey, after the password.
    Passkey,
    /// A passkey alone (user verification is its second factor); never a pending step's.
    PasskeyAlone,
}

impl Method {
    /// The method's name in the API (`methods`).
    pub fn name(self) -> &'static str {
        match self {
            Method::Totp => "totp",
            Method::RecoveryCode => "recovery_code",
            Method::Passkey | Method::PasskeyAlone => "passkey",
        }
    }

    /// What a session made with it records (OpenID's `amr`, with the password's `pwd`).
    fn amr(self) -> &'static str {
        match self {
            Method::Totp => "pwd otp",
            Method::RecoveryCode => "pwd rc",
            Method::Passkey => "pwd passkey",
            Method::PasskeyAlone => "passkey",
        }
    }
}

/// What the client answers a pending step with.
#[derive(Debug, Clone, Copy)]
pub enum SecondFactor<'a> {
    /// An authenticator app's code.
    Code(&'a str),
    RecoveryCode(&'a str),
    /// A passkey's `PublicKeyCredential`, answering the step's last passkey options.
    Passkey(&'a Value),
}

impl SecondFactor<'_> {
    fn method(self) -> Method {
        match self {
            SecondFactor::Code(_) => Method::Totp,
            SecondFactor::RecoveryCode(_) => Method::RecoveryCode,
            SecondFactor::Passkey(_) => Method::Passkey,
        }
    }
}

/// Wrong answers that end a pending step (each also counts as a failed login).
const MAX_ANSWERS: i32 = 5;
/// The purpose of a pending second-factor step.
const MFA: &str = "mfa";

/// What a sign-in from `device` (a trusted device's digest) is counted against: the device's
/// own budget, or the account's.
fn budget(email: &str, device: Option<[u8; 32]>) -> (Scope, String) {
    match device {
        Some(digest) => (Scope::LoginDevice, super::credentials::hex(&digest)),
        None => (Scope::LoginAccount, email.to_owned()),
    }
}

/// How a right answer is spent, in the transaction that starts the session.
enum Spend {
    /// An authenticator code of this time step.
    Step(i64),
    /// The recovery code of this digest.
    Code([u8; 32]),
    /// A passkey's verified use.
    Passkey(Used),
}

/// A pending step as its answer completes it.
struct Answered {
    digest: [u8; 32],
    purpose: &'static str,
    max_answers: i32,
    /// The trusted device the session opens on.
    device: Option<[u8; 32]>,
    method: Method,
}

/// Signing in and signing up.
#[derive(Clone, Copy)]
pub struct SignIn<'a>(pub(super) &'a Auth);

impl SignIn<'_> {
    /// Signs in with a password.
    ///
    /// The check is counted at the gate (`Credentials::password`, in `credentials.rs`). A
    /// success releases the count and forgives the account's (or the device's) failures, ends
    /// the session the client presented, and trusts the device. With `require_verified_email`,
    /// an account whose email is not verified gets no session: it hears so only after its
    /// password was right, and a new verification link goes out (within the account's hourly
    /// mail cap).
    pub async fn password(
        self,
        caller: &Caller,
        email: &Email,
        password: &str,
    ) -> Result<Step, AuthError> {
        let step = self.with_password(caller, email, password).await;
        self.count(&step);
        step
    }

    /// Counts a sign-in's outcome in the login metrics (a failure of the service is none).
    fn count<T>(self, result: &Result<T, AuthError>) {
        let outcome = match result {
            Ok(_) => LoginOutcome::ok,
            Err(
                AuthError::InvalidCredentials | AuthError::WrongCode | AuthError::PasskeyRefused,
            ) => LoginOutcome::failed,
            Err(AuthError::Throttled { .. }) => LoginOutcome::throttled,
            Err(AuthError::Busy) => LoginOutcome::busy,
            Err(AuthError::EmailNotVerified) => LoginOutcome::unverified,
            Err(_) => return,
        };
        self.0.metrics.login(outcome);
    }

    async fn with_password(
        self,
        caller: &Caller,
        email: &Email,
        password: &str,
    ) -> Result<Step, AuthError> {
        let auth = self.0;
        let _admission = auth.hasher.admit()?;
        let proof = auth
            .credentials()
            .password(caller, email, password, "login.failed")
            .await?;
        self.next_step(caller, email, proof).await
    }

    /// Turns a proven credential into the sign-in's next step, once the account passes
    /// `require_verified_email`: the session, or for an account with a second factor the
    /// pending step that asks for it.
    async fn next_step(
        self,
        caller: &Caller,
        email: &Email,
        proof: Proof,
    ) -> Result<Step, AuthError> {
        let auth = self.0;
        let proof = self.verified_email(caller, email, proof).await?;
        let user_id = proof.user.id;
        let enrolled = auth.db.run(move |c| factors::enrolled(c, user_id)).await?;
        if enrolled.any() {
            return self.pending(caller, proof, enrolled).await;
        }
        let Some(signed_in) = auth.sessions().start(caller, proof, None).await? else {
            auth.audit
                .record(caller, "login.failed", &[Field::Email(email.as_str())]);
            return Err(AuthError::InvalidCredentials);
        };
        let account = &signed_in.account;
        let fields = [Field::UserId(account.id), Field::Email(&account.email)];
        auth.audit.record(caller, "login", &fields);
        Ok(Step::Session(signed_in))
    }

    /// Stores the step that asks `proof`'s account for a second factor, provided its password
    /// is still the account's (a stale hash's replacement is written): the password check's
    /// count is released, but its budget's failures stay until the second factor is right.
    async fn pending(
        self,
        caller: &Caller,
        proof: Proof,
        enrolled: Enrolled,
    ) -> Result<Step, AuthError> {
        let auth = self.0;
        let methods: Vec<Method> = [
            (enrolled.totp, Method::Totp),
            (enrolled.recovery_codes > 0, Method::RecoveryCode),
            (enrolled.passkeys > 0, Method::Passkey),
        ]
        .into_iter()
        .filter_map(|(has, method)| has.then_some(method))
        .collect();
        let names = methods
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(" ");
        let token = token::generate();
        let digest = token::digest(&token);
        let Proof {
            user,
            password,
            reservation,
            device,
            ..
        } = proof;
        let user_id = user.id;
        let stored = auth
            .db
            .write(move |tx| {
                if !password.still_current(tx)? {
                    return Ok(false);
                }
                reservation.release(tx)?;
                let step = NewStep {
                    token_digest: &digest,
                    user_id,
                    purpose: MFA,
                    methods: &names,
                    device_digest: device.as_ref().map(|d| &d[..]),
                    ceremony: None,
                    expires_at: now() + STEP_TTL_SECS,
                };
                sign_in_steps::add_step(tx, &step)?;
                Ok(true)
            })
            .await?;
        let fields = [Field::UserId(user.id), Field::Email(&user.email)];
        if !stored {
            auth.audit.record(caller, "login.failed", &fields);
            return Err(AuthError::InvalidCredentials);
        }
        auth.audit
            .record(caller, "login.second_factor_asked", &fields);
        Ok(Step::Pending(Pending {
            email: user.email,
            token,
            methods,
        }))
    }

    /// Completes the pending step `token` with a second factor: the session. Each answer is
    /// counted at the gate as a login is (per account and per address); a wrong one keeps the
    /// count and counts against the step, which ends after five. A right one is spent (an
    /// authenticator code's time step, a recovery code) in the transaction that spends the
    /// step and starts the session, so of two concurrent uses of one code one signs in.
    pub async fn second_factor(
        self,
        caller: &Caller,
        token: &str,
        answer: SecondFactor<'_>,
    ) -> Result<SignedIn, AuthError> {
        let result = self.with_second_factor(caller, token, answer).await;
        self.count(&result);
        result
    }

    async fn with_second_factor(
        self,
        caller: &Caller,
        token: &str,
        answer: SecondFactor<'_>,
    ) -> Result<SignedIn, AuthError> {
        let auth = self.0;
        let digest = token::digest(token);
        let found = auth
            .db
            .run(move |c| sign_in_steps::find_step(c, &digest, MFA, now(), MAX_ANSWERS))
            .await?;
        let (step, user) = found.ok_or(AuthError::StepExpired)?;
        let device = step
            .device_hash
            .as_deref()
            .and_then(|d| <[u8; 32]>::try_from(d).ok());
        let reservation = self.gate(caller, &user.email, device).await?;
        let method = answer.method();
        let offered = step.methods.split(' ').any(|m| m == method.name());
        let spend = match answer {
            _ if !offered => None,
            SecondFactor::Code(code) => {
                let secret = auth.factors().totp_secret(user.id, true).await?;
                secret
                    .and_then(|secret| totp::matching_step(&secret, code, now()))
                    .map(Spend::Step)
            }
            SecondFactor::RecoveryCode(code) => Some(Spend::Code(recovery::digest(code))),
            SecondFactor::Passkey(credential) => match &step.ceremony {
                Some(state) => {
                    (auth.passkeys().verify(user.id, state, credential).await?).map(Spend::Passkey)
                }
                None => None,
            },
        };
        let answered = Answered {
            digest,
            purpose: MFA,
            max_answers: MAX_ANSWERS,
            device,
            method,
        };
        self.complete(caller, user, answered, spend, reservation)
            .await
    }

    /// The options of a passkey as the second factor of the pending step `token` (a new
    /// challenge replaces the step's last).
    pub async fn passkey_options(self, token: &str) -> Result<Value, AuthError> {
        let auth = self.0;
        let digest = token::digest(token);
        let found = auth
            .db
            .run(move |c| sign_in_steps::find_step(c, &digest, MFA, now(), MAX_ANSWERS))
            .await?;
        let (step, user) = found.ok_or(AuthError::StepExpired)?;
        if !step.methods.split(' ').any(|m| m == Method::Passkey.name()) {
            return Err(AuthError::NoSuchFactor);
        }
        let (options, state) =
            (auth.passkeys().challenge(user.id).await?).ok_or(AuthError::NoSuchFactor)?;
        let set = auth
            .db
            .write(move |tx| {
                sign_in_steps::set_ceremony(tx, &digest, MFA, &state, now(), MAX_ANSWERS)
            })
            .await?;
        match set {
            true => Ok(options),
            false => Err(AuthError::StepExpired),
        }
    }

    /// Signs in with a passkey alone (its user verification is the second factor): the
    /// ceremony `challenge_id` of [`super::Passkeys::sign_in_options`], answered once with
    /// `credential`, counted at the gate as a login. An unknown ceremony (a decoy's, an
    /// expired or answered one) is refused as a credential that does not verify.
    pub async fn passkey(
        self,
        caller: &Caller,
        challenge_id: &str,
        credential: &Value,
    ) -> Result<SignedIn, AuthError> {
        let result = self.with_passkey(caller, challenge_id, credential).await;
        self.count(&result);
        result
    }

    async fn with_passkey(
        self,
        caller: &Caller,
        challenge_id: &str,
        credential: &Value,
    ) -> Result<SignedIn, AuthError> {
        let auth = self.0;
        let digest = token::digest(challenge_id);
        let found = auth
            .db
            .run(move |c| sign_in_steps::find_step(c, &digest, SIGN_IN, now(), ONE_ANSWER))
            .await?;
        let (step, user) = found.ok_or(AuthError::PasskeyRefused)?;
        let reservation = self.gate(caller, &user.email, None).await?;
        if auth.require_verified_email && user.email_verified_at.is_none() {
            auth.release(reservation).await;
            return Err(AuthError::EmailNotVerified);
        }
        let state = step.ceremony.unwrap_or_default();
        let spend =
            (auth.passkeys().verify(user.id, &state, credential).await?).map(Spend::Passkey);
        let answered = Answered {
            digest,
            purpose: SIGN_IN,
            max_answers: ONE_ANSWER,
            device: None,
            method: Method::PasskeyAlone,
        };
        let signed_in = self
            .complete(caller, user, answered, spend, reservation)
            .await;
        match signed_in {
            Err(AuthError::WrongCode | AuthError::StepExpired) => Err(AuthError::PasskeyRefused),
            other => other,
        }
    }

    /// Counts a second step's answer at the gate as a login is counted: per address, and
    /// against the budget of the trusted `device` the password came from (with the ceiling of
    /// all the account's devices), or else the account's; so failures elsewhere cannot lock a
    /// trusted device out of its second step.
    async fn gate(
        self,
        caller: &Caller,
        email: &str,
        device: Option<[u8; 32]>,
    ) -> Result<Reservation, AuthError> {
        let auth = self.0;
        let mut counted = vec![
            budget(email, device),
            (Scope::LoginAddress, caller.address_key()),
        ];
        if device.is_some() {
            counted.push((Scope::LoginDevices, email.to_owned()));
        }
        auth.gate(counted)
            .await
            .map_err(|e| auth.throttled(caller, "login.throttled", e, Some(email)))
    }

    /// Completes the step `answered` of `user` with `spend` (`None`: a wrong answer), in one
    /// transaction: the factor's use recorded (a conditional write, so of two concurrent uses
    /// one passes), the step spent, the count released and the account's failures forgiven,
    /// the presented session ended and the new one stored. A wrong answer keeps the count and
    /// counts against the step.
    async fn complete(
        self,
        caller: &Caller,
        user: User,
        answered: Answered,
        spend: Option<Spend>,
        reservation: Reservation,
    ) -> Result<SignedIn, AuthError> {
        let auth = self.0;
        let Answered {
            digest,
            purpose,
            max_answers,
            device,
            method,
        } = answered;
        let new = NewSession::new(caller, device, auth.devices_per_account).made_by(method.amr());
        let (replaced, lifetimes, user_id) = (caller.session_digest(), auth.lifetimes, user.id);
        let email = user.email.clone();
        let outcome = auth
            .db
            .write(move |tx| {
                users::lock_account(tx, user_id)?;
                // Disabled by the operator since the step began: it ends as a voided step.
                if users::is_disabled(tx, user_id)? {
                    return Err(DbError::NotFound);
                }
                let spent = match &spend {
                    None => false,
                    Some(Spend::Step(step)) => factors::accept_step(tx, user_id, true, *step)?,
                    Some(Spend::Code(code)) => factors::spend_recovery_code(tx, user_id, code)?,
                    Some(Spend::Passkey(used)) => used.record(tx, user_id)?,
                };
                if !spent {
                    sign_in_steps::count_wrong_answer(tx, &digest)?;
                    return Ok(None);
                }
                let at = now();
                if sign_in_steps::spend_step(tx, &digest, purpose, at, max_answers)?.is_none() {
                    // The step went meanwhile (spent, voided): roll the factor's use back.
                    return Err(DbError::NotFound);
                }
                reservation.release(tx)?;
                let (scope, key) = budget(&email, device);
                throttle_events::clear_events(tx, scope.name(), &key)?;
                if let Some(replaced) = replaced {
                    sessions::delete_session(tx, &replaced, at, lifetimes)?;
                }
                new.store(tx, user_id, at)?;
                let left = factors::enrolled(tx, user_id)?.recovery_codes;
                Ok(Some((new, left)))
            })
            .await;
        let fields = [Field::UserId(user.id), Field::Method(method.name())];
        let (new, left) = match outcome {
            Ok(Some(stored)) => stored,
            Ok(None) => {
                auth.audit
                    .record(caller, "login.second_factor_failed", &fields);
                return Err(AuthError::WrongCode);
            }
            Err(DbError::NotFound) => return Err(AuthError::StepExpired),
            Err(error) => return Err(error.into()),
        };
        auth.audit.record(caller, "login", &fields);
        if method == Method::RecoveryCode && left <= recovery::LOW {
            auth.mailer.send_factor_notice(
                &user.email,
                "Your account is running out of recovery codes",
                &format!(
                    "A recovery code was just used to sign in to this account; {left} are \
                     left. Make a new set on your account's security page before they run out."
                ),
            );
        }
        Ok(new.signed_in(user.into()))
    }

    /// `proof`, unless `require_verified_email` refuses its account: then its count is
    /// released, a new verification link goes out, and the answer is
    /// [`AuthError::EmailNotVerified`].
    async fn verified_email(
        self,
        caller: &Caller,
        email: &Email,
        proof: Proof,
    ) -> Result<Proof, AuthError> {
        let auth = self.0;
        if !auth.require_verified_email || proof.user.email_verified_at.is_some() {
            return Ok(proof);
        }
        auth.release(proof.reservation).await;
        let fields = [Field::UserId(proof.user.id), Field::Email(email.as_str())];
        auth.audit.record(caller, "login.unverified", &fields);
        let account = Account::from(proof.user);
        auth.links()
            .resend_verification_quietly(caller, &account)
            .await;
        Err(AuthError::EmailNotVerified)
    }

    /// Creates an account as [`super::account::Accounts::register`] does, signing the client
    /// in: the account and its first session (the client becomes a trusted device) are stored
    /// in one transaction, so a signup the storage refuses leaves no account behind.
    pub async fn sign_up(
        self,
        caller: &Caller,
        email: &Email,
        password: Password,
    ) -> Result<SignedIn, AuthError> {
        let auth = self.0;
        let new = NewSession::new(caller, None, auth.devices_per_account);
        let store = move |tx: &mut Tx<'_>, user_id: i32, at| {
            new.store(tx, user_id, at)?;
            Ok(new)
        };
        let (account, new) = auth
            .accounts()
            .create(caller, email, password, store)
            .await?;
        Ok(new.signed_in(account))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::password::Hasher;
    use crate::auth::testing::{
        assert_session_of, auth, caller, email, log_in, password, register, reset_token,
        spend_reset,
    };
    use crate::db::Db;
    use crate::db::schema::sessions as sessions_table;
    use crate::db::testing::{conn, write};
    use diesel::prelude::*;
    use rocket::tokio::task::JoinHandle;
    use std::sync::mpsc::Sender;
    use std::time::{Duration, Instant};

    #[rocket::async_test]
    async fn a_signup_that_logs_in_stores_the_account_and_its_session_or_neither() {
        let (auth, db, _dir) = auth().await;
        let login = auth
            .sign_in()
            .sign_up(&caller(), &email("a@b.com"), password("pw"))
            .await
            .unwrap();
        assert!(login.device_token.is_some(), "the browser becomes trusted");
        assert_session_of(&auth, &login.session_id, login.account.id).await;

        // The storage refuses the session's row after taking the account's (on either backend).
        write(&db, |tx| {
            Ok(diesel::sql_query("DROP TABLE sessions").execute(&mut **tx)?)
        });
        let refused = auth
            .sign_in()
            .sign_up(&caller(), &email("c@d.com"), password("pw"))
            .await;
        assert!(refused.is_err(), "{refused:?}");
        let stored = crate::db::schema::users::table
            .select(crate::db::schema::users::email)
            .load::<String>(&mut **conn(&db))
            .unwrap();
        assert_eq!(stored, ["a@b.com"], "no account without its session");
    }

    #[rocket::async_test]
    async fn concurrent_signups_that_log_in_give_one_account_and_one_session() {
        let (auth, db, _dir) = auth().await;
        let (caller, address) = (caller(), email("a@b.com"));
        let signup = || auth.sign_in().sign_up(&caller, &address, password("pw"));
        let results = futures::future::join_all((0..6).map(|_| signup())).await;
        let made = results.iter().filter(|r| r.is_ok()).count();
        let taken = results
            .iter()
            .filter(|r| matches!(r, Err(AuthError::EmailTaken)))
            .count();
        assert_eq!((made, taken), (1, 5), "{results:?}");
        let sessions = sessions_table::table
            .count()
            .get_result::<i64>(&mut **conn(&db))
            .unwrap();
        assert_eq!(sessions, 1, "only the stored account got a session");
    }

    /// Waits (at most 10 s) until `done` holds.
    async fn until(done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out");
            rocket::tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Occupies `hasher`'s thread until the returned sender is used; returns once it does.
    async fn hold(hasher: &Hasher) -> Sender<()> {
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (started, running) = rocket::tokio::sync::oneshot::channel();
        let hasher = hasher.clone();
        rocket::tokio::spawn(async move {
            let work = move || {
                started.send(()).unwrap();
                released.recv().unwrap();
            };
            hasher.run(work).await
        });
        running.await.unwrap();
        release
    }

    /// Resets the password of `to` through `auth`, to `new`.
    async fn reset(auth: &Auth, to: &str, new: &str) {
        let token = reset_token(auth, to).await;
        spend_reset(auth, &token, None, new).await.unwrap();
    }

    fn session_count(db: &Db) -> i64 {
        sessions_table::table
            .count()
            .get_result(&mut **conn(db))
            .unwrap()
    }

    /// Registers a@b.com with the password "old", then starts a login with it on a copy of
    /// `auth` whose one hashing thread (bcrypt `cost`) is held first: that hasher, the sender
    /// that releases the hold, and the login.
    async fn login_behind_a_held_hasher(
        auth: &Auth,
        cost: u32,
    ) -> (Hasher, Sender<()>, JoinHandle<Result<SignedIn, AuthError>>) {
        register(auth, "a@b.com", "old").await;
        let slow = Auth {
            hasher: Hasher::new(cost, 1, 16, 0).unwrap(),
            ..auth.clone()
        };
        let hasher = slow.hasher.clone();
        let release = hold(&hasher).await;
        let login = rocket::tokio::spawn(async move {
            log_in(&slow, &caller(), &email("a@b.com"), "old").await
        });
        (hasher, release, login)
    }

    /// Asserts that a reset of a@b.com to "new" won over `login`, with the old password: the
    /// login failed, no session was started, and the new password signs in.
    async fn assert_the_reset_won(
        auth: &Auth,
        db: &Db,
        login: JoinHandle<Result<SignedIn, AuthError>>,
    ) {
        let result = login.await.unwrap();
        assert!(
            matches!(result, Err(AuthError::InvalidCredentials)),
            "{result:?}"
        );
        assert_eq!(session_count(db), 0);
        assert!(
            log_in(auth, &caller(), &email("a@b.com"), "new")
                .await
                .is_ok()
        );
    }

    #[rocket::async_test]
    async fn a_login_checked_while_the_password_is_reset_fails_and_starts_no_session() {
        let (auth, db, _dir) = auth().await;
        let (hasher, release, login) = login_behind_a_held_hasher(&auth, 4).await;
        until(|| hasher.queued() == 1).await; // it read the old hash and waits to check it
        reset(&auth, "a@b.com", "new").await;
        release.send(()).unwrap();
        assert_the_reset_won(&auth, &db, login).await;
    }

    #[rocket::async_test]
    async fn a_rehash_computed_while_the_password_is_reset_never_writes_the_old_one_back() {
        let (auth, db, _dir) = auth().await;
        // Cost 5, not the stored hash's 4: a right password is rehashed.
        let (hasher, first, login) = login_behind_a_held_hasher(&auth, 5).await;
        until(|| hasher.queued() == 1).await; // the verification waits
        let second = {
            let hasher = hasher.clone();
            rocket::tokio::spawn(async move { hold(&hasher).await })
        };
        until(|| hasher.queued() == 2).await; // and a second holder behind it
        first.send(()).unwrap();
        let second = second.await.unwrap(); // the verification ran; the second holds the thread
        until(|| hasher.queued() == 1).await; // the rehash waits behind it
        reset(&auth, "a@b.com", "new").await;
        second.send(()).unwrap();
        assert_the_reset_won(&auth, &db, login).await;
        assert!(
            log_in(&auth, &caller(), &email("a@b.com"), "old")
                .await
                .is_err()
        );
    }
}
