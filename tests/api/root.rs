use rocket::http::{ContentType, Status};
use rocket::serde::json::json;

use crate::helpers::{TestApp, assert_message, json};

#[test]
fn root_says_bienvenue_in_json() {
    let app = TestApp::new();
    let response = app.client.get("/").dispatch();
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(json(response), json!({ "message": "Bienvenue" }));
}

#[test]
fn every_response_has_a_fresh_uuid_v4_request_id() {
    let app = TestApp::new();
    let ids: Vec<String> = (0..2)
        .map(|_| {
            let response = app.client.get("/").dispatch();
            response
                .headers()
                .get_one("X-Request-Id")
                .unwrap()
                .to_owned()
        })
        .collect();
    for id in &ids {
        let uuid = uuid::Uuid::parse_str(id).unwrap();
        assert_eq!(uuid.get_version_num(), 4);
    }
    assert_ne!(ids[0], ids[1]);
    let missing = app.client.get("/nowhere").dispatch();
    assert!(missing.headers().get_one("X-Request-Id").is_some());
}

#[test]
fn responses_do_not_name_the_framework() {
    let app = TestApp::new();
    let response = app.client.get("/").dispatch();
    assert_eq!(response.headers().get_one("Server"), None);
}

#[test]
fn an_unknown_path_is_a_json_404() {
    let app = TestApp::new();
    assert_message(
        app.client.get("/nowhere").dispatch(),
        Status::NotFound,
        "not found",
    );
}

#[test]
fn an_unknown_method_on_a_known_path_is_a_json_404_not_405() {
    let app = TestApp::new();
    let patch = app.client.patch("/users").dispatch();
    assert_message(patch, Status::NotFound, "not found");
    let post_root = app
        .client
        .post("/")
        .header(ContentType::JSON)
        .body("{}")
        .dispatch();
    assert_message(post_root, Status::NotFound, "not found");
}
