//! A normalized, syntactically valid email address (parse, don't validate).

use std::fmt;

use email_address::{EmailAddress, Options};
use unicode_general_category::{GeneralCategory, get_general_category};

/// Longest address SMTP can carry (RFC 5321's path limit less the angle brackets).
const MAX_LEN: usize = 254;

/// Why a text is not an email. Its text completes a sentence that starts with the field name
/// (the API's wording); pages word each case for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailFault {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 254 characters")]
    TooLong,
    #[error("must not contain control, invisible or unassigned characters")]
    Invisible,
    #[error("is not a valid email address")]
    Invalid,
}

/// An email trimmed and lower-cased, so `A@B.com` and `a@b.com` are one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Normalizes and checks `raw`.
    pub fn parse(raw: &str) -> Result<Email, EmailFault> {
        let normalized = raw.trim().to_lowercase();
        if normalized.is_empty() {
            return Err(EmailFault::Empty);
        }
        if normalized.chars().count() > MAX_LEN {
            return Err(EmailFault::TooLong);
        }
        if normalized.chars().any(invisible) {
            return Err(EmailFault::Invisible);
        }
        let options = Options {
            minimum_sub_domains: 2,
            allow_domain_literal: false,
            allow_display_text: false,
            allow_long_local_parts: false,
        };
        EmailAddress::parse_with_options(&normalized, options)
            .map(|_| Email(normalized))
            .map_err(|_| EmailFault::Invalid)
    }

    /// The email an account has stored: it was parsed (and normalized) before it was stored.
    pub(crate) fn stored(address: &str) -> Email {
        Email(address.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address with most of it hidden (`n***@e***.com`), for a notice to another address:
    /// the owner recognizes it, a reader of the other mailbox does not learn it.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or((&self.0, ""));
        let (host, suffix) = domain.rsplit_once('.').unwrap_or((domain, ""));
        let first = |part: &str| part.chars().next().map_or(String::new(), String::from);
        let suffix = match suffix {
            "" => String::new(),
            suffix => format!(".{suffix}"),
        };
        format!("{}***@{}***{suffix}", first(local), first(host))
    }
}

/// Characters an address must not carry: controls, formatting characters (zero-width joiners
/// and spaces, bidi overrides that make an address read otherwise than it is) and code points
/// Unicode has not assigned. Two addresses that look alike must be one account or refused.
fn invisible(c: char) -> bool {
    matches!(
        get_general_category(c),
        GeneralCategory::Control | GeneralCategory::Format | GeneralCategory::Unassigned
    )
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::{Email, EmailFault};

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        let email = Email::parse("  Bob@Example.COM \n").unwrap();
        assert_eq!(email.as_str(), "bob@example.com");
    }

    #[test]
    fn ordinary_addresses_are_accepted() {
        for ok in [
            "guillaume@holberton.io",
            "a.b+tag@sub.example.org",
            "x_y-z@d.co",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "plainaddress",
            "@no-local.com",
            "no-domain@",
            "two@@at.com",
            "user@localhost",
            "a b@c.com",
            "Bob <bob@example.com>",
            "user@[127.0.0.1]",
            "<script>@x.com",
        ] {
            assert_eq!(Email::parse(bad), Err(EmailFault::Invalid), "{bad}");
        }
    }

    #[test]
    fn control_invisible_and_unassigned_characters_are_refused() {
        for sneaky in [
            "ann\u{200B}@example.com",     // zero-width space
            "ann\u{200D}@example.com",     // zero-width joiner
            "ann@exam\u{202E}elpmaxe.com", // right-to-left override
            "ann\u{7}@example.com",        // a control character
            "ann\u{0378}@example.com",     // unassigned
        ] {
            assert_eq!(
                Email::parse(sneaky),
                Err(EmailFault::Invisible),
                "{sneaky:?}"
            );
        }
        assert!(
            Email::parse("zoë@example.com").is_ok(),
            "letters of any script are fine"
        );
    }

    #[test]
    fn empty_and_blank_emails_are_refused() {
        assert_eq!(Email::parse(""), Err(EmailFault::Empty));
        assert_eq!(Email::parse("   "), Err(EmailFault::Empty));
    }

    #[test]
    fn an_email_over_254_characters_is_refused() {
        let local = "a".repeat(60);
        let domain = format!("{}.com", vec!["b".repeat(60); 3].join("."));
        let fits = format!("{local}@{domain}");
        assert!(
            fits.len() <= 254 && Email::parse(&fits).is_ok(),
            "{}",
            fits.len()
        );
        let long = format!("{local}@{}.{domain}", "c".repeat(60));
        assert!(long.len() > 254);
        assert_eq!(Email::parse(&long), Err(EmailFault::TooLong));
        assert_eq!(
            EmailFault::TooLong.to_string(),
            "must be at most 254 characters"
        );
    }

    #[test]
    fn a_masked_address_keeps_only_first_letters_and_the_top_level_domain() {
        let masked = |s: &str| Email::parse(s).unwrap().masked();
        assert_eq!(masked("newaddr@example.com"), "n***@e***.com");
        assert_eq!(masked("zoë@mail.example.co.uk"), "z***@m***.uk");
        assert_eq!(masked("a@b.io"), "a***@b***.io");
    }
}
