//! Recovery codes: one-time codes for a lost phone, shown once and stored as SHA-256 digests.
//! Each is 16 symbols of Crockford's base32 (80 random bits), grouped `xxxx-xxxx-xxxx-xxxx`; what
//! is typed is read the way Crockford's alphabet is meant to be (any case, `o` as 0, `i` and `l`
//! as 1, dashes and spaces ignored).

use sha2::{Digest, Sha256};

/// How many codes a set holds.
pub const SET_SIZE: usize = 10;
/// Codes left at which the owner is warned by mail.
pub const LOW: i64 = 2;

/// Crockford's base32 alphabet: no i, l, o, u.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Symbols per code (5 bits each).
const SYMBOLS: usize = 16;

/// A new set: the codes to show, and the digests to store.
pub fn new_set() -> (Vec<String>, Vec<[u8; 32]>) {
    let codes: Vec<String> = (0..SET_SIZE).map(|_| new_code()).collect();
    let digests = codes.iter().map(|code| digest(code)).collect();
    (codes, digests)
}

/// The digest of a typed code, as stored; any text has one (a wrong code's matches nothing).
pub fn digest(typed: &str) -> [u8; 32] {
    let symbols: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            c => c,
        })
        .collect();
    Sha256::new()
        .chain_update(b"auth_service recovery code\0")
        .chain_update(symbols.as_bytes())
        .finalize()
        .into()
}

fn new_code() -> String {
    let mut bytes = [0u8; SYMBOLS];
    getrandom::fill(&mut bytes).expect("the system's random source");
    let symbols: Vec<char> = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect();
    symbols
        .chunks(4)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_holds_ten_distinct_grouped_codes_of_80_bits() {
        let (codes, digests) = new_set();
        assert_eq!((codes.len(), digests.len()), (10, 10));
        for code in &codes {
            assert_eq!(code.len(), 19, "{code}");
            let groups: Vec<&str> = code.split('-').collect();
            assert_eq!(groups.len(), 4);
            assert!(code.bytes().all(|b| b == b'-' || ALPHABET.contains(&b)));
        }
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), 10);
        assert_eq!(digests[0], digest(&codes[0]));
    }

    #[test]
    fn typed_codes_are_read_as_crockford_meant() {
        let stored = digest("0123-abcd-1111-wxyz");
        for typed in [
            "0123abcd1111wxyz",
            "O123-ABCD-iIlL-WXYZ",
            " 0123 abcd 1111 wxyz ",
        ] {
            assert_eq!(digest(typed), stored, "{typed:?}");
        }
        assert_ne!(digest("0123-abcd-1111-wxy0"), stored);
    }
}
