//! Authenticator-app codes (TOTP, RFC 6238) as apps implement them: HMAC-SHA-1, 6 digits,
//! 30-second steps. A code is checked against the current step and one either side (a phone's
//! clock drifts); which step matched is returned, so the caller can refuse it a second time.

use hmac::{Hmac, Mac};
use qrcode::QrCode;
use qrcode::render::svg;
use subtle::ConstantTimeEq;

/// Seconds per time step.
pub const STEP_SECS: i64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Steps of clock drift accepted either side of the current one.
const DRIFT: i64 = 1;

/// A new secret: 160 random bits, the HMAC-SHA-1 key length RFC 4226 recommends.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 20];
    getrandom::fill(&mut secret).expect("the system's random source");
    secret
}

/// The secret as an authenticator app takes it typed in: base32 without padding.
pub fn base32(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// The time step of the Unix time `at`.
pub fn step_at(at: i64) -> i64 {
    at.div_euclid(STEP_SECS)
}

/// The code of `secret` for time step `step`.
pub fn code(secret: &[u8], step: i64) -> String {
    let code = hotp(secret, step as u64, DIGITS);
    format!("{code:0width$}", width = DIGITS as usize)
}

/// The time step within the drift of `now`'s whose code `typed` is (spaces ignored), if any.
/// Every candidate is compared, in constant time, so the answer's timing tells nothing.
pub fn matching_step(secret: &[u8], typed: &str, now: i64) -> Option<i64> {
    let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if typed.len() != DIGITS as usize || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = step_at(now);
    let mut found = None;
    for step in current - DRIFT..=current + DRIFT {
        if bool::from(code(secret, step).as_bytes().ct_eq(typed.as_bytes())) {
            found = Some(step);
        }
    }
    found
}

/// The `otpauth://` URI an authenticator app reads from the QR code (Google's Key Uri Format).
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let (issuer, account) = (escape(issuer), escape(account));
    format!(
        "otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        base32(secret)
    )
}

/// `uri` as a QR code in inline SVG (no XML declaration, no image request, no script).
pub fn qr_svg(uri: &str) -> String {
    let Ok(code) = QrCode::new(uri.as_bytes()) else {
        return String::new(); // longer than a QR code holds: the typed secret remains
    };
    let drawn = code
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    match drawn.find("<svg") {
        Some(start) => drawn[start..].to_owned(),
        None => drawn,
    }
}

/// HOTP (RFC 4226): the `digits`-digit code of `key` for `counter`.
fn hotp(key: &[u8], counter: u64, digits: u32) -> u32 {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[19] & 0x0f);
    let bytes = [
        hash[offset],
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ];
    (u32::from_be_bytes(bytes) & 0x7fff_ffff) % 10u32.pow(digits)
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 column (8 digits, the RFC's own key).
    #[test]
    fn rfc_6238_appendix_b_vectors() {
        let key = b"12345678901234567890";
        let vectors = [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ];
        for (at, expected) in vectors {
            assert_eq!(hotp(key, step_at(at) as u64, 8), expected, "T = {at}");
        }
        assert_eq!(code(key, step_at(59)), "287082", "six digits: the last six");
    }

    #[test]
    fn one_step_of_drift_either_side_is_accepted_and_two_are_not() {
        let secret = new_secret();
        let now = 1_700_000_015;
        let step = step_at(now);
        for drift in -1..=1 {
            let typed = code(&secret, step + drift);
            assert_eq!(matching_step(&secret, &typed, now), Some(step + drift));
        }
        for drift in [-2, 2] {
            let typed = code(&secret, step + drift);
            // A code can repeat across steps by chance (1 in a million); skip such a draw.
            if (-1..=1).all(|d| code(&secret, step + d) != typed) {
                assert_eq!(matching_step(&secret, &typed, now), None, "drift {drift}");
            }
        }
    }

    #[test]
    fn codes_are_read_with_spaces_and_nothing_else() {
        let secret = new_secret();
        let typed = code(&secret, step_at(0));
        let spaced = format!("{} {}", &typed[..3], &typed[3..]);
        assert_eq!(matching_step(&secret, &spaced, 0), Some(0));
        for bad in ["", "12345", "1234567", "12a456", "１２３４５６"] {
            assert_eq!(matching_step(&secret, bad, 0), None, "{bad:?}");
        }
    }

    #[test]
    fn the_setup_uri_and_its_qr_code() {
        let uri = otpauth_uri("auth.example.com", "a+b@c.com", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/auth.example.com:a%2Bb%40c.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=auth.example.com&algorithm=SHA1&digits=6&period=30"
        );
        let svg = qr_svg(&uri);
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{svg}"
        );
        assert!(!svg.contains("style") && !svg.contains("<script"), "{svg}");
    }
}
