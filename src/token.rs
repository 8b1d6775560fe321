//! The ID token type: parse a compact JWT, read its claims and expiry. `Debug` never prints the token.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// A secret string (token, refresh token, key, client secret). Only `expose` gives the value; `Debug` and
/// `Display` show at most the first 8 characters and the length (SPEC.md section 4).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// A short, safe description for logs: `eyJhbGci… (812 bytes)`.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// At most the first 8 characters and the length of a secret.
pub fn redact(value: &str) -> String {
    let head: String = value.chars().take(8).collect();
    format!("{head}… ({} bytes)", value.len())
}

/// Why a string is not a JWT; each names the part at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    Empty,
    AccessToken,
    Parts(usize),
    Base64(&'static str),
    Json(&'static str),
    NotObject(&'static str),
    /// The input is larger than this many bytes: no token is.
    TooLarge(usize),
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Empty => write!(f, "no token given (the input is empty)"),
            TokenError::AccessToken => write!(
                f,
                "this is a Google OAuth access token (ya29.…), not a JWT: it cannot be decoded, only an ID token can"
            ),
            TokenError::Parts(n) => write!(
                f,
                "malformed token: a JWT has 3 parts separated by '.', this has {n}"
            ),
            TokenError::Base64(part) => {
                write!(f, "malformed token: the {part} is not valid base64url")
            }
            TokenError::Json(part) => write!(f, "malformed token: the {part} is not valid JSON"),
            TokenError::NotObject(part) => {
                write!(f, "malformed token: the {part} is not a JSON object")
            }
            TokenError::TooLarge(limit) => write!(
                f,
                "the input is larger than {limit} bytes: that is not a token (an ID token is about 1 KiB)"
            ),
        }
    }
}

impl std::error::Error for TokenError {}

/// A parsed compact JWT. The signature is kept as bytes for verification.
#[derive(Clone)]
pub struct Jwt {
    raw: Secret,
    pub header: Map<String, Value>,
    pub payload: Map<String, Value>,
    pub signature: Vec<u8>,
}

impl fmt::Debug for Jwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwt")
            .field("raw", &self.raw)
            .finish_non_exhaustive()
    }
}

impl Jwt {
    /// Parses a compact JWT. Does not verify anything.
    pub fn parse(input: &str) -> Result<Jwt, TokenError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(TokenError::Empty);
        }
        if input.starts_with("ya29.") {
            return Err(TokenError::AccessToken);
        }
        let parts: Vec<&str> = input.split('.').collect();
        if parts.len() != 3 {
            return Err(TokenError::Parts(parts.len()));
        }
        let header = decode_object(parts[0], "header")?;
        let payload = decode_object(parts[1], "payload")?;
        let signature = URL_SAFE_NO_PAD
            .decode(parts[2].trim_end_matches('='))
            .map_err(|_| TokenError::Base64("signature"))?;
        Ok(Jwt {
            raw: Secret::new(input),
            header,
            payload,
            signature,
        })
    }

    pub fn raw(&self) -> &Secret {
        &self.raw
    }

    /// The `header.payload` bytes the signature covers.
    pub fn signed_part(&self) -> &str {
        let raw = self.raw.expose();
        &raw[..raw.rfind('.').unwrap_or(raw.len())]
    }

    pub fn str_claim(&self, name: &str) -> Option<&str> {
        self.payload.get(name).and_then(Value::as_str)
    }

    pub fn time_claim(&self, name: &str) -> Option<SystemTime> {
        let secs = epoch_seconds(self.payload.get(name)?)?;
        UNIX_EPOCH.checked_add(Duration::from_secs(secs))
    }

    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    /// `aud` as a list, whether the token carries a string or an array.
    pub fn audiences(&self) -> Vec<&str> {
        match self.payload.get("aud") {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    pub fn expires_at(&self) -> Option<SystemTime> {
        self.time_claim("exp")
    }

    /// Seconds until `exp`, negative when expired; `None` without `exp`.
    pub fn expires_in(&self, now: SystemTime) -> Option<i64> {
        let exp = self.expires_at()?;
        Some(match exp.duration_since(now) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        })
    }
}

/// A time claim's value as seconds since 1970: a non-negative integer, or a float (truncated); `None` for
/// anything else.
pub fn epoch_seconds(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| s as u64)
    })
}

/// `t` as whole seconds since 1970 (0 before it).
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn decode_object(part: &str, name: &'static str) -> Result<Map<String, Value>, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| TokenError::Base64(name))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(TokenError::NotObject(name)),
        Err(_) => Err(TokenError::Json(name)),
    }
}

/// A freshly minted or cached ID token, with how it was obtained.
#[derive(Debug, Clone)]
pub struct IdToken {
    pub jwt: Jwt,
    /// How the token was minted (SPEC.md section 4): metadata, service_account, authorized_user, impersonated,
    /// external_account.
    pub source: &'static str,
    /// The email that signed in, when known.
    pub principal: Option<String>,
    pub cached: bool,
}

impl IdToken {
    /// Wraps a token an endpoint returned; a body that is not a JWT is an error for the caller to report.
    pub fn from_response(
        body: &str,
        source: &'static str,
        principal: Option<String>,
    ) -> Result<IdToken, TokenError> {
        Ok(IdToken {
            jwt: Jwt::parse(body)?,
            source,
            principal,
            cached: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn parses_claims_and_expiry() {
        let t = format!(
            "{}.{}.{}",
            b64(r#"{"alg":"RS256"}"#),
            b64(r#"{"aud":["a","b"],"exp":100}"#),
            b64("sig")
        );
        let jwt = Jwt::parse(&t).unwrap();
        assert_eq!(jwt.audiences(), vec!["a", "b"]);
        assert_eq!(
            jwt.expires_in(UNIX_EPOCH + Duration::from_secs(40)),
            Some(60)
        );
        assert_eq!(
            jwt.expires_in(UNIX_EPOCH + Duration::from_secs(160)),
            Some(-60)
        );
        assert_eq!(jwt.signed_part(), &t[..t.rfind('.').unwrap()]);
    }

    #[test]
    fn names_the_broken_part() {
        assert_eq!(Jwt::parse("a.b").unwrap_err(), TokenError::Parts(2));
        assert_eq!(Jwt::parse("ya29.abc").unwrap_err(), TokenError::AccessToken);
        assert_eq!(
            Jwt::parse("!!.e30.x").unwrap_err(),
            TokenError::Base64("header")
        );
        let t = format!("{}.{}.x", b64("{}"), b64("[1]"));
        assert_eq!(
            Jwt::parse(&t).unwrap_err(),
            TokenError::NotObject("payload")
        );
        let t = format!("{}.{}.x", b64("{}"), b64("{"));
        assert_eq!(Jwt::parse(&t).unwrap_err(), TokenError::Json("payload"));
    }

    #[test]
    fn secrets_are_redacted() {
        let s = Secret::new("abcdefghijklmnop");
        assert_eq!(format!("{s:?}"), "abcdefgh… (16 bytes)");
    }
}
