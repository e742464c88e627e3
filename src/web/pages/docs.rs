//! `GET /api`: the JSON API's reference for people, rendered from the same OpenAPI document as
//! `/openapi.json` (so the two cannot disagree), without a script: the CSP stays as it is.

use super::Layout;
use crate::web::api::doc;
use rocket::get;
use rocket::serde::json::{Value, json};
use rocket_dyn_templates::Template;

#[get("/api")]
pub fn api_page(layout: Layout) -> Template {
    let document = serde_json::to_value(doc::document()).unwrap_or_default();
    let page = json!({
        "title": "JSON API",
        "description": document["info"]["description"],
        "operations": operations(&document),
    });
    layout.render("api", page)
}

/// Each operation of `document` as the page lists it: method, path, tag, summary, the fields
/// of its request body and its responses.
fn operations(document: &Value) -> Vec<Value> {
    let schemas = &document["components"]["schemas"];
    let mut listed = Vec::new();
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            let body = &operation["requestBody"]["content"];
            let schema = body
                .as_object()
                .and_then(|content| content.values().next())
                .and_then(|media| media["schema"]["$ref"].as_str())
                .and_then(|reference| reference.rsplit('/').next())
                .map(|name| &schemas[name]);
            let fields: Vec<&String> = schema
                .and_then(|s| s["properties"].as_object())
                .map(|properties| properties.keys().collect())
                .unwrap_or_default();
            let responses: Vec<Value> = operation["responses"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(status, answer)| json!({ "status": status, "description": answer["description"] }))
                .collect();
            listed.push(json!({
                "method": method.to_uppercase(),
                "path": path,
                "tag": operation["tags"][0],
                "summary": operation["summary"],
                "fields": fields,
                "responses": responses,
            }));
        }
    }
    listed
}
