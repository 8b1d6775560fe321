//! gcloud's own state, read without gcloud (googlecloudsdk `core/config.py`, `core/properties.py`,
//! `core/credentials/creds.py`): the configuration directory, the active configuration (an INI file), and
//! the accounts' credentials in `credentials.db` (SQLite), opened read-only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::error::{Error, Result};
use crate::log::Log;
use crate::settings::Env;

/// How long to wait for gcloud to finish writing `credentials.db`.
const DB_BUSY_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest configuration file read: gcloud writes a few hundred bytes.
const MAX_CONFIG: u64 = 1 << 20;

/// A configuration file's text, `Ok(None)` when it does not exist. A FIFO or a device is refused rather than
/// waited on; invalid UTF-8 is replaced (gcloud writes ASCII).
fn read_config_file(path: &Path) -> std::io::Result<Option<String>> {
    Ok(crate::fsutil::read_regular_limited(path, MAX_CONFIG)?
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
}

/// gcloud's configuration directory: `CLOUDSDK_CONFIG`, else `%APPDATA%\gcloud` on Windows, else
/// `~/.config/gcloud`.
pub fn config_dir(env: &Env) -> Option<PathBuf> {
    if let Some(dir) = &env.cloudsdk_config {
        return Some(dir.clone());
    }
    if cfg!(windows)
        && let Some(appdata) = &env.appdata
    {
        return Some(appdata.join("gcloud"));
    }
    env.home
        .as_ref()
        .map(|home| home.join(".config").join("gcloud"))
}

/// The active configuration's properties (`configurations/config_NAME`).
#[derive(Debug, Clone, Default)]
pub struct Configuration {
    pub name: String,
    pub path: PathBuf,
    /// How the name was chosen, for `-v`.
    pub chosen_by: String,
    /// `section.key` -> value.
    properties: BTreeMap<String, String>,
}

impl Configuration {
    /// The active configuration: `explicit` (`--configuration` or CLOUDSDK_ACTIVE_CONFIG_NAME), else the
    /// file `active_config`, else `default`. A configuration named explicitly must exist; the implicit one
    /// may be absent (no properties).
    pub fn active(dir: &Path, explicit: Option<&str>) -> Result<Configuration> {
        let (name, chosen_by) = match explicit {
            Some(name) => (
                name.trim().to_string(),
                "--configuration/CLOUDSDK_ACTIVE_CONFIG_NAME".to_string(),
            ),
            None => {
                let file = dir.join("active_config");
                match read_config_file(&file) {
                    Ok(Some(text)) if !text.trim().is_empty() => {
                        (text.trim().to_string(), format!("{}", file.display()))
                    }
                    _ => ("default".to_string(), "the default".to_string()),
                }
            }
        };
        if !valid_name(&name) {
            return Err(Error::Unsupported {
                what: format!("`{name}` is not a valid gcloud configuration name ({chosen_by})"),
                hint: Some("list the configurations: `gcloud config configurations list`".into()),
            });
        }
        let path = dir.join("configurations").join(format!("config_{name}"));
        let properties = match read_config_file(&path) {
            Ok(Some(text)) => parse_ini(&text),
            Ok(None) => {
                if explicit.is_some() {
                    return Err(Error::CredentialFile {
                        path,
                        problem: format!("the configuration `{name}` does not exist"),
                        hint: Some(
                            "list the configurations: `gcloud config configurations list`".into(),
                        ),
                    });
                }
                BTreeMap::new()
            }
            Err(e) => {
                return Err(Error::CredentialFile {
                    path,
                    problem: format!("the configuration cannot be read: {e}"),
                    hint: None,
                });
            }
        };
        Ok(Configuration {
            name,
            path,
            chosen_by,
            properties,
        })
    }

    /// The properties that have an environment variable idtok reads: each fills in an unset variable.
    pub fn apply(&self, env: &mut Env, log: Log) {
        let fill = |slot: &mut Option<String>, section: &str, key: &str| {
            if slot.is_none()
                && let Some(value) = self.get(section, key)
            {
                log.info(|| {
                    format!(
                        "[{section}] {key} = {value} (from the configuration `{}`)",
                        self.name
                    )
                });
                *slot = Some(value.to_string());
            }
        };
        fill(
            &mut env.iamcredentials_endpoint,
            "api_endpoint_overrides",
            "iamcredentials",
        );
        fill(&mut env.token_host, "auth", "token_host");
        fill(&mut env.universe_domain, "core", "universe_domain");
    }

    /// A property, such as `("core", "account")`.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.properties
            .get(&format!("{section}.{}", key.to_ascii_lowercase()))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// gcloud's names: a lower-case letter, then lower-case letters, digits and dashes.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Python configparser's format, as far as gcloud writes it: `[section]`, `key = value` or `key: value`,
/// `#` and `;` comments; keys are case-insensitive.
fn parse_ini(text: &str) -> BTreeMap<String, String> {
    let mut section = String::new();
    let mut properties = BTreeMap::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = name.trim().to_string();
            continue;
        }
        // Continuation lines (indented) belong to multi-line values, which gcloud does not write.
        if line.starts_with(char::is_whitespace) {
            continue;
        }
        let split = trimmed.find(['=', ':']);
        if let Some(at) = split {
            let key = trimmed[..at].trim().to_ascii_lowercase();
            let value = trimmed[at + 1..].trim().to_string();
            properties.insert(format!("{section}.{key}"), value);
        }
    }
    properties
}

/// The credential JSON of `account` in `credentials.db` (table `credentials(account_id, value)`), or
/// `None` when the database has no such account. A database that exists but cannot be read is exit 3.
/// A locked database is waited on for a moment, never past the command's `deadline`.
pub fn read_credential(
    db: &Path,
    account: &str,
    universe: Option<&str>,
    deadline: Option<Instant>,
) -> Result<Option<Vec<u8>>> {
    let bad = |problem: String, hint: Option<String>| Error::CredentialFile {
        path: db.to_path_buf(),
        problem,
        hint,
    };
    // SQLite opens the file blocking: a FIFO in its place would hang the command, so look first.
    match std::fs::metadata(db) {
        Ok(meta) if !meta.is_file() => {
            return Err(bad(
                "not a regular file (gcloud's credentials.db is an SQLite database)".into(),
                None,
            ));
        }
        _ => {}
    }
    // Plain read-only: gcloud may be writing the database; SQLite's locking keeps the read consistent.
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(db, flags).map_err(|e| bad(describe(&e), None))?;
    let busy = deadline.map_or(DB_BUSY_TIMEOUT, |deadline| {
        DB_BUSY_TIMEOUT.min(deadline.saturating_duration_since(Instant::now()))
    });
    conn.busy_timeout(busy)
        .map_err(|e| bad(describe(&e), None))?;
    let mut ids = vec![account.to_string()];
    // Outside googleapis.com gcloud keys the account as `email#universe`.
    if let Some(universe) = universe.filter(|u| *u != crate::settings::DEFAULT_UNIVERSE) {
        ids.push(format!("{account}#{universe}"));
    }
    for id in ids {
        let value = conn
            .query_row(
                "SELECT value FROM credentials WHERE account_id = ?1",
                [&id],
                |row| match row.get_ref(0)? {
                    ValueRef::Text(bytes) | ValueRef::Blob(bytes) => Ok(Some(bytes.to_vec())),
                    _ => Ok(None),
                },
            )
            .optional()
            .map_err(|e| {
                let hint = matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                )
                .then(|| "gcloud may be writing it; try again in a moment".to_string());
                bad(describe(&e), hint)
            })?;
        match value {
            Some(Some(bytes)) => return Ok(Some(bytes)),
            Some(None) => {
                return Err(bad(
                    format!("account {account}: the stored credential is not text"),
                    None,
                ));
            }
            None => {}
        }
    }
    Ok(None)
}

/// An SQLite failure in words (SQLite's messages name no data).
fn describe(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            "the database is locked".into()
        }
        Some(rusqlite::ErrorCode::NotADatabase) => {
            "not an SQLite database (gcloud's credentials.db)".into()
        }
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => "the database is corrupt".into(),
        Some(rusqlite::ErrorCode::CannotOpen) => "the database cannot be opened".into(),
        Some(rusqlite::ErrorCode::PermissionDenied) => {
            "the database cannot be read (permission denied)".into()
        }
        _ => match e {
            rusqlite::Error::SqliteFailure(_, Some(message))
                if message.contains("no such table") =>
            {
                "the database has no `credentials` table".into()
            }
            _ => format!("cannot read the database: {e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_sections_and_separators() {
        let p = parse_ini(
            "[core]\naccount = me@example.com\nProject: p1\n# note\n; other\n[auth]\nimpersonate_service_account = a@x,b@x\n",
        );
        assert_eq!(p.get("core.account").unwrap(), "me@example.com");
        assert_eq!(p.get("core.project").unwrap(), "p1");
        assert_eq!(
            p.get("auth.impersonate_service_account").unwrap(),
            "a@x,b@x"
        );
    }

    #[test]
    fn configuration_names() {
        assert!(valid_name("default"));
        assert!(valid_name("ci-2"));
        assert!(!valid_name("../x"));
        assert!(!valid_name("Default"));
        assert!(!valid_name(""));
    }
}
