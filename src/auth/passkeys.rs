//! Passkeys (WebAuthn, through webauthn-rs): registering one from a signed-in session, and the
//! checks that sign in with one (as a second factor after a password, or alone). Every ceremony
//! keeps its state server-side in a `sign_in_steps` row keyed by the digest of the id handed to
//! the client (single use, 5 minutes), never in anything the client could replay. User
//! verification is required, so a passkey counts as two factors on its own.
//!
//! The relying party (id and origin) comes from `public_base_url`, or `webauthn_rp_id` and
//! `webauthn_origin`; without either, passkeys are off ([`AuthError::PasskeysOff`]).

use serde_json::{Value, json};
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

use super::audit::Field;
use super::factors::Kept;
use super::view::Account;
use super::{Auth, AuthError, Caller, Email, STEP_TTL_SECS, token};
use crate::config::Settings;
use crate::db::passkeys::{self, StoredPasskey};
use crate::db::sign_in_steps::{self, NewStep};
use crate::db::{DbError, factors, now, users};

/// The purpose of a registration ceremony's step.
const REGISTER: &str = "passkey_register";
/// The purpose of a passwordless sign-in's step.
pub(super) const SIGN_IN: &str = "passkey";
/// Ceremonies answer once: a wrong answer ends them.
pub(super) const ONE_ANSWER: i32 = 1;
/// The longest name a passkey may be given.
const NAME_MAX: usize = 64;

/// A passkey as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyView {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A ceremony for the browser: the id that answers it, and the `publicKey` options for
/// `navigator.credentials.create()` or `.get()`.
#[derive(Debug, Clone)]
pub struct Ceremony {
    pub challenge_id: String,
    pub public_key: Value,
}

/// A passkey's verified use: what the transaction that spends it records.
pub(super) struct Used {
    credential_id: Vec<u8>,
    passkey: String,
    counter: i64,
}

impl Used {
    /// In the transaction that starts the session: records the use; `false` when the account
    /// no longer has the passkey.
    pub(super) fn record(&self, tx: &mut crate::db::Tx<'_>, user_id: i32) -> Result<bool, DbError> {
        let (id, passkey) = (&self.credential_id, &self.passkey);
        passkeys::record_use(tx, user_id, id, passkey, self.counter, now())
    }
}

/// The relying party: its checks, and its id (the options of a decoy carry it too).
pub(super) struct RelyingParty {
    webauthn: Webauthn,
    id: String,
}

/// The relying party of `settings`, or `None` when no origin is known (passkeys are off).
/// One derived from `public_base_url` that WebAuthn refuses (an IP address: browsers allow
/// only domains) turns passkeys off with a warning; one set with `webauthn_rp_id` or
/// `webauthn_origin` refuses the start.
pub(super) fn relying_party(settings: &Settings) -> Result<Option<RelyingParty>, String> {
    let explicit = settings.webauthn_origin.is_some() || settings.webauthn_rp_id.is_some();
    let origin = settings.webauthn_origin.as_deref();
    let Some(origin) = origin.or(settings.public_base_url.as_deref()) else {
        return Ok(None);
    };
    match build(origin, settings.webauthn_rp_id.as_deref()) {
        Ok(rp) => Ok(Some(rp)),
        Err(why) if !explicit => {
            log::warn!(target: "auth_service::config", "passkeys are off: {why}");
            Ok(None)
        }
        Err(why) => Err(why),
    }
}

/// The relying party `rp_id` (the origin's host unless given) at `origin`.
fn build(origin: &str, rp_id: Option<&str>) -> Result<RelyingParty, String> {
    let url = Url::parse(origin.trim_end_matches('/'))
        .map_err(|e| format!("webauthn_origin {origin:?}: {e}"))?;
    let host = url.host_str().unwrap_or_default();
    let rp_id = rp_id.unwrap_or(host).to_owned();
    if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
        return Err(format!(
            "the relying party of {origin} must be a domain, not an address"
        ));
    }
    let refused = |e| format!("passkeys cannot use the relying party {rp_id:?} at {origin}: {e}");
    let builder = WebauthnBuilder::new(&rp_id, &url).map_err(refused)?;
    let webauthn = builder.rp_name("Auth Service").build().map_err(refused)?;
    Ok(RelyingParty {
        webauthn,
        id: rp_id,
    })
}

/// The owner's passkeys, and the checks of a sign-in with one.
#[derive(Clone, Copy)]
pub struct Passkeys<'a>(pub(super) &'a Auth);

impl<'a> Passkeys<'a> {
    /// The relying party, or [`AuthError::PasskeysOff`].
    fn rp(self) -> Result<&'a RelyingParty, AuthError> {
        self.0.webauthn.as_deref().ok_or(AuthError::PasskeysOff)
    }

    /// The account's passkeys, the oldest first.
    pub async fn list(self, account: &Account) -> Result<Vec<PasskeyView>, AuthError> {
        let user_id = account.id;
        let stored = self
            .0
            .db
            .run(move |c| passkeys::passkeys_of(c, user_id))
            .await?;
        Ok(stored
            .into_iter()
            .map(|p| PasskeyView {
                id: p.id,
                name: p.name,
                created_at: p.created_at,
                last_used_at: p.last_used_at,
            })
            .collect())
    }

    /// Starts registering a passkey, given the current password: the creation options (the
    /// account's passkeys excluded, user verification required) and the ceremony's id.
    pub async fn start_registration(
        self,
        caller: &Caller,
        account: &Account,
        current: Option<&str>,
    ) -> Result<Ceremony, AuthError> {
        let auth = self.0;
        let rp = self.rp()?;
        let reservation = auth.factors().confirm(caller, account, current).await?;
        auth.release(reservation).await;
        let registered = self.stored(account.id).await?;
        let exclude = registered.iter().map(|p| p.credential_id.clone()).collect();
        let handle = self.user_handle(account.id);
        let (options, state) = rp
            .webauthn
            .start_passkey_registration(handle, &account.email, &account.email, Some(exclude))
            .map_err(|e| AuthError::Internal(e.to_string().into()))?;
        let state = serde_json::to_string(&state).map_err(|e| AuthError::Internal(e.into()))?;
        let public_key =
            serde_json::to_value(&options).map_err(|e| AuthError::Internal(e.into()))?;
        let challenge_id = self.store_ceremony(account.id, REGISTER, state).await?;
        Ok(Ceremony {
            challenge_id,
            public_key: public_key["publicKey"].clone(),
        })
    }

    /// Finishes registering: the browser's `credential` checked against the ceremony (spent
    /// either way), stored as `name`. A credential id registered already (to any account) is
    /// refused. Adding a factor ends the account's other sessions and is mailed.
    pub async fn finish_registration(
        self,
        caller: &Caller,
        account: &Account,
        challenge_id: &str,
        credential: &Value,
        name: &str,
    ) -> Result<PasskeyView, AuthError> {
        let auth = self.0;
        let rp = self.rp()?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > NAME_MAX {
            return Err(AuthError::BadPasskeyName);
        }
        let state = self
            .spend_ceremony(account.id, REGISTER, challenge_id)
            .await?;
        let state: PasskeyRegistration = parse(&state)?;
        let credential: RegisterPublicKeyCredential =
            serde_json::from_value(credential.clone()).map_err(|_| AuthError::PasskeyRefused)?;
        let passkey = rp
            .webauthn
            .finish_passkey_registration(&credential, &state)
            .map_err(|_| AuthError::PasskeyRefused)?;
        let stored = StoredPasskey {
            id: token::public_id(),
            credential_id: passkey.cred_id().to_vec(),
            user_id: account.id,
            name: name.to_owned(),
            passkey: serde_json::to_string(&passkey).map_err(|e| AuthError::Internal(e.into()))?,
            sign_count: 0,
            created_at: now(),
            last_used_at: None,
        };
        let (user_id, keep, row) = (account.id, Kept::of(caller, auth), stored.clone());
        let added = auth
            .db
            .write(move |tx| {
                users::lock_account(tx, user_id)?;
                passkeys::add_passkey(tx, &row)?;
                keep.end_the_rest(tx, user_id)
            })
            .await;
        match added {
            Ok(()) => {}
            Err(DbError::CredentialTaken) => return Err(AuthError::CredentialTaken),
            Err(error) => return Err(error.into()),
        }
        let fields = [Field::UserId(account.id), Field::Method("passkey")];
        auth.audit.record(caller, "passkey.added", &fields);
        auth.mailer.send_factor_notice(
            &account.email,
            "A passkey was added to your account",
            &format!(
                "A passkey named \"{}\" was added to this account. Every other device that \
                 was logged in has been logged out.",
                stored.name
            ),
        );
        Ok(PasskeyView {
            id: stored.id,
            name: stored.name,
            created_at: stored.created_at,
            last_used_at: None,
        })
    }

    /// Removes the passkey `id`, given the current password; refused where `mfa_policy`
    /// requires a second factor and it is the last. With no second factor left, the recovery
    /// codes go too. The other sessions end.
    pub async fn remove(
        self,
        caller: &Caller,
        account: &Account,
        id: &str,
        current: Option<&str>,
    ) -> Result<(), AuthError> {
        let auth = self.0;
        let reservation = auth.factors().confirm(caller, account, current).await?;
        let (user_id, keep, required) = (account.id, Kept::of(caller, auth), auth.mfa_required);
        let id_owned = id.to_owned();
        let removed = auth
            .db
            .write(move |tx| {
                users::lock_account(tx, user_id)?;
                reservation.release(tx)?;
                let mut left = factors::enrolled(tx, user_id)?;
                left.passkeys -= 1;
                if required && !left.any() {
                    let owned = passkeys::passkeys_of(tx, user_id)?
                        .iter()
                        .any(|p| p.id == id_owned);
                    return Ok(Err(match owned {
                        true => AuthError::LastFactor,
                        false => AuthError::NoSuchFactor,
                    }));
                }
                if !passkeys::delete_passkey(tx, user_id, &id_owned)? {
                    return Ok(Err(AuthError::NoSuchFactor));
                }
                if !left.any() {
                    factors::delete_recovery_codes(tx, user_id)?;
                }
                keep.end_the_rest(tx, user_id)?;
                Ok(Ok(()))
            })
            .await?;
        removed?;
        let fields = [Field::UserId(account.id), Field::Method("passkey")];
        auth.audit.record(caller, "passkey.removed", &fields);
        auth.mailer.send_factor_notice(
            &account.email,
            "A passkey was removed from your account",
            "A passkey of this account was removed. Every other device that was logged in has \
             been logged out.",
        );
        Ok(())
    }

    /// The request options of a sign-in with one of account `user_id`'s passkeys, and the
    /// ceremony's state to keep; `None` when it has none.
    pub(super) async fn challenge(
        self,
        user_id: i32,
    ) -> Result<Option<(Value, String)>, AuthError> {
        let rp = self.rp()?;
        let stored = self.stored(user_id).await?;
        let registered: Vec<Passkey> = stored
            .iter()
            .map(|p| parse(&p.passkey))
            .collect::<Result<_, _>>()?;
        if registered.is_empty() {
            return Ok(None);
        }
        let (options, state) = rp
            .webauthn
            .start_passkey_authentication(&registered)
            .map_err(|e| AuthError::Internal(e.to_string().into()))?;
        let state = serde_json::to_string(&state).map_err(|e| AuthError::Internal(e.into()))?;
        let options = serde_json::to_value(&options).map_err(|e| AuthError::Internal(e.into()))?;
        Ok(Some((options["publicKey"].clone(), state)))
    }

    /// Checks `credential` (a `PublicKeyCredential`) against the ceremony `state` for account
    /// `user_id`: the use to record, or `None` for an answer that does not verify (a wrong
    /// origin, another challenge, another account's credential, no user verification).
    pub(super) async fn verify(
        self,
        user_id: i32,
        state: &str,
        credential: &Value,
    ) -> Result<Option<Used>, AuthError> {
        let rp = self.rp()?;
        let state: PasskeyAuthentication = parse(state)?;
        let Ok(credential) = serde_json::from_value::<PublicKeyCredential>(credential.clone())
        else {
            return Ok(None);
        };
        let Ok(result) = rp
            .webauthn
            .finish_passkey_authentication(&credential, &state)
        else {
            return Ok(None);
        };
        if !result.user_verified() {
            return Ok(None);
        }
        let stored = self.stored(user_id).await?;
        let Some(row) = stored
            .iter()
            .find(|p| p.credential_id == result.cred_id().to_vec())
        else {
            return Ok(None);
        };
        let mut passkey: Passkey = parse(&row.passkey)?;
        passkey.update_credential(&result);
        Ok(Some(Used {
            credential_id: row.credential_id.clone(),
            passkey: serde_json::to_string(&passkey).map_err(|e| AuthError::Internal(e.into()))?,
            counter: i64::from(result.counter()),
        }))
    }

    /// The options of a sign-in without a password for `email`, and the ceremony's id. An
    /// email with no account (or no passkey) gets options of the same shape whose credential
    /// ids are decoys derived from the email and a server secret (the same at every request),
    /// and an id that no ceremony answers to: the answer does not tell whether it exists.
    pub async fn sign_in_options(self, email: &Email) -> Result<Ceremony, AuthError> {
        let auth = self.0;
        let rp = self.rp()?;
        let address = email.to_string();
        let user = auth
            .db
            .run(move |c| users::find_user_by_email(c, &address))
            .await?;
        if let Some(user) = user
            && let Some((public_key, state)) = self.challenge(user.id).await?
        {
            let challenge_id = self.store_ceremony(user.id, SIGN_IN, state).await?;
            return Ok(Ceremony {
                challenge_id,
                public_key,
            });
        }
        let mut challenge = [0u8; 32];
        getrandom::fill(&mut challenge).expect("the system's random source");
        let decoy = auth
            .keys
            .derive(format!("passkey decoy {email}").as_bytes());
        let b64 = |bytes: &[u8]| data_encoding::BASE64URL_NOPAD.encode(bytes);
        Ok(Ceremony {
            challenge_id: token::generate(),
            public_key: json!({
                "challenge": b64(&challenge),
                "timeout": 300000,
                "rpId": rp.id,
                "allowCredentials": [{"type": "public-key", "id": b64(&decoy)}],
                "userVerification": "required",
            }),
        })
    }

    /// The account's stored passkeys.
    async fn stored(self, user_id: i32) -> Result<Vec<StoredPasskey>, AuthError> {
        Ok(self
            .0
            .db
            .run(move |c| passkeys::passkeys_of(c, user_id))
            .await?)
    }

    /// The WebAuthn user handle of account `user_id`: stable, and telling nothing of it.
    fn user_handle(self, user_id: i32) -> Uuid {
        let derived = self
            .0
            .keys
            .derive(format!("passkey user {user_id}").as_bytes());
        Uuid::from_bytes(derived[..16].try_into().expect("16 of 32 bytes"))
    }

    /// Stores a ceremony's `state` for account `user_id`; its id, for the client.
    async fn store_ceremony(
        self,
        user_id: i32,
        purpose: &'static str,
        state: String,
    ) -> Result<String, AuthError> {
        let challenge_id = token::generate();
        let digest = token::digest(&challenge_id);
        self.0
            .db
            .write(move |tx| {
                let step = NewStep {
                    token_digest: &digest,
                    user_id,
                    purpose,
                    methods: "passkey",
                    device_digest: None,
                    ceremony: Some(&state),
                    expires_at: now() + STEP_TTL_SECS,
                };
                sign_in_steps::add_step(tx, &step)
            })
            .await?;
        Ok(challenge_id)
    }

    /// Spends account `user_id`'s ceremony `challenge_id` of `purpose`: its state.
    async fn spend_ceremony(
        self,
        user_id: i32,
        purpose: &'static str,
        challenge_id: &str,
    ) -> Result<String, AuthError> {
        let digest = token::digest(challenge_id);
        let spent = self
            .0
            .db
            .write(move |tx| sign_in_steps::spend_step(tx, &digest, purpose, now(), ONE_ANSWER))
            .await?;
        match spent {
            Some(step) if step.user_id == user_id => step.ceremony.ok_or(AuthError::StepExpired),
            _ => Err(AuthError::StepExpired),
        }
    }
}

/// A stored ceremony state or credential, read back.
fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, AuthError> {
    serde_json::from_str(text).map_err(|e| AuthError::Internal(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(public: Option<&str>, origin: Option<&str>) -> Settings {
        Settings {
            public_base_url: public.map(str::to_owned),
            webauthn_origin: origin.map(str::to_owned),
            ..Settings::default()
        }
    }

    #[test]
    fn the_relying_party_comes_from_the_public_origin_and_never_an_address() {
        let rp = relying_party(&settings(Some("https://auth.example.com/"), None));
        assert_eq!(rp.unwrap().unwrap().id, "auth.example.com");
        assert!(relying_party(&settings(None, None)).unwrap().is_none());
        let address = settings(Some("http://127.0.0.1:8000"), None);
        assert!(
            relying_party(&address).unwrap().is_none(),
            "off, with a warning"
        );
        let explicit = settings(Some("http://127.0.0.1:8000"), Some("http://10.0.0.1"));
        assert!(
            relying_party(&explicit).is_err(),
            "a set origin that cannot work refuses"
        );
        let parent = Settings {
            webauthn_rp_id: Some("example.com".into()),
            ..settings(Some("https://auth.example.com"), None)
        };
        assert_eq!(relying_party(&parent).unwrap().unwrap().id, "example.com");
    }
}
