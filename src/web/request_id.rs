//! Request ids (the original's `_generate_uuid`): every request gets a UUID v4, returned in
//! `X-Request-Id` and written in its log line (with its latency), so a report can be matched
//! to the logs; the same fairing counts the request in the metrics.

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::Header;
use rocket::request::{FromRequest, Outcome};
use rocket::serde::json::json;
use rocket::{Data, Request, Response};
use std::time::Instant;
use uuid::Uuid;

use crate::metrics::Metrics;

#[derive(Debug, Clone, Copy)]
pub struct RequestId(pub Uuid);

impl RequestId {
    /// This request's id, made on first use.
    pub fn of(req: &Request<'_>) -> RequestId {
        *req.local_cache(|| RequestId(Uuid::new_v4()))
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for RequestId {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(RequestId::of(req))
    }
}

/// When the request arrived, for its latency.
struct Arrived(Instant);

/// Gives each request its id when it arrives; with the response, sets `X-Request-Id`, writes
/// the request's log line (a JSON object with `json`) and counts it in the metrics.
pub struct RequestLog {
    pub json: bool,
}

#[rocket::async_trait]
impl Fairing for RequestLog {
    fn info(&self) -> Info {
        Info {
            name: "Request ids, log lines and metrics",
            kind: Kind::Request | Kind::Response,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        RequestId::of(req);
        req.local_cache(|| Arrived(Instant::now()));
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let RequestId(id) = RequestId::of(req);
        res.set_header(Header::new("X-Request-Id", id.to_string()));
        let Arrived(arrived) = req.local_cache(|| Arrived(Instant::now()));
        let elapsed = arrived.elapsed();
        // The matched route's template, never the query: query strings may carry secrets.
        let route = req.route().map_or("unmatched", |route| route.uri.path());
        let status = res.status().code;
        if let Some(metrics) = req.rocket().state::<Metrics>() {
            metrics.request(req.method().as_str(), route, status, elapsed);
        }
        if !log::log_enabled!(target: "auth_service::request", log::Level::Info) {
            return;
        }
        let ms = elapsed.as_secs_f64() * 1000.0;
        let (method, path) = (req.method(), req.uri().path());
        if self.json {
            let address = super::client::address_of(req).map(|ip| ip.to_string());
            let line = json!({
                "request_id": id.to_string(),
                "method": method.as_str(),
                "path": path.as_str(),
                "route": route,
                "status": status,
                "latency_ms": (ms * 1000.0).round() / 1000.0,
                "address": address,
            });
            log::info!(target: "auth_service::request", "{line}");
        } else {
            log::info!(
                target: "auth_service::request",
                "{id} {method} {path} -> {status} in {ms:.1} ms",
            );
        }
    }
}
