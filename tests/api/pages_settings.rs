//! Browser pages of account self-service: the devices on the profile, changing the password and
//! the email, verifying the email, deleting the account; and the link pages that spend nothing
//! on GET.

use rocket::http::{Accept, ContentType, Header, Status};

use crate::helpers::{
    TestApp, alert, assert_form_page, field_error, form, hidden_value, html, location,
};

/// A debug link shown on a "link sent" page, with the id `id`, as a path.
fn shown_link(page: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\" href=\"");
    let start = page.find(&marker).unwrap_or_else(|| panic!("{page}")) + marker.len();
    let end = page[start..].find('"').unwrap() + start;
    let link = page[start..end].replace("&#x2F;", "/");
    link.trim_start_matches("http://localhost:5000").to_owned()
}

/// Logs in to `email` from another device, with this `User-Agent`; returns its session id.
fn other_device(app: &TestApp, email: &str, password: &str, agent: &str) -> String {
    let device = app.other_client(false);
    let response = device
        .post("/sessions")
        .header(Header::new("User-Agent", agent.to_owned()))
        .header(ContentType::Form)
        .body(form(&[("email", email), ("password", password)]))
        .dispatch();
    assert_eq!(response.status(), Status::Ok);
    response
        .cookies()
        .get("session_id")
        .unwrap()
        .value()
        .to_owned()
}

/// A browser signed up as Ann (and so logged in), with its session id.
fn ann_in_a_browser() -> (TestApp, String) {
    let app = TestApp::browser();
    app.sign_up("ann@example.com", "ann-pw");
    let own = app
        .client
        .cookies()
        .get("session_id")
        .unwrap()
        .value()
        .to_owned();
    (app, own)
}

#[test]
fn the_settings_forms_have_labelled_inputs_and_need_a_session() {
    let (app, _) = ann_in_a_browser();
    for (path, inputs) in [
        (
            "/account/password",
            &[
                ("current_password", "password", "current-password"),
                ("new_password", "password", "new-password"),
            ][..],
        ),
        (
            "/account/email",
            &[
                ("new_email", "email", "email"),
                ("current_password", "password", "current-password"),
            ],
        ),
        (
            "/account/delete",
            &[("current_password", "password", "current-password")],
        ),
    ] {
        assert_form_page(&html(app.page(path)), path, inputs);
    }
    let own = app
        .client
        .cookies()
        .get("session_id")
        .unwrap()
        .value()
        .to_owned();
    let stranger = app.other_client(true);
    let token = {
        let page = stranger
            .get("/password/forgot")
            .header(Accept::HTML)
            .dispatch();
        hidden_value(&page.into_string().unwrap(), "csrf_token").unwrap()
    };
    for path in ["/account/password", "/account/email", "/account/delete"] {
        let page = stranger.get(path).header(Accept::HTML).dispatch();
        assert_eq!(location(&page), "/login", "{path}");
        let posted = stranger
            .post(path)
            .header(ContentType::Form)
            .header(Accept::HTML)
            .body(form(&[
                ("csrf_token", &token),
                ("current_password", "ann-pw"),
            ]))
            .dispatch();
        assert_eq!(posted.status(), Status::SeeOther, "{path}");
        assert_eq!(location(&posted), "/login", "{path}");
    }
    assert_eq!(app.db.user_count(), 1);
    assert_eq!(app.profile(Some(&own)).status(), Status::Ok);
}

#[test]
fn every_settings_form_refuses_a_post_without_the_csrf_token() {
    let (app, _) = ann_in_a_browser();
    other_device(&app, "ann@example.com", "ann-pw", "curl/8");
    for (path, fields) in [
        ("/account/sessions/end", &[("id", "x")][..]),
        ("/account/sessions/end-others", &[]),
        ("/account/verification/send", &[]),
        (
            "/account/password",
            &[("current_password", "ann-pw"), ("new_password", "new")],
        ),
        (
            "/account/email",
            &[
                ("current_password", "ann-pw"),
                ("new_email", "n@example.com"),
            ],
        ),
        ("/account/delete", &[("current_password", "ann-pw")]),
        ("/email/verify", &[]),
        ("/email/confirm", &[]),
    ] {
        assert_eq!(
            app.submit_raw(path, fields).status(),
            Status::Forbidden,
            "{path}"
        );
    }
    assert_eq!(app.db.user_count(), 1);
    assert_eq!(app.db.session_count(), 2);
    assert_eq!(app.login("ann@example.com", "ann-pw").status(), Status::Ok);
}

#[test]
fn the_profile_lists_the_devices_and_logs_out_one_or_all_others() {
    let (app, own) = ann_in_a_browser();
    let phone = other_device(
        &app,
        "ann@example.com",
        "ann-pw",
        "<img src=x onerror=alert(1)>",
    );
    let tablet = other_device(
        &app,
        "ann@example.com",
        "ann-pw",
        "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) Safari/604.1",
    );
    let page = html(app.page("/profile"));
    assert_eq!(page.matches("class=\"session\"").count(), 3, "{page}");
    assert_eq!(page.matches("This device").count(), 1);
    assert!(page.contains("Safari on iPadOS"), "{page}");
    assert!(
        !page.contains("<img"),
        "client text never reaches the page raw"
    );
    assert!(page.contains("Log out all other devices"));
    assert!(page.contains("Not verified"));
    assert!(
        !page.contains(&phone) && !page.contains(&tablet),
        "no session id"
    );

    let ids: Vec<String> = page
        .split("name=\"id\" value=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "a button for each other device");
    let ended = app.submit("/account/sessions/end", &[("id", &ids[0])]);
    assert_eq!(location(&ended), "/profile");
    assert!(html(app.page("/profile")).contains("That device has been logged out."));
    let alive = [&phone, &tablet]
        .iter()
        .filter(|s| app.profile(Some(s)).status() == Status::Ok)
        .count();
    assert_eq!(alive, 1);

    let unknown = app.submit("/account/sessions/end", &[("id", &ids[0])]);
    assert_eq!(unknown.status(), Status::NotFound);
    assert_eq!(alert(&html(unknown)), "No such session");

    let others = app.submit("/account/sessions/end-others", &[]);
    assert_eq!(location(&others), "/profile");
    assert!(html(app.page("/profile")).contains("1 other device logged out."));
    assert_eq!(app.profile(Some(&phone)).status(), Status::Forbidden);
    assert_eq!(app.profile(Some(&tablet)).status(), Status::Forbidden);
    assert_eq!(app.profile(Some(&own)).status(), Status::Ok);
}

#[test]
fn changing_the_password_on_the_page_keeps_this_browser_logged_in() {
    let (app, own) = ann_in_a_browser();
    let phone = other_device(&app, "ann@example.com", "ann-pw", "curl/8");
    let wrong = app.submit(
        "/account/password",
        &[("current_password", "nope"), ("new_password", "new-pw")],
    );
    assert_eq!(wrong.status(), Status::Unauthorized);
    let page = html(wrong);
    assert_eq!(
        field_error(&page, "current_password"),
        "This is not your current password"
    );
    assert!(!page.contains("value=\"nope\"") && !page.contains("value=\"new-pw\""));

    let done = app.submit(
        "/account/password",
        &[("current_password", "ann-pw"), ("new_password", "new-pw")],
    );
    assert_eq!(location(&done), "/profile");
    let renewed = app
        .client
        .cookies()
        .get("session_id")
        .unwrap()
        .value()
        .to_owned();
    assert_ne!(renewed, own);
    let profile = html(app.page("/profile"));
    assert!(
        profile.contains("Your password has been changed."),
        "{profile}"
    );
    assert_eq!(app.profile(Some(&phone)).status(), Status::Forbidden);
    assert_eq!(app.profile(Some(&own)).status(), Status::Forbidden);
    assert_eq!(app.login("ann@example.com", "new-pw").status(), Status::Ok);
}

#[test]
fn verifying_the_email_from_the_profile_spends_the_link_only_by_its_button() {
    let (app, _) = ann_in_a_browser();
    let sent = html(app.submit("/account/verification/send", &[]));
    assert!(sent.contains("We sent a new verification link to ann@example.com."));
    let link = shown_link(&sent, "verify-link");
    assert!(link.starts_with("/email/verify?token="), "{link}");

    let opened = app.page(&link);
    assert_eq!(
        location(&opened),
        "/email/verify",
        "the token leaves the URL"
    );
    for _ in 0..2 {
        let page = app.page("/email/verify");
        assert_eq!(
            page.headers().get_one("Referrer-Policy"),
            Some("no-referrer")
        );
        let page = html(page);
        assert!(page.contains("Confirm that ann@example.com is your email address."));
        assert!(page.contains("action=\"/email/verify\""));
    }
    assert!(
        html(app.page("/profile")).contains("Not verified"),
        "GET spent nothing"
    );

    let done = app.submit("/email/verify", &[]);
    assert_eq!(location(&done), "/profile");
    let profile = html(app.page("/profile"));
    assert!(profile.contains("Thank you: ann@example.com is verified."));
    assert!(profile.contains("Verified") && !profile.contains("Not verified"));
    assert!(!profile.contains("Send a new link"));
    let again = app.page("/email/verify");
    assert_eq!(again.status(), Status::Forbidden, "the cookie is gone");
}

#[test]
fn changing_the_email_on_the_pages_moves_the_account_when_the_link_is_confirmed() {
    let (app, _) = ann_in_a_browser();
    let wrong = app.submit(
        "/account/email",
        &[
            ("new_email", "new@example.com"),
            ("current_password", "nope"),
        ],
    );
    assert_eq!(wrong.status(), Status::Unauthorized);
    assert!(
        html(wrong).contains("value=\"new@example.com\""),
        "the typed email stays"
    );

    let sent = html(app.submit(
        "/account/email",
        &[
            ("new_email", "new@example.com"),
            ("current_password", "ann-pw"),
        ],
    ));
    assert!(sent.contains("We sent a confirmation link to new@example.com."));
    let link = shown_link(&sent, "email-link");
    assert_eq!(location(&app.page(&link)), "/email/confirm");
    let page = html(app.page("/email/confirm"));
    assert!(page.contains("Make new@example.com the email of your account."));
    assert!(
        html(app.page("/profile")).contains("ann@example.com"),
        "not yet"
    );

    let done = app.submit("/email/confirm", &[]);
    assert_eq!(location(&done), "/profile");
    let profile = html(app.page("/profile"));
    assert!(
        profile.contains("Your account&#x27;s email is now new@example.com."),
        "{profile}"
    );
    assert_eq!(app.login("new@example.com", "ann-pw").status(), Status::Ok);
}

#[test]
fn asking_to_move_to_a_taken_address_on_the_page_reads_as_for_a_free_one() {
    let (app, _) = ann_in_a_browser();
    let bob = app
        .other_client(false)
        .post("/users")
        .header(ContentType::Form)
        .body(form(&[
            ("email", "bob@example.com"),
            ("password", "bob-pw"),
        ]))
        .dispatch()
        .status();
    assert_eq!(bob, Status::Ok);
    let fields = [
        ("new_email", "bob@example.com"),
        ("current_password", "ann-pw"),
    ];
    let sent = app.submit("/account/email", &fields);
    assert_eq!(sent.status(), Status::Ok);
    let sent = html(sent);
    assert!(
        sent.contains("We sent a confirmation link to bob@example.com."),
        "{sent}"
    );
    assert!(!sent.contains("id=\"email-link\""), "no link was issued");
    let told = app.db.mail("Your address already has an account", 1);
    assert!(told[0].contains("To: bob@example.com"));
}

#[test]
fn a_link_page_works_on_another_device_without_a_session() {
    let (app, _) = ann_in_a_browser();
    let sent = html(app.submit("/account/verification/send", &[]));
    let link = shown_link(&sent, "verify-link");
    let phone = app.other_client(true);
    let opened = phone.get(link).header(Accept::HTML).dispatch();
    assert_eq!(location(&opened), "/email/verify");
    let page = phone.get("/email/verify").header(Accept::HTML).dispatch();
    let page = html(page);
    assert!(page.contains("ann@example.com"));
    let token = hidden_value(&page, "csrf_token").unwrap();
    let done = phone
        .post("/email/verify")
        .header(ContentType::Form)
        .header(Accept::HTML)
        .body(form(&[("csrf_token", &token)]))
        .dispatch();
    assert_eq!(location(&done), "/login", "no session there: on to log in");
    // The phone is another instance: its change reaches this one's session cache within the
    // cache's bound.
    std::thread::sleep(crate::helpers::SESSION_CACHE);
    assert!(html(app.page("/profile")).contains("Verified"));
}

#[test]
fn a_bad_link_shows_the_error_page_and_spends_nothing() {
    let app = TestApp::browser();
    for path in ["/email/verify", "/email/confirm"] {
        assert_eq!(location(&app.page(&format!("{path}?token=forged"))), path);
        let page = app.page(path);
        assert_eq!(page.status(), Status::Forbidden, "{path}");
        assert!(html(page).contains("This link has expired or was already used"));
    }
}

#[test]
fn deleting_the_account_on_its_page_goes_home_and_frees_the_email() {
    let (app, _) = ann_in_a_browser();
    let wrong = app.submit("/account/delete", &[("current_password", "nope")]);
    assert_eq!(wrong.status(), Status::Unauthorized);
    assert_eq!(
        field_error(&html(wrong), "current_password"),
        "This is not your current password"
    );
    assert_eq!(app.db.user_count(), 1);

    let done = app.submit("/account/delete", &[("current_password", "ann-pw")]);
    assert_eq!(location(&done), "/");
    assert_eq!(done.headers().get_one("Clear-Site-Data"), Some("\"cache\""));
    assert_eq!(app.db.user_count(), 0);
    assert_eq!(app.db.session_count(), 0);
    assert!(html(app.page("/")).contains("Your account has been deleted."));
    assert_eq!(location(&app.page("/profile")), "/login");
    app.sign_up("ann@example.com", "again");
}

#[test]
fn with_required_verification_the_signup_page_asks_to_open_the_link_first() {
    let app = TestApp::browser_with(|f| f.merge(("require_verified_email", true)));
    let response = app.submit(
        "/signup",
        &[("email", "ann@example.com"), ("password", "pw")],
    );
    assert_eq!(location(&response), "/login");
    assert!(response.cookies().get("session_id").is_none());
    let login = html(app.page("/login"));
    assert!(login.contains("Open the link we sent to your email, then log in."));
    let refused = app.submit(
        "/login",
        &[("email", "ann@example.com"), ("password", "pw")],
    );
    assert_eq!(refused.status(), Status::Forbidden);
    assert!(alert(&html(refused)).starts_with("Email not verified"));
}
