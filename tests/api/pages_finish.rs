//! What makes the pages feel finished (issue 21), as their markup shows it: errors tied to
//! their fields in the labels' words, error pages that keep the visitor's header and offer one
//! next step, distinct button names, password-manager hints, the favicon and the header's
//! current link. (Contrast, focus, axe-core and the screen sizes: the browser suite.)

use rocket::http::{ContentType, Status};

use crate::helpers::{TestApp, html};

/// The tag (`<input …>`, `<a …>`) that carries `id="{id}"`.
fn tag_with_id<'h>(page: &'h str, id: &str) -> &'h str {
    let at = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no id {id} in {page}"));
    let start = page[..at].rfind('<').unwrap();
    let end = at + page[at..].find('>').unwrap() + 1;
    &page[start..end]
}

/// The element `<{tag} id="{id}" …>…</{tag}>`'s text, tags removed.
fn text_of(page: &str, id: &str) -> String {
    let open = tag_with_id(page, id);
    let start = page.find(open).unwrap() + open.len();
    let name = open[1..].split([' ', '>']).next().unwrap();
    let end = start + page[start..].find(&format!("</{name}>")).unwrap();
    visible_text(&page[start..end])
}

/// What a person reads on the page: its text without tags, whitespace collapsed.
fn visible_text(page: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in page.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    text.replace("&#x27;", "'").replace("&quot;", "\"")
}

/// The accessible name of every `<button>` of the page: its text, visually hidden parts
/// included.
fn button_names(page: &str) -> Vec<String> {
    page.split("<button")
        .skip(1)
        .map(|rest| {
            let start = rest.find('>').unwrap() + 1;
            visible_text(&rest[start..rest.find("</button>").unwrap()])
        })
        .collect()
}

fn title(page: &str) -> &str {
    let start = page.find("<title>").unwrap() + 7;
    &page[start..page.find("</title>").unwrap()]
}

fn strict() -> TestApp {
    TestApp::browser_with(|f| f.merge(("password_min_length", 8)))
}

#[test]
fn a_refused_form_marks_every_faulty_field_and_focuses_the_first() {
    let app = strict();
    let response = app.submit(
        "/signup",
        &[("email", "not an email"), ("password", "short")],
    );
    assert_eq!(response.status(), Status::BadRequest);
    let page = html(response);
    assert!(title(&page).starts_with("Error: "), "{}", title(&page));

    let email = tag_with_id(&page, "email");
    assert!(email.contains("aria-invalid=\"true\""), "{email}");
    assert!(
        email.contains("aria-describedby=\"email-error\""),
        "{email}"
    );
    assert!(email.contains(" autofocus"), "{email}");
    let typed = "value=\"not an email\"";
    assert!(email.contains(typed), "what was typed stays: {email}");
    assert_eq!(
        text_of(&page, "email-error"),
        "Error: Enter an email address like name@example.com"
    );

    let password = tag_with_id(&page, "password");
    assert!(password.contains("aria-invalid=\"true\""), "{password}");
    let described = "aria-describedby=\"password-error password-hint\"";
    assert!(password.contains(described), "{password}");
    assert!(
        !password.contains("autofocus"),
        "only the first: {password}"
    );
    assert!(
        !password.contains("value="),
        "a password is never sent back"
    );
    assert_eq!(
        text_of(&page, "password-error"),
        "Error: Use at least 8 characters"
    );
    assert_eq!(page.matches("autofocus").count(), 1);
    assert!(
        !page.contains("role=\"alert\""),
        "the errors are the fields'"
    );
    assert_eq!(app.db.user_count(), 0);
}

#[test]
fn an_untouched_form_has_no_error_marks() {
    let app = strict();
    let page = html(app.page("/signup"));
    assert_eq!(title(&page), "Sign up · Auth Service");
    for absent in ["aria-invalid", "autofocus", "field-error", "role=\"alert\""] {
        assert!(!page.contains(absent), "{absent}");
    }
    let hint = text_of(&page, "password-hint");
    assert!(hint.starts_with("Use at least 8 characters."), "{hint}");
}

#[test]
fn the_development_hint_says_any_password_will_do() {
    let app = TestApp::browser();
    let hint = text_of(&html(app.page("/signup")), "password-hint");
    assert!(hint.starts_with("Any password will do"), "{hint}");
    assert!(!hint.contains("1 or more"), "{hint}");
}

#[test]
fn a_refusal_of_the_account_layer_is_shown_beside_its_field() {
    let app = TestApp::browser();
    app.sign_up("ann@example.com", "first password");

    let wrong = app.submit(
        "/account/password",
        &[("current_password", "not it"), ("new_password", "second")],
    );
    assert_eq!(wrong.status(), Status::Unauthorized);
    let page = html(wrong);
    assert_eq!(
        text_of(&page, "current_password-error"),
        "Error: This is not your current password"
    );
    let current = tag_with_id(&page, "current_password");
    assert!(current.contains("aria-invalid=\"true\"") && current.contains("autofocus"));
    assert!(!tag_with_id(&page, "new_password").contains("aria-invalid"));

    let same = app.submit(
        "/account/email",
        &[
            ("new_email", "ann@example.com"),
            ("current_password", "first password"),
        ],
    );
    assert_eq!(same.status(), Status::BadRequest);
    let page = html(same);
    assert_eq!(
        text_of(&page, "new_email-error"),
        "Error: This is already your account's email"
    );

    app.log_out();
    let taken = app.submit(
        "/signup",
        &[("email", "ann@example.com"), ("password", "pw")],
    );
    assert_eq!(taken.status(), Status::BadRequest);
    assert_eq!(
        text_of(&html(taken), "email-error"),
        "Error: An account already uses this email"
    );
}

#[test]
fn a_wrong_login_is_one_alert_that_names_no_field() {
    let app = TestApp::browser();
    app.sign_up("ann@example.com", "pw");
    app.log_out();
    let response = app.submit(
        "/login",
        &[("email", "ann@example.com"), ("password", "wrong")],
    );
    assert_eq!(response.status(), Status::Unauthorized);
    let page = html(response);
    assert!(page.contains("<p class=\"alert\" role=\"alert\">Wrong email or password</p>"));
    assert!(!page.contains("aria-invalid"), "which one is not said");
    assert!(title(&page).starts_with("Error: "));
}

#[test]
fn no_page_text_names_a_field_by_its_api_name() {
    let app = TestApp::browser();
    app.sign_up("ann@example.com", "pw");
    let refused: [(&str, &[(&str, &str)]); 5] = [
        ("/account/password", &[]),
        ("/account/email", &[("new_email", "x@")]),
        ("/account/delete", &[]),
        ("/account/sessions/end", &[]),
        ("/signup", &[]),
    ];
    for (path, fields) in refused {
        let page = html(app.submit(path, fields));
        let text = visible_text(&page);
        for name in [
            "new_password",
            "current_password",
            "new_email",
            "csrf_token",
        ] {
            assert!(!text.contains(name), "{path}: {text}");
        }
        assert!(!text.contains('_'), "{path}: {text}");
    }
}

#[test]
fn error_pages_show_the_visitor_as_logged_in() {
    let app = TestApp::browser();
    app.sign_up("ann@example.com", "pw");

    let missing = app.page("/no/such/page");
    assert_eq!(missing.status(), Status::NotFound);
    let page = html(missing);
    assert!(page.contains("ann@example.com"), "the header's account");
    assert!(
        page.contains("action=\"/logout\""),
        "the header's log-out form"
    );
    assert!(!page.contains(">Log in<"));
    assert!(visible_text(&page).contains("Page not found"));
    assert!(
        !page.contains("role=\"alert\""),
        "fixed text is not an alert"
    );

    let forged = app.submit_raw("/account/sessions/end-others", &[]);
    assert_eq!(forged.status(), Status::Forbidden);
    let page = html(forged);
    assert!(page.contains("ann@example.com"));
    assert!(visible_text(&page).contains("This form has expired"));
    assert!(page.contains("href=\"/profile\""), "one next step");
    assert_eq!(app.db.session_count(), 1, "the forged form changed nothing");

    app.log_out();
    let page = html(app.page("/no/such/page"));
    assert!(page.contains(">Log in<") && !page.contains("ann@example.com"));
}

#[test]
fn an_expired_link_says_so_and_links_to_a_new_one() {
    let app = TestApp::browser();
    let opened = app.page("/password/reset?token=not-a-token");
    assert_eq!(opened.status(), Status::SeeOther);
    let response = app.page("/password/reset");
    assert_eq!(response.status(), Status::Forbidden);
    let page = html(response);
    let text = visible_text(&page);
    assert!(
        text.contains("This link has expired or was already used"),
        "{text}"
    );
    assert!(
        page.contains("<a class=\"button\" href=\"&#x2F;password&#x2F;forgot\">"),
        "{page}"
    );
    assert!(!page.contains("role=\"alert\""));

    app.page("/email/verify?token=not-a-token");
    let page = html(app.page("/email/verify"));
    assert!(page.contains("<a class=\"button\" href=\"&#x2F;login\">Log in</a>"));
}

#[test]
fn the_profile_has_one_log_out_and_a_distinct_name_for_every_button() {
    let app = TestApp::browser();
    app.sign_up("ann@example.com", "pw");
    for _ in 0..2 {
        let other = app.other_client(false);
        let response = other
            .post("/sessions")
            .header(ContentType::Form)
            .header(rocket::http::Header::new("User-Agent", "curl/8.5.0"))
            .body("email=ann%40example.com&password=pw")
            .dispatch();
        assert_eq!(response.status(), Status::Ok);
    }
    let page = html(app.page("/profile"));
    let names = button_names(&page);
    let mut distinct = names.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), names.len(), "{names:?}");
    assert_eq!(
        names.iter().filter(|n| *n == "Log out").count(),
        1,
        "{names:?}"
    );
    let devices: Vec<_> = names
        .iter()
        .filter(|n| n.starts_with("Log out curl"))
        .collect();
    assert_eq!(devices.len(), 2, "{names:?}");

    let sessions = &page[page.find("class=\"sessions\"").unwrap()..];
    let first = &sessions[..sessions.find("</li>").unwrap()];
    assert!(first.contains("This device"), "this device first: {first}");

    let danger = &page[page.find("Danger zone").unwrap()..];
    assert!(danger.contains("href=\"/account/delete\""));
    assert!(danger.contains("button-danger"));
    assert!(
        page.contains("ann@<wbr>example.<wbr>com"),
        "breaks only at separators"
    );
}

#[test]
fn credential_forms_name_the_account_for_password_managers() {
    let app = TestApp::browser();
    app.sign_up("ann@example.com", "pw");
    for path in ["/account/password", "/account/email", "/account/delete"] {
        let page = html(app.page(path));
        let expected = "<input class=\"username\" type=\"email\" autocomplete=\"username\" \
                        value=\"ann@example.com\" readonly hidden>";
        assert!(page.contains(expected), "{path}");
    }
}

#[test]
fn email_inputs_are_capped_and_password_inputs_are_not() {
    let app = TestApp::browser();
    for path in ["/signup", "/login", "/password/forgot"] {
        let page = html(app.page(path));
        assert!(
            tag_with_id(&page, "email").contains("maxlength=\"254\""),
            "{path}"
        );
    }
    let page = html(app.page("/signup"));
    assert!(!tag_with_id(&page, "password").contains("maxlength"));
    let reveal = "data-reveal=\"password\" aria-pressed=\"false\" hidden>";
    assert!(page.contains(reveal), "the toggle waits for its script");
    assert!(page.contains("<script src=\"/static/js/reveal.js\" defer></script>"));
    let script = app.page("/static/js/reveal.js");
    assert_eq!(script.status(), Status::Ok);
    let csp = script.headers().get_one("Content-Security-Policy").unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
}

#[test]
fn the_header_marks_the_current_page() {
    let app = TestApp::browser();
    let page = html(app.page("/login"));
    assert!(page.contains("<a href=\"/login\" aria-current=\"page\">Log in</a>"));
    assert_eq!(page.matches("aria-current").count(), 1);
    let page = html(app.page("/signup"));
    assert!(!page.contains("<a href=\"/login\" aria-current"));
}

#[test]
fn the_favicon_is_served_and_may_be_cached() {
    let app = TestApp::browser();
    let response = app.page("/favicon.ico");
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.content_type(), Some(ContentType::Icon));
    assert_eq!(response.headers().get_one("Cache-Control"), None);
    let icon = response.into_bytes().unwrap();
    assert_eq!(&icon[..4], &[0, 0, 1, 0], "an ICO file");
}

#[test]
fn an_error_page_under_the_assets_path_is_never_cached() {
    let app = TestApp::browser();
    app.sign_up("ann@example.com", "pw");
    let missing = app.page("/static/css/missing.css");
    assert_eq!(missing.status(), Status::NotFound);
    let cache = missing.headers().get_one("Cache-Control");
    assert_eq!(cache, Some("no-store"), "it shows the visitor's header");
    assert!(html(missing).contains("ann@example.com"));
}

#[test]
fn focus_goes_to_the_first_faulty_field_of_the_page_not_of_the_api_body() {
    let app = TestApp::browser();
    app.sign_up("ann@example.com", "pw");
    // The page shows new_email above current_password; the API body declares them the other
    // way round (a missing current password is its first answer, 401).
    let response = app.submit(
        "/account/email",
        &[("new_email", "not an email"), ("current_password", "")],
    );
    assert_eq!(response.status(), Status::Unauthorized);
    let page = html(response);
    assert!(tag_with_id(&page, "new_email").contains("autofocus"));
    assert!(!tag_with_id(&page, "current_password").contains("autofocus"));
    assert!(tag_with_id(&page, "current_password").contains("aria-invalid=\"true\""));
}
