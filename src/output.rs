//! The only writer to stdout. A closed stdout (`| head -c1`) is not an error.

use std::io::{self, Write};
use std::time::SystemTime;

use serde_json::{Value, json};

use crate::cli::OutputMode;
use crate::error::{Error, Result};
use crate::token::IdToken;

/// Text from an untrusted token, made safe to show on a terminal: control characters (escape sequences,
/// carriage returns) are written as Rust escapes, so a hostile claim cannot rewrite what the user sees.
pub fn printable(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}

/// Writes the product to stdout; a broken pipe counts as success.
pub fn emit(bytes: &[u8]) -> Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::Io {
            what: "cannot write to stdout".into(),
            source: e,
        }),
    }
}

/// RFC 3339 in UTC, to the second. A time past the year 9999 (a token's `exp` can say anything) is clamped
/// to the last second RFC 3339 can write.
pub fn rfc3339(t: SystemTime) -> String {
    try_rfc3339(t).unwrap_or_else(|| "9999-12-31T23:59:59Z".to_string())
}

/// RFC 3339 in UTC, to the second; `None` past the year 9999.
pub fn try_rfc3339(t: SystemTime) -> Option<String> {
    use std::fmt::Write as _;
    // humantime answers years past 9999 with fmt::Error, which `to_string` would turn into a panic.
    let mut out = String::new();
    write!(out, "{}", humantime::format_rfc3339_seconds(t)).ok()?;
    Some(out)
}

/// A token as the `-o` mode asks.
pub fn render_token(token: &IdToken, mode: OutputMode, now: SystemTime) -> String {
    let raw = token.jwt.raw().expose();
    match mode {
        OutputMode::Token => format!("{raw}\n"),
        OutputMode::Header => format!("Authorization: Bearer {raw}\n"),
        OutputMode::Json => {
            let jwt = &token.jwt;
            let audience = match jwt.payload.get("aud") {
                Some(aud @ (Value::String(_) | Value::Array(_))) => aud.clone(),
                _ => Value::Null,
            };
            let object = json!({
                "token": raw,
                "expires_at": jwt.expires_at().map(rfc3339),
                "expires_in": jwt.expires_in(now),
                "issued_at": jwt.time_claim("iat").map(rfc3339),
                "audience": audience,
                "email": jwt.str_claim("email"),
                "subject": jwt.str_claim("sub"),
                "source": token.source,
                "principal": token.principal,
                "cached": token.cached,
            });
            format!("{object}\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn rfc3339_never_panics() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let far = UNIX_EPOCH + Duration::from_secs(999_999_999_999);
        assert_eq!(rfc3339(far), "9999-12-31T23:59:59Z");
    }
}
