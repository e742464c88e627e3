//! Real-browser journeys: Debian's Chromium driven through chromedriver (WebDriver) against the
//! app served on a free local port with a temporary database. Ignored by plain `cargo test`;
//! `.ci/run` installs Chromium and runs them with `cargo test --test browser -- --ignored`.
//! Screenshots of every page land in `target/browser-screenshots/`.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use thirtyfour::prelude::*;

/// The app on `127.0.0.1:<free port>`, stopped when dropped.
struct Served {
    base: String,
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
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
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
    let shutdown = rocket.shutdown();
    rocket::tokio::spawn(rocket.launch());
    rocket::tokio::task::spawn_blocking(move || wait_for_port(port))
        .await
        .unwrap();
    Served {
        base,
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
        ] {
            caps.add_arg(arg).unwrap();
        }
        caps.add_arg(&format!("--user-data-dir={}", profile.path().display()))
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
    follow(d, By::Css(".card form button")).await;
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
        "invalid email or password"
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
    let body = format!(
        "email={}&password={}",
        email.replace('@', "%40"),
        password.replace(' ', "+")
    );
    let response = reqwest::Client::new()
        .post(format!("{}/sessions", app.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("User-Agent", "curl/8.5.0")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
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
    assert_eq!(
        text_of(d, "[role='alert']").await,
        "current password is wrong"
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
        "invalid email or password"
    );

    browser.quit().await;
}
