//! What operators reach over HTTP: health checks, metrics, and the OpenAPI description of the
//! API (with its page).

use std::collections::BTreeSet;

use diesel::prelude::*;
use rocket::http::{Accept, ContentType, Header, Status};
use rocket::serde::json::{Value, json};

use crate::helpers::{TestApp, assert_message, html, json};

#[test]
fn the_service_is_alive_and_ready_and_says_so_without_an_audit_line() {
    let app = TestApp::new();
    let alive = app.client.get("/health/alive").dispatch();
    assert_eq!(alive.status(), Status::Ok);
    assert_eq!(json(alive), json!({ "status": "alive" }));
    let ready = app.client.get("/health/ready").dispatch();
    assert_eq!(ready.status(), Status::Ok);
    assert_eq!(json(ready), json!({ "status": "ready" }));
    assert_eq!(app.db.audit_log(), "", "health checks are not audited");
}

#[test]
fn a_database_missing_a_migration_is_not_ready() {
    let app = TestApp::new();
    let latest = app.db.write(|c| {
        diesel::sql_query(
            "DELETE FROM __diesel_schema_migrations WHERE version = \
             (SELECT max(version) FROM __diesel_schema_migrations)",
        )
        .execute(c)
    });
    assert_eq!(latest, 1);
    let ready = app.client.get("/health/ready").dispatch();
    assert_eq!(ready.status(), Status::ServiceUnavailable);
    assert_eq!(
        json(ready),
        json!({ "status": "unavailable" }),
        "the cause goes to the log only"
    );
    assert_eq!(
        app.client.get("/health/alive").dispatch().status(),
        Status::Ok
    );
}

#[test]
fn metrics_are_off_by_default() {
    let app = TestApp::new();
    assert_message(
        app.client.get("/metrics").dispatch(),
        Status::NotFound,
        "not found",
    );
}

/// The value of the sample `name` (with its labels, exactly as written) in a scrape.
fn sample(scrape: &str, name: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn a_scrape_names_every_metric_and_its_counters_move() {
    let app = TestApp::with(|f| f.merge(("metrics_enabled", true)));
    app.register("ann@example.com", "pw");
    app.login("ann@example.com", "pw");
    app.login("ann@example.com", "wrong");
    app.reset_token_for("ann@example.com");
    let scrape = app.client.get("/metrics").dispatch();
    assert_eq!(scrape.status(), Status::Ok);
    let content_type = scrape.content_type().unwrap().to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = scrape.into_string().unwrap();
    for name in [
        "http_requests_total",
        "http_request_duration_seconds",
        "logins_total",
        "signups_total",
        "password_resets_total",
        "bcrypt_hash_duration_seconds",
        "bcrypt_admitted",
        "db_pool_wait_duration_seconds",
        "db_pool_connections",
        "db_pool_connections_in_use",
        "cleanup_purged_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} in\n{text}"
        );
    }
    let requests = r#"http_requests_total{method="POST",route="/sessions",status="2xx"}"#;
    assert_eq!(sample(&text, requests), Some(1.0));
    let refused = r#"http_requests_total{method="POST",route="/sessions",status="4xx"}"#;
    assert_eq!(sample(&text, refused), Some(1.0));
    assert_eq!(sample(&text, r#"logins_total{outcome="ok"}"#), Some(1.0));
    assert_eq!(
        sample(&text, r#"logins_total{outcome="failed"}"#),
        Some(1.0)
    );
    assert_eq!(sample(&text, "signups_total"), Some(1.0));
    let requested = r#"password_resets_total{stage="requested"}"#;
    assert_eq!(sample(&text, requested), Some(1.0));
    let hashes = sample(&text, "bcrypt_hash_duration_seconds_count").unwrap();
    assert!(hashes >= 3.0, "a signup and two logins hashed: {hashes}");
    assert!(sample(&text, "db_pool_wait_duration_seconds_count").unwrap() > 0.0);
    assert!(sample(&text, "db_pool_connections").unwrap() >= 1.0);

    let again = app.client.get("/metrics").dispatch().into_string().unwrap();
    let scrapes = r#"http_requests_total{method="GET",route="/metrics",status="2xx"}"#;
    assert_eq!(
        sample(&again, scrapes),
        Some(1.0),
        "the first scrape counted"
    );
}

#[test]
fn a_metrics_token_is_required_when_set() {
    let app = TestApp::with(|f| {
        f.merge(("metrics_enabled", true))
            .merge(("metrics_token", "s3cret-scrape"))
    });
    for given in [None, Some("Bearer wrong"), Some("s3cret-scrape")] {
        let mut request = app.client.get("/metrics");
        if let Some(value) = given {
            request = request.header(Header::new("Authorization", value));
        }
        assert_message(
            request.dispatch(),
            Status::Unauthorized,
            "metrics need Authorization: Bearer <metrics_token>",
        );
    }
    let allowed = app
        .client
        .get("/metrics")
        .header(Header::new("Authorization", "Bearer s3cret-scrape"))
        .dispatch();
    assert_eq!(allowed.status(), Status::Ok);
}

/// `/account/sessions/<id>` as OpenAPI writes it: `/account/sessions/{id}`.
fn openapi_path(route: &str) -> String {
    route.replace('<', "{").replace('>', "}")
}

#[test]
fn the_openapi_document_is_valid_and_names_every_api_route_with_its_statuses() {
    let app = TestApp::new();
    let response = app.client.get("/openapi.json").dispatch();
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.content_type(), Some(ContentType::JSON));
    let document: Value = serde_json::from_str(&response.into_string().unwrap()).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1."));
    assert!(document["info"]["title"].is_string() && document["info"]["version"].is_string());

    // Every $ref resolves, and every operation has described responses.
    let schemas = document["components"]["schemas"].as_object().unwrap();
    let text = document.to_string();
    for reference in text.split("\"$ref\":\"").skip(1) {
        let name = reference[..reference.find('"').unwrap()]
            .strip_prefix("#/components/schemas/")
            .expect("local schema references only");
        assert!(schemas.contains_key(name), "{name} is not defined");
    }
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path}");
            for (status, answer) in responses {
                assert!(status.parse::<u16>().is_ok(), "{method} {path} {status}");
                assert!(
                    answer["description"].is_string(),
                    "{method} {path} {status}"
                );
            }
            for name in path
                .split('{')
                .skip(1)
                .map(|rest| &rest[..rest.find('}').unwrap()])
            {
                let declared = operation["parameters"].as_array().is_some_and(|params| {
                    params
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "path")
                });
                assert!(declared, "{method} {path} declares its parameter {name}");
            }
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }

    // Every JSON route is documented, and nothing else is; and each of them is mounted.
    let api = [
        auth_service::web::api::routes(),
        auth_service::web::ops::routes(),
    ]
    .concat();
    let own = |route: &rocket::Route| {
        let path = openapi_path(route.uri.path());
        (route.method.as_str().to_owned(), path)
    };
    let routes: BTreeSet<_> = api
        .iter()
        .map(own)
        .filter(|(_, path)| path != "/openapi.json")
        .collect();
    assert_eq!(routes, documented);
    let mounted: BTreeSet<_> = app.client.rocket().routes().map(own).collect();
    assert!(
        routes.is_subset(&mounted),
        "{:?}",
        routes.difference(&mounted)
    );

    // Statuses the tests of each endpoint see are in its description.
    for (method, path, status) in [
        ("post", "/users", "400"),
        ("post", "/sessions", "401"),
        ("post", "/sessions", "429"),
        ("delete", "/sessions", "303"),
        ("get", "/profile", "403"),
        ("put", "/reset_password", "403"),
        ("delete", "/account/sessions/{id}", "404"),
        ("put", "/account/password", "401"),
        ("post", "/account/verification", "409"),
        ("delete", "/account", "401"),
        ("get", "/health/ready", "503"),
        ("post", "/users", "503"),
        ("get", "/profile", "503"),
        ("put", "/account/password", "503"),
        ("post", "/account/email/confirm", "503"),
        ("get", "/metrics", "401"),
    ] {
        let listed = &document["paths"][path][method]["responses"][status];
        assert!(listed.is_object(), "{method} {path} does not list {status}");
    }
    assert!(document["paths"]["/"]["get"]["responses"]["503"].is_null());
    assert!(document["paths"]["/health/alive"]["get"]["responses"]["503"].is_null());
}

#[test]
fn the_api_page_lists_every_operation_without_a_script() {
    let app = TestApp::new();
    let page = html(app.client.get("/api").header(Accept::HTML).dispatch());
    let scripts: Vec<_> = page.match_indices("<script").collect();
    assert_eq!(scripts.len(), 1, "only the layout's password toggle");
    assert!(page.contains("<script src=\"/static/js/reveal.js\" defer></script>"));
    for operation in [
        "<span class=\"method\">POST</span> <code>&#x2F;users</code>",
        "<span class=\"method\">DELETE</span> <code>&#x2F;account&#x2F;sessions&#x2F;{id}</code>",
        "<span class=\"method\">GET</span> <code>&#x2F;health&#x2F;ready</code>",
    ] {
        assert!(page.contains(operation), "{operation} in\n{page}");
    }
    assert!(page.contains("<code>current_password</code>"));
}
