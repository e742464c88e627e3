//! Reset links by mail: the outbox folder, a real SMTP exchange with an in-process sink, and a
//! dead mail server that must not hold up a request.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use rocket::http::Status;

use crate::helpers::{TestApp, json, link_in, location};

#[test]
fn a_reset_request_mails_a_link_built_from_the_public_base_url() {
    let app = TestApp::with(|f| f.merge(("public_base_url", "https://auth.example.com")));
    app.register("ann@example.com", "old");
    let token = app.reset_token_for("ann@example.com");
    let messages = app.db.mail("Reset your password", 1);
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert!(message.contains("To: ann@example.com"), "{message}");
    assert!(message.contains("Subject: Reset your password"));
    assert!(message.contains("Content-Type: text/plain"));
    assert_eq!(
        link_in(message),
        format!("https://auth.example.com/password/reset?token={token}")
    );
}

#[test]
fn a_completed_reset_mails_a_notice_and_unknown_emails_get_no_mail() {
    let app = TestApp::new();
    app.register("ann@example.com", "old");
    app.request_reset("nobody@example.com");
    let token = app.reset_token_for("ann@example.com");
    app.update_password("ann@example.com", &token, "new");
    let messages = app.db.outbox(3);
    assert_eq!(
        messages.len(),
        3,
        "verification, reset link, notice: {messages:?}"
    );
    assert!(messages.iter().all(|m| m.contains("To: ann@example.com")));
    let notice = messages
        .iter()
        .find(|m| m.contains("Subject: Your password was changed"));
    assert!(notice.is_some(), "{messages:?}");
    assert!(messages.iter().all(|m| !m.contains("nobody@")));
}

#[test]
fn without_exposed_tokens_the_mailed_link_completes_the_reset_in_a_browser() {
    let app = TestApp::browser_with(|f| f.merge(("expose_reset_token", false)));
    app.sign_up("ann@example.com", "old");
    app.log_out();
    let body = json(app.request_reset("ann@example.com"));
    assert_eq!(
        body.get("reset_token"),
        None,
        "the token travels only by mail"
    );

    let link = link_in(&app.db.mail("Reset your password", 1)[0]);
    let path = link.trim_start_matches("http://localhost:5000");
    assert_eq!(location(&app.page(path)), "/password/reset");
    let done = app.submit("/password/reset", &[("new_password", "brand new")]);
    assert_eq!(location(&done), "/login");
    assert_eq!(
        app.login("ann@example.com", "brand new").status(),
        Status::Ok
    );
}

/// A minimal SMTP server on a free local port that accepts messages and hands each one's DATA
/// to the returned channel. It serves until the test process ends.
fn smtp_sink() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let Ok(mut stream) = stream else { continue };
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            writeln!(stream, "220 sink ESMTP\r").unwrap();
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                let command = line.trim_end().to_ascii_uppercase();
                let reply = match command.split(' ').next().unwrap_or_default() {
                    "EHLO" | "HELO" => "250 sink",
                    "DATA" => {
                        writeln!(stream, "354 go ahead\r").unwrap();
                        let mut data = String::new();
                        loop {
                            let mut body_line = String::new();
                            if reader.read_line(&mut body_line).unwrap_or(0) == 0
                                || body_line == ".\r\n"
                            {
                                break;
                            }
                            data.push_str(&body_line);
                        }
                        sender.send(data).unwrap();
                        "250 queued"
                    }
                    "QUIT" => {
                        writeln!(stream, "221 bye\r").unwrap();
                        break;
                    }
                    _ => "250 ok",
                };
                writeln!(stream, "{reply}\r").unwrap();
                line.clear();
            }
        }
    });
    (port, receiver)
}

#[test]
fn over_smtp_the_message_arrives_and_its_link_works() {
    let (port, inbox) = smtp_sink();
    let app = TestApp::browser_with(|f| {
        f.merge(("mail_transport", "smtp"))
            .merge(("smtp_host", "127.0.0.1"))
            .merge(("smtp_port", port))
            .merge(("smtp_tls", "none"))
            .merge(("expose_reset_token", false))
            .merge(("public_base_url", "http://127.0.0.1:1"))
    });
    app.sign_up("ann@example.com", "old");
    app.log_out();
    assert_eq!(app.request_reset("ann@example.com").status(), Status::Ok);

    let message = std::iter::from_fn(|| inbox.recv_timeout(Duration::from_secs(10)).ok())
        .find(|message| message.contains("Subject: Reset your password"))
        .expect("a reset link over SMTP (after the signup's verification link)");
    assert!(message.contains("To: ann@example.com"), "{message}");
    let link = link_in(&message);
    let path = link.trim_start_matches("http://127.0.0.1:1");
    assert!(path.starts_with("/password/reset?token="), "{link}");
    assert_eq!(location(&app.page(path)), "/password/reset");
    let done = app.submit("/password/reset", &[("new_password", "brand new")]);
    assert_eq!(location(&done), "/login");
    assert_eq!(
        app.login("ann@example.com", "brand new").status(),
        Status::Ok
    );
    let notice = inbox.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(notice.contains("Subject: Your password was changed"));
}

#[test]
fn a_mail_server_that_never_answers_does_not_hold_up_the_request() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let (accepted, connection) = mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = silent.accept().unwrap();
        accepted.send(()).unwrap();
        std::thread::sleep(Duration::from_secs(30));
        drop(stream);
    });
    let app = TestApp::with(|f| {
        f.merge(("mail_transport", "smtp"))
            .merge(("smtp_host", "127.0.0.1"))
            .merge(("smtp_port", port))
            .merge(("smtp_tls", "none"))
            .merge(("smtp_timeout_secs", 1))
    });
    app.register("ann@example.com", "old");
    let response = app.request_reset("ann@example.com");
    assert_eq!(response.status(), Status::Ok);
    // The response is out while the mail server still holds the (silent) connection.
    connection
        .recv_timeout(Duration::from_secs(10))
        .expect("the mailer connected");
    assert!(json(response)["reset_token"].is_string());
}
