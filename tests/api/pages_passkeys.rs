//! Passkeys on the pages, with the software authenticator reading each ceremony's options
//! from the page as `static/js/passkey.js` does: adding one on the security page, logging in
//! with it alone and as the second factor, removing it.

use rocket::http::Status;
use rocket::serde::json::Value;

use crate::authenticator::SoftPasskey;
use crate::helpers::{TestApp, hidden_value, html, location};

const ANN: &str = "ann@example.com";

/// The options the page holds for its ceremony.
fn options(page: &str) -> Value {
    let marker = "<script type=\"application/json\" id=\"passkey-options\">";
    let start = page
        .find(marker)
        .unwrap_or_else(|| panic!("no options: {page}"))
        + marker.len();
    let end = start + page[start..].find("</script>").unwrap();
    rocket::serde::json::from_str(&page[start..end]).unwrap()
}

/// Adds `passkey` as "Laptop" from the security page.
fn add(app: &TestApp, passkey: &mut SoftPasskey) {
    let page = html(app.page("/account/security"));
    assert!(
        page.contains("href=\"/account/security/passkeys/new\""),
        "{page}"
    );
    let ceremony = app.submit(
        "/account/security/passkeys/new",
        &[("name", "Laptop"), ("current_password", "pw")],
    );
    assert_eq!(ceremony.status(), Status::Ok);
    let page = html(ceremony);
    assert!(page.contains("data-passkey=\"create\""), "{page}");
    assert!(
        page.contains("hidden>Create the passkey</button>"),
        "hidden without scripts"
    );
    let credential = passkey.register(&options(&page)).to_string();
    let challenge = hidden_value(&page, "challenge_id").unwrap();
    let added = app.submit(
        "/account/security/passkeys",
        &[
            ("challenge_id", &challenge),
            ("name", "Laptop"),
            ("credential", &credential),
        ],
    );
    assert_eq!(location(&added), "/account/security");
    drop(added);
    let page = html(app.page("/account/security"));
    assert!(
        page.contains("Your passkey &quot;Laptop&quot; was added"),
        "{page}"
    );
    assert!(
        page.contains("Laptop") && page.contains("not used yet"),
        "{page}"
    );
}

#[test]
fn a_passkey_added_on_the_page_logs_in_alone_and_after_a_password() {
    let app = TestApp::browser();
    app.sign_up(ANN, "pw");
    let mut passkey = SoftPasskey::new("http://localhost:5000");
    add(&app, &mut passkey);

    app.log_out();
    let page = html(app.submit("/login/passkey", &[("email", ANN)]));
    let credential = passkey.sign_in(&options(&page));
    let challenge = hidden_value(&page, "challenge_id").unwrap();
    let done = app.submit(
        "/login/passkey/finish",
        &[
            ("challenge_id", &challenge),
            ("credential", &credential.to_string()),
        ],
    );
    assert_eq!(location(&done), "/profile");
    drop(done);
    assert_eq!(app.page("/profile").status(), Status::Ok);

    app.log_out();
    let login = app.submit("/login", &[("email", ANN), ("password", "pw")]);
    assert_eq!(location(&login), "/login/second-factor");
    drop(login);
    let page = html(app.page("/login/second-factor"));
    assert!(
        page.contains("hidden>Use a passkey instead</button>"),
        "{page}"
    );
    let credential = passkey.sign_in(&options(&page));
    let done = app.submit(
        "/login/second-factor/passkey",
        &[("credential", &credential.to_string())],
    );
    assert_eq!(location(&done), "/profile");
    drop(done);
    let page = html(app.page("/account/security"));
    assert!(page.contains("last used"), "{page}");
}

#[test]
fn a_refused_passkey_goes_back_with_a_message_and_one_is_removed_with_the_password() {
    let app = TestApp::browser();
    app.sign_up(ANN, "pw");
    let mut passkey = SoftPasskey::new("http://localhost:5000");
    add(&app, &mut passkey);
    let page = html(app.page("/account/security"));
    let start = page.find("/account/security/passkeys/remove?id=").unwrap();
    let end = start + page[start..].find('"').unwrap();
    let remove = page[start..end].to_owned();
    let id = remove.split("id=").nth(1).unwrap().to_owned();

    app.log_out();
    let page = html(app.submit("/login/passkey", &[("email", ANN)]));
    passkey.origin = "http://evil.example".into();
    let credential = passkey.sign_in(&options(&page));
    let challenge = hidden_value(&page, "challenge_id").unwrap();
    let refused = app.submit(
        "/login/passkey/finish",
        &[
            ("challenge_id", &challenge),
            ("credential", &credential.to_string()),
        ],
    );
    assert_eq!(location(&refused), "/login/passkey");
    drop(refused);
    assert!(html(app.page("/login/passkey")).contains("That passkey did not sign you in"));

    app.submit("/login", &[("email", ANN), ("password", "pw")]);
    let page = html(app.page("/login/second-factor"));
    let wrong = passkey.sign_in(&options(&page));
    let back = app.submit(
        "/login/second-factor/passkey",
        &[("credential", &wrong.to_string())],
    );
    assert_eq!(location(&back), "/login/second-factor");
    drop(back);
    passkey.origin = "http://localhost:5000".into();
    let page = html(app.page("/login/second-factor"));
    let right = passkey.sign_in(&options(&page));
    let done = app.submit(
        "/login/second-factor/passkey",
        &[("credential", &right.to_string())],
    );
    assert_eq!(location(&done), "/profile");
    drop(done);

    assert!(html(app.page(&remove)).contains("Remove a passkey"));
    let kept = app.submit(
        "/account/security/passkeys/remove",
        &[("id", &id), ("current_password", "nope")],
    );
    assert_eq!(location(&kept), "/account/security");
    drop(kept);
    assert!(html(app.page("/account/security")).contains("the password was not right"));
    let gone = app.submit(
        "/account/security/passkeys/remove",
        &[("id", &id), ("current_password", "pw")],
    );
    assert_eq!(location(&gone), "/account/security");
    drop(gone);
    let page = html(app.page("/account/security"));
    assert!(
        page.contains("The passkey was removed") && page.contains("None yet"),
        "{page}"
    );
}
