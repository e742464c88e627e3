//! Endpoints for the service's operator, not its users: health checks for an orchestrator or a
//! load balancer, and the metrics for Prometheus. Cheap by design: no session lookup, no audit
//! line, no template.

use rocket::http::{ContentType, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::serde::Serialize;
use rocket::serde::json::Json;
use rocket::{State, get, routes};
use subtle::ConstantTimeEq;

use super::error::{Message, Problem};
use crate::auth::Auth;
use crate::config::Settings;
use crate::metrics::CONTENT_TYPE;

pub fn routes() -> Vec<rocket::Route> {
    routes![alive, ready, metrics]
}

/// The answer of a health check.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(crate = "rocket::serde")]
pub struct Health {
    /// `alive`, `ready` or `unavailable`.
    pub status: &'static str,
}

impl Health {
    fn of(status: &'static str) -> Json<Health> {
        Json(Health { status })
    }
}

/// The process is up and answering.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "alive", body = Health))
)]
#[get("/health/alive")]
fn alive() -> Json<Health> {
    Health::of("alive")
}

/// The service can serve: its database answers within 2 s, has every migration applied and
/// takes a write. Otherwise 503; the reason goes to the log, not to whoever asks (it can name
/// the database's host, user or files).
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "ready", body = Health),
        (status = 503, description = "not ready (the log says why)", body = Health)
    )
)]
#[get("/health/ready")]
async fn ready(auth: &State<Auth>) -> (Status, Json<Health>) {
    match auth.operator().ready().await {
        Ok(()) => (Status::Ok, Health::of("ready")),
        Err(error) => {
            log::error!(target: "auth_service::health", "not ready: {error}");
            (Status::ServiceUnavailable, Health::of("unavailable"))
        }
    }
}

/// The bearer token of the request's `Authorization` header, if it has one.
struct Bearer(Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Bearer {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let token = req
            .headers()
            .get_one("Authorization")
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::to_owned);
        Outcome::Success(Bearer(token))
    }
}

/// Every metric in the Prometheus text format; 404 unless `metrics_enabled`, and 401 without
/// `Authorization: Bearer <metrics_token>` when a token is set.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "the metrics (text/plain; version=0.0.4)", body = String, content_type = "text/plain"),
        (status = 401, description = "metrics_token is set and was not given", body = Message),
        (status = 404, description = "metrics_enabled is false", body = Message)
    )
)]
#[get("/metrics")]
fn metrics(
    auth: &State<Auth>,
    settings: &State<Settings>,
    bearer: Bearer,
) -> Result<(ContentType, String), Problem> {
    let text = auth
        .operator()
        .metrics_text()
        .ok_or_else(|| Problem::new(Status::NotFound, "not found"))?;
    if let Some(expected) = &settings.metrics_token {
        let given = bearer.0.unwrap_or_default();
        if !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            return Err(Problem::new(
                Status::Unauthorized,
                "metrics need Authorization: Bearer <metrics_token>",
            ));
        }
    }
    let content_type = ContentType::parse_flexible(CONTENT_TYPE).unwrap_or(ContentType::Plain);
    Ok((content_type, text))
}
