//! Each request's log line, with its id and latency, and its count in the metrics.

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::Header;
use rocket::serde::json::json;
use rocket::{Data, Request, Response};
use std::time::Instant;

use super::client::address_of;
use super::request_id::RequestId;
use crate::metrics::Metrics;

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
            let address = address_of(req).map(|ip| ip.to_string());
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
