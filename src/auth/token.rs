//! Random secrets (session ids, reset tokens), public ids, and the digests under which secrets
//! are stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// A fresh secret: 32 bytes (256 bits) from the OS CSPRNG, URL-safe base64 without padding,
/// 43 characters. A UUID v4 carries only 122 random bits, short of ASVS's 128.
pub fn generate() -> String {
    random::<32>()
}

/// A fresh public id (a session's, in the account's list of sessions): 16 bytes from the OS
/// CSPRNG, 22 URL-safe characters. It names a row and grants nothing, so it needs no digest.
pub fn public_id() -> String {
    random::<16>()
}

fn random<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 of a secret: what the database holds, so a leaked table yields no usable cookie.
/// A fast hash suffices because the secret itself has 256 bits of entropy.
pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_43_url_safe_characters() {
        let secret = generate();
        assert_eq!(secret.len(), 43);
        assert!(
            secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(&secret).unwrap().len(), 32);
        assert_eq!(URL_SAFE_NO_PAD.decode(public_id()).unwrap().len(), 16);
    }

    #[test]
    fn secrets_do_not_repeat() {
        let secrets: std::collections::HashSet<_> = (0..1000).map(|_| generate()).collect();
        assert_eq!(secrets.len(), 1000);
    }

    #[test]
    fn the_digest_is_sha256() {
        let hex: String = digest("abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
