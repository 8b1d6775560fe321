//! `idtok decode`: read a token, show it for people (`render_human`) or scripts (`--json`, `--claim`), and
//! with `--verify` check it first (src/verify.rs). Without `--verify` nothing touches the network.
//!
//! With `--verify`, nothing is printed unless every check passes; the output is then the same as without it,
//! except that the view for people ends with a `signature: verified ...` line. `--json` and `--claim` print
//! exactly what they print without `--verify`, so a script reads the verdict from the exit code alone.

use std::io::{self, IsTerminal, Read};
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::cli::DecodeArgs;
use crate::error::{Error, Result};
use crate::log::Log;
use crate::output;
use crate::settings::{self, Env};
use crate::token::{self, Jwt, TokenError};
use crate::verify::{self, Expect, KeySource, Options, Verified};

/// Input larger than this is refused: an ID token is about 1 KiB, the largest JWTs a few KiB.
pub const MAX_INPUT: usize = 64 * 1024;

pub async fn run(args: DecodeArgs, env: &Env, log: Log) -> Result<()> {
    let input = match args.token.as_deref() {
        None | Some("-") => read_stdin()?,
        Some(token) if token.len() > MAX_INPUT => {
            return Err(TokenError::TooLarge(MAX_INPUT).into());
        }
        Some(token) => token.to_string(),
    };
    let jwt = Jwt::parse(extract(&input))?;
    log.debug(|| format!("decoding {}", jwt.raw().redacted()));

    let verified = if args.verify {
        let options = Options {
            // An empty IDTOK_JWKS_URL counts as unset, like every other variable (settings.rs).
            keys: match (
                &args.jwks,
                args.jwks_url.as_ref().filter(|u| !u.trim().is_empty()),
            ) {
                (Some(file), _) => Some(KeySource::File(file.clone())),
                (None, Some(url)) => Some(KeySource::Url(url.clone())),
                (None, None) => None,
            },
            expect: Expect {
                issuer: args.issuer.as_deref(),
                audience: args.audience.as_deref(),
                email: args.email.as_deref(),
                clock_skew: args.clock_skew,
            },
            timeout: Duration::from_secs_f64(args.timeout),
        };
        let verified = verify::verify(&jwt, &options, env, log).await?;
        log.info(|| {
            format!(
                "verified: {} signature by key `{}` from {}{}",
                verified.alg.name(),
                verified.kid.as_deref().unwrap_or("(no kid)"),
                verified.source,
                if verified.cached { " (cached)" } else { "" }
            )
        });
        if args.audience.is_none() {
            log.warn(
                "no --audience given: any token Google signed for any service passes this check; \
                 pass --audience AUD to check that the token was minted for you",
            );
        }
        Some(verified)
    } else {
        if args.jwks_url.is_some() {
            log.info(|| "the key set URL is ignored without --verify".to_string());
        }
        None
    };

    let rendered = if !args.claim.is_empty() {
        render_claims(&jwt, &args.claim)?
    } else if args.json {
        render_json(&jwt)
    } else {
        render_human(&jwt, SystemTime::now(), verified.as_ref())
    };
    output::emit(rendered.as_bytes())
}

/// Reads stdin up to `MAX_INPUT` bytes. At a terminal, says what it is waiting for.
fn read_stdin() -> Result<String> {
    let stdin = io::stdin();
    if stdin.is_terminal() {
        eprintln!("idtok: reading the token from stdin (paste it, then press Enter and Ctrl-D)");
    }
    let mut bytes = Vec::new();
    stdin
        .lock()
        .take(MAX_INPUT as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::Io {
            what: "cannot read the token from stdin".into(),
            source,
        })?;
    if bytes.len() > MAX_INPUT {
        return Err(TokenError::TooLarge(MAX_INPUT).into());
    }
    // Bytes that are not UTF-8 cannot be base64url: the parser then names the part they are in.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The token inside what a user pastes or pipes: a bare JWT, `Bearer <jwt>`, a header line such as
/// `Authorization: Bearer <jwt>` or `X-Goog-IAP-JWT-Assertion: <jwt>` (header names in any case), with
/// surrounding whitespace or quotes. When several lines are given, the first header line whose name
/// ends in `authorization` or is IAP's assertion header is used.
pub fn extract(input: &str) -> &str {
    let mut s = input.trim_start_matches('\u{feff}').trim();
    if s.lines().filter(|l| !l.trim().is_empty()).nth(1).is_some()
        && let Some(line) = s.lines().find(|line| {
            header_value(unquote(line.trim())).is_some_and(|(name, _)| {
                let name = name.to_ascii_lowercase();
                name.ends_with("authorization") || name == "x-goog-iap-jwt-assertion"
            })
        })
    {
        s = line.trim();
    }
    s = unquote(s);
    if let Some((_, value)) = header_value(s) {
        s = unquote(value);
    }
    if let Some(rest) = strip_prefix_ignore_case(s, "bearer")
        && (rest.is_empty() || rest.starts_with(char::is_whitespace))
    {
        s = unquote(rest.trim());
    }
    s
}

/// `Name: value` with a header name of letters, digits, `-` and `_` (a JWT never holds a colon).
fn header_value(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.split_once(':')?;
    let is_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    is_name.then(|| (name, value.trim()))
}

fn unquote(s: &str) -> &str {
    for quote in ['"', '\''] {
        if s.len() >= 2
            && s.starts_with(quote)
            && s.ends_with(quote)
            && let Some(inner) = s.get(1..s.len() - 1)
        {
            return inner.trim();
        }
    }
    s
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// `{"header": {...}, "payload": {...}}` and a newline.
pub fn render_json(jwt: &Jwt) -> String {
    let mut object = Map::new();
    object.insert("header".into(), Value::Object(jwt.header.clone()));
    object.insert("payload".into(), Value::Object(jwt.payload.clone()));
    format!("{}\n", Value::Object(object))
}

/// Each claim's value on its own line: strings bare, anything else as compact JSON. A name starting with
/// `/` is a JSON pointer into the claims (`/google/compute_engine/project_id`). Every claim is looked up
/// before anything is printed, so a missing one leaves stdout empty.
pub fn render_claims(jwt: &Jwt, names: &[String]) -> Result<String> {
    let payload = Value::Object(jwt.payload.clone());
    let mut out = String::new();
    for name in names {
        let value = match jwt.payload.get(name) {
            Some(value) => value,
            None if name.starts_with('/') => payload
                .pointer(name)
                .ok_or_else(|| Error::MissingClaim(name.clone()))?,
            None => return Err(Error::MissingClaim(name.clone())),
        };
        match value {
            Value::String(s) => out.push_str(s),
            other => out.push_str(&other.to_string()),
        }
        out.push('\n');
    }
    Ok(out)
}

/// The view for people: what kind of token it is, the header and claims, and the times spelled out.
pub fn render_human(jwt: &Jwt, now: SystemTime, verified: Option<&Verified>) -> String {
    let mut out = String::new();
    if let Some(kind) = describe_kind(jwt) {
        out.push_str(&format!("kind: {}\n", crate::output::printable(&kind)));
    }
    out.push_str(&format!(
        "header:\n{:#}\nclaims:\n{:#}\n",
        Value::Object(jwt.header.clone()),
        Value::Object(jwt.payload.clone())
    ));
    for name in ["iat", "nbf", "exp"] {
        if let Some(line) = time_line(jwt, name, now) {
            out.push_str(&format!("{name}: {line}\n"));
        }
    }
    match verified {
        Some(v) => {
            let mut checked = vec!["iss", "exp/nbf/iat"];
            if v.audience_checked {
                checked.push("aud");
            }
            if v.email_checked {
                checked.push("email");
            }
            out.push_str(&format!(
                "signature: verified ({}, key `{}` from {}); checked {}{}\n",
                v.alg.name(),
                v.kid.as_deref().unwrap_or("(no kid)"),
                v.source,
                checked.join(", "),
                if v.audience_checked {
                    ""
                } else {
                    " (aud not checked: no --audience)"
                }
            ));
        }
        None => out.push_str("signature: not verified (add --verify)\n"),
    }
    out
}

/// `2025-01-01T10:00:00Z (expires in 41m)` for a time claim; `None` when absent.
fn time_line(jwt: &Jwt, name: &str, now: SystemTime) -> Option<String> {
    let value = jwt.payload.get(name)?;
    let Some(secs) = token::epoch_seconds(value) else {
        return Some(format!("{value} (not a number of seconds since 1970)"));
    };
    let now = token::unix_secs(now);
    let when = verify::timestamp(secs);
    let (past, span) = if secs <= now {
        (true, verify::span(now - secs))
    } else {
        (false, verify::span(secs - now))
    };
    let relative = match (name, past) {
        ("exp", true) => format!("expired {span} ago"),
        ("exp", false) => format!("expires in {span}"),
        ("nbf", true) => format!("valid since {span} ago"),
        ("nbf", false) => format!("not valid yet: valid in {span}"),
        (_, true) => format!("issued {span} ago"),
        (_, false) => format!("issued {span} in the future: clock skew?"),
    };
    Some(format!("{when} ({relative})"))
}

/// Names the kind of token when it is recognisable (research: google-id-token-landscape.md, B7-B8).
pub fn describe_kind(jwt: &Jwt) -> Option<String> {
    let iss = jwt.str_claim("iss")?;
    let email = jwt.str_claim("email");
    if iss == settings::IAP_ISSUER {
        let mut kind =
            "IAP assertion (Identity-Aware Proxy's signed x-goog-iap-jwt-assertion header)"
                .to_string();
        if let Some(email) = email {
            kind.push_str(&format!(" for {email}"));
        }
        if jwt.alg() != Some("ES256") {
            kind.push_str("; but IAP signs with ES256 and this token says otherwise");
        }
        return Some(kind);
    }
    if settings::GOOGLE_ISSUERS.contains(&iss) {
        let account = match email {
            Some(email) => format!("service account {email}"),
            None => "a service account (no email claim: mint it with --include-email)".to_string(),
        };
        if let Some(gce) = jwt
            .payload
            .get("google")
            .and_then(|g| g.get("compute_engine"))
        {
            let field = |name: &str| gce.get(name).and_then(Value::as_str).unwrap_or("?");
            return Some(format!(
                "Google ID token from the metadata server of Compute Engine instance {} (project {}, zone {}), \
                 for {account}",
                field("instance_name"),
                field("project_id"),
                field("zone")
            ));
        }
        if let Some(email) = email.filter(|e| verify::is_service_account(e)) {
            return Some(format!("Google ID token for service account {email}"));
        }
        let client = |claim: &str| {
            jwt.str_claim(claim)
                .filter(|c| c.ends_with(".apps.googleusercontent.com"))
        };
        if let Some(client) = client("azp").or_else(|| client("aud")) {
            let user = email.map(|e| format!(" {e}")).unwrap_or_default();
            let whose = if client == settings::GCLOUD_CLIENT_ID {
                " (gcloud's)"
            } else {
                ""
            };
            return Some(format!(
                "Google ID token for user{user}, issued to OAuth client {client}{whose}"
            ));
        }
        // A service account's token without email: `azp` is the account's numeric unique id.
        if email.is_none()
            && jwt
                .str_claim("azp")
                .is_some_and(|azp| !azp.is_empty() && azp.bytes().all(|b| b.is_ascii_digit()))
        {
            return Some(format!("Google ID token for {account}"));
        }
        return Some("Google ID token".to_string());
    }
    if verify::self_signed_service_account(jwt) {
        return Some(format!(
            "self-signed service-account JWT by {iss}: signed with the account's own key, not by Google's \
             token service (Google APIs accept it; Cloud Run does not)"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_the_token_from_what_people_paste() {
        for input in [
            "abc.def.ghi",
            "  abc.def.ghi\n",
            "\"abc.def.ghi\"",
            "'abc.def.ghi'",
            "Bearer abc.def.ghi",
            "bearer   abc.def.ghi",
            "Authorization: Bearer abc.def.ghi",
            "authorization:bearer abc.def.ghi",
            "\"Authorization: Bearer abc.def.ghi\"",
            "AUTHORIZATION: BEARER \"abc.def.ghi\"",
            "X-Goog-IAP-JWT-Assertion: abc.def.ghi",
            "\u{feff}abc.def.ghi",
            "Host: x\r\nAuthorization: Bearer abc.def.ghi\r\nAccept: */*\r\n",
        ] {
            assert_eq!(extract(input), "abc.def.ghi", "input {input:?}");
        }
        assert_eq!(extract("Bearerabc.def.ghi"), "Bearerabc.def.ghi");
        assert_eq!(extract("\""), "\"");
        assert_eq!(extract("Bearer ya29.x"), "ya29.x");
        assert_eq!(extract("Bearer "), "");
    }

    #[test]
    fn missing_claims_print_nothing() {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let jwt = Jwt::parse(&format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"RS256"}"#),
            b64(r#"{"a":"x","n":1,"o":{"p":[1]}}"#)
        ))
        .unwrap();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            render_claims(&jwt, &names(&["a", "n", "o", "/o/p/0"])).unwrap(),
            "x\n1\n{\"p\":[1]}\n1\n"
        );
        assert!(matches!(
            render_claims(&jwt, &names(&["a", "zz"])),
            Err(Error::MissingClaim(name)) if name == "zz"
        ));
    }
}
