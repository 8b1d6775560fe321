//! The only writer to stdout. A closed stdout (`| head -c1`) is not an error.

use std::io::{self, Write};
use std::time::SystemTime;

use serde_json::{Value, json};

use crate::cli::OutputMode;
use crate::error::{Error, Result};
use crate::token::IdToken;

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

/// RFC 3339 in UTC, to the second.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
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
