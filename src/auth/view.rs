//! What the layers above see of an account: who it is and where its email stands, never its
//! password hash nor its tokens (those stay in the data layer's `User`).

use crate::db::User;

/// An account as the web layer and the operator's tools know it. Only the auth layer makes
/// one, from the row it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i32,
    pub email: String,
    /// When the account's email was shown to reach its owner (a verification link opened).
    pub email_verified_at: Option<i64>,
    pub created_at: i64,
    /// The credential version read with the account: a link issued for it works only while
    /// its credentials stay unchanged.
    credential_version: i32,
    /// Where `mfa_policy` requires a second factor: the session has none and the account has
    /// none set up, so the session may only set one up ([`Account::must_enroll`]).
    pub(super) must_enroll: bool,
    /// The session it was read for was made with a passkey in the last
    /// [`super::factors::RECENT_PASSKEY_SECS`]: factor changes need no password.
    pub(super) recent_passkey: bool,
    /// The session it was read for, where it was read for one.
    pub(super) session: Option<SessionFacts>,
}

/// What the OpenID Connect provider tells of the session an account was read for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SessionFacts {
    /// Its public id: the ID token's `sid`.
    pub public_id: String,
    /// When it was made: `auth_time`.
    pub created_at: i64,
    /// How: `amr`.
    pub amr: String,
}

impl Account {
    /// Whether the account's email is verified.
    pub fn is_verified(&self) -> bool {
        self.email_verified_at.is_some()
    }

    /// Whether the session this account was read for may only set up a second factor
    /// (`mfa_policy = "required"`, and the account has none yet).
    pub fn must_enroll(&self) -> bool {
        self.must_enroll
    }

    /// The credential version read with the account (the version a mailed link is issued
    /// under).
    pub(super) fn credential_version(&self) -> i32 {
        self.credential_version
    }
}

impl From<User> for Account {
    fn from(user: User) -> Account {
        Account {
            id: user.id,
            email: user.email,
            email_verified_at: user.email_verified_at,
            created_at: user.created_at,
            credential_version: user.credential_version,
            must_enroll: false,
            recent_passkey: false,
            session: None,
        }
    }
}
