//! Real-browser journeys: Debian's Chromium driven through chromedriver (WebDriver) against the
//! app served on a free local port with a temporary database. Ignored by plain `cargo test`;
//! `.ci/run` installs Chromium and runs them with `cargo test --test browser -- --ignored`.
//! Screenshots of every page land in `target/browser-screenshots/`.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use thirtyfour::prelude::*;
use thirtyfour::{ChromiumLikeCapabilities, LoggingPrefsLogLevel};

/// The app on `127.0.0.1:<free port>`, stopped when dropped.
struct Served {
    base: String,
    /// The service's auth layer, for what only its operator does (registering applications).
    auth: auth_service::auth::Auth,
    shutdown: rocket::Shutdown,
    _dir: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.shutdown.clone().notify();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (at most 30 s) until something listens on `port`.
fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn serve() -> Served {
    serve_on("127.0.0.1").await
}

/// The app, reached by the browser as `host` (`localhost` for passkeys: WebAuthn refuses IP
/// addresses), listening on 127.0.0.1.
async fn serve_on(host: &str) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://{host}:{port}");
    let figment = auth_service::config::file_figment("debug")
        .merge(("address", "127.0.0.1"))
        .merge(("port", port))
        .merge(("database_url", dir.path().join("browser.db")))
        .merge(("mail_outbox_dir", dir.path().join("mail")))
        .merge(("audit_log", dir.path().join("audit.log")))
        .merge(("bcrypt_cost", 4))
        .merge(("log_level", "critical"))
        .merge(("admin_socket", ""))
        .merge(("public_base_url", &base));
    let rocket = auth_service::build(figment).ignite().await.unwrap();
    let auth = rocket.state::<auth_service::auth::Auth>().unwrap().clone();
    let shutdown = rocket.shutdown();
    rocket::tokio::spawn(rocket.launch());
    rocket::tokio::task::spawn_blocking(move || wait_for_port(port))
        .await
        .unwrap();
    Served {
        base,
        auth,
        shutdown,
        _dir: dir,
    }
}

/// Headless Chromium behind its own chromedriver; both end when dropped.
struct Browser {
    driver: Option<WebDriver>,
    chromedriver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        Browser::start_with(&[]).await
    }

    /// Chromium with JavaScript turned off for pages (WebDriver's own scripts still run).
    async fn start_without_scripts() -> Browser {
        Browser::start_with(&["--blink-settings=scriptEnabled=false"]).await
    }

    async fn start_with(extra: &[&str]) -> Browser {
        let port = free_port();
        let chromedriver =
            Command::new(std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into()))
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver is installed (apt-get install chromium-driver)");
        rocket::tokio::task::spawn_blocking(move || wait_for_port(port))
            .await
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(
            &std::env::var("CHROME_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into()),
        )
        .unwrap();
        for arg in [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--no-first-run",
            "--window-size=1280,900",
        ]
        .iter()
        .chain(extra)
        {
            caps.add_arg(arg).unwrap();
        }
        caps.add_arg(&format!("--user-data-dir={}", profile.path().display()))
            .unwrap();
        // Console errors, for the pages' checks (`browser_log`).
        caps.set_logging_prefs("browser", LoggingPrefsLogLevel::Severe)
            .unwrap();
        let driver = WebDriver::new(format!("http://127.0.0.1:{port}"), caps)
            .await
            .expect("chromedriver starts a Chromium session");
        Browser {
            driver: Some(driver),
            chromedriver,
            _profile: profile,
        }
    }

    fn driver(&self) -> &WebDriver {
        self.driver.as_ref().unwrap()
    }

    async fn quit(mut self) {
        if let Some(driver) = self.driver.take() {
            driver.quit().await.unwrap();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.chromedriver.kill();
        let _ = self.chromedriver.wait();
    }
}

fn screenshot_path(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}.png"))
}

async fn snap(driver: &WebDriver, name: &str) {
    driver.screenshot(&screenshot_path(name)).await.unwrap();
}

async fn fill(driver: &WebDriver, field: &str, text: &str) {
    let input = driver.find(By::Id(field)).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

async fn submit(driver: &WebDriver) {
    follow(driver, By::Css("main form button[type='submit']")).await;
}

/// How long the browser may take to load a page or show an element on a busy machine.
const PATIENCE: Duration = Duration::from_secs(10);

/// Clicks what `by` finds and waits until the page is replaced: every click here loads a page
/// (the pages run no scripts), and what the test reads next must come from the new one.
async fn follow(driver: &WebDriver, by: By) {
    let page = driver.find(By::Tag("html")).await.unwrap();
    driver.find(by).await.unwrap().click().await.unwrap();
    page.wait_until()
        .wait(PATIENCE, Duration::from_millis(50))
        .stale()
        .await
        .unwrap();
}

async fn path(driver: &WebDriver) -> String {
    let url = driver.current_url().await.unwrap();
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

/// Waits (at most 5 s) for the browser to reach `expected`, then asserts it did, showing the
/// page's heading and alert if not.
async fn assert_path(driver: &WebDriver, expected: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while path(driver).await != expected && std::time::Instant::now() < deadline {
        rocket::tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let actual = path(driver).await;
    if actual != expected {
        let body = driver
            .find(By::Tag("main"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        panic!("expected {expected}, at {actual}: {body}");
    }
}

async fn text_of(driver: &WebDriver, css: &str) -> String {
    driver
        .query(By::Css(css))
        .wait(PATIENCE, Duration::from_millis(50))
        .first()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

const EMAIL: &str = "ann@example.com";

#[rocket::async_test]
#[ignore = "needs chromium; see README"]
async fn the_whole_account_journey_works_in_chromium() {
    let app = serve().await;
    let browser = Browser::start().await;
    let d = browser.driver();

    // Home, then sign up (which logs in).
    d.goto(&app.base).await.unwrap();
    assert_eq!(text_of(d, "h1").await, "Sign in once, safely.");
    snap(d, "01-home").await;
    follow(d, By::LinkText("Create an account")).await;
    assert_path(d, "/signup").await;
    fill(d, "email", EMAIL).await;
    fill(d, "password", "first password").await;
    snap(d, "02-signup").await;
    submit(d).await;
    assert_path(d, "/profile").await;
    assert_eq!(text_of(d, ".details dd").await, EMAIL);
    assert_eq!(
        text_of(d, ".flash").await,
        "Welcome! Your account is ready."
    );
    snap(d, "03-profile").await;

    // Log out: home says so, once.
    follow(d, By::Css(".site-header form button")).await;
    assert_path(d, "/").await;
    assert_eq!(text_of(d, ".flash").await, "You have been logged out.");
    snap(d, "04-logged-out").await;

    // A wrong password, then the right one.
    follow(d, By::LinkText("Log in")).await;
    fill(d, "email", EMAIL).await;
    fill(d, "password", "not my password").await;
    submit(d).await;
    assert_eq!(
        text_of(d, "[role='alert']").await,
        "Wrong email or password"
    );
    let email_kept = d
        .find(By::Id("email"))
        .await
        .unwrap()
        .value()
        .await
        .unwrap();
    assert_eq!(email_kept.as_deref(), Some(EMAIL));
    let password_kept = d
        .find(By::Id("password"))
        .await
        .unwrap()
        .value()
        .await
        .unwrap();
    assert_eq!(password_kept.as_deref(), Some(""));
    snap(d, "05-login-failed").await;
    fill(d, "password", "first password").await;
    submit(d).await;
    assert_path(d, "/profile").await;
    let old_session = d.get_named_cookie("session_id").await.unwrap().value;

    // Forgotten password: request the link (shown in the debug profile) and open it.
    d.goto(&format!("{}/password/forgot", app.base))
        .await
        .unwrap();
    snap(d, "06-forgot").await;
    fill(d, "email", EMAIL).await;
    submit(d).await;
    assert_eq!(text_of(d, "h1").await, "Check your email");
    snap(d, "07-link-sent").await;
    follow(d, By::Id("reset-link")).await;
    assert_path(d, "/password/reset").await; // the token left the URL
    let account = d
        .find(By::Id("account"))
        .await
        .unwrap()
        .value()
        .await
        .unwrap();
    assert_eq!(account.as_deref(), Some(EMAIL));
    snap(d, "08-reset").await;
    fill(d, "new_password", "second password").await;
    submit(d).await;
    assert_path(d, "/login").await;
    assert!(
        text_of(d, ".flash")
            .await
            .starts_with("Your password has been changed.")
    );
    snap(d, "09-password-changed").await;

    // The old session no longer opens the profile, even presented again explicitly.
    d.add_cookie(Cookie::new("session_id", old_session))
        .await
        .unwrap();
    d.goto(&format!("{}/profile", app.base)).await.unwrap();
    assert_path(d, "/login").await;

    // The new password works; the old one does not.
    fill(d, "email", EMAIL).await;
    fill(d, "password", "first password").await;
    submit(d).await;
    assert_path(d, "/login").await;
    fill(d, "password", "second password").await;
    submit(d).await;
    assert_path(d, "/profile").await;
    assert_eq!(text_of(d, ".details dd").await, EMAIL);

    browser.quit().await;
}

#[rocket::async_test]
#[ignore = "needs chromium; see README"]
async fn pages_fit_a_phone_screen() {
    let app = serve().await;
    let browser = Browser::start().await;
    let d = browser.driver();
    d.set_window_rect(0, 0, 390, 844).await.unwrap();
    for (page, name) in [("/", "10-phone-home"), ("/login", "11-phone-login")] {
        d.goto(&format!("{}{page}", app.base)).await.unwrap();
        assert_fits(d, page).await;
        snap(d, name).await;
    }
    browser.quit().await;
}

/// Clicks the element `css` selects, and waits for the page it loads.
async fn click(driver: &WebDriver, css: &str) {
    follow(driver, By::Css(css)).await;
}

/// Asserts the page at the driver's current size has no sideways scroll.
async fn assert_fits(driver: &WebDriver, page: &str) {
    let width: i64 = driver
        .execute("return document.documentElement.scrollWidth;", vec![])
        .await
        .unwrap()
        .convert()
        .unwrap();
    let viewport: i64 = driver
        .execute("return window.innerWidth;", vec![])
        .await
        .unwrap()
        .convert()
        .unwrap();
    assert!(
        width <= viewport,
        "{page} scrolls sideways: {width} > {viewport}"
    );
}

/// Logs in to `email` as another device (curl's user agent), outside the browser.
async fn log_in_elsewhere(app: &Served, email: &str, password: &str) {
    api_call(app, "/sessions", email, password).await;
}

/// POSTs `email` and `password` to the API's `path` as curl would, and expects a 200.
async fn api_call(app: &Served, path: &str, email: &str, password: &str) {
    let body = format!(
        "email={}&password={}",
        email.replace('@', "%40"),
        password.replace(' ', "+")
    );
    let response = reqwest::Client::new()
        .post(format!("{}{path}", app.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("User-Agent", "curl/8.5.0")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK, "{path}");
}

#[rocket::async_test]
#[ignore = "needs chromium; see README"]
async fn account_self_service_works_in_chromium() {
    let app = serve().await;
    let browser = Browser::start().await;
    let d = browser.driver();

    d.goto(&format!("{}/signup", app.base)).await.unwrap();
    fill(d, "email", EMAIL).await;
    fill(d, "password", "first password").await;
    submit(d).await;
    assert_path(d, "/profile").await;
    assert_eq!(text_of(d, ".badge-warn").await, "Not verified");

    // Verify the email: the link's page spends nothing until its button is pressed.
    click(d, "#send-verification").await;
    assert_eq!(text_of(d, "h1").await, "Check your email");
    snap(d, "12-verification-sent").await;
    click(d, "#verify-link").await;
    assert_path(d, "/email/verify").await;
    assert_eq!(text_of(d, "h1").await, "Verify your email");
    snap(d, "13-verify-email").await;
    submit(d).await;
    assert_path(d, "/profile").await;
    assert_eq!(
        text_of(d, ".flash").await,
        format!("Thank you: {EMAIL} is verified.")
    );
    assert_eq!(text_of(d, ".details .badge").await, "Verified");

    // Devices: another login shows up, and is logged out from here.
    log_in_elsewhere(&app, EMAIL, "first password").await;
    d.refresh().await.unwrap();
    assert_eq!(d.find_all(By::Css(".session")).await.unwrap().len(), 2);
    assert!(text_of(d, ".sessions").await.contains("This device"));
    assert!(text_of(d, ".sessions").await.contains("curl"));
    d.execute(
        "document.getElementById('devices').scrollIntoView();",
        vec![],
    )
    .await
    .unwrap();
    snap(d, "14-profile-devices").await;
    click(d, ".session form button").await;
    assert_path(d, "/profile").await;
    assert_eq!(
        text_of(d, ".flash").await,
        "That device has been logged out."
    );
    assert_eq!(d.find_all(By::Css(".session")).await.unwrap().len(), 1);
    log_in_elsewhere(&app, EMAIL, "first password").await;
    d.refresh().await.unwrap();
    click(d, "#end-others").await;
    assert_eq!(text_of(d, ".flash").await, "1 other device logged out.");

    // Change the password: a wrong current one is refused, the right one keeps us in.
    click(d, "a[href='/account/password']").await;
    assert_path(d, "/account/password").await;
    fill(d, "current_password", "not it").await;
    fill(d, "new_password", "second password").await;
    submit(d).await;
    assert_refused(d, &["current_password"]).await;
    assert_eq!(
        field_error(d, "current_password").await,
        "Error: This is not your current password"
    );
    snap(d, "15-change-password").await;
    fill(d, "current_password", "first password").await;
    fill(d, "new_password", "second password").await;
    submit(d).await;
    assert_path(d, "/profile").await;
    assert!(
        text_of(d, ".flash")
            .await
            .starts_with("Your password has been changed.")
    );

    // Change the email: it moves only when the new address's link is confirmed.
    d.goto(&format!("{}/account/email", app.base))
        .await
        .unwrap();
    fill(d, "new_email", "new@example.com").await;
    fill(d, "current_password", "second password").await;
    snap(d, "16-change-email").await;
    submit(d).await;
    assert_eq!(text_of(d, "h1").await, "Check your email");
    click(d, "#email-link").await;
    assert_path(d, "/email/confirm").await;
    assert!(text_of(d, "main p").await.contains("new@example.com"));
    snap(d, "17-confirm-email").await;
    submit(d).await;
    assert_path(d, "/profile").await;
    assert_eq!(text_of(d, ".details dd").await, "new@example.com");

    // The new pages fit a phone.
    d.set_window_rect(0, 0, 390, 844).await.unwrap();
    for (page, name) in [
        ("/profile", "18-phone-profile"),
        ("/account/password", "19-phone-password"),
        ("/account/email", "20-phone-email"),
        ("/account/delete", "21-phone-delete"),
    ] {
        d.goto(&format!("{}{page}", app.base)).await.unwrap();
        assert_fits(d, page).await;
        snap(d, name).await;
    }
    d.set_window_rect(0, 0, 1280, 900).await.unwrap();

    // Delete the account: home says so, and the email can sign up again.
    d.goto(&format!("{}/account/delete", app.base))
        .await
        .unwrap();
    snap(d, "22-delete-account").await;
    fill(d, "current_password", "second password").await;
    submit(d).await;
    assert_path(d, "/").await;
    assert_eq!(text_of(d, ".flash").await, "Your account has been deleted.");
    snap(d, "23-account-deleted").await;
    d.goto(&format!("{}/login", app.base)).await.unwrap();
    fill(d, "email", "new@example.com").await;
    fill(d, "password", "second password").await;
    submit(d).await;
    assert_eq!(
        text_of(d, "[role='alert']").await,
        "Wrong email or password"
    );

    browser.quit().await;
}

/// axe-core, fetched from the npm registry by `.ci/run` (pinned there with its checksum).
fn axe_source() -> String {
    let path = std::env::var("AXE_CORE_JS").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/axe-core/axe.min.js").to_owned()
    });
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (bash .ci/axe.sh fetches axe-core)"))
}

/// What a page state must show of itself: its name (for screenshots), the status it answers
/// with (its own console error), the account the header shows, and whether its text may name
/// fields as the JSON API does (the API's own page).
struct State<'a> {
    name: &'a str,
    status: u16,
    signed_in: Option<&'a str>,
    api_words: bool,
}

impl<'a> State<'a> {
    fn out(name: &'a str) -> State<'a> {
        State {
            name,
            status: 200,
            signed_in: None,
            api_words: false,
        }
    }

    fn signed_in(name: &'a str, email: &'a str) -> State<'a> {
        State {
            signed_in: Some(email),
            ..State::out(name)
        }
    }

    fn status(self, status: u16) -> State<'a> {
        State { status, ..self }
    }
}

/// The checks every page state passes, in the page's own styles:
/// - no axe-core violation at WCAG 2.2 A and AA;
/// - input borders and the focus indicator of every control at 3:1 or more against what is
///   next to them;
/// - no text naming a field by its API name (`new_password`);
/// - a distinct accessible name for every button;
/// - the header's account when signed in, "Log in" when not;
/// - no console error but the page's own status;
/// - no sideways scroll at 390 and 320 px wide;
///
/// and screenshots at 1280×900 and 390×844 under `target/screenshots/`.
async fn check_state(d: &WebDriver, axe: &str, state: State<'_>) {
    let name = state.name;
    d.execute(&format!("{axe}\n;return true;"), vec![])
        .await
        .unwrap();
    let violations: Vec<String> = d
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
               axe.run(document, { runOnly: { type: "tag",
                   values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"] } })
                 .then(r => done(r.violations.map(v =>
                     v.id + ": " + v.nodes.map(n => n.target.join(" ")).join(", "))));"#,
            vec![],
        )
        .await
        .unwrap()
        .convert()
        .unwrap();
    assert!(violations.is_empty(), "{name}: axe: {violations:?}");

    let contrast: Vec<String> = d
        .execute(CONTRAST_JS, vec![])
        .await
        .unwrap()
        .convert()
        .unwrap();
    assert!(contrast.is_empty(), "{name}: contrast: {contrast:?}");

    let text = text_of(d, "body").await;
    if !state.api_words {
        let named = regex_like_field_name(&text);
        assert!(
            named.is_none(),
            "{name}: names a field: {named:?} in {text}"
        );
    }

    let buttons: Vec<String> = d
        .execute(
            r#"return [...document.querySelectorAll("button")]
                 .filter(b => !b.hidden)
                 .map(b => b.getAttribute("aria-label") || b.textContent.replace(/\s+/g, " ").trim());"#,
            vec![],
        )
        .await
        .unwrap()
        .convert()
        .unwrap();
    let mut distinct = buttons.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), buttons.len(), "{name}: {buttons:?}");

    let header = text_of(d, ".site-header").await;
    match state.signed_in {
        Some(email) => assert!(
            header.contains(email) && header.contains("Log out"),
            "{name}: {header}"
        ),
        None => assert!(header.contains("Log in"), "{name}: {header}"),
    }

    let errors: Vec<String> = d
        .browser_log()
        .await
        .unwrap()
        .into_iter()
        .filter(|entry| entry.level == "SEVERE")
        .map(|entry| entry.message)
        .filter(|message| {
            let own = format!("the server responded with a status of {}", state.status);
            state.status == 200 || !message.contains(&own)
        })
        .collect();
    assert!(errors.is_empty(), "{name}: console: {errors:?}");

    // The checks above focused every control, scrolling the page: the screenshots show its top.
    d.execute("window.scrollTo(0, 0);", vec![]).await.unwrap();
    snap_at(d, name, "desktop").await;
    d.set_window_rect(0, 0, 390, 844).await.unwrap();
    assert_fits(d, name).await;
    d.execute("window.scrollTo(0, 0);", vec![]).await.unwrap();
    snap_at(d, name, "phone").await;
    d.set_window_rect(0, 0, 320, 700).await.unwrap();
    assert_fits(d, name).await;
    d.set_window_rect(0, 0, 1280, 900).await.unwrap();
}

/// The first word of `text` that reads like an API field name (`snake_case`).
fn regex_like_field_name(text: &str) -> Option<&str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .find(|word| word.contains('_') && word.chars().any(char::is_alphabetic))
}

/// Every visible input's border against what surrounds it, and every control's focus
/// indicator (its outline when focused from the keyboard) against the background beside it:
/// the failures, as text.
const CONTRAST_JS: &str = r#"
const rgba = c => { const v = c.match(/[\d.]+/g).map(Number); return v.length === 3 ? [...v, 1] : v; };
const lum = ([r, g, b]) => {
  const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
};
const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
const behind = el => {
  for (let e = el; e; e = e.parentElement) {
    const c = rgba(getComputedStyle(e).backgroundColor);
    if (c[3] > 0) return c;
  }
  return [255, 255, 255, 1];
};
const failures = [];
// checkVisibility: also false inside a closed <details>, whose content Chromium leaves laid out.
const visible = el => el.checkVisibility({ visibilityProperty: true });
for (const input of document.querySelectorAll("input:not([type=hidden])")) {
  if (!visible(input)) continue;
  const r = ratio(rgba(getComputedStyle(input).borderTopColor), behind(input.parentElement));
  if (r < 3) failures.push(`border of #${input.id}: ${r.toFixed(2)}`);
}
for (const el of document.querySelectorAll("a[href], button, input:not([type=hidden])")) {
  if (!visible(el)) continue;
  el.focus({ focusVisible: true });
  const s = getComputedStyle(el);
  const width = parseFloat(s.outlineWidth);
  const r = ratio(rgba(s.outlineColor), behind(el.parentElement));
  if (s.outlineStyle === "none" || width < 2 || r < 3) {
    failures.push(`focus of ${el.tagName} ${el.id || el.textContent.trim()}: ${s.outlineStyle} ${width}px ${r.toFixed(2)}`);
  }
  el.blur();
}
return failures;
"#;

async fn snap_at(driver: &WebDriver, name: &str, size: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}-{size}.png"));
    driver.screenshot(&path).await.unwrap();
}

/// After a refused submit: each of `fields` is marked invalid and described by its error, and
/// focus is on the first.
async fn assert_refused(d: &WebDriver, fields: &[&str]) {
    for field in fields {
        let input = d.find(By::Id(*field)).await.unwrap();
        let invalid = input.attr("aria-invalid").await.unwrap();
        assert_eq!(invalid.as_deref(), Some("true"), "{field}");
        let described = input.attr("aria-describedby").await.unwrap().unwrap();
        assert!(
            described.contains(&format!("{field}-error")),
            "{field}: {described}"
        );
        let error = field_error(d, field).await;
        assert!(error.starts_with("Error: "), "{field}: {error}");
    }
    let focused: String = d
        .execute("return document.activeElement.id;", vec![])
        .await
        .unwrap()
        .convert()
        .unwrap();
    assert_eq!(focused, fields[0]);
    let title = d.title().await.unwrap();
    assert!(title.starts_with("Error: "), "{title}");
}

/// The error shown beside `field`, as a screen reader reads it (its hidden "Error: " included).
async fn field_error(d: &WebDriver, field: &str) -> String {
    let script = format!(
        "return document.getElementById('{field}-error').textContent.replace(/\\s+/g, ' ').trim();"
    );
    d.execute(&script, vec![]).await.unwrap().convert().unwrap()
}

/// Sets the page's CSRF field to a forged value, as a stale or cross-site form would carry.
async fn forge_csrf(d: &WebDriver) {
    d.execute(
        "for (const f of document.querySelectorAll('main input[name=csrf_token]')) f.value = 'forged';",
        vec![],
    )
    .await
    .unwrap();
}

#[rocket::async_test]
#[ignore = "needs chromium; see README"]
async fn every_page_state_is_accessible_and_finished() {
    let axe = axe_source();
    let app = serve().await;
    let browser = Browser::start().await;
    let d = browser.driver();
    let url = |path: &str| format!("{}{path}", app.base);
    let password = "first password";

    // Signed out.
    for (path, name) in [
        ("/", "home"),
        ("/signup", "signup"),
        ("/login", "login"),
        ("/password/forgot", "forgot"),
    ] {
        d.goto(&url(path)).await.unwrap();
        check_state(d, &axe, State::out(name)).await;
    }
    d.goto(&url("/api")).await.unwrap();
    let api = State {
        api_words: true,
        ..State::out("api")
    };
    check_state(d, &axe, api).await;
    d.goto(&url("/no/such/page")).await.unwrap();
    check_state(d, &axe, State::out("not-found").status(404)).await;

    d.goto(&url("/signup")).await.unwrap();
    submit(d).await;
    assert_refused(d, &["email", "password"]).await;
    check_state(d, &axe, State::out("signup-refused").status(400)).await;

    // The show-password toggle: shown by its script, switching the field both ways.
    let toggle = d
        .find(By::Css("button[data-reveal='password']"))
        .await
        .unwrap();
    assert!(toggle.is_displayed().await.unwrap());
    toggle.click().await.unwrap();
    let input = d.find(By::Id("password")).await.unwrap();
    assert_eq!(input.attr("type").await.unwrap().as_deref(), Some("text"));
    assert_eq!(
        toggle.attr("aria-pressed").await.unwrap().as_deref(),
        Some("true")
    );
    toggle.click().await.unwrap();
    assert_eq!(
        input.attr("type").await.unwrap().as_deref(),
        Some("password")
    );

    log_in_elsewhere_after_signup(&app, EMAIL, password).await;
    d.goto(&url("/login")).await.unwrap();
    fill(d, "email", EMAIL).await;
    fill(d, "password", "not my password").await;
    submit(d).await;
    check_state(d, &axe, State::out("login-refused").status(401)).await;

    d.goto(&url("/password/forgot")).await.unwrap();
    fill(d, "email", "not an email").await;
    submit(d).await;
    assert_refused(d, &["email"]).await;
    check_state(d, &axe, State::out("forgot-refused").status(400)).await;
    fill(d, "email", EMAIL).await;
    submit(d).await;
    check_state(d, &axe, State::out("link-sent")).await;
    follow(d, By::Id("reset-link")).await;
    assert_path(d, "/password/reset").await;
    check_state(d, &axe, State::out("reset")).await;
    submit(d).await;
    assert_refused(d, &["new_password"]).await;
    check_state(d, &axe, State::out("reset-refused").status(400)).await;

    d.goto(&url("/password/reset?token=expired")).await.unwrap();
    assert_eq!(
        text_of(d, "h1").await,
        "This link has expired or was already used"
    );
    check_state(d, &axe, State::out("reset-link-expired").status(403)).await;
    d.goto(&url("/email/verify?token=expired")).await.unwrap();
    check_state(d, &axe, State::out("verify-link-expired").status(403)).await;

    // Signed in, with another device.
    d.goto(&url("/login")).await.unwrap();
    fill(d, "email", EMAIL).await;
    fill(d, "password", password).await;
    submit(d).await;
    assert_path(d, "/profile").await;
    check_state(d, &axe, State::signed_in("profile", EMAIL)).await;
    let signed_in = |name| State::signed_in(name, EMAIL);

    for (path, name) in [
        ("/account/password", "account-password"),
        ("/account/email", "account-email"),
        ("/account/delete", "account-delete"),
        ("/", "home-signed-in"),
    ] {
        d.goto(&url(path)).await.unwrap();
        check_state(d, &axe, signed_in(name)).await;
    }
    d.goto(&url("/no/such/page")).await.unwrap();
    check_state(d, &axe, signed_in("not-found-signed-in").status(404)).await;

    d.goto(&url("/account/password")).await.unwrap();
    fill(d, "current_password", "not it").await;
    fill(d, "new_password", "second password").await;
    submit(d).await;
    assert_refused(d, &["current_password"]).await;
    check_state(d, &axe, signed_in("account-password-refused").status(401)).await;

    d.goto(&url("/account/email")).await.unwrap();
    fill(d, "new_email", "not an email").await;
    submit(d).await;
    assert_refused(d, &["new_email", "current_password"]).await;
    check_state(d, &axe, signed_in("account-email-refused").status(401)).await;

    d.goto(&url("/account/delete")).await.unwrap();
    submit(d).await;
    assert_refused(d, &["current_password"]).await;
    check_state(d, &axe, signed_in("account-delete-refused").status(401)).await;

    d.goto(&url("/account/password")).await.unwrap();
    forge_csrf(d).await;
    submit(d).await;
    assert_eq!(text_of(d, "h1").await, "This form has expired");
    check_state(d, &axe, signed_in("form-expired").status(403)).await;

    d.goto(&url("/profile")).await.unwrap();
    click(d, "#send-verification").await;
    check_state(d, &axe, signed_in("verification-sent")).await;
    click(d, "#verify-link").await;
    assert_path(d, "/email/verify").await;
    check_state(d, &axe, signed_in("verify")).await;

    browser.quit().await;
}

/// Signs `email` up through the API, then logs it in as another device (curl).
async fn log_in_elsewhere_after_signup(app: &Served, email: &str, password: &str) {
    api_call(app, "/users", email, password).await;
    log_in_elsewhere(app, email, password).await;
}

/// The code of the key a setup page shows (base32, spaced) `offset` steps from now, as an
/// authenticator app computes it.
fn authenticator_code(key: &str, offset: i64) -> String {
    use auth_service::auth::totp;
    let secret = data_encoding::BASE32_NOPAD
        .decode(key.replace(' ', "").as_bytes())
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    totp::code(&secret, totp::step_at(now) + offset)
}

/// Sets up an authenticator app from the profile, reading the key from the setup page: the key
/// and the first recovery code; each page state checked on the way when `axe` is given.
async fn set_up_authenticator(
    d: &WebDriver,
    password: &str,
    axe: Option<&str>,
) -> (String, String) {
    let check = async |name: &str, status: u16| {
        if let Some(axe) = axe {
            check_state(d, axe, State::signed_in(name, EMAIL).status(status)).await;
        }
    };
    follow(d, By::LinkText("Security: second factors")).await;
    assert_path(d, "/account/security").await;
    check("security-off", 200).await;
    follow(d, By::LinkText("Set up an authenticator app")).await;
    check("totp-start", 200).await;
    fill(d, "current_password", password).await;
    submit(d).await;
    assert_eq!(
        text_of(d, "h1").await,
        "Scan the code with your authenticator app"
    );
    let qr = d.find(By::Css("figure.qr svg")).await.unwrap();
    assert!(
        qr.rect().await.unwrap().width >= 150.0,
        "the QR code is drawn"
    );
    check("totp-setup", 200).await;
    let key = text_of(d, "#secret").await;
    fill(d, "code", "000000").await;
    submit(d).await;
    assert_refused(d, &["code"]).await;
    check("totp-setup-refused", 401).await;
    fill(d, "code", &authenticator_code(&key, 0)).await;
    submit(d).await;
    assert_eq!(text_of(d, "h1").await, "Save your recovery codes");
    check("recovery-codes", 200).await;
    let codes = d.find_all(By::Css(".codes code")).await.unwrap();
    assert_eq!(codes.len(), 10);
    let recovery = codes[0].text().await.unwrap();
    follow(d, By::LinkText("I saved them")).await;
    assert_path(d, "/account/security").await;
    check("security-on", 200).await;
    (key, recovery)
}

/// Logs out through the header's button, and in with `password` up to the second step.
async fn log_in_to_second_factor(d: &WebDriver, base: &str, password: &str) {
    click(d, "header form button").await;
    d.goto(&format!("{base}/login")).await.unwrap();
    fill(d, "email", EMAIL).await;
    fill(d, "password", password).await;
    submit(d).await;
    assert_path(d, "/login/second-factor").await;
}

#[rocket::async_test]
#[ignore = "needs chromium; see README"]
async fn an_authenticator_app_and_a_recovery_code_sign_in_in_chromium() {
    let axe = axe_source();
    let app = serve().await;
    let browser = Browser::start().await;
    let d = browser.driver();
    let password = "first password";
    d.goto(&format!("{}/signup", app.base)).await.unwrap();
    fill(d, "email", EMAIL).await;
    fill(d, "password", password).await;
    submit(d).await;
    assert_path(d, "/profile").await;
    let (key, recovery) = set_up_authenticator(d, password, Some(&axe)).await;

    log_in_to_second_factor(d, &app.base, password).await;
    check_state(d, &axe, State::out("second-factor")).await;
    fill(d, "code", "123456").await;
    submit(d).await;
    assert_refused(d, &["code"]).await;
    check_state(d, &axe, State::out("second-factor-refused").status(401)).await;
    fill(d, "code", &authenticator_code(&key, 1)).await;
    submit(d).await;
    assert_path(d, "/profile").await;

    log_in_to_second_factor(d, &app.base, password).await;
    d.find(By::Css("details.other-way summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    fill(d, "recovery_code", &recovery).await;
    follow(d, By::Css("details.other-way button[type='submit']")).await;
    assert_path(d, "/profile").await;
    browser.quit().await;
}

#[rocket::async_test]
#[ignore = "needs chromium; see README"]
async fn an_authenticator_app_works_with_scripts_off() {
    let app = serve().await;
    let browser = Browser::start_without_scripts().await;
    let d = browser.driver();
    let password = "first password";
    d.goto(&format!("{}/signup", app.base)).await.unwrap();
    let reveal = d
        .find(By::Css("button[data-reveal='password']"))
        .await
        .unwrap();
    assert!(!reveal.is_displayed().await.unwrap(), "scripts are off");
    fill(d, "email", EMAIL).await;
    fill(d, "password", password).await;
    submit(d).await;
    assert_path(d, "/profile").await;
    let (key, _) = set_up_authenticator(d, password, None).await;
    log_in_to_second_factor(d, &app.base, password).await;
    fill(d, "code", &authenticator_code(&key, 1)).await;
    submit(d).await;
    assert_path(d, "/profile").await;
    browser.quit().await;
}

/// A virtual authenticator in the browser (CDP's WebAuthn domain): a platform passkey store
/// that verifies its user and answers at once.
async fn add_virtual_authenticator(d: &WebDriver) {
    let cdp = d.cdp();
    cdp.send_raw("WebAuthn.enable", serde_json::json!({}))
        .await
        .unwrap();
    let options = serde_json::json!({"options": {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": true,
        "hasUserVerification": true,
        "isUserVerified": true,
        "automaticPresenceSimulation": true,
    }});
    cdp.send_raw("WebAuthn.addVirtualAuthenticator", options)
        .await
        .unwrap();
}

#[rocket::async_test]
#[ignore = "needs chromium; see README"]
async fn a_passkey_signs_in_alone_and_as_a_second_factor_in_chromium() {
    let axe = axe_source();
    let app = serve_on("localhost").await;
    let browser = Browser::start().await;
    let d = browser.driver();
    let password = "first password";
    d.goto(&format!("{}/signup", app.base)).await.unwrap();
    add_virtual_authenticator(d).await;
    fill(d, "email", EMAIL).await;
    fill(d, "password", password).await;
    submit(d).await;
    assert_path(d, "/profile").await;

    d.goto(&format!("{}/account/security", app.base))
        .await
        .unwrap();
    follow(d, By::LinkText("Add a passkey")).await;
    check_state(d, &axe, State::signed_in("passkey-new", EMAIL)).await;
    fill(d, "name", "Laptop").await;
    fill(d, "current_password", password).await;
    submit(d).await;
    assert_eq!(text_of(d, "h1").await, "Create your passkey");
    check_state(d, &axe, State::signed_in("passkey-create", EMAIL)).await;
    click(d, "form[data-passkey] button[type='submit']").await;
    assert_path(d, "/account/security").await;
    assert!(text_of(d, ".flash").await.contains("\"Laptop\" was added"));
    check_state(d, &axe, State::signed_in("security-passkey", EMAIL)).await;

    click(d, "header form button").await;
    d.goto(&format!("{}/login", app.base)).await.unwrap();
    follow(d, By::LinkText("Log in with a passkey")).await;
    check_state(d, &axe, State::out("passkey-login")).await;
    fill(d, "email", EMAIL).await;
    submit(d).await;
    assert_eq!(text_of(d, "h1").await, "Use your passkey");
    check_state(d, &axe, State::out("passkey-use")).await;
    click(d, "form[data-passkey] button[type='submit']").await;
    assert_path(d, "/profile").await;

    log_in_to_second_factor(d, &app.base, password).await;
    check_state(d, &axe, State::out("second-factor-passkey")).await;
    click(d, "form[data-passkey] button[type='submit']").await;
    assert_path(d, "/profile").await;
    browser.quit().await;
}

/// A relying party's redirect endpoint on a free loopback port: it answers every request with
/// a small page and keeps the request lines it got (at most `max` requests).
fn relying_party(max: usize) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(max).flatten() {
            let mut line = String::new();
            let _ = BufReader::new(&stream).read_line(&mut line);
            kept.lock().unwrap().push(line.trim_end().to_owned());
            let page = "<!doctype html><title>Team wiki</title><h1>Signed in to the wiki</h1>";
            let _ = write!(
                &stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    (port, seen)
}

#[rocket::async_test]
#[ignore = "needs chromium; see README"]
async fn an_application_signs_in_through_login_second_factor_and_consent_in_chromium() {
    let axe = axe_source();
    let app = serve().await;
    let (rp_port, seen) = relying_party(20);
    let registered = app
        .auth
        .oidc()
        .clients()
        .add(auth_service::auth::oidc::NewClient {
            name: "Team wiki".into(),
            redirect_uris: vec!["http://127.0.0.1/callback".into()],
            public: true,
            post_logout_uris: Vec::new(),
            skip_consent: false,
            scopes: Vec::new(),
            pkce_optional: false,
            id_token_alg: None,
        })
        .await
        .unwrap();
    let client_id = registered.client.client_id;
    let browser = Browser::start().await;
    let d = browser.driver();
    let password = "first password";
    d.goto(&format!("{}/signup", app.base)).await.unwrap();
    fill(d, "email", EMAIL).await;
    fill(d, "password", password).await;
    submit(d).await;
    assert_path(d, "/profile").await;
    let (key, _) = set_up_authenticator(d, password, None).await;
    click(d, "header form button").await;
    // The setup's deliberately wrong code left a 401 in the console log; only what follows is
    // checked.
    d.browser_log().await.unwrap();

    // The application sends the browser here; the account logs in with its second factor.
    let redirect = format!("http://127.0.0.1:{rp_port}/callback");
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let authorize = format!(
        "{}/oauth/authorize?response_type=code&client_id={client_id}&redirect_uri={}\
         &scope=openid%20email&state=st4te&nonce=n0nce\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        app.base,
        redirect.replace(':', "%3A").replace('/', "%2F"),
    );
    d.goto(&authorize).await.unwrap();
    assert_path(d, "/login").await;
    fill(d, "email", EMAIL).await;
    fill(d, "password", password).await;
    submit(d).await;
    assert_path(d, "/login/second-factor").await;
    fill(d, "code", &authenticator_code(&key, 1)).await;
    submit(d).await;

    // The consent page names the application and where the browser goes back.
    assert_path(d, "/oauth/authorize/resume").await;
    assert_eq!(text_of(d, "h1").await, "Sign in to Team wiki?");
    check_state(d, &axe, State::signed_in("oauth-consent", EMAIL)).await;
    let main = text_of(d, "main").await;
    assert!(
        main.contains("127.0.0.1:") && main.contains("email address"),
        "{main}"
    );
    d.find(By::Css("button[value='allow']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // Back at the application with a code, the state and the issuer.
    let deadline = Instant::now() + PATIENCE;
    let mut url = d.current_url().await.unwrap();
    while !url.as_str().starts_with(&redirect) && Instant::now() < deadline {
        rocket::tokio::time::sleep(Duration::from_millis(50)).await;
        url = d.current_url().await.unwrap();
    }
    assert!(
        url.as_str().starts_with(&format!("{redirect}?code=")),
        "{url}"
    );
    assert_eq!(text_of(d, "h1").await, "Signed in to the wiki");
    let pairs: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(pairs["state"], "st4te");
    assert_eq!(pairs["iss"], app.base);
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|line| line.starts_with("GET /callback?code="))
    );

    // The application exchanges the code: the ID token says a second factor was used.
    let http = reqwest::Client::new();
    let body = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={verifier}&client_id={client_id}",
        pairs["code"],
        redirect.replace(':', "%3A").replace('/', "%2F"),
    );
    let answer = http
        .post(format!("{}/oauth/token", app.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let tokens: serde_json::Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
    use base64::Engine;
    let payload = tokens["id_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["nonce"], "n0nce");
    browser.quit().await;
}
