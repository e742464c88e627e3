//! Who is asking: the [`Caller`] the auth layer takes, built from the request. Its address is
//! the socket's peer, unless the peer is one of `trusted_proxies`: then it is the rightmost
//! address of `X-Forwarded-For` that is not itself a trusted proxy (the first one any proxy of
//! ours did not add: anything left of it the client could have written). Rocket's `ip_header`
//! (`X-Real-IP` by default) is not used: any client can send that header.

use std::net::IpAddr;

use ipnet::IpNet;
use rocket::request::{FromRequest, Outcome, Request};

use super::cookies::Cookies;
use super::request_id::RequestId;
use crate::auth::Caller;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Caller {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let cookies = req.guard::<Cookies<'_>>().await.unwrap();
        Outcome::Success(Caller {
            address: address_of(req),
            request_id: Some(RequestId::of(req).0),
            session_id: cookies.session_id(),
            device_token: cookies.device_token(),
            user_agent: req.headers().get_one("User-Agent").map(str::to_owned),
        })
    }
}

/// The client address of `req`: its peer, or behind trusted proxies the address they report.
pub fn address_of(req: &Request<'_>) -> Option<IpAddr> {
    let forwarded = req.headers().get("X-Forwarded-For").collect::<Vec<_>>();
    let proxies = req.rocket().state::<TrustedProxies>();
    let peer = req.remote().map(|socket| socket.ip());
    peer.map(|peer| {
        let proxies = proxies.map_or(&[][..], |p| &p.0[..]);
        client_address(peer, &forwarded, proxies)
    })
}

/// The parsed `trusted_proxies`, in Rocket's managed state.
pub struct TrustedProxies(pub Vec<IpNet>);

/// The client's address: `peer`, or when `peer` is a trusted proxy, the rightmost address of
/// the `X-Forwarded-For` headers (`forwarded`, in order) that is not a trusted proxy. A header
/// that does not parse ends the walk there: the peer's word is all there is.
fn client_address(peer: IpAddr, forwarded: &[&str], proxies: &[IpNet]) -> IpAddr {
    let trusted = |address: &IpAddr| {
        let address = address.to_canonical();
        proxies.iter().any(|net| net.contains(&address))
    };
    if !trusted(&peer) {
        return peer;
    }
    let hops = forwarded
        .iter()
        .flat_map(|header| header.split(','))
        .map(|hop| hop.trim().parse::<IpAddr>());
    let mut client = peer;
    for hop in hops.rev() {
        match hop {
            Ok(address) if trusted(&address) => client = address,
            Ok(address) => return address,
            Err(_) => return client,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let proxies = nets(&["10.0.0.0/8"]);
        let client = client_address(ip("192.0.2.1"), &["203.0.113.9"], &proxies);
        assert_eq!(client, ip("192.0.2.1"));
    }

    #[test]
    fn behind_trusted_proxies_the_client_is_the_rightmost_untrusted_hop() {
        let proxies = nets(&["10.0.0.0/8"]);
        let forwarded = ["198.51.100.1, 203.0.113.9", "10.0.0.7"];
        let client = client_address(ip("10.0.0.2"), &forwarded, &proxies);
        assert_eq!(
            client,
            ip("203.0.113.9"),
            "the forged leftmost hop is ignored"
        );
    }

    #[test]
    fn a_trusted_peer_without_a_usable_header_is_the_client() {
        let proxies = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_address(ip("10.0.0.2"), &[], &proxies),
            ip("10.0.0.2")
        );
        let garbled = client_address(ip("10.0.0.2"), &["not an address"], &proxies);
        assert_eq!(garbled, ip("10.0.0.2"));
        let all_ours = client_address(ip("10.0.0.2"), &["10.0.0.3"], &proxies);
        assert_eq!(all_ours, ip("10.0.0.3"));
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_proxies() {
        let proxies = nets(&["127.0.0.1/32"]);
        let client = client_address(ip("::ffff:127.0.0.1"), &["203.0.113.9"], &proxies);
        assert_eq!(client, ip("203.0.113.9"));
    }
}
