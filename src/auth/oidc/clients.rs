//! The operator's registrations of relying parties (`auth_service oidc clients …`): a client
//! id and, for a confidential client, a secret shown once and stored as its SHA-256 (256
//! random bits need no slow hash).

use serde::Serialize;

use super::{Alg, Auth, AuthError, SCOPES, token};
use crate::db::now;
use crate::db::oidc::{self as stored, Client};

/// A registration as the operator asks for it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, Serialize)]
pub struct NewClient {
    pub name: String,
    pub redirect_uris: Vec<String>,
    /// A public client (a browser or native app) holds no secret, and must use PKCE.
    pub public: bool,
    pub post_logout_uris: Vec<String>,
    /// First-party confidential clients only: no consent page.
    pub skip_consent: bool,
    /// The scopes it may ask for; empty: all of [`SCOPES`].
    pub scopes: Vec<String>,
    /// Confidential clients only: may omit PKCE.
    pub pkce_optional: bool,
    /// `RS256` (the default) or `EdDSA`.
    pub id_token_alg: Option<String>,
}

/// A registered client, as the operator sees it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientInfo {
    pub client_id: String,
    pub name: String,
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub skip_consent: bool,
    pub pkce_optional: bool,
    pub id_token_alg: String,
    pub created_at: i64,
}

/// A client just registered (or given a new secret): the secret, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registered {
    pub client: ClientInfo,
    pub secret: Option<String>,
}

impl From<Client> for ClientInfo {
    fn from(client: Client) -> ClientInfo {
        let lines = |text: &str| -> Vec<String> {
            text.split('\n')
                .filter(|line| !line.is_empty())
                .map(str::to_owned)
                .collect()
        };
        ClientInfo {
            public: client.secret_hash.is_none(),
            redirect_uris: lines(&client.redirect_uris),
            post_logout_uris: lines(&client.post_logout_uris),
            scopes: client.scopes.split(' ').map(str::to_owned).collect(),
            client_id: client.client_id,
            name: client.name,
            skip_consent: client.skip_consent,
            pkce_optional: client.pkce_optional,
            id_token_alg: client.id_token_alg,
            created_at: client.created_at,
        }
    }
}

#[derive(Clone, Copy)]
pub struct Clients<'a>(pub(super) &'a Auth);

impl Clients<'_> {
    /// Registers `new` after checking it; the client id and, for a confidential client, its
    /// secret.
    pub async fn add(self, new: NewClient) -> Result<Registered, AuthError> {
        let refuse = |why: &str| Err(AuthError::BadClient(why.to_owned()));
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return refuse("the name must be 1 to 64 characters");
        }
        if new.redirect_uris.is_empty() {
            return refuse("a client needs at least one --redirect-uri");
        }
        for uri in new.redirect_uris.iter().chain(&new.post_logout_uris) {
            if let Err(why) = check_uri(uri) {
                return Err(AuthError::BadClient(format!("{uri:?}: {why}")));
            }
        }
        if new.public && (new.skip_consent || new.pkce_optional) {
            return refuse("--skip-consent and --pkce-optional are for confidential clients only");
        }
        let scopes: Vec<&str> = match new.scopes.is_empty() {
            true => SCOPES.to_vec(),
            false => SCOPES
                .into_iter()
                .filter(|s| *s == "openid" || new.scopes.iter().any(|asked| asked == s))
                .collect(),
        };
        if let Some(unknown) = new.scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
            return Err(AuthError::BadClient(format!(
                "unknown scope {unknown:?} (known: {})",
                SCOPES.join(", ")
            )));
        }
        let alg = match new.id_token_alg.as_deref() {
            None => Alg::Rs256,
            Some(name) => Alg::parse(name)
                .ok_or_else(|| AuthError::BadClient("--id-token-alg is RS256 or EdDSA".into()))?,
        };
        let secret = (!new.public).then(token::generate);
        let client = Client {
            client_id: token::public_id(),
            name: name.to_owned(),
            secret_hash: secret.as_deref().map(|s| token::digest(s).to_vec()),
            redirect_uris: new.redirect_uris.join("\n"),
            post_logout_uris: new.post_logout_uris.join("\n"),
            scopes: scopes.join(" "),
            skip_consent: new.skip_consent,
            pkce_optional: new.pkce_optional,
            id_token_alg: alg.name().to_owned(),
            created_at: now(),
        };
        let row = client.clone();
        self.0
            .db
            .write(move |tx| stored::add_client(tx, &row))
            .await?;
        // Its signing key is published before its first sign-in: relying parties fetch the
        // JWK Set once and cache it.
        super::keys::Keys(self.0).signing(alg).await?;
        Ok(Registered {
            client: client.into(),
            secret,
        })
    }

    pub async fn list(self) -> Result<Vec<ClientInfo>, AuthError> {
        let clients = self.0.db.run(stored::list_clients).await?;
        Ok(clients.into_iter().map(ClientInfo::from).collect())
    }

    pub async fn show(self, client_id: &str) -> Result<ClientInfo, AuthError> {
        let id = client_id.to_owned();
        let client = self.0.db.run(move |c| stored::find_client(c, &id)).await?;
        client.map(ClientInfo::from).ok_or(AuthError::UnknownClient)
    }

    /// Removes a client, with every grant, code and token of it.
    pub async fn remove(self, client_id: &str) -> Result<(), AuthError> {
        let id = client_id.to_owned();
        let removed = self
            .0
            .db
            .write(move |tx| stored::remove_client(tx, &id))
            .await?;
        removed.then_some(()).ok_or(AuthError::UnknownClient)
    }

    /// A new secret for a confidential client: the old one stops working at once.
    pub async fn rotate_secret(self, client_id: &str) -> Result<Registered, AuthError> {
        let secret = token::generate();
        let (id, digest) = (client_id.to_owned(), token::digest(&secret));
        let rotated = self
            .0
            .db
            .write(move |tx| stored::set_client_secret(tx, &id, &digest))
            .await?;
        if !rotated {
            return Err(AuthError::UnknownClient);
        }
        Ok(Registered {
            client: self.show(client_id).await?,
            secret: Some(secret),
        })
    }
}

/// Why `uri` cannot be a redirect URI: it must be absolute, without a fragment or spaces;
/// plain `http` only to this machine (RFC 8252 7.3; RFC 9700 2.1).
fn check_uri(uri: &str) -> Result<(), &'static str> {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Err("not an absolute URI");
    };
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok || rest.is_empty() {
        return Err("not an absolute URI");
    }
    if uri.contains('#') || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a redirect URI has no fragment and no spaces");
    }
    let scheme = scheme.to_ascii_lowercase();
    if ["javascript", "data", "vbscript", "file", "blob"].contains(&scheme.as_str()) {
        return Err("not a scheme a browser may be sent to with a code");
    }
    let Some(rest) = rest.strip_prefix("//") else {
        return match scheme == "http" || scheme == "https" {
            true => Err("not an absolute URI"),
            false => Ok(()),
        };
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if authority.contains(['@', '\\']) || authority.is_empty() {
        return Err("a redirect URI names a host, without user information");
    }
    if scheme == "http" {
        let host = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                    return Err("not a port");
                }
                host
            }
            _ => authority,
        };
        if !["127.0.0.1", "[::1]", "localhost"].contains(&host) {
            return Err("plain http is for loopback addresses only; use https");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_absolute_without_fragments_and_https_off_loopback() {
        for good in [
            "https://app.example.com/cb",
            "http://127.0.0.1/cb",
            "http://localhost:8080/cb",
            "http://[::1]:9/cb",
            "com.example.app:/oauth",
        ] {
            assert_eq!(check_uri(good), Ok(()), "{good}");
        }
        for bad in [
            "/cb",
            "app.example.com/cb",
            "http://app.example.com/cb",
            "http://localhost.evil.com/cb",
            "https://app.example.com/cb#x",
            "https://app.example.com/c b",
            "https:app",
            "",
            "http://127.0.0.1:80@evil.example/cb",
            "https://user@app.example.com/cb",
            "javascript:alert(1)",
            "JavaScript://%0aalert(1)",
            "data:text/html,x",
            "http://127.0.0.1:x/cb",
        ] {
            assert!(check_uri(bad).is_err(), "{bad}");
        }
    }
}
