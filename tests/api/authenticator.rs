//! A software passkey for the tests: a P-256 key that answers WebAuthn ceremonies as a
//! platform authenticator does (attestation "none", user presence and, unless told otherwise,
//! user verification), producing the `PublicKeyCredential` JSON a browser sends.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rocket::serde::json::{Value, json};
use sha2::{Digest, Sha256};

pub struct SoftPasskey {
    key: SigningKey,
    pub credential_id: Vec<u8>,
    counter: u32,
    /// Whether it reports user verification (a PIN or a fingerprint).
    pub verifies_user: bool,
    /// The origin it says the browser ran the ceremony on.
    pub origin: String,
}

impl SoftPasskey {
    pub fn new(origin: &str) -> SoftPasskey {
        let secret = auth_service::auth::token::digest(&auth_service::auth::token::generate());
        SoftPasskey {
            key: SigningKey::from_slice(&secret).unwrap(),
            credential_id:
                auth_service::auth::token::digest(&auth_service::auth::token::generate())[..16]
                    .to_vec(),
            counter: 0,
            verifies_user: true,
            origin: origin.to_owned(),
        }
    }

    /// The credential `navigator.credentials.create()` returns for `options` (`publicKey`).
    pub fn register(&mut self, options: &Value) -> Value {
        let client_data = self.client_data("webauthn.create", options);
        let point = self.key.verifying_key().to_sec1_point(false);
        let (x, y) = (&point.as_bytes()[1..33], &point.as_bytes()[33..65]);
        let mut cose = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
        cose.extend_from_slice(x);
        cose.extend_from_slice(&[0x22, 0x58, 0x20]);
        cose.extend_from_slice(y);
        let mut auth_data = self.auth_data(options["rp"]["id"].as_str().unwrap(), 0x40);
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID
        auth_data.extend_from_slice(&(self.credential_id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&self.credential_id);
        auth_data.extend_from_slice(&cose);
        let mut attestation = vec![0xa3, 0x63];
        attestation.extend_from_slice(b"fmt");
        attestation.push(0x64);
        attestation.extend_from_slice(b"none");
        attestation.push(0x67);
        attestation.extend_from_slice(b"attStmt");
        attestation.push(0xa0);
        attestation.push(0x68);
        attestation.extend_from_slice(b"authData");
        attestation.extend_from_slice(&bytes_header(auth_data.len()));
        attestation.extend_from_slice(&auth_data);
        let id = B64.encode(&self.credential_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "attestationObject": B64.encode(&attestation),
                "clientDataJSON": B64.encode(client_data.as_bytes()),
            },
            "extensions": {},
        })
    }

    /// The credential `navigator.credentials.get()` returns for `options` (`publicKey`).
    pub fn sign_in(&mut self, options: &Value) -> Value {
        self.counter += 1;
        let client_data = self.client_data("webauthn.get", options);
        let auth_data = self.auth_data(options["rpId"].as_str().unwrap(), 0);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(client_data.as_bytes()));
        let signature: Signature = self.key.sign(&signed);
        let id = B64.encode(&self.credential_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "authenticatorData": B64.encode(&auth_data),
                "clientDataJSON": B64.encode(client_data.as_bytes()),
                "signature": B64.encode(signature.to_der().as_bytes()),
                "userHandle": null,
            },
            "extensions": {},
        })
    }

    fn client_data(&self, kind: &str, options: &Value) -> String {
        json!({
            "type": kind,
            "challenge": options["challenge"],
            "origin": self.origin,
            "crossOrigin": false,
        })
        .to_string()
    }

    /// rpIdHash, flags (user present, verified if it does, and `more`), counter.
    fn auth_data(&self, rp_id: &str, more: u8) -> Vec<u8> {
        let mut data = Sha256::digest(rp_id.as_bytes()).to_vec();
        let verified = if self.verifies_user { 0x04 } else { 0 };
        data.push(0x01 | verified | more);
        data.extend_from_slice(&self.counter.to_be_bytes());
        data
    }
}

/// The CBOR header of a byte string of `len` bytes.
fn bytes_header(len: usize) -> Vec<u8> {
    match len {
        0..24 => vec![0x40 | len as u8],
        24..256 => vec![0x58, len as u8],
        _ => {
            let mut header = vec![0x59];
            header.extend_from_slice(&(len as u16).to_be_bytes());
            header
        }
    }
}
