//! `TestApp`: the production Rocket on a temporary database with a cheap bcrypt cost, plus named
//! request helpers so each test reads as the journey it checks.

use auth_service::db::schema::{
    account_tokens, session_revocations, sessions, throttle_events, users,
};
use auth_service::db::scratch::Scratch;
use auth_service::db::{Access, AnyConnection, Db, Manager, Options};
use diesel::prelude::*;
use diesel::r2d2::PooledConnection;
use rocket::figment::Figment;
use rocket::http::{Accept, ContentType, Cookie, Status};
use rocket::local::blocking::{Client, LocalResponse};
use rocket::serde::json::Value;

/// How stale the test apps' session caches may be: short, so that a change made by another
/// instance (or [`TestDb::write`]) is waited out quickly; long enough that a test's requests
/// in a row use the cache.
pub const SESSION_CACHE: std::time::Duration = std::time::Duration::from_millis(100);

/// A temporary database and the app configuration that points at it.
pub struct TestDb {
    /// The debug profile (what `cargo run` serves) on this database, with bcrypt cost 4.
    pub figment: Figment,
    db: std::sync::OnceLock<Db>,
    /// The database, on the test run's backend (`TEST_DATABASE_URL`), and a directory for the
    /// mail outbox and the audit log.
    scratch: Scratch,
}

impl TestDb {
    pub fn new(configure: impl FnOnce(Figment) -> Figment) -> TestDb {
        let scratch = Scratch::new();
        let dir = scratch.path();
        let figment = auth_service::config::file_figment("debug")
            .merge(("database_url", scratch.url()))
            .merge(("audit_log", dir.join("audit.log")))
            .merge(("mail_outbox_dir", dir.join("mail")))
            .merge(("bcrypt_cost", 4))
            .merge(("log_level", "critical"))
            .merge(("admin_socket", ""))
            .merge(("session_cache_ms", SESSION_CACHE.as_millis() as u64));
        // On SQLite the debug profile keeps its mfa_key beside the database (the scratch
        // directory); PostgreSQL's would go to the working directory.
        let figment = match scratch.is_postgres() {
            true => figment.merge(("mfa_key", auth_service::auth::SealingKeys::generate())),
            false => figment,
        };
        let figment = configure(figment);
        TestDb {
            figment,
            db: std::sync::OnceLock::new(),
            scratch,
        }
    }

    /// Whether this run's backend is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.scratch.is_postgres()
    }

    /// The messages in the mail outbox, oldest first, waiting (at most 10 s) until there are
    /// at least `count` (mail goes out after the response).
    pub fn outbox(&self, count: usize) -> Vec<String> {
        self.mail("", count)
    }

    /// [`TestDb::outbox`]'s messages whose subject starts with `subject`.
    pub fn mail(&self, subject: &str, count: usize) -> Vec<String> {
        let dir = self.scratch.path().join("mail");
        let header = format!("Subject: {subject}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let mut messages: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(&dir)
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                        .map(|e| {
                            let modified = e.metadata().unwrap().modified().unwrap();
                            (modified, std::fs::read_to_string(e.path()).unwrap())
                        })
                        .filter(|(_, text)| text.contains(&header))
                        .collect()
                })
                .unwrap_or_default();
            if messages.len() >= count || std::time::Instant::now() > deadline {
                messages.sort();
                return messages.into_iter().map(|(_, text)| text).collect();
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Whether SQLite's shared-memory file (`<database>-shm`) exists beside the database.
    pub fn has_shm_file(&self) -> bool {
        std::path::Path::new(&format!("{}-shm", self.scratch.url())).exists()
    }

    /// Everything the audit log holds so far.
    pub fn audit_log(&self) -> String {
        let path = self.scratch.path().join("audit.log");
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// A direct connection, to check what the app stored: from a pool opened once, with the
    /// app's own `database_exclusive` (SQLite must not mix exclusive and shared connections to
    /// one file in one process).
    pub fn conn(&self) -> PooledConnection<Manager> {
        self.db().conn().unwrap()
    }

    /// Runs `f`'s writes (a test moving a clock, say) in a committed transaction: outside one,
    /// the pooled connections refuse to write, as the app's do. To the app this is another
    /// instance's change: it records a revocation of every account, as the data layer's own
    /// changes do, and waits out the app's session cache bound, so the app reads them anew.
    pub fn write(&self, f: impl FnOnce(&mut AnyConnection) -> QueryResult<usize>) -> usize {
        static REVOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let written = self
            .db()
            .write_blocking(|tx| {
                let written = f(tx)?;
                let accounts: Vec<i32> = users::table.select(users::id).load(&mut **tx)?;
                for user_id in accounts {
                    let n = REVOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let id = format!("test-{}-{n}", std::process::id()).into_bytes();
                    diesel::insert_into(session_revocations::table)
                        .values((
                            session_revocations::id.eq(id),
                            session_revocations::user_id.eq(user_id),
                        ))
                        .execute(&mut **tx)?;
                }
                Ok(written)
            })
            .unwrap();
        std::thread::sleep(SESSION_CACHE + std::time::Duration::from_millis(20));
        written
    }

    fn db(&self) -> &Db {
        self.db.get_or_init(|| {
            let exclusive = self
                .figment
                .extract_inner("database_exclusive")
                .unwrap_or(true);
            let options = Options {
                pool_size: 2,
                access: Access::from_exclusive(exclusive),
                ..Options::default()
            };
            Db::open(self.scratch.url(), &options).unwrap()
        })
    }

    pub fn user_count(&self) -> i64 {
        users::table.count().get_result(&mut **self.conn()).unwrap()
    }

    pub fn session_count(&self) -> i64 {
        sessions::table
            .count()
            .get_result(&mut **self.conn())
            .unwrap()
    }

    /// The digest of the (first) account's current reset token.
    pub fn stored_reset_digest(&self) -> Option<Vec<u8>> {
        let first: i32 = users::table
            .select(users::id)
            .order(users::id)
            .first(&mut **self.conn())
            .unwrap();
        account_tokens::table
            .filter(account_tokens::user_id.eq(first))
            .filter(account_tokens::purpose.eq("reset"))
            .select(account_tokens::token_hash)
            .get_result(&mut **self.conn())
            .optional()
            .unwrap()
    }

    /// Counted attempts of a throttle scope (`login_account`, `signup`, …).
    pub fn attempts(&self, scope: &str) -> i64 {
        throttle_events::table
            .filter(throttle_events::scope.eq(scope))
            .count()
            .get_result(&mut **self.conn())
            .unwrap()
    }

    pub fn stored_password_hash(&self, email: &str) -> String {
        users::table
            .filter(users::email.eq(email))
            .select(users::hashed_password)
            .first(&mut **self.conn())
            .unwrap()
    }
}

pub struct TestApp {
    pub client: Client,
    pub db: TestDb,
}

impl TestApp {
    /// The debug profile, as the original service's clients see it.
    pub fn new() -> TestApp {
        TestApp::with(|figment| figment)
    }

    /// The debug profile, changed by `configure` (for example a merged key).
    pub fn with(configure: impl FnOnce(Figment) -> Figment) -> TestApp {
        let db = TestDb::new(configure);
        let client = Client::untracked(auth_service::build(db.figment.clone())).unwrap();
        TestApp { client, db }
    }

    /// The debug profile with one account already signed up through the API.
    pub fn with_account(email: &str, password: &str) -> TestApp {
        let app = TestApp::new();
        assert_eq!(app.register(email, password).status(), Status::Ok);
        app
    }

    /// A client that keeps its cookies between requests, as a browser does.
    pub fn browser() -> TestApp {
        TestApp::browser_with(|figment| figment)
    }

    pub fn browser_with(configure: impl FnOnce(Figment) -> Figment) -> TestApp {
        let db = TestDb::new(configure);
        let client = Client::tracked(auth_service::build(db.figment.clone())).unwrap();
        TestApp { client, db }
    }

    /// A page as a browser asks for it (`Accept: text/html` first).
    pub fn page(&self, path: &str) -> LocalResponse<'_> {
        self.client
            .get(path.to_owned())
            .header(Accept::HTML)
            .dispatch()
    }

    /// Submits a page's form with this visitor's CSRF token, as the browser would.
    pub fn submit(&self, path: &str, fields: &[(&str, &str)]) -> LocalResponse<'_> {
        let token = self.csrf_token();
        let mut fields = fields.to_vec();
        fields.push(("csrf_token", &token));
        self.submit_raw(path, &fields)
    }

    /// Submits exactly `fields` (no CSRF token added).
    pub fn submit_raw(&self, path: &str, fields: &[(&str, &str)]) -> LocalResponse<'_> {
        self.client
            .post(path.to_owned())
            .header(ContentType::Form)
            .header(Accept::HTML)
            .body(form(fields))
            .dispatch()
    }

    /// The CSRF token this visitor's forms carry, read from a page that always has a form.
    pub fn csrf_token(&self) -> String {
        let html = self.page("/password/forgot").into_string().unwrap();
        hidden_value(&html, "csrf_token").expect("a CSRF field")
    }

    /// Logs this browser out through its log-out button. (`client.cookies()` is a copy: removing
    /// a cookie from it changes nothing the client sends.)
    pub fn log_out(&self) {
        assert_eq!(self.submit("/logout", &[]).status(), Status::SeeOther);
    }

    /// Another client of the same database: another device, with cookies of its own if
    /// `tracked` (a browser), or none.
    pub fn other_client(&self, tracked: bool) -> Client {
        let rocket = auth_service::build(self.db.figment.clone());
        match tracked {
            true => Client::tracked(rocket).unwrap(),
            false => Client::untracked(rocket).unwrap(),
        }
    }

    /// Signs up through the page (which logs in) and checks it worked.
    pub fn sign_up(&self, email: &str, password: &str) {
        let response = self.submit("/signup", &[("email", email), ("password", password)]);
        assert_eq!(response.status(), Status::SeeOther);
    }

    pub fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> LocalResponse<'_> {
        self.client
            .post(path.to_owned())
            .header(ContentType::Form)
            .body(form(fields))
            .dispatch()
    }

    pub fn register(&self, email: &str, password: &str) -> LocalResponse<'_> {
        self.post_form("/users", &[("email", email), ("password", password)])
    }

    pub fn login(&self, email: &str, password: &str) -> LocalResponse<'_> {
        self.post_form("/sessions", &[("email", email), ("password", password)])
    }

    /// Logs in (which must succeed) and returns the session id from the cookie.
    pub fn session_for(&self, email: &str, password: &str) -> String {
        let response = self.login(email, password);
        assert_eq!(response.status(), Status::Ok);
        response
            .cookies()
            .get("session_id")
            .unwrap()
            .value()
            .to_owned()
    }

    pub fn profile(&self, session_id: Option<&str>) -> LocalResponse<'_> {
        with_session(self.client.get("/profile"), session_id).dispatch()
    }

    pub fn logout(&self, session_id: Option<&str>) -> LocalResponse<'_> {
        with_session(self.client.delete("/sessions"), session_id).dispatch()
    }

    pub fn request_reset(&self, email: &str) -> LocalResponse<'_> {
        self.post_form("/reset_password", &[("email", email)])
    }

    /// Requests a reset token (which must succeed) and returns it.
    pub fn reset_token_for(&self, email: &str) -> String {
        let body = json(self.request_reset(email));
        body["reset_token"].as_str().unwrap().to_owned()
    }

    pub fn update_password(&self, email: &str, token: &str, password: &str) -> LocalResponse<'_> {
        let fields = [
            ("email", email),
            ("reset_token", token),
            ("new_password", password),
        ];
        self.client
            .put("/reset_password")
            .header(ContentType::Form)
            .body(form(&fields))
            .dispatch()
    }
}

fn with_session<'c>(
    request: rocket::local::blocking::LocalRequest<'c>,
    session_id: Option<&str>,
) -> rocket::local::blocking::LocalRequest<'c> {
    match session_id {
        Some(id) => request.cookie(Cookie::new("session_id", id.to_owned())),
        None => request,
    }
}

/// The session cookie of a response that must have logged `email` in (`{"email", "message":
/// "logged in"}`).
pub fn logged_in(response: LocalResponse<'_>, email: &str) -> String {
    assert_eq!(response.status(), Status::Ok);
    let session = response
        .cookies()
        .get("session_id")
        .unwrap()
        .value()
        .to_owned();
    let expected = rocket::serde::json::json!({"email": email, "message": "logged in"});
    assert_eq!(json(response), expected);
    session
}

/// A form-encoded body, as Python `requests` sends `data=`.
pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The response's JSON body, after checking it is declared as JSON.
pub fn json(response: LocalResponse<'_>) -> Value {
    assert_eq!(response.content_type(), Some(ContentType::JSON));
    response.into_json().expect("a JSON body")
}

/// The response's HTML body, after checking it is declared as HTML.
pub fn html(response: LocalResponse<'_>) -> String {
    assert_eq!(response.content_type(), Some(ContentType::HTML));
    response.into_string().unwrap()
}

/// Asserts the status and that the body is exactly `{"message": message}`.
pub fn assert_message(response: LocalResponse<'_>, status: Status, message: &str) {
    assert_eq!(response.status(), status);
    assert_eq!(
        json(response),
        rocket::serde::json::json!({ "message": message })
    );
}

/// The `value` of the input named `name` in `html`.
/// Asserts that the form page at `path` has one `h1`, a CSRF field, and every input of `inputs`
/// (name, type, autocomplete hint) with its label.
pub fn assert_form_page(page: &str, path: &str, inputs: &[(&str, &str, &str)]) {
    assert_eq!(page.matches("<h1").count(), 1, "{path}");
    assert!(page.contains("name=\"csrf_token\""), "{path}");
    for (name, kind, autocomplete) in inputs {
        let input = format!(
            "id=\"{name}\" name=\"{name}\" type=\"{kind}\" autocomplete=\"{autocomplete}\""
        );
        assert!(page.contains(&input), "{path}: {input}");
        assert!(
            page.contains(&format!("<label for=\"{name}\">")),
            "{path} {name}"
        );
    }
}

pub fn hidden_value(html: &str, name: &str) -> Option<String> {
    let start = html.find(&format!("name=\"{name}\" value=\""))? + name.len() + 15;
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// The `Set-Cookie` header that sets (or removes) the cookie `name`.
pub fn set_cookie(response: &LocalResponse<'_>, name: &str) -> String {
    response
        .headers()
        .get("Set-Cookie")
        .find(|header| header.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no Set-Cookie for {name}"))
        .to_owned()
}

/// Where a redirect points.
pub fn location(response: &LocalResponse<'_>) -> String {
    response.headers().get_one("Location").unwrap().to_owned()
}

/// The reset link in a mail message, after undoing quoted-printable (soft line breaks, `=XX`).
pub fn link_in(message: &str) -> String {
    let unfolded = message.replace("=\r\n", "");
    let mut decoded = String::new();
    let mut rest = unfolded.as_str();
    while let Some(at) = rest.find('=') {
        decoded.push_str(&rest[..at]);
        let byte = u8::from_str_radix(rest.get(at + 1..at + 3).unwrap_or("zz"), 16);
        match byte {
            Ok(byte) => {
                decoded.push(byte as char);
                rest = &rest[at + 3..];
            }
            Err(_) => {
                decoded.push('=');
                rest = &rest[at + 1..];
            }
        }
    }
    decoded.push_str(rest);
    let message = decoded;
    let start = message.find("http").expect("a link in the message");
    let end = message[start..].find(char::is_whitespace).unwrap() + start;
    message[start..end].to_owned()
}

/// The error a refused form shows beside field `name` (after its hidden "Error: " prefix).
pub fn field_error(page: &str, name: &str) -> String {
    let marker = format!("id=\"{name}-error\"><span class=\"visually-hidden\">Error: </span>");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no error beside {name}: {page}"))
        + marker.len();
    let end = start + page[start..].find("</p>").unwrap();
    page[start..end].replace("&#x27;", "'")
}

/// The one form-level alert of a refused form or a page's button.
pub fn alert(page: &str) -> String {
    let marker = "<p class=\"alert\" role=\"alert\">";
    let start = page
        .find(marker)
        .unwrap_or_else(|| panic!("no alert: {page}"))
        + marker.len();
    let end = start + page[start..].find("</p>").unwrap();
    page[start..end].replace("&#x27;", "'")
}
