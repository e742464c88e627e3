//! Secrets the service must read back (an authenticator app's TOTP secret), sealed with
//! AES-256-GCM under `mfa_key`: a copy of the database alone does not give them away. The
//! account id is the associated data, so a sealed secret moved to another account's row does
//! not open; each sealed value names its key's id, so the key can be rotated (the old one stays
//! in `mfa_previous_keys` while anything sealed under it remains).

use std::path::Path;
use std::sync::Arc;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// The length of a nonce, stored before the ciphertext.
const NONCE_LEN: usize = 12;

/// The sealing keys: the current one seals, any of them opens what names it. The current one
/// also derives the service's other stable secrets ([`SealingKeys::derive`]).
#[derive(Clone)]
pub struct SealingKeys(Arc<Vec<(String, Aes256Gcm)>>, Arc<[u8; 32]>);

impl std::fmt::Debug for SealingKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.0.iter().map(|(id, _)| id.as_str()).collect();
        write!(f, "SealingKeys({ids:?})")
    }
}

impl SealingKeys {
    /// The keys `current` (which seals) and `previous` (which only open), each 32 bytes in
    /// base64 or hex; `Err` says what is wrong with which.
    pub fn parse(current: &str, previous: &[String]) -> Result<SealingKeys, String> {
        let root = crate::config::sealing_key(current)?;
        let keys = std::iter::once(current)
            .chain(previous.iter().map(String::as_str))
            .map(|text| {
                let key = crate::config::sealing_key(text)?;
                Ok((key_id(&key), Aes256Gcm::new(&key.into())))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(SealingKeys(Arc::new(keys), Arc::new(root)))
    }

    /// A new random key, in the form `mfa_key` takes (base64 of 32 bytes).
    pub fn generate() -> String {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the system's random source");
        STANDARD.encode(key)
    }

    /// The key in the file `path`, made (0600) with a new random key when missing: the debug
    /// profile's `mfa_key`, so that enrolled factors survive a restart.
    pub fn from_file(path: &Path) -> Result<(SealingKeys, bool), String> {
        let shown = path.display();
        let made = match crate::files::create_new(path) {
            Ok(mut file) => {
                use std::io::Write;
                let key = SealingKeys::generate();
                file.write_all(format!("{key}\n").as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| format!("cannot write the mfa key file {shown}: {e}"))?;
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(format!("cannot create the mfa key file {shown}: {e}")),
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the mfa key file {shown}: {e}"))?;
        let keys = SealingKeys::parse(text.trim(), &[])
            .map_err(|e| format!("the mfa key file {shown}: {e}"))?;
        Ok((keys, made))
    }

    /// A secret for `purpose`, derived from the current key (HMAC-SHA-256): stable while the
    /// key is, and telling nothing of it.
    pub fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.1[..]).expect("HMAC takes any key");
        mac.update(b"auth_service derived secret\0");
        mac.update(purpose);
        mac.finalize().into_bytes().into()
    }

    /// `secret` sealed for account `account`: the current key's id, and nonce ‖ ciphertext.
    pub fn seal(&self, account: i32, secret: &[u8]) -> (String, Vec<u8>) {
        self.seal_for(&associated(account), secret)
    }

    /// What `seal` sealed for `account` under key `key_id`; `None` when the key is unknown or
    /// the value was altered or sealed for another account.
    pub fn open(&self, account: i32, key_id: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        self.open_for(&associated(account), key_id, sealed)
    }

    /// `secret` sealed for the owner `aad` names (the associated data: the sealed value opens
    /// only for the same owner).
    pub fn seal_for(&self, aad: &[u8], secret: &[u8]) -> (String, Vec<u8>) {
        let (id, cipher) = &self.0[0];
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the system's random source");
        let payload = Payload { msg: secret, aad };
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .expect("AES-GCM seals any length this service stores");
        (id.clone(), [&nonce[..], &sealed].concat())
    }

    /// What `seal_for` sealed for `aad` under key `key_id`.
    pub fn open_for(&self, aad: &[u8], key_id: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        let (_, cipher) = self.0.iter().find(|(id, _)| id == key_id)?;
        let (nonce, ciphertext) = sealed.split_at_checked(NONCE_LEN)?;
        let payload = Payload {
            msg: ciphertext,
            aad,
        };
        cipher.decrypt(Nonce::from_slice(nonce), payload).ok()
    }
}

/// The associated data of account `account`'s sealed secrets.
fn associated(account: i32) -> Vec<u8> {
    format!("auth_service account {account}").into_bytes()
}

/// A key's id: the start of its SHA-256 (it names the key, and tells nothing of it).
fn key_id(key: &[u8; 32]) -> String {
    let digest = Sha256::new()
        .chain_update(b"auth_service mfa key id\0")
        .chain_update(key)
        .finalize();
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> SealingKeys {
        SealingKeys::parse(&SealingKeys::generate(), &[]).unwrap()
    }

    #[test]
    fn a_sealed_secret_opens_for_its_account_and_key_only() {
        let keys = keys();
        let (id, sealed) = keys.seal(7, b"JBSWY3DPEHPK3PXP");
        assert!(!sealed.windows(16).any(|w| w == b"JBSWY3DPEHPK3PXP"));
        assert_eq!(keys.open(7, &id, &sealed).unwrap(), b"JBSWY3DPEHPK3PXP");
        assert_eq!(keys.open(8, &id, &sealed), None, "another account's row");
        assert_eq!(
            keys.open(7, "000000000000", &sealed),
            None,
            "an unknown key"
        );
        assert_eq!(
            self::keys().open(7, &id, &sealed),
            None,
            "another key of that id"
        );
        for at in [0, NONCE_LEN, sealed.len() - 1] {
            let mut tampered = sealed.clone();
            tampered[at] ^= 1;
            assert_eq!(keys.open(7, &id, &tampered), None, "byte {at} altered");
        }
        assert_eq!(keys.open(7, &id, &sealed[..5]), None);
    }

    #[test]
    fn a_previous_key_opens_what_it_sealed_and_the_current_one_seals() {
        let (old, new) = (SealingKeys::generate(), SealingKeys::generate());
        let (old_id, sealed) = SealingKeys::parse(&old, &[]).unwrap().seal(1, b"s");
        let rotated = SealingKeys::parse(&new, &[old]).unwrap();
        assert_eq!(rotated.open(1, &old_id, &sealed).unwrap(), b"s");
        assert_ne!(rotated.seal(1, b"s").0, old_id);
    }

    #[test]
    fn keys_are_32_bytes_in_base64_or_hex() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        assert!(SealingKeys::parse(hex, &[]).is_ok());
        assert!(
            SealingKeys::parse("c2hvcnQ=", &[])
                .unwrap_err()
                .contains("not 5")
        );
        assert!(SealingKeys::parse("not a key!", &[]).is_err());
    }

    #[test]
    fn the_key_file_is_made_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mfa.key");
        let (first, made) = SealingKeys::from_file(&path).unwrap();
        assert!(made);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (again, made) = SealingKeys::from_file(&path).unwrap();
        assert!(!made);
        let (id, sealed) = first.seal(3, b"kept");
        assert_eq!(again.open(3, &id, &sealed).unwrap(), b"kept");
    }
}
