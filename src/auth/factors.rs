//! Second factors of an account, as its owner manages them: an authenticator app (TOTP) and
//! recovery codes. Adding or removing a factor is a credential change: it needs the current
//! password, voids what the account's credentials vouched for (every other session, the trust
//! of other devices, mailed links, half-done sign-ins) and is mailed to the owner. Using a
//! factor to sign in is [`super::signin`]'s.

use super::audit::Field;
use super::links::revoke_derived_trust;
use super::throttle::Reservation;
use super::view::Account;
use super::{Auth, AuthError, Caller, recovery, totp};
use crate::db::sessions::Lifetimes;
use crate::db::{DbError, Tx, factors, now, passkeys, sessions, users};

/// How long a started authenticator setup waits for its confirming code.
pub const PENDING_TTL_SECS: i64 = 10 * 60;

/// How recent a passkey sign-in stands in for the current password when factors change.
pub const RECENT_PASSKEY_SECS: i64 = 5 * 60;

/// What an account has of second factors, as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaStatus {
    /// A confirmed authenticator app.
    pub totp: bool,
    /// Recovery codes not yet spent.
    pub recovery_codes_left: i64,
    /// Whether `mfa_policy` requires a second factor.
    pub required: bool,
}

/// An authenticator app's setup, shown to the owner until confirmed with a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpSetup {
    /// The secret in base32, to type in.
    pub secret: String,
    /// The `otpauth://` URI the QR code holds.
    pub otpauth_uri: String,
    /// The QR code, as inline SVG.
    pub qr_svg: String,
}

/// The owner's second factors.
#[derive(Clone, Copy)]
pub struct Factors<'a>(pub(super) &'a Auth);

impl Factors<'_> {
    /// What the account has of second factors.
    pub async fn status(self, account: &Account) -> Result<MfaStatus, AuthError> {
        let auth = self.0;
        let user_id = account.id;
        let enrolled = auth.db.run(move |c| factors::enrolled(c, user_id)).await?;
        Ok(MfaStatus {
            totp: enrolled.totp,
            recovery_codes_left: enrolled.recovery_codes,
            required: auth.mfa_required,
        })
    }

    /// Starts setting up an authenticator app, given the current password: a new secret, kept
    /// (sealed) as pending until a code confirms it; a pending one before it is replaced. An
    /// app already confirmed stays in use until the new one is.
    pub async fn start_totp(
        self,
        caller: &Caller,
        account: &Account,
        current: Option<&str>,
    ) -> Result<TotpSetup, AuthError> {
        let auth = self.0;
        let reservation = auth.factors().confirm(caller, account, current).await?;
        let secret = totp::new_secret();
        let (key_id, sealed) = auth.keys.seal(account.id, &secret);
        let user_id = account.id;
        auth.db
            .write(move |tx| {
                users::lock_account(tx, user_id)?;
                reservation.release(tx)?;
                factors::put_pending_totp(tx, user_id, &sealed, &key_id, now())
            })
            .await?;
        auth.audit
            .record(caller, "totp.setup_started", &[Field::UserId(account.id)]);
        Ok(self.setup(account, &secret))
    }

    /// Confirms the pending authenticator app with a current `code` (whose time step is then
    /// spent: it cannot sign in). It replaces the app before it; the other sessions end. When
    /// it is the account's first second factor, a set of recovery codes is made and returned.
    pub async fn confirm_totp(
        self,
        caller: &Caller,
        account: &Account,
        code: &str,
    ) -> Result<Option<Vec<String>>, AuthError> {
        let auth = self.0;
        let secret = self
            .totp_secret(account.id, false)
            .await?
            .ok_or(AuthError::NothingPending)?;
        let step = totp::matching_step(&secret, code, now()).ok_or(AuthError::WrongCode)?;
        let (user_id, keep) = (account.id, Kept::of(caller, auth));
        let (codes, digests) = recovery::new_set();
        let first = auth
            .db
            .write(move |tx| {
                users::lock_account(tx, user_id)?;
                let first = !factors::enrolled(tx, user_id)?.any();
                if !factors::confirm_totp(tx, user_id, step)? {
                    return Ok(None);
                }
                if first {
                    factors::replace_recovery_codes(tx, user_id, &digests, now())?;
                }
                keep.end_the_rest(tx, user_id)?;
                Ok(Some(first))
            })
            .await?
            .ok_or(AuthError::WrongCode)?;
        auth.audit
            .record(caller, "totp.enabled", &[Field::UserId(account.id)]);
        auth.mailer.send_factor_notice(
            &account.email,
            "An authenticator app was added to your account",
            "An authenticator app was set up as a second factor of this account. Every other \
             device that was logged in has been logged out.",
        );
        Ok(first.then_some(codes))
    }

    /// Removes the authenticator app, given the current password; refused where `mfa_policy`
    /// requires a second factor and it is the last. With no second factor left, the recovery
    /// codes go too. The other sessions end.
    pub async fn remove_totp(
        self,
        caller: &Caller,
        account: &Account,
        current: Option<&str>,
    ) -> Result<(), AuthError> {
        let auth = self.0;
        let reservation = auth.factors().confirm(caller, account, current).await?;
        let (user_id, keep, required) = (account.id, Kept::of(caller, auth), auth.mfa_required);
        let removed = auth
            .db
            .write(move |tx| {
                users::lock_account(tx, user_id)?;
                reservation.release(tx)?;
                let enrolled = factors::enrolled(tx, user_id)?;
                if !enrolled.totp {
                    return Ok(Err(AuthError::NoSuchFactor));
                }
                if required && !enrolled.without_totp().any() {
                    return Ok(Err(AuthError::LastFactor));
                }
                factors::delete_totp(tx, user_id)?;
                if !enrolled.without_totp().any() {
                    factors::delete_recovery_codes(tx, user_id)?;
                }
                keep.end_the_rest(tx, user_id)?;
                Ok(Ok(()))
            })
            .await?;
        removed?;
        auth.audit
            .record(caller, "totp.removed", &[Field::UserId(account.id)]);
        auth.mailer.send_factor_notice(
            &account.email,
            "An authenticator app was removed from your account",
            "The authenticator app of this account was removed. Every other device that was \
             logged in has been logged out.",
        );
        Ok(())
    }

    /// A new set of recovery codes, given the current password: the old set is void. Refused
    /// for an account without a second factor (there is nothing to recover).
    pub async fn new_recovery_codes(
        self,
        caller: &Caller,
        account: &Account,
        current: Option<&str>,
    ) -> Result<Vec<String>, AuthError> {
        let auth = self.0;
        let reservation = auth.factors().confirm(caller, account, current).await?;
        let (codes, digests) = recovery::new_set();
        let user_id = account.id;
        let made = auth
            .db
            .write(move |tx| {
                users::lock_account(tx, user_id)?;
                reservation.release(tx)?;
                if !factors::enrolled(tx, user_id)?.any() {
                    return Ok(false);
                }
                factors::replace_recovery_codes(tx, user_id, &digests, now())?;
                Ok(true)
            })
            .await?;
        if !made {
            return Err(AuthError::NoSecondFactor);
        }
        auth.audit.record(
            caller,
            "recovery_codes.replaced",
            &[Field::UserId(account.id)],
        );
        auth.mailer.send_factor_notice(
            &account.email,
            "New recovery codes were made for your account",
            "A new set of recovery codes was made for this account; the codes before it no \
             longer work.",
        );
        Ok(codes)
    }

    /// The operator's "lost device": every second factor of the account goes (authenticator
    /// app, recovery codes, passkeys), with every session and what the factors vouched for; the owner
    /// is told by mail. `false` when the account had none.
    pub(super) async fn disable_all(
        self,
        caller: &Caller,
        account: &Account,
    ) -> Result<bool, AuthError> {
        let auth = self.0;
        let (user_id, lifetimes) = (account.id, auth.lifetimes);
        let had = auth
            .db
            .write(move |tx| {
                users::lock_account(tx, user_id)?;
                let had = factors::enrolled(tx, user_id)?.any();
                factors::delete_totp(tx, user_id)?;
                factors::delete_recovery_codes(tx, user_id)?;
                passkeys::delete_passkeys_of(tx, user_id)?;
                revoke_derived_trust(tx, user_id, None)?;
                sessions::delete_sessions_of(tx, user_id, None, now(), lifetimes)?;
                Ok(had)
            })
            .await?;
        let fields = [Field::UserId(account.id), Field::Email(&account.email)];
        auth.audit.record(caller, "admin.mfa_disabled", &fields);
        auth.mailer.send_factor_notice(
            &account.email,
            "The second factors of your account were turned off",
            "An operator turned off every second factor of this account (its authenticator \
             app, recovery codes and passkeys), as asked after a lost device, and logged out every \
             device. Sign in with your password and set up a second factor again.",
        );
        Ok(had)
    }

    /// The owner's confirmation of a change to the account's factors: the current password,
    /// checked (and counted) as a login; or none from a session made with a passkey in the
    /// last [`RECENT_PASSKEY_SECS`] (its user verification is as good). The count to release.
    pub(super) async fn confirm(
        self,
        caller: &Caller,
        account: &Account,
        current: Option<&str>,
    ) -> Result<Reservation, AuthError> {
        let auth = self.0;
        match current.filter(|current| !current.is_empty()) {
            None if account.recent_passkey => Ok(Reservation::default()),
            None => Err(AuthError::CurrentPasswordRequired),
            Some(current) => {
                let _admission = auth.hasher.admit()?;
                let proof = auth.accounts().reauthenticate(caller, account, current);
                Ok(proof.await?.reservation)
            }
        }
    }

    /// The account's authenticator secret (confirmed or pending), opened.
    pub(super) async fn totp_secret(
        self,
        user_id: i32,
        confirmed: bool,
    ) -> Result<Option<Vec<u8>>, AuthError> {
        let auth = self.0;
        let stored = auth
            .db
            .run(move |c| factors::find_totp(c, user_id, confirmed))
            .await?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        if !confirmed && stored.created_at < now() - PENDING_TTL_SECS {
            return Ok(None); // abandoned: set up again, with the password
        }
        let secret = auth.keys.open(user_id, &stored.key_id, &stored.secret);
        let secret = secret.ok_or_else(|| {
            let why = format!(
                "the authenticator secret of account {user_id} does not open under key {} \
                 (is the mfa_key that sealed it in mfa_key or mfa_previous_keys?)",
                stored.key_id
            );
            AuthError::Internal(why.into())
        })?;
        Ok(Some(secret))
    }

    fn setup(self, account: &Account, secret: &[u8]) -> TotpSetup {
        let otpauth_uri = totp::otpauth_uri(&self.0.issuer, &account.email, secret);
        TotpSetup {
            secret: totp::base32(secret),
            qr_svg: totp::qr_svg(&otpauth_uri),
            otpauth_uri,
        }
    }
}

/// What a factor change keeps: the caller's own session and device.
#[derive(Clone, Copy)]
pub(super) struct Kept {
    session: Option<[u8; 32]>,
    device: Option<[u8; 32]>,
    lifetimes: Lifetimes,
}

impl Kept {
    pub(super) fn of(caller: &Caller, auth: &Auth) -> Kept {
        Kept {
            session: caller.session_digest(),
            device: caller.device_digest(),
            lifetimes: auth.lifetimes,
        }
    }

    /// In the change's transaction: every other session of the account ends, with what the
    /// old credentials vouched for (as "log out other devices" does).
    pub(super) fn end_the_rest(self, tx: &mut Tx<'_>, user_id: i32) -> Result<(), DbError> {
        let (keep, device) = (self.session, self.device);
        revoke_derived_trust(tx, user_id, device.as_ref().map(|d| &d[..]))?;
        let keep = keep.as_ref().map(|d| &d[..]);
        sessions::delete_sessions_of(tx, user_id, keep, now(), self.lifetimes)?;
        Ok(())
    }
}
