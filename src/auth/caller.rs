//! Who is asking: the client's address (what per-address limits count), the request id (what
//! audit lines carry) and the secrets its cookies present (the session a new login replaces,
//! the device a past login made trusted). The web layer fills it in; the auth layer only reads.

use std::net::IpAddr;

use uuid::Uuid;

#[derive(Clone, Default)]
pub struct Caller {
    /// The client's address: the socket peer, or, behind a trusted proxy, the address that proxy
    /// reports.
    pub address: Option<IpAddr>,
    pub request_id: Option<Uuid>,
    /// The session id of the client's session cookie, if it sent one.
    pub session_id: Option<String>,
    /// The device token of the client's device cookie, if it sent one.
    pub device_token: Option<String>,
    /// The client's `User-Agent`, if it sent one.
    pub user_agent: Option<String>,
}

/// Deliberately hides the session id and device token, so no log line can carry them.
impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("address", &self.address)
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

impl Caller {
    /// The client address as the account's owner sees it in the sessions list.
    pub fn address_shown(&self) -> Option<String> {
        self.address.map(|a| a.to_canonical().to_string())
    }

    /// The digest of the session the client presents, as sessions are stored.
    pub fn session_digest(&self) -> Option<[u8; 32]> {
        self.session_id.as_deref().map(super::token::digest)
    }

    /// The digest of the device cookie the client presents, as devices are stored.
    pub fn device_digest(&self) -> Option<[u8; 32]> {
        self.device_token.as_deref().map(super::token::digest)
    }

    /// The address as a throttling key. An IPv6 client is keyed by its /64 prefix: one
    /// subscriber usually holds a whole /64, so keying by the exact address would give each of
    /// them 2^64 budgets. An IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`) is keyed as IPv4.
    pub fn address_key(&self) -> String {
        match self.address.map(|a| a.to_canonical()) {
            None => "unknown".into(),
            Some(IpAddr::V4(v4)) => v4.to_string(),
            Some(IpAddr::V6(v6)) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", std::net::Ipv6Addr::from(prefix))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(address: &str) -> String {
        let caller = Caller {
            address: Some(address.parse().unwrap()),
            ..Caller::default()
        };
        caller.address_key()
    }

    #[test]
    fn ipv4_is_keyed_by_its_address_and_ipv6_by_its_64_prefix() {
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        assert_eq!(Caller::default().address_key(), "unknown");
    }

    #[test]
    fn debug_output_hides_the_secrets() {
        let caller = Caller {
            session_id: Some("s3cret-session".into()),
            device_token: Some("s3cret-device".into()),
            ..Caller::default()
        };
        let shown = format!("{caller:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
