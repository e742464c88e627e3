//! Content negotiation for the paths both the API and the pages serve (`GET /`, `GET /profile`,
//! `POST /account/email`): one route per path, whose handler runs the page for clients that
//! prefer HTML and the JSON handler for everyone else. Two ranked routes with a forwarding guard
//! would pick the same way, but Rocket logs every forward as a warning: a log line (a write to
//! stderr) per API request.
//! (A `format = "html"` route would match `Accept: */*` too, taking the API's clients.)

use rocket::route::{Handler, Outcome};
use rocket::{Data, Request, Route};

/// Whether the client would rather have HTML than JSON: browsers list `text/html` first;
/// `*/*`, JSON and a missing `Accept` header do not.
pub fn prefers_html(req: &Request<'_>) -> bool {
    req.accept()
        .is_some_and(|accept| accept.preferred().media_type().is_html())
}

/// The page's handler and the API's handler of one method and path.
#[derive(Clone)]
struct Negotiated {
    html: Box<dyn Handler>,
    json: Box<dyn Handler>,
}

#[rocket::async_trait]
impl Handler for Negotiated {
    async fn handle<'r>(&self, req: &'r Request<'_>, data: Data<'r>) -> Outcome<'r> {
        match prefers_html(req) {
            true => self.html.handle(req, data).await,
            false => self.json.handle(req, data).await,
        }
    }
}

/// `pages` and `api` as one route table: a page and an API route with the same method and path
/// become a single [`Negotiated`] route (keeping the page route's sentinels, which check that
/// the template fairing is attached); every other route is kept as it is.
pub fn merge(pages: Vec<Route>, api: Vec<Route>) -> Vec<Route> {
    let mut routes = pages;
    for json in api {
        let twin = routes
            .iter_mut()
            .find(|page| page.method == json.method && page.uri.as_str() == json.uri.as_str());
        match twin {
            Some(page) => {
                let html = page.handler.clone();
                page.handler = Box::new(Negotiated {
                    html,
                    json: json.handler,
                });
            }
            None => routes.push(json),
        }
    }
    routes
}
