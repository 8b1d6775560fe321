//! The on-disk token cache (SPEC.md section 4): one file per key under `IDTOK_CACHE_DIR`, else the platform
//! cache directory's `idtok/`; directory 0700, files 0600, written atomically (temporary file and rename), so
//! that concurrent runs never read a torn file and never lose each other's entries. An entry holds the ID
//! token and how it was minted (source, principal), nothing else: no refresh token, key or access token.
//!
//! An entry is trusted only after it is read back and checked: its key matches the one asked for, the token
//! parses as a JWT, and its own `exp` leaves at least `--min-ttl` seconds. Anything else (garbage, a torn or
//! oversized file, a loose mode: `fsutil::read_private_limited`) is ignored and replaced by the next write.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::credentials::IdTokenRequest;
use crate::fsutil;
use crate::log::Log;
use crate::settings::Env;
use crate::token::{IdToken, Jwt};

/// Bumped whenever the key input or the entry format changes, so old entries simply stop matching.
const FORMAT: u32 = 1;
/// No entry is larger than this: a Google ID token is about 1 KiB.
const MAX_ENTRY: u64 = 64 * 1024;
/// The values `IdToken::source` can take (SPEC.md section 4, `-o json`'s `source`).
const SOURCES: [&str; 5] = [
    "metadata",
    "service_account",
    "authorized_user",
    "impersonated",
    "external_account",
];

/// The cache key: a SHA-256 over everything that changes the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(String);

impl Key {
    /// `command`: the subcommand; `identity`: `Credential::identity` (source, principal, endpoint; secrets only
    /// as digests); `request`: every option of the request.
    pub fn new(command: &str, identity: &str, request: &IdTokenRequest) -> Key {
        // Destructured without `..`: a new field in IdTokenRequest does not compile until it is in the key.
        let IdTokenRequest {
            audience,
            include_email,
            format,
            licenses,
        } = request;
        let input = json!([
            "idtok token cache",
            FORMAT,
            command,
            identity,
            audience,
            include_email,
            format.map(|f| f.as_str()),
            licenses,
        ]);
        Key(crate::digest::sha256_hex(input.to_string().as_bytes()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One file of the cache. No `Debug`: it holds a token.
#[derive(Serialize, Deserialize)]
struct Entry {
    format: u32,
    key: String,
    source: String,
    principal: Option<String>,
    token: String,
}

/// What a lookup found.
pub enum Lookup {
    Hit(IdToken),
    /// Nothing usable: a new token must be minted (the reason was logged under -v).
    Miss,
}

pub struct TokenCache {
    dir: PathBuf,
    log: Log,
}

impl TokenCache {
    /// The cache of this environment; `None` when no directory can be found (no home, no `IDTOK_CACHE_DIR`)
    /// or the one found cannot be trusted (another user's, or writable by others: a warning says so).
    pub fn open(env: &Env, log: Log) -> Option<TokenCache> {
        match fsutil::cache_dir(env) {
            Some(dir) if !fsutil::trusted_dirs(&[&dir], log) => None,
            Some(dir) => Some(TokenCache { dir, log }),
            None => {
                log.info(|| {
                    "token cache off: no cache directory (set IDTOK_CACHE_DIR or HOME)".into()
                });
                None
            }
        }
    }

    /// The file that holds `key`'s entry.
    pub fn path(&self, key: &Key) -> PathBuf {
        self.dir.join(format!("token-{}.json", key.as_str()))
    }

    /// A token for `key` that stays valid for at least `min_ttl` seconds after `now`, if one is cached.
    pub fn lookup(&self, key: &Key, min_ttl: u64, now: SystemTime) -> Lookup {
        let path = self.path(key);
        let entry = match read_entry(&path, key) {
            Ok(Some(entry)) => entry,
            Ok(None) => {
                self.log.info(|| format!("cache miss ({})", path.display()));
                return Lookup::Miss;
            }
            Err(problem) => {
                self.log.info(|| {
                    format!(
                        "cache miss: ignoring the entry {} ({problem}); it will be replaced",
                        path.display()
                    )
                });
                return Lookup::Miss;
            }
        };
        let Some(expires_in) = entry.jwt.expires_in(now) else {
            self.log.info(|| {
                format!(
                    "cache miss: ignoring the entry {} (the token has no exp)",
                    path.display()
                )
            });
            return Lookup::Miss;
        };
        if expires_in < 0 || (expires_in as u64) < min_ttl {
            self.log.info(|| {
                format!("cache: token expires in {expires_in}s < min-ttl {min_ttl}s, refreshing")
            });
            return Lookup::Miss;
        }
        self.log
            .info(|| format!("cache hit ({}): expires in {expires_in}s", path.display()));
        Lookup::Hit(IdToken {
            jwt: entry.jwt,
            source: entry.source,
            principal: entry.principal,
            cached: true,
        })
    }

    /// Stores a freshly minted token. A failure (read-only directory, full disk) does not fail the command:
    /// it is reported under -v only.
    pub fn store(&self, key: &Key, token: &IdToken) {
        let path = self.path(key);
        if token
            .jwt
            .expires_in(SystemTime::now())
            .is_none_or(|s| s <= 0)
        {
            self.log.info(|| {
                "cache: not storing a token that has no exp or has expired already".into()
            });
            return;
        }
        let entry = Entry {
            format: FORMAT,
            key: key.as_str().to_string(),
            source: token.source.to_string(),
            principal: token.principal.clone(),
            token: token.jwt.raw().expose().to_string(),
        };
        let bytes = match serde_json::to_vec(&entry) {
            Ok(bytes) => bytes,
            Err(e) => {
                self.log
                    .info(|| format!("warning: cannot serialise the cache entry: {e}"));
                return;
            }
        };
        match fsutil::write_private_atomic(&path, &bytes) {
            Ok(()) => self
                .log
                .info(|| format!("cache: stored {}", path.display())),
            Err(e) => self.log.info(|| {
                format!(
                    "warning: cannot write the token cache {}: {e}",
                    path.display()
                )
            }),
        }
    }
}

/// A checked entry.
struct Checked {
    jwt: Jwt,
    source: &'static str,
    principal: Option<String>,
}

/// Reads and checks an entry: `Ok(None)` when there is none, `Err` (a reason without secrets) when it cannot
/// be trusted.
fn read_entry(path: &Path, key: &Key) -> Result<Option<Checked>, String> {
    let bytes = match fsutil::read_private_limited(path, MAX_ENTRY) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    // serde's messages can quote the input; say only where it broke.
    let entry: Entry = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "not a cache entry: {:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        )
    })?;
    if entry.format != FORMAT {
        return Err(format!("format {} instead of {FORMAT}", entry.format));
    }
    if entry.key != key.as_str() {
        return Err("stored for another key".into());
    }
    let source = SOURCES
        .iter()
        .find(|s| **s == entry.source)
        .copied()
        .ok_or_else(|| "unknown source".to_string())?;
    let jwt = Jwt::parse(&entry.token).map_err(|e| format!("the token is unusable: {e}"))?;
    Ok(Some(Checked {
        jwt,
        source,
        principal: entry.principal,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::TokenFormat;

    fn request() -> IdTokenRequest {
        IdTokenRequest {
            audience: Some("https://svc".into()),
            include_email: false,
            format: Some(TokenFormat::Standard),
            licenses: false,
        }
    }

    #[test]
    fn every_input_changes_the_key() {
        let base = Key::new("metadata", "metadata:h:default", &request());
        assert_eq!(base.as_str().len(), 64);
        assert_eq!(base, Key::new("metadata", "metadata:h:default", &request()));
        let mut variants = vec![
            Key::new("print-identity-token", "metadata:h:default", &request()),
            Key::new("metadata", "metadata:h:other", &request()),
        ];
        let mut r = request();
        r.audience = None;
        variants.push(Key::new("metadata", "metadata:h:default", &r));
        let mut r = request();
        r.include_email = true;
        variants.push(Key::new("metadata", "metadata:h:default", &r));
        let mut r = request();
        r.format = Some(TokenFormat::Full);
        variants.push(Key::new("metadata", "metadata:h:default", &r));
        let mut r = request();
        r.format = None;
        variants.push(Key::new("metadata", "metadata:h:default", &r));
        let mut r = request();
        r.licenses = true;
        variants.push(Key::new("metadata", "metadata:h:default", &r));
        for (i, v) in variants.iter().enumerate() {
            assert_ne!(*v, base, "variant {i}");
        }
    }

    #[test]
    fn fields_cannot_run_into_each_other() {
        // "a:b" + "c" and "a" + "b:c" must not collide.
        let mut r1 = request();
        r1.audience = Some("c".into());
        let mut r2 = request();
        r2.audience = Some("b:c".into());
        assert_ne!(Key::new("m", "a:b", &r1), Key::new("m", "a", &r2));
    }
}
