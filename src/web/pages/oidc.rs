//! The OpenID Connect provider's browser side: an application's sign-in request
//! (`GET /oauth/authorize`) through this service's login and second-factor pages and the
//! consent page, back to the application; RP-initiated logout (`/oauth/logout`); and the
//! owner's list of applications (`/account/applications`).
//!
//! The checked request waits in a private cookie, so it is bound to the browser that started
//! it. The consent form carries the CSRF token; every page here refuses framing (the site's
//! `frame-ancestors 'none'`). After a form (the consent, a login), the way back to the
//! application is a page that sends the browser on (`oauth_continue`): browsers apply the form's
//! `form-action 'self'` to the redirects that follow a submission.

use std::collections::HashMap;

use rocket::http::Header;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{Flash, Redirect};
use rocket::serde::json::json;
use rocket::{Responder, get, post};
use rocket_dyn_templates::Template;

use super::{Page, account_of};
use crate::auth::oidc::{Authorization, AuthorizeParams, ConsentView, Next, Refusal};
use crate::auth::{Account, AuthError};
use crate::time::readable;
use crate::web::csrf::CheckedForm;
use crate::web::error::{ErrorPage, Next as NextStep, PageFailure, Problem};

/// A request's query parameters, each decoded; a parameter sent twice refuses the request
/// (RFC 6749 3.1).
pub struct OAuthQuery(HashMap<String, String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for OAuthQuery {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let mut params = HashMap::new();
        for (name, value) in req.uri().query().into_iter().flat_map(|q| q.segments()) {
            if params.insert(name.to_owned(), value.to_owned()).is_some() {
                return Outcome::Success(OAuthQuery(HashMap::from([(
                    REPEATED.to_owned(),
                    name.to_owned(),
                )])));
            }
        }
        Outcome::Success(OAuthQuery(params))
    }
}

/// The key under which [`OAuthQuery`] notes a repeated parameter (no parameter has a space).
const REPEATED: &str = " repeated";

impl OAuthQuery {
    fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }

    fn repeated(&self) -> bool {
        self.0.contains_key(REPEATED)
    }

    fn authorize_params(mut self) -> AuthorizeParams {
        AuthorizeParams {
            client_id: self.take("client_id"),
            redirect_uri: self.take("redirect_uri"),
            response_type: self.take("response_type"),
            response_mode: self.take("response_mode"),
            scope: self.take("scope"),
            state: self.take("state"),
            nonce: self.take("nonce"),
            code_challenge: self.take("code_challenge"),
            code_challenge_method: self.take("code_challenge_method"),
            prompt: self.take("prompt"),
            max_age: self.take("max_age"),
            login_hint: self.take("login_hint"),
            request: self.take("request"),
            request_uri: self.take("request_uri"),
        }
    }
}

/// What an authorization step answers.
#[derive(Responder)]
pub enum Step {
    Page(Template),
    Flash(Flash<Redirect>),
    Client(ToClient),
}

/// `303 See Other` to an application's URL (its redirect URI with a code or an error, a
/// post-logout URI), never cached and never sending this page's address on.
#[derive(Responder)]
#[response(status = 303)]
pub struct ToClient {
    body: (),
    location: Header<'static>,
    cache: Header<'static>,
    referrer: Header<'static>,
}

impl ToClient {
    fn new(url: String) -> ToClient {
        ToClient {
            body: (),
            location: Header::new("Location", url),
            cache: Header::new("Cache-Control", "no-store"),
            referrer: Header::new("Referrer-Policy", "no-referrer"),
        }
    }
}

/// An application's sign-in request. A request that cannot be trusted to go back (unknown
/// client, unregistered redirect URI) shows an error page; any other refusal goes back to the
/// application with its error.
#[get("/oauth/authorize")]
pub async fn authorize(query: OAuthQuery, page: Page<'_>) -> Result<Step, ErrorPage> {
    if query.repeated() {
        return Err(refused("A parameter of the request was sent twice."));
    }
    match page.auth.oidc().authorize(query.authorize_params()).await {
        Ok(request) => {
            page.cookies.hold_authorization(&request);
            // `prompt=login`: whatever session this browser has, its owner logs in again
            // (asked first: a link elsewhere must not end a session).
            if request.login && !request.silent && page.layout.account().is_some() {
                return Ok(log_in_again(&page, &request));
            }
            go_on(&page, &request, None, false).await
        }
        Err(Refusal::Page(why)) => Err(refused(why)),
        Err(Refusal::Client(url)) => Ok(Step::Client(ToClient::new(url))),
    }
}

/// Back to the application's pending request once the browser has logged in.
#[get("/oauth/authorize/resume")]
pub async fn resume(page: Page<'_>) -> Result<Step, ErrorPage> {
    let request = pending(&page)?;
    go_on(&page, &request, None, true).await
}

/// The consent page's answer: `decision` is `allow` or `deny`.
#[post("/oauth/authorize", data = "<form>")]
pub async fn consent(form: CheckedForm, page: Page<'_>) -> Result<Step, ErrorPage> {
    let request = answered(&page, &form)?;
    let allow = form.fields.text("decision") == Ok("allow");
    go_on(&page, &request, Some(allow), true).await
}

/// The re-login page's answer: this session ends, and the login page comes back here.
#[post("/oauth/authorize/login", data = "<form>")]
pub async fn log_in_again_submit(form: CheckedForm, page: Page<'_>) -> Result<Step, ErrorPage> {
    answered(&page, &form)?;
    page.log_out().await?;
    Ok(log_in_first())
}

/// The pending request a form answers: the one it was shown for (its `request_id`), which a
/// request started since in another tab or by another site has not replaced.
fn answered(page: &Page<'_>, form: &CheckedForm) -> Result<Authorization, ErrorPage> {
    let request = pending(page)?;
    match form.fields.text("request_id") == Ok(request.id.as_str()) {
        true => Ok(request),
        false => Err(refused(
            "This form was for another sign-in request, started since in this browser. Start again from the application.",
        )),
    }
}

/// The page that asks a signed-in visitor to log in again (`prompt=login`, `max_age`).
fn log_in_again(page: &Page<'_>, request: &Authorization) -> Step {
    Step::Page(page.layout.render(
        "oauth_login_again",
        json!({"title": "Log in again", "request_id": request.id}),
    ))
}

/// The pending request this browser holds, or the error page that says there is none.
fn pending(page: &Page<'_>) -> Result<Authorization, ErrorPage> {
    page.cookies.authorization().ok_or_else(|| {
        refused("No application's sign-in is waiting here (it lasts 10 minutes). Start again from the application.")
    })
}

/// The next step of `request` for this browser: its login page, the consent page, or back to
/// the application (through a page that sends it on, after a form: `interstitial`).
async fn go_on(
    page: &Page<'_>,
    request: &Authorization,
    consent: Option<bool>,
    interstitial: bool,
) -> Result<Step, ErrorPage> {
    let account = match page.account().await {
        Ok(account) => Some(account),
        Err(AuthError::NoSession | AuthError::EnrollmentRequired) => None,
        Err(error) => return Err(error.into()),
    };
    let oidc = page.auth.oidc();
    match oidc
        .proceed(&page.caller, request, account.as_ref(), consent)
        .await?
    {
        // A session too old for the request (`max_age`): its owner is asked to log in again,
        // and the new session is the one the application is told of.
        Next::LogIn if account.is_some() => Ok(log_in_again(page, request)),
        Next::LogIn => Ok(log_in_first()),
        Next::Consent(view) => Ok(Step::Page(consent_page(
            page,
            request,
            account.as_ref(),
            &view,
        ))),
        Next::Redirect(url) => {
            page.cookies.drop_authorization();
            Ok(match interstitial {
                true => Step::Page(page.layout.render(
                    "oauth_continue",
                    json!({"title": "Back to the application", "url": url}),
                )),
                false => Step::Client(ToClient::new(url)),
            })
        }
    }
}

/// To the login page, which comes back here once the browser has logged in.
fn log_in_first() -> Step {
    let message = "Log in to continue to the application.";
    Step::Flash(Flash::warning(Redirect::to("/login"), message))
}

/// The consent page: which application, what it will see, where the browser goes back.
fn consent_page(
    page: &Page<'_>,
    request: &Authorization,
    account: Option<&Account>,
    view: &ConsentView,
) -> Template {
    let scopes: Vec<&str> = view.scopes.iter().filter_map(|s| scope_words(s)).collect();
    page.layout.render(
        "oauth_consent",
        json!({
            "title": format!("Sign in to {}", view.client_name),
            "client_name": view.client_name,
            "scopes": scopes,
            "redirect_host": view.redirect_host,
            "email": account.map(|a| a.email.clone()),
            "request_id": request.id,
        }),
    )
}

/// What a scope lets an application have, in people's words.
fn scope_words(scope: &str) -> Option<&'static str> {
    match scope {
        "openid" => Some("Know it is you (by an identifier, never your email or password)"),
        "email" => Some("See your email address and whether it is verified"),
        "offline_access" => Some("Stay signed in when you are not using it"),
        _ => None,
    }
}

/// The error page of a request that cannot go on.
fn refused(why: &'static str) -> ErrorPage {
    let next = &NextStep {
        href: "/",
        label: "Go to the home page",
    };
    ErrorPage::explained(Problem::bad_request(why), "This sign-in cannot go on", next)
}

/// RP-initiated logout. With an `id_token_hint` that names this browser's session, the
/// session ends at once; otherwise its owner is asked first (a link on another site cannot
/// log anyone out). Then back to the application's registered post-logout URI, if it gave
/// one.
#[get("/oauth/logout")]
pub async fn logout(mut query: OAuthQuery, page: Page<'_>) -> Result<Step, ErrorPage> {
    if query.repeated() {
        return Err(refused("A parameter of the request was sent twice."));
    }
    let params = LogoutParams {
        id_token_hint: query.take("id_token_hint"),
        client_id: query.take("client_id"),
        post_logout_redirect_uri: query.take("post_logout_redirect_uri"),
        state: query.take("state"),
    };
    log_out(&page, params, false).await
}

/// The logout confirmation's answer: the same parameters, from the form.
#[post("/oauth/logout", data = "<form>")]
pub async fn logout_confirmed(form: CheckedForm, page: Page<'_>) -> Result<Step, ErrorPage> {
    let field = |name| {
        form.fields
            .text(name)
            .ok()
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let params = LogoutParams {
        id_token_hint: field("id_token_hint"),
        client_id: field("client_id"),
        post_logout_redirect_uri: field("post_logout_redirect_uri"),
        state: field("state"),
    };
    log_out(&page, params, true).await
}

struct LogoutParams {
    id_token_hint: Option<String>,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

async fn log_out(
    page: &Page<'_>,
    params: LogoutParams,
    confirmed: bool,
) -> Result<Step, ErrorPage> {
    let account = page.layout.account();
    let decided = page
        .auth
        .oidc()
        .logout(
            params.id_token_hint.as_deref(),
            params.client_id.as_deref(),
            params.post_logout_redirect_uri.as_deref(),
            params.state.as_deref(),
            account,
        )
        .await;
    let logout = match decided {
        Ok(logout) => logout,
        Err(Refusal::Page(why)) => return Err(refused(why)),
        Err(Refusal::Client(url)) => return Ok(Step::Client(ToClient::new(url))),
    };
    if account.is_some() && !(confirmed || logout.confirmed) {
        return Ok(Step::Page(page.layout.render(
            "oauth_logout",
            json!({
                "title": "Log out?",
                "id_token_hint": params.id_token_hint,
                "client_id": params.client_id,
                "post_logout_redirect_uri": params.post_logout_redirect_uri,
                "state": params.state,
            }),
        )));
    }
    page.log_out().await?;
    Ok(match logout.redirect {
        Some(url) => Step::Client(ToClient::new(url)),
        None => Step::Flash(Flash::success(
            Redirect::to("/"),
            "You have been logged out.",
        )),
    })
}

/// The applications the owner let sign them in, each with a button that withdraws it.
#[get("/account/applications")]
pub async fn applications_page(page: Page<'_>) -> Result<Template, PageFailure> {
    let account = account_of(&page).await?;
    let oidc = page.auth.oidc();
    let applications = oidc.applications(&account).await.map_err(ErrorPage::from)?;
    let listed: Vec<_> = applications
        .iter()
        .map(|app| {
            json!({
                "client_id": app.client_id,
                "name": app.name,
                "scopes": app.scopes.iter().filter_map(|s| scope_words(s)).collect::<Vec<_>>(),
                "granted": readable(app.granted_at),
            })
        })
        .collect();
    Ok(page.layout.render(
        "applications",
        json!({"title": "Applications", "applications": listed}),
    ))
}

/// Withdraws an application's access (`client_id`): its tokens stop working at once.
#[post("/account/applications/revoke", data = "<form>")]
pub async fn revoke_submit(
    form: CheckedForm,
    page: Page<'_>,
) -> Result<Flash<Redirect>, PageFailure> {
    let account = account_of(&page).await?;
    let client_id = form.fields.text("client_id").unwrap_or("");
    let back = Redirect::to("/account/applications");
    match page
        .auth
        .oidc()
        .revoke_application(&page.caller, &account, client_id)
        .await
    {
        Ok(()) => Ok(Flash::success(
            back,
            "The application no longer has access.",
        )),
        Err(AuthError::NoSuchApplication) => {
            Ok(Flash::error(back, "That application had no access."))
        }
        Err(error) => Err(ErrorPage::from(error).into()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_scope_has_words() {
        for scope in crate::auth::oidc::SCOPES {
            assert!(super::scope_words(scope).is_some(), "{scope}");
        }
    }
}
