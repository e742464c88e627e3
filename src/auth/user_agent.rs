//! A readable summary of a client from its `User-Agent`, for the account's list of sessions:
//! "Firefox on Linux", "Safari on iOS", "curl". Only well-known names are recognized; anything
//! else is named by its first product token, so no client text is shown as it came (it is
//! still escaped wherever it is shown).

/// The longest summary stored.
const MAX_CHARS: usize = 48;

/// Browsers and tools by a token of their user agent, the most specific first (Edge and Opera
/// also say Chrome; Chrome also says Safari).
const CLIENTS: [(&str, &str); 10] = [
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chromium/", "Chromium"),
    ("HeadlessChrome/", "Headless Chrome"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
    ("python-requests/", "Python requests"),
    ("Wget/", "Wget"),
];

/// Operating systems by a token of their user agent, the most specific first (Android says
/// Linux, iOS says like Mac OS X).
const SYSTEMS: [(&str, &str); 7] = [
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
];

/// The summary of `user_agent`: "Client on System", "Client", or a cleaned first product token.
pub fn summary(user_agent: &str) -> String {
    let client = CLIENTS
        .iter()
        .find(|(token, _)| user_agent.contains(token))
        .map(|(_, name)| (*name).to_owned())
        .unwrap_or_else(|| first_product(user_agent));
    let system = SYSTEMS
        .iter()
        .find(|(token, _)| user_agent.contains(token))
        .map(|(_, name)| *name);
    let summary = match system {
        Some(system) => format!("{client} on {system}"),
        None => client,
    };
    summary.chars().take(MAX_CHARS).collect()
}

/// The name of the first product token (`Name/1.0 …` → `Name`), letters, digits and `-._ `
/// only; "Unknown client" when nothing is left.
fn first_product(user_agent: &str) -> String {
    let name: String = user_agent
        .split(['/', ' '])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-._".contains(*c))
        .collect();
    match name.is_empty() {
        true => "Unknown client".into(),
        false => name,
    }
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn common_clients_are_named_with_their_system() {
        for (agent, expected) in [
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                "Firefox on Linux",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/156.0.0.0 Safari/537.36",
                "Chrome on Linux",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like \
                 Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 \
                 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
                "Safari on iOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/120.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            ("curl/8.5.0", "curl"),
            ("python-requests/2.31.0", "Python requests"),
        ] {
            assert_eq!(summary(agent), expected, "{agent}");
        }
    }

    #[test]
    fn unknown_clients_are_named_by_a_clean_first_token_and_kept_short() {
        assert_eq!(summary("<script>alert(1)</script>"), "scriptalert1");
        assert_eq!(summary("MyApp/2.0 (build 7)"), "MyApp");
        assert_eq!(summary(""), "Unknown client");
        assert!(summary(&"x".repeat(500)).chars().count() <= 48);
    }
}
