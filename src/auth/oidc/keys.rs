//! The ID-token signing keys: made on first use and stored in the database (shared by every
//! instance), the private part sealed under `mfa_key` as second-factor secrets are, with the
//! key's `kid` as associated data. The newest unretired key of an algorithm signs; a key
//! retired by a rotation stays published until every ID token it signed has expired.

use std::sync::Arc;

use serde_json::Value;

use super::jose::{self, Alg, PrivateKey};
use super::{Auth, AuthError};
use crate::db::now;
use crate::db::oidc::{self as stored, SigningKey};

/// The associated data a key's private part is sealed with.
fn sealed_as(kid: &str) -> Vec<u8> {
    format!("auth_service oidc signing key {kid}").into_bytes()
}

#[derive(Clone, Copy)]
pub(super) struct Keys<'a>(pub(super) &'a Auth);

impl Keys<'_> {
    /// The current key of `alg` (made when there is none) and its `kid`.
    pub(super) async fn signing(self, alg: Alg) -> Result<(String, Arc<PrivateKey>), AuthError> {
        let keys = self.0.db.run(stored::keys).await?;
        let current = keys
            .into_iter()
            .find(|key| key.alg == alg.name() && key.retired_at.is_none());
        let stored = match current {
            Some(key) => key,
            None => {
                // One generation at a time in this process (RSA keys take a while to make): a
                // burst of first requests waits for the first one's key, and reads it.
                let _one = self.0.oidc.generating.lock().await;
                let keys = self.0.db.run(stored::keys).await?;
                let made = keys
                    .into_iter()
                    .find(|key| key.alg == alg.name() && key.retired_at.is_none());
                match made {
                    Some(key) => key,
                    None => self.add(alg, false).await?,
                }
            }
        };
        Ok((stored.kid.clone(), self.private(&stored)?))
    }

    /// `claims` signed with the current key of `alg`, on a blocking thread: an RSA signature
    /// is a millisecond or two of CPU, which the async workers must not spend.
    pub(super) async fn sign(self, alg: Alg, claims: &Value) -> Result<String, AuthError> {
        let (kid, key) = self.signing(alg).await?;
        let claims = claims.clone();
        Ok(tokio::task::spawn_blocking(move || key.sign(&kid, &claims)).await?)
    }

    /// The claims of an ID token one of the published keys signed (expired or not).
    pub(super) async fn verify(self, token: &str) -> Result<Option<Value>, AuthError> {
        let keys = self.published().await?;
        Ok(jose::verify(token, &keys))
    }

    /// The public keys of the current keys and of those retired within an ID token's lifetime.
    pub(super) async fn published(self) -> Result<Vec<Value>, AuthError> {
        let cutoff = now() - self.0.oidc.access_ttl;
        let keys = self.0.db.run(stored::keys).await?;
        keys.into_iter()
            .filter(|key| key.retired_at.is_none_or(|retired| retired >= cutoff))
            .map(|key| {
                serde_json::from_str(&key.public_jwk).map_err(|e| AuthError::Internal(e.into()))
            })
            .collect()
    }

    /// A new current key for each algorithm that has one (RS256 at least); their `kid`s.
    pub(super) async fn rotate(self) -> Result<Vec<String>, AuthError> {
        let keys = self.0.db.run(stored::keys).await?;
        let mut kids = Vec::new();
        for alg in [Alg::Rs256, Alg::EdDsa] {
            let in_use = keys.iter().any(|key| key.alg == alg.name());
            if alg == Alg::Rs256 || in_use {
                kids.push(self.add(alg, true).await?.kid);
            }
        }
        Ok(kids)
    }

    /// Makes and stores a key of `alg`; `replace`: the current one retires. Without
    /// `replace`, a key another instance made meanwhile wins and this one is not stored.
    async fn add(self, alg: Alg, replace: bool) -> Result<SigningKey, AuthError> {
        let kid = super::token::public_id();
        let made = {
            let kid = kid.clone();
            tokio::task::spawn_blocking(move || jose::generate(alg, &kid)).await?
        };
        let (der, jwk) = made.map_err(|e| AuthError::Internal(e.into()))?;
        let (seal_key_id, private_key) = self.0.keys.seal_for(&sealed_as(&kid), &der);
        let key = SigningKey {
            kid,
            alg: alg.name().to_owned(),
            public_jwk: jwk.to_string(),
            private_key,
            seal_key_id,
            created_at: now(),
            retired_at: None,
        };
        let stored = key.clone();
        Ok(self
            .0
            .db
            .write(move |tx| stored::add_key(tx, &stored, alg.name(), replace))
            .await?
            .unwrap_or(key))
    }

    /// The private key of `stored`, unsealed once per process.
    fn private(self, stored: &SigningKey) -> Result<Arc<PrivateKey>, AuthError> {
        let mut cache = self.0.oidc.private_keys.lock().expect("the key cache");
        if let Some(key) = cache.get(&stored.kid) {
            return Ok(key.clone());
        }
        let alg = Alg::parse(&stored.alg).ok_or_else(|| internal("a key of an unknown alg"))?;
        let der = (self.0.keys)
            .open_for(
                &sealed_as(&stored.kid),
                &stored.seal_key_id,
                &stored.private_key,
            )
            .ok_or_else(|| {
                internal("a signing key that mfa_key (or mfa_previous_keys) cannot open")
            })?;
        let key = Arc::new(PrivateKey::from_der(alg, &der).map_err(internal)?);
        cache.insert(stored.kid.clone(), key.clone());
        Ok(key)
    }
}

fn internal(cause: impl Into<String>) -> AuthError {
    AuthError::Internal(cause.into().into())
}
