//! The service's typed settings, read once at ignite from Rocket's figment (`Rocket.toml`
//! profiles plus `ROCKET_*` environment variables), so they live beside Rocket's own keys.

use rocket::figment::Figment;
use serde::Deserialize;

/// Settings the application reads; Rocket's own keys (`port`, `secret_key`, …) stay Rocket's.
///
/// Defaults are the hardened (release) values: a deployment that forgets a key gets the safe one.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// SQLite file path, created with its schema on first start.
    pub database_url: String,
    pub database_pool_size: u32,
    /// bcrypt work factor, 4–31.
    pub bcrypt_cost: u32,
    /// Minimum password length in characters (not bytes).
    pub password_min_length: usize,
    pub session_cookie_name: String,
    pub session_cookie_secure: bool,
    /// Put the reset token in `POST /reset_password`'s body, as the original service did.
    pub expose_reset_token: bool,
    /// The service's public origin (`https://auth.example.com`): reset links are built from it,
    /// never from the request's `Host`, and API calls from it are same-origin.
    pub public_base_url: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: "auth.db".into(),
            database_pool_size: 8,
            bcrypt_cost: 12,
            password_min_length: 8,
            session_cookie_name: "session_id".into(),
            session_cookie_secure: true,
            expose_reset_token: false,
            public_base_url: None,
        }
    }
}

impl Settings {
    /// Reads and checks the settings; the message says which key is wrong and why.
    pub fn from_figment(figment: &Figment) -> Result<Settings, String> {
        let settings: Settings = figment
            .extract()
            .map_err(|e| format!("invalid configuration: {e}"))?;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), String> {
        if !(4..=31).contains(&self.bcrypt_cost) {
            return Err(format!(
                "bcrypt_cost must be between 4 and 31, not {}",
                self.bcrypt_cost
            ));
        }
        if self.database_pool_size == 0 {
            return Err("database_pool_size must be at least 1".into());
        }
        if self.password_min_length == 0 {
            return Err("password_min_length must be at least 1".into());
        }
        let name_ok = !self.session_cookie_name.is_empty()
            && self
                .session_cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !name_ok {
            return Err(format!(
                "session_cookie_name {:?} must be letters, digits, '-', '_' or '.'",
                self.session_cookie_name
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(key: &str, value: impl serde::Serialize) -> Result<Settings, String> {
        Settings::from_figment(&Figment::new().merge((key, value)))
    }

    #[test]
    fn missing_keys_take_the_hardened_defaults() {
        let s = Settings::from_figment(&Figment::new()).unwrap();
        assert_eq!(s.bcrypt_cost, 12);
        assert_eq!(s.password_min_length, 8);
        assert!(s.session_cookie_secure);
        assert!(!s.expose_reset_token);
    }

    #[test]
    fn bcrypt_cost_outside_4_to_31_is_refused() {
        assert!(with("bcrypt_cost", 3).unwrap_err().contains("bcrypt_cost"));
        assert!(with("bcrypt_cost", 32).is_err());
        assert_eq!(with("bcrypt_cost", 4).unwrap().bcrypt_cost, 4);
    }

    #[test]
    fn a_cookie_name_with_separators_is_refused() {
        assert!(with("session_cookie_name", "a;b").is_err());
        assert!(with("session_cookie_name", "").is_err());
        assert!(with("session_cookie_name", "sid_2").is_ok());
    }

    #[test]
    fn a_wrongly_typed_key_names_itself() {
        assert!(
            with("bcrypt_cost", "high")
                .unwrap_err()
                .contains("bcrypt_cost")
        );
    }
}
