//! A credential file (or a `credentials.db` value): JSON, dispatched on its `type`. Every problem is exit 3
//! naming the file and the field, never a value from the file.

use std::path::Path;
use std::time::Instant;

use reqwest::Url;
use serde_json::{Map, Value};

use super::authorized_user::AuthorizedUser;
use super::external_account::ExternalAccount;
use super::external_account_authorized_user::ExternalAccountAuthorizedUser;
use super::impersonated::Impersonation;
use super::metadata::MetadataCredential;
use super::service_account::ServiceAccountKey;
use super::{Credential, Origin};
use crate::error::{Error, Result};
use crate::settings::Env;
use crate::sources::http::require_secure;

/// How deep `source_credentials` may nest (an impersonated file whose source is impersonated, ...).
const MAX_DEPTH: usize = 3;

/// The largest credential file read: real ones are a few kilobytes, and `/dev/zero` must not fill memory.
const MAX_FILE: u64 = 1 << 20;

/// Reads and loads a credential file. A missing, unreadable, empty or oversized file is an error (exit 3).
/// A pipe (`--credential-file-override <(vault read ...)`, `/dev/stdin`) is read too, within `deadline`.
pub fn load_path(origin: Origin, env: &Env, deadline: Option<Instant>) -> Result<Credential> {
    let problem = match crate::fsutil::read_streamable_limited(origin.path(), MAX_FILE, deadline) {
        Ok(Some(bytes)) if bytes.iter().all(u8::is_ascii_whitespace) => {
            "the file is empty".to_string()
        }
        Ok(Some(bytes)) => return load_bytes(&bytes, &origin, env),
        Ok(None) => "the file does not exist".to_string(),
        Err(e) => match e.kind() {
            std::io::ErrorKind::PermissionDenied => {
                "the file cannot be read (permission denied)".into()
            }
            std::io::ErrorKind::InvalidData => {
                format!("not a credential file (larger than {MAX_FILE} bytes)")
            }
            // A directory, a socket: `not a regular file (a directory)`.
            std::io::ErrorKind::InvalidInput => e.to_string(),
            std::io::ErrorKind::TimedOut => format!("a pipe or device: {e}"),
            _ => format!("the file cannot be read: {e}"),
        },
    };
    let hint = match &origin {
        Origin::File { named_by, .. } => Some(format!(
            "point {named_by} at a readable credential file, or unset it"
        )),
        _ => None,
    };
    Err(origin.invalid(problem, hint))
}

/// Loads a credential from its JSON.
pub fn load_bytes(bytes: &[u8], origin: &Origin, env: &Env) -> Result<Credential> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        // serde_json's syntax errors carry a position, never the text; say only where.
        origin.invalid(
            format!(
                "not a JSON credential file (invalid JSON at line {}, column {})",
                e.line(),
                e.column()
            ),
            None,
        )
    })?;
    load_value(&value, origin, "", env, 0)
}

/// Loads a credential from a JSON value; `prefix` names the enclosing field (`source_credentials.`).
pub fn load_value(
    value: &Value,
    origin: &Origin,
    prefix: &str,
    env: &Env,
    depth: usize,
) -> Result<Credential> {
    let fields = Fields::new(value, origin, prefix)?;
    let kind = fields.required("type")?;
    match kind {
        "service_account" => Ok(Credential::ServiceAccount(ServiceAccountKey::load(
            &fields, env,
        )?)),
        "authorized_user" => Ok(Credential::AuthorizedUser(AuthorizedUser::load(
            &fields, env,
        )?)),
        "impersonated_service_account" => {
            if depth >= MAX_DEPTH {
                return Err(fields.invalid("source_credentials", "nests impersonation too deeply"));
            }
            let source = fields.object("source_credentials")?;
            let source_prefix = format!("{prefix}source_credentials.");
            let source = load_value(source, origin, &source_prefix, env, depth + 1)?;
            Ok(Credential::Impersonated(Impersonation::load(
                &fields, source, env,
            )?))
        }
        "external_account" => Ok(Credential::ExternalAccount(Box::new(
            ExternalAccount::load(&fields, env)?,
        ))),
        "external_account_authorized_user" => Ok(Credential::ExternalAccountUser(
            ExternalAccountAuthorizedUser::load(&fields, env)?,
        )),
        // gcloud's record of the Compute Engine account: the metadata server.
        "gce" => {
            let mut credential = MetadataCredential::new("default");
            credential.principal = fields.optional("service_account_email")?.map(str::to_string);
            Ok(Credential::Metadata(credential))
        }
        "service_account_p12" => Err(fields.origin.invalid(
            format!("credential type `{kind}` (a P12 key) is not supported"),
            Some(
                "create a JSON key: `gcloud iam service-accounts keys create key.json --iam-account EMAIL`, \
                 then `gcloud auth activate-service-account --key-file key.json`"
                    .into(),
            ),
        )),
        other => Err(fields.origin.invalid(
            format!("unsupported credential type `{}`{}", printable(other), at(prefix)),
            Some(
                "idtok reads service_account, authorized_user, impersonated_service_account and \
                 external_account files"
                    .into(),
            ),
        )),
    }
}

/// A credential file's JSON object, for reading fields with errors that name the file and the field.
pub struct Fields<'a> {
    pub map: &'a Map<String, Value>,
    pub origin: &'a Origin,
    /// The enclosing field, ending with `.` (`source_credentials.`), or empty.
    pub prefix: &'a str,
}

impl<'a> Fields<'a> {
    pub fn new(value: &'a Value, origin: &'a Origin, prefix: &'a str) -> Result<Fields<'a>> {
        match value.as_object() {
            Some(map) => Ok(Fields {
                map,
                origin,
                prefix,
            }),
            None if prefix.is_empty() => {
                Err(origin.invalid("not a JSON credential file (not a JSON object)", None))
            }
            None => Err(origin.invalid(
                format!(
                    "field `{}` is not a JSON object",
                    prefix.trim_end_matches('.')
                ),
                None,
            )),
        }
    }

    /// `field` with the enclosing field's name: `source_credentials.refresh_token`.
    pub fn name(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    /// An error about one field (exit 3): `field `x`: problem`.
    pub fn invalid(&self, field: &str, problem: &str) -> Error {
        self.origin
            .invalid(format!("field `{}` {problem}", self.name(field)), None)
    }

    /// A non-empty string field that must be present.
    pub fn required(&self, field: &str) -> Result<&'a str> {
        match self.map.get(field) {
            None | Some(Value::Null) => Err(self
                .origin
                .invalid(format!("missing field `{}`", self.name(field)), None)),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.as_str()),
            Some(Value::String(_)) => Err(self.invalid(field, "is empty")),
            Some(_) => Err(self.invalid(field, "is not a string")),
        }
    }

    /// A string field that may be absent (or null, or empty).
    pub fn optional(&self, field: &str) -> Result<Option<&'a str>> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(self.invalid(field, "is not a string")),
        }
    }

    /// An object field that must be present.
    pub fn object(&self, field: &str) -> Result<&'a Value> {
        match self.map.get(field) {
            Some(v @ Value::Object(_)) => Ok(v),
            None | Some(Value::Null) => Err(self
                .origin
                .invalid(format!("missing field `{}`", self.name(field)), None)),
            Some(_) => Err(self.invalid(field, "is not a JSON object")),
        }
    }

    /// A list of strings that may be absent.
    pub fn strings(&self, field: &str) -> Result<Vec<String>> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item.as_str() {
                    Some(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                    _ => Err(self.invalid(field, "must be a list of non-empty strings")),
                })
                .collect(),
            Some(_) => Err(self.invalid(field, "is not a list")),
        }
    }

    /// An endpoint that will receive a secret: `field` if present, else `default`; refused before anything
    /// is sent when it is plain http to a host that is neither loopback nor the metadata server.
    pub fn endpoint(
        &self,
        field: &str,
        default: &str,
        purpose: &'static str,
        env: &Env,
    ) -> Result<Url> {
        let (value, from_file) = match self.optional(field)? {
            Some(value) => (value, true),
            None => (default, false),
        };
        let Some(url) = http_url(value) else {
            return Err(if from_file {
                self.invalid(field, "is not an http(s) URL")
            } else {
                Error::Unsupported {
                    what: format!("CLOUDSDK_AUTH_TOKEN_HOST: `{value}` is not an http(s) URL"),
                    hint: None,
                }
            });
        };
        require_secure(&url, purpose, env.metadata_host())?;
        Ok(url)
    }
}

/// `value` as an http(s) URL with a host, else `None` (the caller's error names the field, never the value).
pub fn http_url(value: &str) -> Option<Url> {
    Url::parse(value)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

/// A `type` value fit to print: short and plain, else a placeholder (never echo arbitrary file contents).
fn printable(value: &str) -> String {
    if value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        value.to_string()
    } else {
        "(unrecognised value)".to_string()
    }
}

fn at(prefix: &str) -> String {
    if prefix.is_empty() {
        String::new()
    } else {
        format!(" in `{}`", prefix.trim_end_matches('.'))
    }
}

/// Whether a path names a file that exists (for the chain's "passed over" reasons).
pub fn exists(path: &Path) -> bool {
    path.try_exists().unwrap_or(true)
}
