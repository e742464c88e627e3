//! ID tokens as JSON Web Signatures (RFC 7515, compact form) and the public keys that verify
//! them as a JWK Set (RFC 7517). RS256 (RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys, the
//! algorithm every OpenID client must accept) through the `rsa` crate webauthn-rs already
//! builds (constant-time arithmetic since 0.10), and EdDSA (Ed25519) through `ring`, which
//! rustls already builds. `alg: none` does not exist here: every token is signed, and only
//! the two algorithms above verify.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crypto_glue::rsa::{RS256PrivateKey, RS256Signature, RS256SigningKey, RS256VerifyingKey};
use crypto_glue::traits::{
    Pkcs8DecodePrivateKey, Pkcs8EncodePrivateKey, PublicKeyParts, SignatureEncoding, Signer,
    Verifier,
};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde_json::{Value, json};

/// The algorithms ID tokens are signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    EdDsa,
}

impl Alg {
    /// The JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::EdDsa => "EdDSA",
        }
    }

    pub fn parse(name: &str) -> Option<Alg> {
        [Alg::Rs256, Alg::EdDsa]
            .into_iter()
            .find(|alg| alg.name() == name)
    }
}

/// A private signing key.
pub enum PrivateKey {
    Rs256(Box<RS256SigningKey>),
    EdDsa(Ed25519KeyPair),
}

/// A new key: its private part (PKCS #8 DER, to be sealed) and its public JWK (with `kid`,
/// `alg` and `use`).
pub fn generate(alg: Alg, kid: &str) -> Result<(Vec<u8>, Value), String> {
    let der = match alg {
        Alg::Rs256 => {
            let key = crypto_glue::rsa::new_key(2048).map_err(|e| e.to_string())?;
            key.to_pkcs8_der()
                .map_err(|e| e.to_string())?
                .as_bytes()
                .to_vec()
        }
        Alg::EdDsa => Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
            .map_err(|e| e.to_string())?
            .as_ref()
            .to_vec(),
    };
    let key = PrivateKey::from_der(alg, &der)?;
    Ok((der, key.public_jwk(kid)))
}

impl PrivateKey {
    /// The key in `der` (PKCS #8).
    pub fn from_der(alg: Alg, der: &[u8]) -> Result<PrivateKey, String> {
        match alg {
            Alg::Rs256 => {
                let key = RS256PrivateKey::from_pkcs8_der(der).map_err(|e| e.to_string())?;
                Ok(PrivateKey::Rs256(Box::new(RS256SigningKey::new(key))))
            }
            Alg::EdDsa => Ed25519KeyPair::from_pkcs8(der)
                .map(PrivateKey::EdDsa)
                .map_err(|e| e.to_string()),
        }
    }

    fn alg(&self) -> Alg {
        match self {
            PrivateKey::Rs256(_) => Alg::Rs256,
            PrivateKey::EdDsa(_) => Alg::EdDsa,
        }
    }

    /// The public half as a JWK.
    fn public_jwk(&self, kid: &str) -> Value {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        match self {
            PrivateKey::Rs256(key) => {
                let public: &RS256PrivateKey = key.as_ref().as_ref();
                json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                       "n": b64(&public.n_bytes()), "e": b64(&public.e_bytes())})
            }
            PrivateKey::EdDsa(pair) => {
                json!({"kty": "OKP", "use": "sig", "alg": "EdDSA", "crv": "Ed25519", "kid": kid,
                       "x": b64(pair.public_key().as_ref())})
            }
        }
    }

    /// `claims` signed: `header.payload.signature`, the header naming the key.
    pub fn sign(&self, kid: &str, claims: &Value) -> String {
        let header = json!({"alg": self.alg().name(), "typ": "JWT", "kid": kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = match self {
            PrivateKey::Rs256(key) => key.sign(input.as_bytes()).to_bytes().to_vec(),
            PrivateKey::EdDsa(pair) => pair.sign(input.as_bytes()).as_ref().to_vec(),
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// The claims of `token` if one of `jwks` (public JWKs) signed it with the algorithm the key
/// is for; `None` for anything else (another algorithm, `none`, an unknown `kid`, a bad
/// signature, not a JWS). Expiry is the caller's to check.
pub fn verify(token: &str, jwks: &[Value]) -> Option<Value> {
    let mut parts = token.split('.');
    let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).ok();
    let header: Value = serde_json::from_slice(&decode(header)?).ok()?;
    let kid = header.get("kid")?.as_str()?;
    let jwk = jwks.iter().find(|jwk| jwk["kid"] == kid)?;
    if header.get("alg") != jwk.get("alg") {
        return None;
    }
    let input = &token[..header_and_payload_len(token)?];
    let signature = decode(signature)?;
    let verified = match Alg::parse(jwk["alg"].as_str()?)? {
        Alg::Rs256 => {
            let n = crypto_glue::rsa::BigUint::from_be_slice_vartime(&decode(jwk["n"].as_str()?)?);
            let e = crypto_glue::rsa::BigUint::from_be_slice_vartime(&decode(jwk["e"].as_str()?)?);
            let public = crypto_glue::rsa::RS256PublicKey::new(n, e).ok()?;
            let signature = RS256Signature::try_from(signature.as_slice()).ok()?;
            RS256VerifyingKey::new(public)
                .verify(input.as_bytes(), &signature)
                .is_ok()
        }
        Alg::EdDsa => UnparsedPublicKey::new(&ED25519, decode(jwk["x"].as_str()?)?)
            .verify(input.as_bytes(), &signature)
            .is_ok(),
    };
    verified
        .then(|| serde_json::from_slice(&decode(payload)?).ok())
        .flatten()
}

/// The length of `header.payload`, the signed part of a compact JWS.
fn header_and_payload_len(token: &str) -> Option<usize> {
    token.rfind('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(alg: Alg) {
        let (der, jwk) = generate(alg, "k1").unwrap();
        let key = PrivateKey::from_der(alg, &der).unwrap();
        let claims = json!({"sub": "abc", "n": 1});
        let token = key.sign("k1", &claims);
        assert_eq!(verify(&token, std::slice::from_ref(&jwk)), Some(claims));
        assert_eq!(jwk["alg"], alg.name());
        assert_eq!(jwk["kid"], "k1");
        let (body, _) = token.rsplit_once('.').unwrap();
        let forged = format!("{body}.{}", URL_SAFE_NO_PAD.encode([0u8; 64]));
        assert_eq!(verify(&forged, std::slice::from_ref(&jwk)), None);
        let tampered = token.replacen('.', ".e", 1);
        assert_eq!(verify(&tampered, std::slice::from_ref(&jwk)), None);
        let unsigned_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#);
        let payload = token.split('.').nth(1).unwrap();
        assert_eq!(
            verify(
                &format!("{unsigned_header}.{payload}."),
                std::slice::from_ref(&jwk)
            ),
            None
        );
        let mut other = jwk;
        other["kid"] = json!("k2");
        assert_eq!(verify(&token, &[other]), None);
    }

    #[test]
    fn rs256_signs_what_its_jwk_verifies_and_nothing_else() {
        roundtrip(Alg::Rs256);
    }

    #[test]
    fn eddsa_signs_what_its_jwk_verifies_and_nothing_else() {
        roundtrip(Alg::EdDsa);
    }

    #[test]
    fn an_rs256_jwk_is_the_2048_bit_modulus_and_aqab() {
        let (_, jwk) = generate(Alg::Rs256, "k").unwrap();
        assert_eq!(jwk["e"], "AQAB");
        let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
        assert_eq!(n.len(), 256);
        assert_ne!(n[0], 0);
    }
}
