//! One request guard for the account handlers of both surfaces ([`AccountRequest`]), and the
//! account flows they run through it. A flow calls the auth layer, hands the client its cookies
//! (a new session, an ended one) and returns a typed result; the API maps it to JSON and the
//! pages to a redirect or a page, each in one place, so the two surfaces cannot drift apart.

use rocket::request::{FromRequest, Outcome, Request};

use super::bodies::{
    Credential, Credentials, CurrentPassword, EmailChange, EmailInput, PasswordChange,
};
use super::cookies::Cookies;
use super::session::CurrentUser;
use crate::auth::{
    Account, Auth, AuthError, Caller, DeviceSession, Ended, Pending, ResetRequest, SecondFactor,
    SignedIn, Step,
};
use crate::config::Settings;

/// What an account handler works with: who is calling (address, request id, the session and
/// device its cookies present), the auth service, the cookie jar and the settings. The account
/// of the caller's session is looked up only when a flow asks ([`AccountRequest::account`]).
pub struct AccountRequest<'r> {
    pub caller: Caller,
    pub auth: &'r Auth,
    pub cookies: Cookies<'r>,
    pub settings: &'r Settings,
    req: &'r Request<'r>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for AccountRequest<'r> {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let state = req.rocket();
        Outcome::Success(AccountRequest {
            caller: req.guard::<Caller>().await.unwrap(),
            auth: state.state::<Auth>().expect("auth is managed"),
            cookies: req.guard::<Cookies<'r>>().await.unwrap(),
            settings: state.state::<Settings>().expect("settings are managed"),
            req,
        })
    }
}

/// Where a login stands for the client.
pub enum LogIn {
    /// Signed in (the session cookie is set): the account's email.
    Done(String),
    /// The password was right; a second factor completes the sign-in.
    SecondFactor(Pending),
}

impl AccountRequest<'_> {
    /// The account of the caller's live session: [`AuthError::NoSession`] without one, the
    /// lookup's error when it could not be done, and [`AuthError::EnrollmentRequired`] for a
    /// session that may only set up a second factor (`mfa_policy = "required"`). Looked up
    /// once per request, however many guards and flows ask.
    pub async fn account(&self) -> Result<Account, AuthError> {
        let account = self.enrolling_account().await?;
        match account.must_enroll() {
            true => Err(AuthError::EnrollmentRequired),
            false => Ok(account),
        }
    }

    /// The account of the caller's live session, also when the session may only set up a
    /// second factor: for the handlers that set one up (and show what is set up).
    pub async fn enrolling_account(&self) -> Result<Account, AuthError> {
        match self.req.guard::<CurrentUser>().await {
            Outcome::Success(CurrentUser(account)) => Ok(account),
            Outcome::Error((_, error)) => Err(error),
            Outcome::Forward(_) => Err(AuthError::NoSession),
        }
    }

    /// A mailed link's token as the client may see it: only when tokens are exposed (debug).
    fn exposed(&self, token: Option<String>) -> Option<String> {
        token.filter(|_| self.settings.expose_reset_token)
    }

    /// Signs in with a password and hands the client the new session, or the step that asks
    /// for a second factor.
    pub async fn log_in(&self, credentials: Credentials) -> Result<LogIn, AuthError> {
        let Credentials { email, password } = credentials;
        let sign_in = self.auth.sign_in();
        match sign_in.password(&self.caller, &email, &password).await? {
            Step::Session(signed_in) => Ok(LogIn::Done(self.signed_in(signed_in))),
            Step::Pending(pending) => Ok(LogIn::SecondFactor(pending)),
        }
    }

    /// Completes the pending sign-in step `token` with a second factor and hands the client
    /// the new session; the account's email.
    pub async fn second_factor(
        &self,
        token: &str,
        answer: SecondFactor<'_>,
    ) -> Result<String, AuthError> {
        let sign_in = self.auth.sign_in();
        let signed_in = sign_in.second_factor(&self.caller, token, answer).await?;
        Ok(self.signed_in(signed_in))
    }

    /// Signs in with a passkey alone (the ceremony `challenge_id`) and hands the client the
    /// new session; the account's email.
    pub async fn passkey_sign_in(
        &self,
        challenge_id: &str,
        credential: &Credential,
    ) -> Result<String, AuthError> {
        let sign_in = self.auth.sign_in();
        let signed_in = sign_in
            .passkey(&self.caller, challenge_id, &credential.0)
            .await?;
        Ok(self.signed_in(signed_in))
    }

    /// Hands the client its new session; the account's email.
    fn signed_in(&self, signed_in: SignedIn) -> String {
        let email = signed_in.account.email.clone();
        self.cookies.start_session(signed_in);
        email
    }

    /// Ends this browser's session here (if it has one) and drops its cookie.
    pub async fn log_out(&self) -> Result<(), AuthError> {
        let Some(session_id) = self.cookies.session_id() else {
            return Ok(());
        };
        match self.auth.sessions().end(&self.caller, &session_id).await {
            Ok(()) | Err(AuthError::NoSession) => {
                self.cookies.end_session();
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Asks for a reset link for `body.email` (the token itself only when tokens are exposed).
    pub async fn request_reset(&self, body: &EmailInput) -> Result<ResetRequest, AuthError> {
        let expose = self.settings.expose_reset_token;
        let links = self.auth.links();
        links.request_reset(&self.caller, &body.email, expose).await
    }

    pub async fn sessions(&self, account: &Account) -> Result<Vec<DeviceSession>, AuthError> {
        self.auth
            .accounts()
            .sessions_of(&self.caller, account)
            .await
    }

    /// Ends the account's session `id`; ending this very session also drops its cookie.
    pub async fn end_session(&self, account: &Account, id: &str) -> Result<Ended, AuthError> {
        let accounts = self.auth.accounts();
        let ended = accounts
            .end_session_by_id(&self.caller, account, id)
            .await?;
        if ended.current {
            self.cookies.end_session();
        }
        Ok(ended)
    }

    /// Ends every session of the account but this one; how many ended.
    pub async fn end_other_sessions(&self, account: &Account) -> Result<usize, AuthError> {
        self.auth
            .accounts()
            .end_other_sessions(&self.caller, account)
            .await
    }

    /// Changes the password: every other session ends and this client gets a new one.
    pub async fn change_password(
        &self,
        account: &Account,
        body: PasswordChange,
    ) -> Result<(), AuthError> {
        let (current, new) = (&body.current_password, body.new_password);
        let accounts = self.auth.accounts();
        let signed_in = accounts
            .change_password(&self.caller, account, current, new)
            .await?;
        self.cookies.start_session(signed_in);
        Ok(())
    }

    /// Mails a new verification link; its token as the client may see it.
    pub async fn send_verification(&self, account: &Account) -> Result<Option<String>, AuthError> {
        let token = self
            .auth
            .links()
            .send_verification(&self.caller, account)
            .await?;
        Ok(self.exposed(Some(token)))
    }

    /// Spends a verification token; the email it verified.
    pub async fn verify_email(&self, token: &str) -> Result<String, AuthError> {
        Ok(self
            .auth
            .links()
            .verify_email(&self.caller, token)
            .await?
            .email)
    }

    /// Mails a link that moves the account to `body.new_email`; its token as the client may
    /// see it (none when the address has an account: that one gets a notice instead).
    pub async fn request_email_change(
        &self,
        account: &Account,
        body: &EmailChange,
    ) -> Result<Option<String>, AuthError> {
        let (current, new_email) = (&body.current_password, &body.new_email);
        let accounts = self.auth.accounts();
        let token = accounts.request_email_change(&self.caller, account, current, new_email);
        Ok(self.exposed(token.await?))
    }

    /// Spends an email-change token; the account's new email.
    pub async fn confirm_email_change(&self, token: &str) -> Result<String, AuthError> {
        let moved = self.auth.links().confirm_email_change(&self.caller, token);
        Ok(moved.await?.email)
    }

    /// Deletes the account and drops the session cookie.
    pub async fn delete_account(
        &self,
        account: &Account,
        body: &CurrentPassword,
    ) -> Result<(), AuthError> {
        let current = &body.current_password;
        let accounts = self.auth.accounts();
        accounts
            .delete_account(&self.caller, account, current)
            .await?;
        self.cookies.end_session();
        Ok(())
    }
}
