//! Request ids (the original's `_generate_uuid`): every request gets a UUID v4, returned in
//! `X-Request-Id` and written in its log line (`request_log`), so a report can be matched to
//! the logs.

use rocket::Request;
use rocket::request::{FromRequest, Outcome};
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
