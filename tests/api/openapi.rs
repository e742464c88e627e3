//! The OpenAPI document against the router that runs: every JSON endpoint mounted is listed,
//! with typed bodies.
//!
//! Which routes are JSON endpoints: every route the real Rocket mounts, except
//! - the pages: routes of `web::pages::routes()` whose method and path the API does not serve
//!   too (the few it does, `GET /`, `GET /profile`, `POST /account/email`, are one negotiated
//!   route that answers JSON to API clients, see `web::negotiate`, so they count as JSON);
//! - the static files (the `FileServer` under `/static`);
//! - `GET /openapi.json`, the document itself.
//!
//! So a route mounted anywhere else (`web::api`, `web::ops`, or a new module) must be described.
//! `GET /metrics` answers Prometheus text on success; its failures are JSON like every other's.

use std::collections::BTreeSet;

use rocket::http::{ContentType, Cookie, Method, Status};
use rocket::serde::json::Value;

use crate::helpers::{TestApp, json};

/// `/account/sessions/<id>` as OpenAPI writes it: `/account/sessions/{id}`.
fn openapi_path(route: &str) -> String {
    route.replace('<', "{").replace('>', "}")
}

/// A route as (method, OpenAPI path).
fn key(route: &rocket::Route) -> (String, String) {
    let method = route.method.as_str().to_lowercase();
    (method, openapi_path(route.uri.path()))
}

/// The JSON endpoints of the mounted routes, as (method, OpenAPI path).
fn json_endpoints(app: &TestApp) -> BTreeSet<(String, String)> {
    let api: BTreeSet<_> = [
        auth_service::web::api::routes(),
        auth_service::web::ops::routes(),
    ]
    .iter()
    .flatten()
    .map(key)
    .collect();
    let pages: BTreeSet<_> = auth_service::web::pages::routes()
        .iter()
        .map(key)
        .filter(|page| !api.contains(page))
        .collect();
    app.client
        .rocket()
        .routes()
        .filter(|route| {
            !route
                .name
                .as_deref()
                .unwrap_or("")
                .starts_with("FileServer")
        })
        .map(key)
        .filter(|route| !pages.contains(route) && route.1 != "/openapi.json")
        .collect()
}

/// Whether the route reads a request body: asked by a logged-in client with the JSON body
/// `[]`, it refuses the body (a handler checks the session before the body).
fn reads_a_body(app: &TestApp, method: &str, path: &str) -> bool {
    let session = app.session_for("ann@example.com", "correct horse");
    let response = app
        .client
        .req(
            method.parse::<Method>().unwrap(),
            path.replace("{id}", "unknown"),
        )
        .header(ContentType::JSON)
        .cookie(Cookie::new("session_id", session))
        .body("[]")
        .dispatch();
    response.status() == Status::BadRequest
        && json(response)["message"] == "request body must be a JSON object"
}

/// The component a schema object names (`{"$ref": "#/components/schemas/X"}`), if it does.
fn component<'d>(document: &'d Value, schema: &Value) -> Option<&'d Value> {
    let name = schema["$ref"]
        .as_str()?
        .strip_prefix("#/components/schemas/")?;
    document["components"]["schemas"].get(name)
}

/// Every JSON content of `contents` (a request body's or a response's) is a typed component;
/// how many there are.
fn typed_contents(document: &Value, contents: &Value, what: &str) -> usize {
    let mut typed = 0;
    for (media, content) in contents.as_object().into_iter().flatten() {
        if media == "text/plain" {
            continue;
        }
        let schema = component(document, &content["schema"]);
        let properties = schema.map(|s| s["properties"].is_object() || s["oneOf"].is_array());
        assert_eq!(properties, Some(true), "{what} {media}: {content}");
        typed += 1;
    }
    typed
}

#[test]
fn every_mounted_json_endpoint_is_in_the_openapi_document_with_typed_bodies() {
    let app = TestApp::with_account("ann@example.com", "correct horse");
    let document: Value = json(app.client.get("/openapi.json").dispatch());
    let endpoints = json_endpoints(&app);
    assert!(endpoints.len() >= 19, "{endpoints:?}");
    for (method, path) in &endpoints {
        let what = format!("{method} {path}");
        let operation = &document["paths"][path][method];
        assert!(
            operation.is_object(),
            "{what} is not in the OpenAPI document"
        );

        let responses = operation["responses"].as_object().unwrap();
        let typed: usize = responses
            .iter()
            .map(|(status, answer)| {
                typed_contents(&document, &answer["content"], &format!("{what} {status}"))
            })
            .sum();
        assert!(typed > 0, "{what} describes no typed answer");

        let body = &operation["requestBody"]["content"];
        if reads_a_body(&app, method, path) {
            let typed = typed_contents(&document, body, &format!("{what} request"));
            assert_eq!(typed, 2, "{what} takes JSON and form-encoded bodies");
        } else {
            assert!(body.is_null(), "{what} reads no body but describes one");
        }
    }
}
