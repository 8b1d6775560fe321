//! `decode --verify`: key sets (JWKS), the signature and the claim checks of SPEC.md section 2.4.
//!
//! The checks run in a fixed order and the first that fails names itself (`Error::Verify { check }`):
//! algorithm, key, signature, issuer, expiry, not-before, issued-at, audience, email.
//!
//! Only RS256 and ES256 are accepted, whatever the key set says: `none` and HMAC algorithms are the classic
//! JWT forgeries (an HS256 token "signed" with an RSA public key as its secret). Keys come only from the key
//! set the user chose or Google's; keys a token carries itself (`jwk`, `jku`, `x5u`, `x5c`) are never used.
//!
//! Key sets fetched over the network are cached on disk under `<cache>/jwks/<sha256 of url>.json` for as
//! long as their `Cache-Control: max-age` (minus `Age`) allows, at most a day; a response without max-age
//! is not cached (Google's own key sets always send one). An entry others could have written is ignored, as
//! in the token cache. A token whose `kid` is not in the set triggers one fresh fetch that bypasses the
//! cache, since Google rotates its keys.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Url;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::fsutil;
use crate::log::Log;
use crate::settings::{self, Env};
use crate::sources::http::{Http, Request, Route, parse_url};
use crate::token::{Jwt, epoch_seconds, unix_secs};

/// A key set larger than this is refused: Google's are a few KiB.
pub const MAX_KEY_SET: u64 = 1 << 20;
/// Cached key sets are kept at most this long, whatever `max-age` says.
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(24 * 3600);
const ENDPOINT: &str = "key set";

/// The algorithms idtok verifies: Google's ID tokens (RS256) and IAP's assertions (ES256).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Es256,
}

impl Alg {
    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
        }
    }

    /// Google's key set for tokens signed with this algorithm.
    pub fn default_key_set(self) -> &'static str {
        match self {
            Alg::Rs256 => settings::GOOGLE_JWKS_URL,
            Alg::Es256 => settings::IAP_JWKS_URL,
        }
    }
}

/// Why bytes are not a key set. Problems with one key do not spoil the set: that key is `Key::Unusable`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksError {
    /// Not JSON at all.
    NotJson,
    /// JSON, but not `{"keys": [...]}` (nor a single JWK object).
    NotKeySet(&'static str),
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwksError::NotJson => write!(f, "not a JWK set: not valid JSON"),
            JwksError::NotKeySet(why) => write!(f, "not a JWK set: {why}"),
        }
    }
}

impl std::error::Error for JwksError {}

/// A JSON Web Key Set (RFC 7517 section 5).
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    pub keys: Vec<Jwk>,
}

/// One key of a set, with the parameters that decide whether it may verify a token.
#[derive(Debug, Clone)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The key's own `alg`, when it names one: it must then match the token's.
    pub alg: Option<String>,
    /// `use`: when present it must be `sig`.
    pub usage: Option<String>,
    pub key: Key,
}

/// Public key material, decoded. Public keys are not secrets, but `Debug` stays short anyway.
#[derive(Clone, PartialEq, Eq)]
pub enum Key {
    /// RSA modulus and exponent, big-endian without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// A P-256 point, uncompressed: `0x04 || x || y`.
    P256 { point: Vec<u8> },
    /// A key idtok cannot or will not use, and why.
    Unusable(String),
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Rsa { n, .. } => write!(f, "Rsa({} bits)", n.len() * 8),
            Key::P256 { .. } => write!(f, "P256"),
            Key::Unusable(why) => write!(f, "Unusable({why})"),
        }
    }
}

impl Key {
    fn kind(&self) -> &'static str {
        match self {
            Key::Rsa { .. } => "an RSA key",
            Key::P256 { .. } => "a P-256 (EC) key",
            Key::Unusable(_) => "an unusable key",
        }
    }

    fn fits(&self, alg: Alg) -> bool {
        matches!(
            (self, alg),
            (Key::Rsa { .. }, Alg::Rs256) | (Key::P256 { .. }, Alg::Es256)
        )
    }
}

impl KeySet {
    /// Parses a JWK set, or a single JWK object as a set of one. Never panics, whatever the bytes.
    pub fn parse(bytes: &[u8]) -> Result<KeySet, JwksError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|_| JwksError::NotJson)?;
        let Value::Object(object) = value else {
            return Err(JwksError::NotKeySet("not a JSON object"));
        };
        match object.get("keys") {
            Some(Value::Array(items)) => Ok(KeySet {
                keys: items.iter().map(parse_key).collect(),
            }),
            Some(_) => Err(JwksError::NotKeySet("`keys` is not an array")),
            None if object.contains_key("kty") => Ok(KeySet {
                keys: vec![parse_key(&Value::Object(object))],
            }),
            None => Err(JwksError::NotKeySet(
                "no `keys` array (a PEM certificate map such as oauth2/v1/certs is not a JWK set)",
            )),
        }
    }
}

fn parse_key(value: &Value) -> Jwk {
    let text = |obj: &Map<String, Value>, name: &str| -> Option<String> {
        obj.get(name).and_then(Value::as_str).map(str::to_string)
    };
    let Value::Object(obj) = value else {
        return Jwk {
            kid: None,
            alg: None,
            usage: None,
            key: Key::Unusable("not a JSON object".into()),
        };
    };
    Jwk {
        kid: text(obj, "kid"),
        alg: text(obj, "alg"),
        usage: text(obj, "use"),
        key: parse_material(obj).unwrap_or_else(Key::Unusable),
    }
}

fn parse_material(obj: &Map<String, Value>) -> Result<Key, String> {
    let field = |name: &str| -> Result<Vec<u8>, String> {
        let value = obj
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("no `{name}`"))?;
        URL_SAFE_NO_PAD
            .decode(value.trim_end_matches('='))
            .map_err(|_| format!("`{name}` is not base64url"))
    };
    match obj.get("kty").and_then(Value::as_str) {
        Some("RSA") => {
            let n = strip_leading_zeros(field("n")?);
            let e = strip_leading_zeros(field("e")?);
            if n.is_empty() || e.is_empty() {
                return Err("`n` or `e` is zero".into());
            }
            Ok(Key::Rsa { n, e })
        }
        Some("EC") => {
            match obj.get("crv").and_then(Value::as_str) {
                Some("P-256") => {}
                Some(other) => return Err(format!("curve `{other}` is not P-256")),
                None => return Err("no `crv`".into()),
            }
            let (x, y) = (field("x")?, field("y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err("`x` and `y` must be 32 bytes each for P-256".into());
            }
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            Ok(Key::P256 { point })
        }
        Some("oct") => Err("a symmetric (oct) key: never used to verify".into()),
        Some(other) => Err(format!("key type `{other}` is not supported")),
        None => Err("no `kty`".into()),
    }
}

/// RFC 7518 wants the minimal encoding, but some publishers pad `n` with a zero byte; ring does not.
fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    bytes
}

fn fail(check: &'static str, detail: impl Into<String>) -> Error {
    Error::Verify {
        check,
        detail: detail.into(),
    }
}

/// The first check: the header's `alg`, restricted to RS256 and ES256.
pub fn algorithm(jwt: &Jwt) -> Result<Alg> {
    let alg = match jwt.header.get("alg") {
        Some(Value::String(alg)) => alg.as_str(),
        Some(_) => return Err(fail("algorithm", "the header's `alg` is not a string")),
        None => return Err(fail("algorithm", "the header has no `alg`")),
    };
    let alg = match alg {
        "RS256" => Alg::Rs256,
        "ES256" => Alg::Es256,
        _ if alg.eq_ignore_ascii_case("none") => {
            return Err(fail(
                "algorithm",
                format!("the token is unsigned (alg `{alg}`); unsigned tokens are never accepted"),
            ));
        }
        _ if alg.starts_with("HS") => {
            return Err(fail(
                "algorithm",
                format!(
                    "`{alg}` is an HMAC (shared secret) algorithm; Google never signs with one, and idtok accepts \
                     only RS256 and ES256"
                ),
            ));
        }
        _ => {
            return Err(fail(
                "algorithm",
                format!(
                    "`{}` is not accepted; only RS256 and ES256 are",
                    truncate(alg)
                ),
            ));
        }
    };
    // RFC 7515 section 4.1.11: a `crit` extension that is not understood makes the token invalid.
    if jwt.header.contains_key("crit") {
        return Err(fail(
            "algorithm",
            "the header has `crit` extensions, which idtok does not understand",
        ));
    }
    Ok(alg)
}

/// The outcome of looking a token's key up in a set.
#[derive(Debug)]
pub enum Lookup<'a> {
    Found(&'a Jwk),
    /// No key for this token in the set (a refetch may help): why, in words.
    Missing(String),
}

/// Picks the key for the token: by `kid`, else the only key of the right type. A key that is there but
/// does not fit (wrong type, wrong `alg`, not for signatures, unusable) is a failure, not a miss.
pub fn select<'a>(
    set: &'a KeySet,
    kid: Option<&str>,
    alg: Alg,
    source: &str,
) -> Result<Lookup<'a>> {
    let Some(kid) = kid else {
        let fitting: Vec<&Jwk> = set.keys.iter().filter(|k| k.key.fits(alg)).collect();
        return match fitting.as_slice() {
            [key] => usable(key, alg, source).map(Lookup::Found),
            [] => Ok(Lookup::Missing(format!(
                "the token has no `kid` and {source} has no {} key",
                alg.name()
            ))),
            many => Err(fail(
                "key",
                format!(
                    "the token has no `kid` and {source} has {} {} keys to choose from",
                    many.len(),
                    alg.name()
                ),
            )),
        };
    };
    let named: Vec<&Jwk> = set
        .keys
        .iter()
        .filter(|k| k.kid.as_deref() == Some(kid))
        .collect();
    if named.is_empty() {
        return Ok(Lookup::Missing(format!(
            "{source} has no key `{}` ({} key{}: {})",
            truncate(kid),
            set.keys.len(),
            if set.keys.len() == 1 { "" } else { "s" },
            kids(set)
        )));
    }
    let key = named
        .iter()
        .find(|k| k.key.fits(alg))
        .copied()
        .unwrap_or(named[0]);
    usable(key, alg, source).map(Lookup::Found)
}

fn usable<'a>(key: &'a Jwk, alg: Alg, source: &str) -> Result<&'a Jwk> {
    let name = key.kid.as_deref().map(truncate).unwrap_or_default();
    if let Key::Unusable(why) = &key.key {
        return Err(fail(
            "key",
            format!("key `{name}` in {source} is unusable: {why}"),
        ));
    }
    if !key.key.fits(alg) {
        return Err(fail(
            "key",
            format!(
                "key `{name}` in {source} is {}, but the token says {}",
                key.key.kind(),
                alg.name()
            ),
        ));
    }
    if let Some(key_alg) = key.alg.as_deref().filter(|a| *a != alg.name()) {
        return Err(fail(
            "key",
            format!(
                "key `{name}` in {source} is for {}, but the token says {}",
                truncate(key_alg),
                alg.name()
            ),
        ));
    }
    if let Some(usage) = key.usage.as_deref().filter(|u| *u != "sig") {
        return Err(fail(
            "key",
            format!(
                "key `{name}` in {source} is for `{}`, not signatures",
                truncate(usage)
            ),
        ));
    }
    Ok(key)
}

fn kids(set: &KeySet) -> String {
    let names: Vec<String> = set
        .keys
        .iter()
        .take(10)
        .map(|k| {
            k.kid
                .as_deref()
                .map(truncate)
                .unwrap_or_else(|| "(no kid)".into())
        })
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Whether the signature over `header.payload` verifies with this key (ring does the cryptography).
pub fn signature_valid(jwt: &Jwt, alg: Alg, key: &Key) -> bool {
    let message = jwt.signed_part().as_bytes();
    match (alg, key) {
        (Alg::Rs256, Key::Rsa { n, e }) => RsaPublicKeyComponents { n, e }
            .verify(&RSA_PKCS1_2048_8192_SHA256, message, &jwt.signature)
            .is_ok(),
        (Alg::Es256, Key::P256 { point }) => {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                .verify(message, &jwt.signature)
                .is_ok()
        }
        _ => false,
    }
}

/// What the claims must say, beyond what every Google token must.
#[derive(Debug, Clone, Default)]
pub struct Expect<'a> {
    /// Accept exactly this `iss` instead of Google's.
    pub issuer: Option<&'a str>,
    pub audience: Option<&'a str>,
    /// `email` must equal this, with `email_verified` true.
    pub email: Option<&'a str>,
    /// Seconds of clock difference tolerated on `exp`, `nbf` and `iat`.
    pub clock_skew: u64,
}

/// The claim checks, in order: issuer, expiry, not-before, issued-at, audience, email.
pub fn check_claims(jwt: &Jwt, alg: Alg, expect: &Expect<'_>, now: SystemTime) -> Result<()> {
    check_issuer(jwt, alg, expect.issuer)?;
    check_times(jwt, expect.clock_skew, now)?;
    if let Some(audience) = expect.audience {
        check_audience(jwt, audience)?;
    }
    if let Some(email) = expect.email {
        check_email(jwt, email)?;
    }
    Ok(())
}

fn check_issuer(jwt: &Jwt, alg: Alg, issuer: Option<&str>) -> Result<()> {
    let allowed: Vec<&str> = match (issuer, alg) {
        (Some(issuer), _) => vec![issuer],
        (None, Alg::Rs256) => settings::GOOGLE_ISSUERS.to_vec(),
        (None, Alg::Es256) => vec![settings::IAP_ISSUER],
    };
    let expected = allowed
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(" or ");
    match jwt.payload.get("iss") {
        Some(Value::String(iss)) if allowed.contains(&iss.as_str()) => Ok(()),
        Some(Value::String(iss)) => {
            let mut detail = format!("iss is `{}`, expected {expected}", truncate(iss));
            if self_signed_service_account(jwt) {
                detail.push_str(&format!(
                    " (a self-signed service-account JWT: verify it with --issuer {iss} --jwks-url \
                     https://www.googleapis.com/service_accounts/v1/jwk/{iss})",
                    iss = truncate(iss)
                ));
            }
            Err(fail("issuer", detail))
        }
        Some(_) => Err(fail("issuer", "iss is not a string")),
        None => Err(fail(
            "issuer",
            format!("the token has no `iss`, expected {expected}"),
        )),
    }
}

/// `iss` == `sub` == a service account's email: a JWT the account signed with its own key.
pub fn self_signed_service_account(jwt: &Jwt) -> bool {
    match (jwt.str_claim("iss"), jwt.str_claim("sub")) {
        (Some(iss), Some(sub)) => iss == sub && is_service_account(iss),
        _ => false,
    }
}

pub fn is_service_account(email: &str) -> bool {
    email.contains('@') && email.ends_with("gserviceaccount.com")
}

/// A time claim as seconds since the epoch: `Ok(None)` when absent, an error when not a time.
fn seconds(jwt: &Jwt, name: &str, check: &'static str) -> Result<Option<u64>> {
    let Some(value) = jwt.payload.get(name) else {
        return Ok(None);
    };
    match epoch_seconds(value) {
        Some(secs) => Ok(Some(secs)),
        None => Err(fail(
            check,
            format!("`{name}` is not a number of seconds since 1970"),
        )),
    }
}

fn check_times(jwt: &Jwt, skew: u64, now: SystemTime) -> Result<()> {
    let now_secs = unix_secs(now);
    let allowance = format!("with {skew}s of clock skew allowed");
    // OpenID Connect Core 1.0 section 2: `exp` is required.
    let Some(exp) = seconds(jwt, "exp", "expiry")? else {
        return Err(fail("expiry", "the token has no `exp`"));
    };
    if now_secs >= exp.saturating_add(skew) {
        return Err(fail(
            "expiry",
            format!(
                "the token expired {} ago, at {} ({allowance})",
                span(now_secs - exp),
                timestamp(exp)
            ),
        ));
    }
    if let Some(nbf) = seconds(jwt, "nbf", "not-before")?
        && nbf > now_secs.saturating_add(skew)
    {
        return Err(fail(
            "not-before",
            format!(
                "the token is not valid before {}, {} from now ({allowance})",
                timestamp(nbf),
                span(nbf - now_secs)
            ),
        ));
    }
    if let Some(iat) = seconds(jwt, "iat", "issued-at")?
        && iat > now_secs.saturating_add(skew)
    {
        return Err(fail(
            "issued-at",
            format!(
                "the token was issued {} in the future, at {}: is this machine's clock or the issuer's wrong? \
                 ({allowance})",
                span(iat - now_secs),
                timestamp(iat)
            ),
        ));
    }
    Ok(())
}

fn check_audience(jwt: &Jwt, audience: &str) -> Result<()> {
    let audiences = jwt.audiences();
    if audiences.contains(&audience) {
        return Ok(());
    }
    let detail = match audiences.as_slice() {
        [] => format!("the token has no `aud`, expected `{audience}`"),
        [one] => format!("aud is `{}`, expected `{audience}`", truncate(one)),
        many => format!(
            "aud is [{}], none is `{audience}`",
            many.iter()
                .map(|a| format!("`{}`", truncate(a)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Err(fail("audience", detail))
}

fn check_email(jwt: &Jwt, email: &str) -> Result<()> {
    match jwt.payload.get("email") {
        Some(Value::String(actual)) if actual == email => {}
        Some(Value::String(actual)) => {
            return Err(fail(
                "email",
                format!("email is `{}`, expected `{email}`", truncate(actual)),
            ));
        }
        Some(_) => return Err(fail("email", "email is not a string")),
        None => {
            return Err(fail(
                "email",
                format!(
                    "the token has no `email`, expected `{email}` (mint it with --include-email, or --token-format \
                     full on the metadata server)"
                ),
            ));
        }
    }
    // Some older Google tokens carried the string "true".
    match jwt.payload.get("email_verified") {
        Some(Value::Bool(true)) => Ok(()),
        Some(Value::String(s)) if s == "true" => Ok(()),
        Some(_) => Err(fail("email", "email_verified is not true")),
        None => Err(fail("email", "the token has no `email_verified`")),
    }
}

/// Long claim values are cut short in messages.
fn truncate(s: &str) -> String {
    let s = crate::output::printable(s);
    if s.chars().count() <= 100 {
        s
    } else {
        let head: String = s.chars().take(100).collect();
        format!("{head}…")
    }
}

/// A span of seconds for people: `41m`, `3h 5m`, `2days 4h`.
pub fn span(secs: u64) -> String {
    // Down to the minute under a day, to the hour beyond: never more precise than people read.
    let rounded = if secs < 60 {
        secs
    } else if secs < 86_400 {
        secs - secs % 60
    } else {
        secs - secs % 3600
    };
    humantime::format_duration(Duration::from_secs(rounded)).to_string()
}

/// RFC 3339 in UTC for seconds since the epoch; `None` past what RFC 3339 can write (year 9999).
pub fn rfc3339(secs: u64) -> Option<String> {
    crate::output::try_rfc3339(UNIX_EPOCH.checked_add(Duration::from_secs(secs))?)
}

/// RFC 3339 for seconds since the epoch, or the number itself past the year 9999.
pub fn timestamp(secs: u64) -> String {
    rfc3339(secs).unwrap_or_else(|| format!("{secs} (after the year 9999)"))
}

/// Where the key set comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `--jwks FILE`: read once, offline.
    File(PathBuf),
    /// `--jwks-url URL`, `IDTOK_JWKS_URL`, or Google's default for the token's algorithm.
    Url(String),
}

/// What `--verify` was asked to do.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    pub keys: Option<KeySource>,
    pub expect: Expect<'a>,
    /// The deadline for fetching keys, retries included.
    pub timeout: Duration,
}

/// A token that passed every check: which key verified it, from where.
#[derive(Debug, Clone)]
pub struct Verified {
    pub alg: Alg,
    pub kid: Option<String>,
    /// The file or URL of the key set.
    pub source: String,
    /// Whether the key set came from the disk cache.
    pub cached: bool,
    /// Whether `aud` and `email` were checked.
    pub audience_checked: bool,
    pub email_checked: bool,
}

/// Runs every check in order; the first that fails is the error (exit 6). Fetch failures are exit 5, a bad
/// `--jwks` file exit 3.
pub async fn verify(jwt: &Jwt, options: &Options<'_>, env: &Env, log: Log) -> Result<Verified> {
    let alg = algorithm(jwt)?;
    let kid = match jwt.header.get("kid") {
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(fail("key", "the header's `kid` is not a string")),
        None => None,
    };
    let (key, source, cached) = match &options.keys {
        Some(KeySource::File(path)) => {
            let name = path.display().to_string();
            let set = load_file(path)?;
            (found(select(&set, kid, alg, &name)?)?.clone(), name, false)
        }
        Some(KeySource::Url(url)) => fetch_key(url, kid, alg, options.timeout, env, log).await?,
        None => fetch_key(alg.default_key_set(), kid, alg, options.timeout, env, log).await?,
    };
    if !signature_valid(jwt, alg, &key.key) {
        let name = key.kid.as_deref().map(truncate).unwrap_or_default();
        return Err(fail(
            "signature",
            format!(
                "the {} signature does not match key `{name}` from {source}: the token was altered or signed \
                 by someone else",
                alg.name()
            ),
        ));
    }
    check_claims(jwt, alg, &options.expect, SystemTime::now())?;
    Ok(Verified {
        alg,
        kid: key.kid.clone(),
        source,
        cached,
        audience_checked: options.expect.audience.is_some(),
        email_checked: options.expect.email.is_some(),
    })
}

/// A key that `select` found; a miss is the `key` check's failure.
fn found(lookup: Lookup<'_>) -> Result<&Jwk> {
    match lookup {
        Lookup::Found(key) => Ok(key),
        Lookup::Missing(why) => Err(fail("key", why)),
    }
}

/// The token's key from the key set at `url`, with the URL and whether the set came from the disk cache. A
/// set whose `kid`s miss the token's is fetched once more: Google rotates its keys.
async fn fetch_key(
    url: &str,
    kid: Option<&str>,
    alg: Alg,
    timeout: Duration,
    env: &Env,
    log: Log,
) -> Result<(Jwk, String, bool)> {
    let url = parse_url(url, "the key set URL (--jwks-url, IDTOK_JWKS_URL)")?;
    if url.scheme() == "http" {
        log.info(|| {
            format!("fetching the key set over plain http ({url}): public keys, no secret is sent")
        });
    }
    let http = Http::new(timeout, log, env.ssl_cert_file.clone());
    let fetcher = Fetcher {
        http: &http,
        url: &url,
        cache: fsutil::cache_dir(env).and_then(|dir| {
            let path = cache_path(&dir, url.as_str());
            let jwks = path.parent().unwrap_or(&dir);
            fsutil::trusted_dirs(&[&dir, jwks], log).then_some(path)
        }),
        log,
    };
    let name = url.to_string();
    let (set, cached) = match fetcher.cached() {
        Some(set) => (set, true),
        None => (fetcher.fetch().await?, false),
    };
    match select(&set, kid, alg, &name)? {
        Lookup::Found(key) => return Ok((key.clone(), name, cached)),
        Lookup::Missing(why) => {
            log.info(|| format!("{why}; fetching the key set again (keys rotate)"));
        }
    }
    let set = fetcher.fetch().await?;
    let key = found(select(&set, kid, alg, &name)?)?.clone();
    Ok((key, name, false))
}

/// `--jwks FILE`: a file that cannot be read or is not a key set is a configuration error (exit 3),
/// naming the file, like a bad credential file: the token may be fine.
fn load_file(path: &Path) -> Result<KeySet> {
    let bad = |problem: String| {
        Error::CredentialFile {
        path: path.to_path_buf(),
        problem,
        hint: Some(
            "--jwks wants a JWK set such as https://www.googleapis.com/oauth2/v3/certs saves: {\"keys\": [...]}"
                .into(),
        ),
    }
    };
    let bytes = match fsutil::read_limited(path, MAX_KEY_SET) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(bad("no such file".into())),
        Err(e) => return Err(bad(format!("cannot read the key set: {e}"))),
    };
    KeySet::parse(&bytes).map_err(|e| bad(e.to_string()))
}

/// `<cache>/jwks/<sha256 of the URL>.json`.
pub fn cache_path(cache_dir: &Path, url: &str) -> PathBuf {
    let name = crate::digest::sha256_hex(url.as_bytes());
    cache_dir.join("jwks").join(format!("{name}.json"))
}

/// One cached key set: the body as served and when it goes stale.
#[derive(Serialize, Deserialize)]
struct CacheEntry {
    url: String,
    /// Seconds since the epoch.
    expires_at: u64,
    body: String,
}

struct Fetcher<'a> {
    http: &'a Http,
    url: &'a Url,
    cache: Option<PathBuf>,
    log: Log,
}

impl Fetcher<'_> {
    /// The cached set while it is fresh; a missing, stale or corrupt entry is `None` (and gets replaced).
    fn cached(&self) -> Option<KeySet> {
        let path = self.cache.as_ref()?;
        let bytes = match fsutil::read_private_limited(path, 2 * MAX_KEY_SET) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return None,
            Err(e) => {
                self.log
                    .info(|| format!("ignoring the cached key set {}: {e}", path.display()));
                return None;
            }
        };
        let entry = match serde_json::from_slice::<CacheEntry>(&bytes) {
            Ok(entry) if entry.url == self.url.as_str() => entry,
            _ => {
                self.log
                    .info(|| format!("ignoring the corrupt cached key set {}", path.display()));
                return None;
            }
        };
        if entry.expires_at <= now_secs() {
            self.log
                .info(|| format!("the cached key set for {} is stale", self.url));
            return None;
        }
        match KeySet::parse(entry.body.as_bytes()) {
            Ok(set) => {
                self.log.info(|| {
                    format!(
                        "using the cached key set for {} (fresh until {})",
                        self.url,
                        timestamp(entry.expires_at)
                    )
                });
                Some(set)
            }
            Err(_) => {
                self.log
                    .info(|| format!("ignoring the corrupt cached key set {}", path.display()));
                None
            }
        }
    }

    /// Fetches the set (the shared client's retries and deadline apply) and caches it as `max-age` allows.
    async fn fetch(&self) -> Result<KeySet> {
        let request = Request::get(ENDPOINT, self.url.clone(), Route::Api);
        let response = self.http.send(&request).await?;
        let failed = |problem: String| Error::Failed {
            endpoint: ENDPOINT,
            url: self.url.to_string(),
            problem,
        };
        // SPEC.md section 4 puts every key-set failure under exit 5, 4xx included: a missing key set is
        // not a refusal of anything the user asked for.
        if !response.status.is_success() {
            return Err(failed(format!(
                "HTTP {}: {}",
                response.status.as_u16(),
                response.google_message()
            )));
        }
        let set = KeySet::parse(response.body.as_bytes()).map_err(|e| failed(e.to_string()))?;
        if let Some(path) = &self.cache {
            self.store(path, &response.headers, &response.body);
        }
        Ok(set)
    }

    /// Caches a fetched set for as long as the response allows; a failure only shows under -v.
    fn store(&self, path: &Path, headers: &reqwest::header::HeaderMap, body: &str) {
        let Some(ttl) = cache_ttl(headers) else {
            self.log
                .info(|| "not caching the key set: the response has no max-age".to_string());
            return;
        };
        let entry = CacheEntry {
            url: self.url.to_string(),
            expires_at: now_secs().saturating_add(ttl.as_secs()),
            body: body.to_string(),
        };
        let written = serde_json::to_vec(&entry)
            .map_err(std::io::Error::other)
            .and_then(|bytes| fsutil::write_private_atomic(path, &bytes));
        match written {
            Ok(()) => self.log.info(|| {
                format!(
                    "cached the key set for {}s in {}",
                    ttl.as_secs(),
                    path.display()
                )
            }),
            Err(e) => self
                .log
                .info(|| format!("cannot cache the key set in {}: {e}", path.display())),
        }
    }
}

/// How long a response may be reused: `Cache-Control: max-age` minus `Age`, at most a day; `None` for
/// `no-store`, `no-cache`, no max-age, or nothing left.
pub fn cache_ttl(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let mut max_age = None;
    for value in headers.get_all(reqwest::header::CACHE_CONTROL) {
        let value = value.to_str().ok()?;
        for directive in value.split(',') {
            let directive = directive.trim();
            let (name, arg) = match directive.split_once('=') {
                Some((name, arg)) => (name.trim(), Some(arg.trim().trim_matches('"'))),
                None => (directive, None),
            };
            if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                return None;
            }
            if name.eq_ignore_ascii_case("max-age") {
                max_age = arg.and_then(|a| a.parse::<u64>().ok());
            }
        }
    }
    let age = headers
        .get(reqwest::header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let ttl = max_age?.saturating_sub(age).min(MAX_CACHE_TTL.as_secs());
    (ttl > 0).then(|| Duration::from_secs(ttl))
}

fn now_secs() -> u64 {
    unix_secs(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn cache_ttl_follows_max_age_minus_age() {
        let ttl = |pairs| cache_ttl(&headers(pairs)).map(|d| d.as_secs());
        assert_eq!(
            ttl(&[(
                "cache-control",
                "public, max-age=19000, must-revalidate, no-transform"
            )]),
            Some(19000)
        );
        assert_eq!(
            ttl(&[("cache-control", "max-age=100"), ("age", "40")]),
            Some(60)
        );
        assert_eq!(
            ttl(&[("cache-control", "max-age=100"), ("age", "400")]),
            None
        );
        assert_eq!(ttl(&[("cache-control", "no-store, max-age=100")]), None);
        assert_eq!(ttl(&[("cache-control", "public")]), None);
        assert_eq!(ttl(&[]), None);
        assert_eq!(
            ttl(&[("cache-control", "max-age=99999999")]),
            Some(MAX_CACHE_TTL.as_secs())
        );
    }

    #[test]
    fn key_sets_parse_leniently_per_key() {
        let set = KeySet::parse(
            br#"{"keys":[{"kty":"RSA","kid":"a","n":"AAEC","e":"AQAB"},{"kty":"oct","kid":"h","k":"c2VjcmV0"},
                 {"kty":"EC","crv":"P-384","kid":"p"},5]}"#,
        )
        .unwrap();
        assert_eq!(set.keys.len(), 4);
        assert_eq!(
            set.keys[0].key,
            Key::Rsa {
                n: vec![1, 2],
                e: vec![1, 0, 1]
            }
        );
        assert!(matches!(set.keys[1].key, Key::Unusable(_)));
        assert!(matches!(set.keys[2].key, Key::Unusable(_)));
        assert!(matches!(set.keys[3].key, Key::Unusable(_)));
        assert_eq!(KeySet::parse(b"nope").unwrap_err(), JwksError::NotJson);
        assert!(matches!(
            KeySet::parse(br#"{"abc":"-----BEGIN CERTIFICATE-----"}"#),
            Err(JwksError::NotKeySet(_))
        ));
        assert_eq!(
            KeySet::parse(br#"{"kty":"RSA","n":"AQ","e":"AQ"}"#)
                .unwrap()
                .keys
                .len(),
            1
        );
    }

    #[test]
    fn spans_are_short() {
        assert_eq!(span(42), "42s");
        assert_eq!(span(41 * 60 + 12), "41m");
        assert_eq!(span(3 * 3600 + 5 * 60 + 7), "3h 5m");
        assert_eq!(span(2 * 86_400 + 4 * 3600 + 100), "2days 4h");
        assert_eq!(rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(rfc3339(253_402_300_800), None);
        assert_eq!(rfc3339(u64::MAX), None);
    }
}
