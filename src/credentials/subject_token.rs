//! Where an `external_account` file's subject token comes from (`credential_source`): a file, a URL, an
//! executable, or AWS (a signed `GetCallerIdentity` request). As google-auth's `identity_pool.py`,
//! `pluggable.py` and `aws.py` read them.
//! <https://google.aip.dev/auth/4117>

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

use reqwest::Url;
use serde_json::{Value, json};

use super::executable::{ExecContext, Executable};
use crate::error::{Error, Result};
use crate::log::Log;
use crate::settings::AwsEnv;
use crate::sources::aws;
use crate::sources::http::{Http, Request, Route, parse_url, require_secure};
use crate::sources::sigv4::{self, AwsCredentials, Signable};
use crate::token::Secret;

/// The subject token type of a signed AWS request.
pub const AWS_TOKEN_TYPE: &str = "urn:ietf:params:aws:token-type:aws4_request";
/// The header that binds a signed AWS request to one workload identity provider.
pub const TARGET_RESOURCE_HEADER: &str = "x-goog-cloud-target-resource";
/// Subject tokens and URL bodies larger than this are refused.
const MAX_TOKEN: u64 = 1 << 20;

/// How a file or URL holds the token: the whole text, or one field of a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    Text,
    Json { field: String },
}

#[derive(Debug, Clone)]
pub enum CredentialSource {
    File {
        path: PathBuf,
        format: Format,
        /// The file's text as `subject_digest` read it for the cache key: minting exchanges the very
        /// token the key names, and the file is read once.
        read: OnceLock<Secret>,
    },
    Url {
        url: Url,
        /// Header values may be secrets (a CI system's request token).
        headers: Vec<(String, Secret)>,
        format: Format,
    },
    Executable(Executable),
    Aws(AwsSource),
}

/// `credential_source` with `environment_id: aws1`.
#[derive(Debug, Clone)]
pub struct AwsSource {
    pub region_url: Option<Url>,
    /// The role list of the AWS metadata server (`.../iam/security-credentials`).
    pub url: Option<Url>,
    /// `https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15`.
    pub regional_cred_verification_url: String,
    pub imdsv2_session_token_url: Option<Url>,
}

/// What the fetch of a subject token needs besides the source.
pub struct Fetch<'a> {
    pub http: &'a Http,
    pub credential_file: &'a Path,
    /// The STS audience (the identity provider).
    pub audience: &'a str,
    pub subject_token_type: &'a str,
    pub impersonated_email: Option<&'a str>,
    pub allow_executables: bool,
    pub aws: &'a AwsEnv,
    pub metadata_host: Option<&'a str>,
    pub log: Log,
}

impl CredentialSource {
    /// Parses `credential_source`; `bad` turns a problem (naming the field, never a value) into the
    /// credential file's error.
    pub fn parse(value: &Value, bad: &dyn Fn(String) -> Error) -> Result<CredentialSource> {
        if !value.is_object() {
            return Err(bad("field `credential_source` is not a JSON object".into()));
        }
        let string = |name: &str| -> Result<Option<String>> {
            match value.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                Some(_) => Err(bad(format!(
                    "field `credential_source.{name}` is not a non-empty string"
                ))),
            }
        };
        let url = |name: &str| -> Result<Option<Url>> {
            match string(name)? {
                None => Ok(None),
                Some(s) => super::file::http_url(&s).map(Some).ok_or_else(|| {
                    bad(format!(
                        "field `credential_source.{name}` is not an http(s) URL"
                    ))
                }),
            }
        };

        if let Some(environment) = string("environment_id")? {
            if environment == "aws1" {
                let verification = string("regional_cred_verification_url")?.ok_or_else(|| {
                    bad(
                        "field `credential_source.regional_cred_verification_url` is missing"
                            .into(),
                    )
                })?;
                return Ok(CredentialSource::Aws(AwsSource {
                    region_url: url("region_url")?,
                    url: url("url")?,
                    regional_cred_verification_url: verification,
                    imdsv2_session_token_url: url("imdsv2_session_token_url")?,
                }));
            }
            if environment.starts_with("aws") {
                return Err(bad(format!(
                    "field `credential_source.environment_id` is `{environment}`; only aws1 is supported"
                )));
            }
            return Err(bad(format!(
                "field `credential_source.environment_id` `{environment}` is not supported (only aws1)"
            )));
        }
        if let Some(executable) = value.get("executable") {
            return Ok(CredentialSource::Executable(Executable::parse(
                executable, bad,
            )?));
        }
        if value.get("certificate").is_some() {
            return Err(bad(
                "field `credential_source.certificate` (X.509 workload identity federation) is not supported by idtok"
                    .into(),
            ));
        }
        let file = string("file")?;
        let source_url = url("url")?;
        let format = parse_format(value.get("format"), bad)?;
        match (file, source_url) {
            (Some(_), Some(_)) => Err(bad(
                "field `credential_source` has both `file` and `url`; it must have exactly one".into(),
            )),
            (Some(path), None) => Ok(CredentialSource::File {
                path: PathBuf::from(path),
                format,
                read: OnceLock::new(),
            }),
            (None, Some(url)) => {
                let headers = match value.get("headers") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Object(map)) => {
                        let mut headers = Vec::new();
                        for (name, v) in map {
                            let Some(v) = v.as_str() else {
                                return Err(bad(format!(
                                    "field `credential_source.headers.{name}` is not a string"
                                )));
                            };
                            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                                return Err(bad(format!(
                                    "field `credential_source.headers` has an invalid header name `{name}`"
                                )));
                            }
                            headers.push((name.clone(), Secret::new(v)));
                        }
                        headers
                    }
                    Some(_) => {
                        return Err(bad(
                            "field `credential_source.headers` is not a JSON object".into()
                        ));
                    }
                };
                Ok(CredentialSource::Url {
                    url,
                    headers,
                    format,
                })
            }
            (None, None) => Err(bad(
                "field `credential_source` has none of `file`, `url`, `executable` or `environment_id`"
                    .into(),
            )),
        }
    }

    /// A short description for `-v`.
    pub fn describe(&self) -> String {
        match self {
            CredentialSource::File { path, .. } => format!("file {}", path.display()),
            CredentialSource::Url { url, .. } => format!("URL {url}"),
            CredentialSource::Executable(e) => format!("executable `{}`", e.program()),
            CredentialSource::Aws(_) => "AWS (signed GetCallerIdentity request)".into(),
        }
    }

    /// A SHA-256 of the subject token when it can be read locally and at once (a `file` source); `None`
    /// for the other sources, and for a file that cannot be read now (minting will report why). The text
    /// read is kept, so that `subject_token` exchanges the token this digest names.
    pub fn subject_digest(&self) -> Option<String> {
        match self {
            CredentialSource::File { path, read, .. } => {
                let bytes = crate::fsutil::read_regular_limited(path, MAX_TOKEN).ok()??;
                let digest = super::digest_hex(&String::from_utf8_lossy(&bytes));
                // Text that is not UTF-8 is read again by `subject_token`, which reports it.
                if let Ok(text) = String::from_utf8(bytes) {
                    let _ = read.set(Secret::new(text));
                }
                Some(digest)
            }
            _ => None,
        }
    }

    /// Reads or fetches the subject token.
    pub async fn subject_token(&self, f: &Fetch<'_>) -> Result<Secret> {
        match self {
            CredentialSource::File { path, format, read } => {
                let unreadable = |problem: String| Error::CredentialFile {
                    path: path.clone(),
                    problem,
                    hint: Some(format!(
                        "this is the subject token file of {} (credential_source.file); \
                         the step that writes the token must run first",
                        f.credential_file.display()
                    )),
                };
                let text = match read.get() {
                    Some(text) => text.expose().to_string(),
                    None => read_token_file(path).map_err(unreadable)?,
                };
                extract(&text, format)
                    .map_err(|problem| unreadable(format!("the subject token file {problem}")))
            }
            CredentialSource::Url {
                url,
                headers,
                format,
            } => {
                if !headers.is_empty() {
                    require_secure(url, "the headers of credential_source.url", f.metadata_host)?;
                }
                let request = headers.iter().fold(
                    Request::get("subject token URL", url.clone(), route_for(url)),
                    |request, (name, value)| request.header(name.clone(), value.expose()),
                );
                let response = f.http.send(&request).await?;
                if !response.status.is_success() {
                    return Err(response.refused(vec![format!(
                        "the URL of credential_source in {} did not give a subject token; check its headers \
                         and that the token service is available to this job",
                        f.credential_file.display()
                    )]));
                }
                extract(&response.body, format).map_err(|problem| Error::Failed {
                    endpoint: "subject token URL",
                    url: url.to_string(),
                    problem: format!("the response {problem}"),
                })
            }
            CredentialSource::Executable(executable) => {
                executable
                    .subject_token(&ExecContext {
                        credential_file: f.credential_file,
                        audience: f.audience,
                        subject_token_type: f.subject_token_type,
                        impersonated_email: f.impersonated_email,
                        allowed: f.allow_executables,
                        log: f.log,
                        remaining: f.http.remaining(),
                    })
                    .await
            }
            CredentialSource::Aws(source) => source.subject_token(f).await,
        }
    }
}

/// A subject token file's text; the error says what is wrong, never the text.
fn read_token_file(path: &Path) -> Result<String, String> {
    let bytes = match crate::fsutil::read_regular_limited(path, MAX_TOKEN) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err("the subject token file does not exist".into()),
        Err(e) => return Err(format!("cannot read the subject token file: {e}")),
    };
    String::from_utf8(bytes).map_err(|_| "the subject token file is not UTF-8 text".into())
}

fn parse_format(value: Option<&Value>, bad: &dyn Fn(String) -> Error) -> Result<Format> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(Format::Text);
    };
    let kind = match value.get("type") {
        None | Some(Value::Null) => "text",
        Some(Value::String(t)) => t.as_str(),
        Some(_) => {
            return Err(bad(
                "field `credential_source.format.type` is not a string".into()
            ));
        }
    };
    match kind.to_ascii_lowercase().as_str() {
        "text" => Ok(Format::Text),
        "json" => match value.get("subject_token_field_name") {
            Some(Value::String(field)) if !field.is_empty() => Ok(Format::Json {
                field: field.clone(),
            }),
            _ => Err(bad(
                "field `credential_source.format.subject_token_field_name` is missing (required when format.type is json)"
                    .into(),
            )),
        },
        _ => Err(bad(
            "field `credential_source.format.type` must be `text` or `json`".into(),
        )),
    }
}

/// The token in a file's or response's text; the error says what is wrong, never the text.
fn extract(text: &str, format: &Format) -> Result<Secret, String> {
    let token = match format {
        Format::Text => text.trim().to_string(),
        Format::Json { field } => {
            let value: Value = serde_json::from_str(text)
                .map_err(|_| "is not JSON (format.type is json)".to_string())?;
            match value.get(field) {
                Some(Value::String(s)) => s.trim().to_string(),
                Some(_) => return Err(format!("has a `{field}` that is not a string")),
                None => {
                    return Err(format!(
                        "has no field `{field}` (format.subject_token_field_name)"
                    ));
                }
            }
        }
    };
    if token.is_empty() {
        return Err("holds an empty subject token".into());
    }
    Ok(Secret::new(token))
}

/// The metadata route (no proxy) for link-local and metadata addresses such as Azure's IMDS.
fn route_for(url: &Url) -> Route {
    let host = url.host_str().unwrap_or("");
    if host.starts_with("169.254.")
        || host.eq_ignore_ascii_case(crate::settings::DEFAULT_METADATA_HOST)
    {
        Route::Metadata
    } else {
        Route::Api
    }
}

impl AwsSource {
    /// The subject token: the URL-encoded JSON of a SigV4-signed `POST` to AWS STS `GetCallerIdentity`,
    /// with `x-goog-cloud-target-resource` set to the audience. Google's STS replays it to AWS to learn
    /// the caller's identity; idtok itself never calls AWS STS.
    pub async fn subject_token(&self, f: &Fetch<'_>) -> Result<Secret> {
        let bad = |problem: String, hint: &str| Error::CredentialFile {
            path: f.credential_file.to_path_buf(),
            problem,
            hint: Some(hint.to_string()),
        };
        let env_credentials = match (&f.aws.access_key_id, &f.aws.secret_access_key) {
            (Some(id), Some(secret)) => Some(AwsCredentials {
                access_key_id: id.clone(),
                secret_access_key: secret.clone(),
                session_token: f.aws.session_token.clone(),
            }),
            _ => None,
        };
        let needs_metadata = f.aws.region.is_none() || env_credentials.is_none();
        let session = match (&self.imdsv2_session_token_url, needs_metadata) {
            (Some(url), true) => {
                f.log
                    .info(|| "AWS: asking for an IMDSv2 session token".to_string());
                Some(aws::session_token(f.http, url).await?)
            }
            _ => None,
        };
        let region = match (&f.aws.region, &self.region_url) {
            (Some(region), _) => {
                f.log
                    .info(|| format!("AWS region {region} (from AWS_REGION/AWS_DEFAULT_REGION)"));
                region.clone()
            }
            (None, Some(url)) => {
                let region = aws::region(f.http, url, session.as_ref()).await?;
                f.log
                    .info(|| format!("AWS region {region} (from the AWS metadata server)"));
                region
            }
            (None, None) => {
                return Err(bad(
                    "cannot tell the AWS region: AWS_REGION is not set and credential_source has no region_url"
                        .into(),
                    "set AWS_REGION, or regenerate the file with `gcloud iam workload-identity-pools create-cred-config ... --aws`",
                ));
            }
        };
        let credentials = match (env_credentials, &self.url) {
            (Some(c), _) => {
                f.log.info(|| {
                    "AWS credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY".to_string()
                });
                c
            }
            (None, Some(url)) => {
                f.log.info(|| {
                    "AWS credentials of the instance's role (AWS metadata server)".to_string()
                });
                aws::role_credentials(f.http, url, session.as_ref()).await?
            }
            (None, None) => {
                return Err(bad(
                    "no AWS credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set and credential_source \
                     has no url for the instance's role"
                        .into(),
                    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or run on an instance with a role",
                ));
            }
        };
        let verification = self
            .regional_cred_verification_url
            .replace("{region}", &region);
        let url = parse_url(
            &verification,
            "credential_source.regional_cred_verification_url",
        )?;
        if url.scheme() != "https" {
            return Err(bad(
                "field `credential_source.regional_cred_verification_url` must be an https URL"
                    .into(),
                "the usual value is https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
            ));
        }
        Ok(signed_request_token(
            &url,
            &verification,
            &region,
            f.audience,
            &credentials,
            SystemTime::now(),
        ))
    }
}

/// The serialised signed request, as google-auth builds it: `{"headers":[{"key":..,"value":..},..],
/// "method":"POST","url":..}` with sorted keys, compact, then percent-encoded (Python's `quote`).
/// The target-resource header is signed too, as the Go library does and Google recommends.
pub fn signed_request_token(
    url: &Url,
    url_text: &str,
    region: &str,
    audience: &str,
    credentials: &AwsCredentials,
    now: SystemTime,
) -> Secret {
    // The service is the host's first label: `sts` for sts.REGION.amazonaws.com.
    let service = url
        .host_str()
        .and_then(|h| h.split('.').next())
        .unwrap_or("sts");
    let signable = Signable {
        method: "POST",
        url,
        region,
        service,
        headers: &[(TARGET_RESOURCE_HEADER, audience)],
        payload: b"",
    };
    let mut headers = sigv4::sign(&signable, credentials, now);
    headers.sort();
    let headers: Vec<Value> = headers
        .into_iter()
        .map(|(key, value)| json!({ "key": key, "value": value }))
        .collect();
    // The URL as written in the file (with {region} filled in), not as the URL parser re-serialised it.
    let request = json!({ "headers": headers, "method": "POST", "url": url_text });
    Secret::new(sigv4::uri_encode(&request.to_string(), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(problem: String) -> Error {
        Error::Bug(problem)
    }

    #[test]
    fn formats() {
        assert_eq!(extract(" tok \n", &Format::Text).unwrap().expose(), "tok");
        let json = Format::Json {
            field: "value".into(),
        };
        assert_eq!(extract(r#"{"value":"t"}"#, &json).unwrap().expose(), "t");
        assert!(
            extract(r#"{"other":"t"}"#, &json)
                .unwrap_err()
                .contains("`value`")
        );
        assert!(extract("not json", &json).unwrap_err().contains("not JSON"));
        assert!(extract("  ", &Format::Text).is_err());
    }

    #[test]
    fn sources_are_recognised() {
        let file = CredentialSource::parse(&json!({"file": "/t"}), &bad).unwrap();
        assert!(matches!(
            file,
            CredentialSource::File {
                format: Format::Text,
                ..
            }
        ));
        let url = CredentialSource::parse(
            &json!({"url": "https://x/t", "headers": {"Authorization": "Bearer x"},
                    "format": {"type": "json", "subject_token_field_name": "value"}}),
            &bad,
        )
        .unwrap();
        assert!(matches!(url, CredentialSource::Url { ref headers, .. } if headers.len() == 1));
        assert!(CredentialSource::parse(&json!({"file": "/t", "url": "https://x"}), &bad).is_err());
        assert!(
            CredentialSource::parse(&json!({"file": "/t", "format": {"type": "json"}}), &bad)
                .is_err()
        );
        assert!(
            CredentialSource::parse(
                &json!({"environment_id": "aws2",
            "regional_cred_verification_url": "https://x"}),
                &bad
            )
            .is_err()
        );
        assert!(CredentialSource::parse(&json!({}), &bad).is_err());
    }

    #[test]
    fn the_digested_file_is_the_token_exchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first").unwrap();
        let source = CredentialSource::parse(&json!({"file": path}), &bad).unwrap();
        assert_eq!(
            source.subject_digest().unwrap(),
            crate::digest::sha256_hex(b"first")
        );
        // Rewritten between the cache lookup and the exchange: the token exchanged is still the one
        // that the cache key names.
        std::fs::write(&path, "second").unwrap();
        let http = Http::new(std::time::Duration::from_secs(1), Log::default(), None);
        let fetch = Fetch {
            http: &http,
            credential_file: Path::new("f.json"),
            audience: "aud",
            subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
            impersonated_email: None,
            allow_executables: false,
            aws: &AwsEnv::default(),
            metadata_host: None,
            log: Log::default(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let token = runtime.block_on(source.subject_token(&fetch)).unwrap();
        assert_eq!(token.expose(), "first");
    }

    #[test]
    fn aws_token_shape() {
        let text =
            "https://sts.us-east-1.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15";
        let url = Url::parse(text).unwrap();
        let creds = AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("secret"),
            session_token: None,
        };
        let token = signed_request_token(
            &url,
            text,
            "us-east-1",
            "//iam.googleapis.com/x",
            &creds,
            SystemTime::UNIX_EPOCH,
        );
        let encoded = token.expose();
        assert!(encoded.starts_with("%7B%22headers%22%3A%5B%7B%22key%22%3A%22Authorization%22"));
        assert!(!encoded.contains(' ') && !encoded.contains('"'));
    }
}
