//! CSRF protection of the pages, cross-site refusal of the API, and security headers.

use rocket::http::{Accept, ContentType, Cookie, Header, Method, Status};

use crate::helpers::{TestApp, assert_message};

#[test]
fn every_page_post_without_a_valid_csrf_token_is_403_and_changes_nothing() {
    let app = TestApp::browser();
    app.sign_up("ann@example.com", "pw");
    let forms: [(&str, &[(&str, &str)]); 5] = [
        (
            "/signup",
            &[("email", "new@example.com"), ("password", "pw")],
        ),
        (
            "/login",
            &[("email", "ann@example.com"), ("password", "pw")],
        ),
        ("/logout", &[]),
        ("/password/forgot", &[("email", "ann@example.com")]),
        ("/password/reset", &[("new_password", "hijacked")]),
    ];
    let hash_before = app.db.stored_password_hash("ann@example.com");
    for (path, fields) in forms {
        let mut forged = fields.to_vec();
        forged.push(("csrf_token", "forged"));
        for attempt in [fields.to_vec(), forged] {
            let response = app.submit_raw(path, &attempt);
            assert_eq!(response.status(), Status::Forbidden, "{path}");
            let page = response.into_string().unwrap();
            assert!(page.contains("did not come from this site"), "{path}");
        }
    }
    assert_eq!(app.db.user_count(), 1);
    assert_eq!(app.db.session_count(), 1);
    assert_eq!(app.db.stored_password_hash("ann@example.com"), hash_before);
    assert_eq!(app.page("/profile").status(), Status::Ok, "still logged in");
}

#[test]
fn another_visitors_csrf_token_is_refused() {
    let attacker = TestApp::browser();
    let token = attacker.csrf_token();
    let victim = TestApp::browser();
    victim.csrf_token();
    let response = victim.submit_raw(
        "/signup",
        &[
            ("email", "x@example.com"),
            ("password", "pw"),
            ("csrf_token", &token),
        ],
    );
    assert_eq!(response.status(), Status::Forbidden);
    assert_eq!(victim.db.user_count(), 0);
}

#[test]
fn api_calls_a_browser_marks_cross_site_are_refused() {
    let app = TestApp::new();
    let cross_site = [
        Header::new("Sec-Fetch-Site", "cross-site"),
        Header::new("Origin", "http://evil.example"),
        Header::new("Origin", "null"),
    ];
    for header in cross_site {
        let response = app
            .client
            .post("/users")
            .header(ContentType::Form)
            .header(header)
            .body("email=a%40b.com&password=pw")
            .dispatch();
        assert_message(response, Status::Forbidden, "cross-site request refused");
    }
    assert_eq!(app.db.user_count(), 0);

    let same_site = app
        .client
        .post("/users")
        .header(ContentType::Form)
        .header(Header::new("Sec-Fetch-Site", "same-origin"))
        .header(Header::new("Origin", "http://localhost:5000"))
        .body("email=a%40b.com&password=pw")
        .dispatch();
    assert_eq!(same_site.status(), Status::Ok);
    let own_host = app
        .client
        .post("/sessions")
        .header(ContentType::Form)
        .header(Header::new("Host", "127.0.0.1:9999"))
        .header(Header::new("Origin", "http://127.0.0.1:9999"))
        .body("email=a%40b.com&password=pw")
        .dispatch();
    assert_eq!(own_host.status(), Status::Ok);
    assert_eq!(app.db.user_count(), 1);
}

#[test]
fn api_reads_a_browser_marks_cross_site_are_answered() {
    let app = TestApp::with_account("ann@example.com", "ann-pw");
    let session = app.session_for("ann@example.com", "ann-pw");
    for path in ["/profile", "/account/sessions"] {
        for method in [Method::Get, Method::Head] {
            let response = app
                .client
                .req(method, path)
                .header(Header::new("Sec-Fetch-Site", "cross-site"))
                .header(Header::new("Origin", "http://evil.example"))
                .cookie(Cookie::new("session_id", session.clone()))
                .dispatch();
            assert_eq!(response.status(), Status::Ok, "{method} {path}");
        }
    }
}

#[test]
fn pages_send_the_security_headers() {
    let app = TestApp::browser();
    for path in ["/", "/login", "/signup", "/password/forgot", "/nowhere"] {
        let response = app.page(path);
        let header = |name| {
            response
                .headers()
                .get_one(name)
                .unwrap_or_default()
                .to_owned()
        };
        let csp = header("Content-Security-Policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(header("X-Content-Type-Options"), "nosniff", "{path}");
        assert_eq!(header("Referrer-Policy"), "same-origin", "{path}");
        assert_eq!(header("Cache-Control"), "no-store", "{path}");
        assert_eq!(response.headers().get_one("Server"), None);
    }
}

#[test]
fn the_stylesheet_is_served_and_cacheable() {
    let app = TestApp::browser();
    let response = app.client.get("/static/css/style.css").dispatch();
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.content_type(), Some(ContentType::CSS));
    assert_eq!(response.headers().get_one("Cache-Control"), None);
}

#[test]
fn pages_have_no_inline_styles_or_scripts() {
    let app = TestApp::browser();
    app.sign_up("ann@example.com", "pw");
    for path in ["/", "/profile", "/password/forgot"] {
        let page = app.page(path).into_string().unwrap();
        let scripts = page.matches("<script").count();
        let own = page.matches("<script src=\"/static/js/").count();
        assert_eq!(scripts, own, "{path}: only this site's script files");
        assert!(!page.contains("<script>"), "{path}");
        assert!(!page.contains("style="), "{path}");
        assert!(!page.contains("<style"), "{path}");
    }
}

#[test]
fn browsers_get_an_html_error_page_and_api_clients_json() {
    let app = TestApp::browser();
    let page = app.page("/nowhere");
    assert_eq!(page.status(), Status::NotFound);
    assert_eq!(page.content_type(), Some(ContentType::HTML));
    let body = page.into_string().unwrap();
    assert_eq!(body.matches("<h1").count(), 1);
    assert!(body.contains("not found"));

    let api = app.client.get("/nowhere").header(Accept::JSON).dispatch();
    assert_message(api, Status::NotFound, "not found");
}
