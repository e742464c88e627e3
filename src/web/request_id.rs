//! Request ids (the original's `_generate_uuid`): every request gets a UUID v4, returned in
//! `X-Request-Id` and written in its log line, so a report can be matched to the logs.

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::Header;
use rocket::request::{FromRequest, Outcome};
use rocket::{Data, Request, Response};
use uuid::Uuid;

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

/// Assigns the id when a request arrives and reports it with the response.
pub struct RequestIds;

#[rocket::async_trait]
impl Fairing for RequestIds {
    fn info(&self) -> Info {
        Info {
            name: "Request ids",
            kind: Kind::Request | Kind::Response,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        RequestId::of(req);
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let RequestId(id) = RequestId::of(req);
        res.set_header(Header::new("X-Request-Id", id.to_string()));
        // The path only: query strings may carry secrets (reset links).
        log::info!(
            target: "auth_service::request",
            "{id} {} {} -> {}",
            req.method(),
            req.uri().path(),
            res.status().code
        );
    }
}
